"""Scenarios: how forget / retain / test / third-party data are drawn from a dataset.

A ``Scenario`` turns a ``DatasetBundle`` and a seed into ``ScenarioData``: the set the original
model trains on, the ``UnlearningTask`` a method receives, and any extra evaluation splits.
Options are typed ``Hyperparameters``; the CLI exposes every scenario option as ``--option-name``.
Forget indices depend only on (dataset, options, seed).

Continual deletion: scenarios with a ``requests`` option split their forget set into R disjoint
requests (``ScenarioData.requests``, rows of ``task.forget``) that reach the model one after the
other. ``request_view`` is what a method sees at request r (that request's forget rows; retain =
the training set minus every row requested so far) and ``seen_view`` what request r is evaluated on
and what Retrain after request r trains without (every row requested so far).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Optional

import numpy as np
from torch import nn

from ..data.datasets import DatasetBundle
from ..data.split import Split
from ..errors import DataError
from ..params import Hyperparameters
from ..registry import Registry
from ..task import UnlearningTask


@dataclass
class ScenarioData:
    """Everything one scenario instance produces for one seed."""

    train: Split                      # what the original model is trained on
    forget_indices: np.ndarray        # rows of ``train`` to forget
    task: UnlearningTask              # what a method sees (retain = train minus forget, ...)
    eval_splits: dict[str, Split] = field(default_factory=dict)  # extra splits for extra metrics
    train_key: Optional[str] = None   # identifies a modified training set (None = the clean one)
    # continual deletion: rows of ``task.forget`` of each sequential request (empty = one request)
    requests: list[np.ndarray] = field(default_factory=list)


class Scenario(ABC):
    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    Options: ClassVar[type[Hyperparameters]] = Hyperparameters

    def __init__(self, **options: Any) -> None:
        self.options = self.Options.from_dict(options, owner=f"scenario {self.name!r}")

    @abstractmethod
    def build(self, bundle: DatasetBundle, seed: int) -> ScenarioData:
        """Draw the forget set (deterministically from ``seed``) and assemble the task."""

    def extra_metrics(self, model: nn.Module, data: ScenarioData) -> dict[str, Any]:
        """Scenario-specific metrics of a model (e.g. ASR for backdoors, forgotten-class test acc)."""
        return {}

    def prepare_task(self, original: nn.Module, data: ScenarioData) -> None:
        """Called by the runner once the original model exists, before any method runs: complete
        ``data.task`` with what depends on that model (e.g. default relabel targets). No-op here."""

    def forget_subset(self, data: ScenarioData, rows: Any, removed: Any = None) -> ScenarioData:
        """``data`` restricted to the forget rows ``rows``. ``removed``: the forget rows no longer in
        the training data (default: all of them), so retain = ``train`` minus those; test stays.
        Scenarios with per-instance metadata or per-forget-set splits extend this."""
        rows = np.asarray(rows, dtype=np.int64)
        task = data.task
        corrected = task.corrected  # subset too when it is aligned with the forget rows
        if corrected is not None and len(corrected) == len(task.forget):
            corrected = corrected.subset(rows)
        retain = task.retain
        if removed is not None and len(removed) < len(task.forget):
            keep = np.ones(len(data.train), dtype=bool)
            keep[data.forget_indices[np.asarray(removed, dtype=np.int64)]] = False
            retain = data.train.subset(np.flatnonzero(keep))
        sub_task = replace(task, forget=task.forget.subset(rows), retain=retain, corrected=corrected,
                           metadata=dict(task.metadata))
        return replace(data, forget_indices=data.forget_indices[rows], task=sub_task, requests=[])

    def request_view(self, data: ScenarioData, r: int) -> ScenarioData:
        """What a method sees at request ``r`` (1-based): that request's forget rows; retain = the
        training set minus every row of requests 1..r."""
        return self.forget_subset(data, data.requests[r - 1], removed=requested_rows(data, r))

    def seen_view(self, data: ScenarioData, r: int) -> ScenarioData:
        """Every row of requests 1..r as the forget set, retain = the rest of the training set:
        what request ``r`` is evaluated on, and what Retrain after request ``r`` never sees."""
        seen = requested_rows(data, r)
        return self.forget_subset(data, seen, removed=seen)


SCENARIOS: Registry[type[Scenario]] = Registry("scenario")


def requested_rows(data: ScenarioData, r: int) -> np.ndarray:
    """Rows of ``data.task.forget`` of requests 1..r (in request order)."""
    if not 1 <= r <= len(data.requests):
        raise DataError(f"request {r} does not exist: this scenario makes {len(data.requests)} requests")
    return np.concatenate(data.requests[:r])


def group_requests(groups: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Forget indices and request rows from disjoint groups of training indices (one per request):
    each group sorted, the groups in order; no request rows for a single group."""
    groups = [np.sort(np.asarray(g, dtype=np.int64)) for g in groups]
    idx = np.concatenate(groups)
    bounds = np.cumsum([0] + [len(g) for g in groups])
    requests = [np.arange(bounds[i], bounds[i + 1]) for i in range(len(groups))] if len(groups) > 1 else []
    return idx, requests


def draw_requests(pool: Any, per_request: int, requests: int, seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """``requests`` disjoint random groups of ``per_request`` members of ``pool`` (deterministic under
    ``seed``; one request = the same draw as ``rng.choice(pool, per_request)``)."""
    check_requests(requests)
    pool = np.asarray(pool)
    if requests * per_request >= len(pool):
        raise DataError(f"requests={requests} x {per_request} = {requests * per_request} examples, but only "
                        f"{len(pool)} are available; nothing would remain - use fewer or smaller requests")
    drawn = np.random.default_rng(seed).choice(pool, requests * per_request, replace=False)
    return group_requests(np.array_split(drawn, requests))


def given_requests(given: Any, n: int, requests: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Explicit forget indices (validated against a training set of ``n``) split into ``requests``
    equal consecutive groups."""
    check_requests(requests)
    check_indices(given, n)  # range, duplicates, not everything
    if len(given) % requests:
        raise DataError(f"{len(given)} forget indices cannot be split into requests={requests} equal groups")
    return group_requests(np.array_split(np.asarray(given, dtype=np.int64), requests))


def batch_requests(idx: np.ndarray, requests: int, seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """A fixed forget set split at random (deterministic under ``seed``) into ``requests`` disjoint
    batches of (nearly) equal size; one request leaves it whole and sorted."""
    check_requests(requests)
    if requests > len(idx):
        raise DataError(f"requests={requests} exceeds the {len(idx)} examples of the forget set; every "
                        "request needs at least one")
    if requests == 1:
        return group_requests([idx])
    order = np.random.default_rng([seed, 104729]).permutation(np.asarray(idx, dtype=np.int64))
    return group_requests(np.array_split(order, requests))


def check_requests(requests: int) -> None:
    if requests < 1:
        raise DataError(f"requests={requests} must be >= 1 (the number of sequential deletion requests)")


def register_scenario(cls: type[Scenario]) -> type[Scenario]:
    if not cls.name or not cls.summary:
        raise TypeError(f"{cls.__name__} must set 'name' and 'summary'")
    return SCENARIOS.register(cls.name)(cls)


def resolve_count(size: float, n: int, what: str = "forget-size") -> int:
    """A fraction in (0, 1) of ``n`` or an absolute count >= 1."""
    if size <= 0:
        raise DataError(f"{what}={size} must be > 0 (a fraction in (0, 1) or a count)")
    count = int(round(size * n)) if size < 1 else int(size)
    if size >= 1 and size != int(size):
        raise DataError(f"{what}={size}: a count must be a whole number")
    if count < 1:
        raise DataError(f"{what}={size} selects no example out of {n}; use a larger value")
    if count >= n:
        raise DataError(f"{what}={size} selects all {n} training examples; nothing would remain to "
                        "retain - use a smaller forget set")
    return count


def check_class(bundle: DatasetBundle, value: int, option: str, sentinel: str = "") -> None:
    """Raise a DataError naming ``option`` unless ``value`` is a class of ``bundle``; ``sentinel``
    describes an extra allowed value the caller has already handled (e.g. "-1 = next class")."""
    if not 0 <= value < bundle.num_classes:
        extra = f" (or {sentinel})" if sentinel else ""
        raise DataError(f"{option}={value} does not exist: {bundle.name} has classes "
                        f"0..{bundle.num_classes - 1}{extra}")


def check_indices(indices: Any, n: int) -> np.ndarray:
    """Validate explicit forget indices into a training set of size ``n``."""
    idx = np.asarray(indices)
    if idx.size == 0:
        raise DataError("the forget set is empty: give at least one index")
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise DataError(f"forget indices must be a 1-D list of integers, got {idx.dtype} shape {idx.shape}")
    bad = idx[(idx < 0) | (idx >= n)]
    if bad.size:
        raise DataError(f"forget index {int(bad[0])} is out of range for a training set of {n} examples")
    uniq, counts = np.unique(idx, return_counts=True)
    if (counts > 1).any():
        raise DataError(f"forget index {int(uniq[counts > 1][0])} appears more than once")
    if uniq.size >= n:
        raise DataError(f"the forget set covers all {n} training examples; nothing would remain to retain")
    return np.sort(idx.astype(np.int64))


def make_task(bundle: DatasetBundle, train: Split, forget_idx: np.ndarray, **overrides: Any) -> UnlearningTask:
    """Task with forget = train[forget_idx], retain = the rest, the bundle's test and third-party sets."""
    mask = np.ones(len(train), dtype=bool)
    mask[forget_idx] = False
    fields_ = dict(forget=train.subset(forget_idx), retain=train.subset(np.flatnonzero(mask)),
                   test=bundle.test, third_party=bundle.third_party, num_classes=bundle.num_classes)
    fields_.update(overrides)
    return UnlearningTask(**fields_)
