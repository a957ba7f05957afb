"""Deletion receipts: a record of one unlearning request that can be kept and checked later.

A receipt says what was deleted (hashes of the forget set: its sorted indices, its samples and each
row), from which model (hash of the input weights), how (method, fully resolved hyperparameters,
seed, device, software versions), which data the method saw and which it could not, with what
result (hash of the output weights, wall time), with what evidence (forget / retain / test accuracy
and MIA-efficacy before and after, whether the request changed the forget predictions at all), where
it stands in its chain of requests, and whether the chain has drifted far enough to call for a real
retrain. It is a plain JSON-ready dict, sealed with a digest of its own content and optionally signed.

    >>> first = unlearn_with_receipt(model, forget=(x_f, y_f), retain=(x_r, y_r), test=(x_t, y_t),
    ...                              method="rl", forget_indices=idx, epochs=3)
    >>> first.model         # the unlearned nn.Module (same state_dict keys)
    >>> first.receipt       # the dict; json.dump(first.receipt, f) keeps it
    >>> second = unlearn_with_receipt(first.model, forget=..., retain=..., previous=first.receipt)
"""

from __future__ import annotations

import datetime
import platform
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import nn

from .._version import __version__
from ..data.split import Split
from ..errors import DataError, MissingSplitError
from ..evaluation import evaluate, predict_logits
from ..evaluation.metrics import mean_loss
from ..methods import UnlearningMethod, method_and_task
from ..methods.blocks.noop import NOOP_REL_TOL, is_noop, not_applicable
from ..task import UnlearningTask
from ..training import TrainRecipe
from ..utils import Timer, resolve_device, to_jsonable, warm_up_torch
from . import signing
from .chain import open_link
from .digest import seal
from .drift import assess_drift, thresholds_for
from .hashes import HASH_SCHEME, indices_sha256, samples_sha256, weights_sha256

RECEIPT_VERSION = 2
#: the largest integer RFC 8785 (canonical JSON, as I-JSON) represents exactly
MAX_JSON_INT = 2**53 - 1
#: the splits a receipt accounts for, in order
SPLITS = ("forget", "retain", "test", "third_party")


@dataclass(frozen=True)
class UnlearningResult:
    """What ``unlearn_with_receipt`` returns: the unlearned model and its receipt (a JSON-ready dict)."""

    model: nn.Module
    receipt: dict[str, Any]


def forget_change(before: nn.Module, after: nn.Module, forget: Split) -> dict[str, Any]:
    """How much the request changed the model on the forget set, and whether that is nothing at all
    (``no_op``: the criterion every unlearning call is checked with, ``methods.blocks.noop.is_noop``)."""
    changed = int((predict_logits(before, forget).argmax(1) != predict_logits(after, forget).argmax(1)).sum())
    loss_before, loss_after = mean_loss(before, forget), mean_loss(after, forget)
    return {"no_op": is_noop(changed, loss_before, loss_after), "forget_predictions_changed": changed,
            "forget_loss_before": loss_before, "forget_loss_after": loss_after,
            "tolerance": {"rtol": NOOP_REL_TOL}}


def over_forgetting(algorithm: UnlearningMethod, task: UnlearningTask) -> dict[str, Any]:
    """The over-forgetting check the call ran (``methods.blocks.noop.check_overforget``): its report with
    the ``overforget`` flag (and what to try when it is set), or ``{"skipped": reason}`` where it could not apply."""
    if not algorithm.changes_model:
        return {"skipped": f"{algorithm.name} does not change the model"}
    report = algorithm.overforget
    if report is not None:
        return {**report.to_dict(), "hint": algorithm.overforget_hint} if report.overforget else report.to_dict()
    return {"skipped": not_applicable(task) or "no class of the forget set has unseen (test or third-party) examples"}


def software_versions() -> dict[str, str]:
    return {"unlearnkit": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def unlearn_with_receipt(
    model: nn.Module,
    forget: Any,
    retain: Any = None,
    *,
    method: str = "ft",
    test: Any = None,
    third_party: Any = None,
    forget_indices: Optional[Sequence[int] | np.ndarray] = None,
    recipe: Optional[TrainRecipe] = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    previous: Any = None,
    training_rows: Optional[int] = None,
    retrain_thresholds: Any = None,
    sign_key: Any = None,
    **hyperparameters: Any,
) -> UnlearningResult:
    """``unlearnkit.unlearn`` plus its deletion receipt.

    Same arguments as ``unlearnkit.unlearn`` (the input model is never modified; without ``retain``
    only methods that run without it are accepted), plus ``forget_indices`` (the positions of the forget
    samples in the training data, hashed into the receipt), ``recipe`` (how ``model`` was trained,
    which ``retrain`` repeats), ``previous`` (the receipt, or its file, of the request this one follows:
    ``model`` must be its output and no forget or retain row one it removed), ``training_rows`` (how many
    rows the chain's first model was trained on; by default forget + retain of a first request),
    ``retrain_thresholds`` (a dict or ``RetrainThresholds`` changing when a retrain is recommended) and
    ``sign_key`` (an Ed25519 private key or its PEM file). Returns an ``UnlearningResult``.
    """
    algorithm, task = method_and_task(model, method, hyperparameters, forget=forget, retain=retain, test=test,
                                      third_party=third_party, recipe=recipe)
    _check_request(algorithm, task, seed, forget_indices, training_rows)
    input_hash = weights_sha256(model)
    link = open_link(previous, input_hash, task.forget, task.retain)
    chain = link.record(training_rows, None if task.retain is None else len(task.retain))
    limits = thresholds_for(link.previous, retrain_thresholds)
    key = None if sign_key is None else signing.private_key(sign_key)  # a bad key fails before the work
    warm_up_torch()  # torch's one-off lazy imports are not part of the method's time
    with Timer() as timer:
        unlearned = algorithm.unlearn(model, task, seed=seed, device=device)
    receipt = {
        "receipt_version": RECEIPT_VERSION,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "software": software_versions(),
        "method": {"name": algorithm.name, "hyperparameters": algorithm.params.to_dict(),
                   "train_recipe": None if recipe is None else recipe.to_dict()},
        "seed": int(seed),
        "device": str(resolve_device(device)),
        "threads": torch.get_num_threads(),  # CPU results depend on it (float reduction order)
        "data": data_seen(algorithm, task, forget_indices),
        "hashes": _hashes(input_hash, unlearned, task, forget_indices),
        "counts": {**{name: len(getattr(task, name)) if getattr(task, name) is not None else 0 for name in SPLITS},
                   "parameters": sum(p.numel() for p in model.parameters())},
        "chain": chain,
        "wall_time_s": {"unlearn": timer.seconds},
    }
    receipt.update(_evidence(model, unlearned, task, seed, receipt["wall_time_s"]))
    receipt["over_forgetting"] = over_forgetting(algorithm, task)
    receipt["drift"] = assess_drift(receipt, link.previous, limits)
    return UnlearningResult(unlearned, seal(to_jsonable(receipt), key))


def _hashes(input_hash: str, unlearned: nn.Module, task: UnlearningTask,
            forget_indices: Optional[Sequence[int] | np.ndarray]) -> dict[str, Any]:
    return {"input_weights_sha256": input_hash, "output_weights_sha256": weights_sha256(unlearned),
            "forget_indices_sha256": None if forget_indices is None else indices_sha256(forget_indices),
            "forget_samples_sha256": samples_sha256(task.forget, forget_indices),
            "test_samples_sha256": None if task.test is None else samples_sha256(task.test),
            "scheme": HASH_SCHEME}


def check_needs(algorithm: UnlearningMethod, available: set[str], flags: Optional[dict[str, str]] = None) -> None:
    """Refuse, in one line, a method that needs data not given: name what it needs, how to give it
    (``flags``: per split, for the command line; ``split=...`` otherwise) and the methods that run on
    the data given."""
    missing = [s for s in algorithm.requires if s not in available or s in algorithm.withheld]
    if not missing:
        return
    from ..methods import METHODS

    how = [(flags or {}).get(s, f"{s}=...") for s in missing]
    fit = [n for n in METHODS.names() if METHODS.get(n).changes_model
           and set(METHODS.get(n).requires) <= available - set(METHODS.get(n).withheld)]
    raise MissingSplitError(f"method {algorithm.name!r} needs the {', '.join(missing)} data, which this request "
                            f"does not give; pass {' and '.join(how)}, or choose a method that runs on the data "
                            f"given: {', '.join(fit) or 'none'}")


def data_seen(algorithm: UnlearningMethod, task: UnlearningTask,
              forget_indices: Optional[Sequence[int] | np.ndarray]) -> dict[str, Any]:
    """Which splits the method read, and why it did not read the others (every split is evaluated)."""
    reads = (set(algorithm.requires) | set(algorithm.optional)) - set(algorithm.withheld)
    seen, not_seen = [], {}
    for name in SPLITS:
        if getattr(task, name) is None:
            not_seen[name] = "not given"
        elif name in algorithm.withheld:
            not_seen[name] = f"withheld: {algorithm.name} runs without {name} data"
        elif name not in reads:
            not_seen[name] = f"given, but {algorithm.name} does not read it"
        else:
            seen.append(name)
    budget = getattr(algorithm.params, "retain_budget", None)
    record: dict[str, Any] = {"forget_given_as": "samples" if forget_indices is None else "indices into the training data",
                              "seen_by_method": seen, "not_seen": not_seen}
    if budget is not None and "retain" in seen:
        record["retain_rows_read"] = min(budget, len(task.retain))
    return record


def _check_request(algorithm: UnlearningMethod, task: UnlearningTask, seed: Any,
                   forget_indices: Optional[Sequence[int] | np.ndarray], training_rows: Any) -> None:
    """What can be refused before any work: missing data, a seed the receipt cannot hold, bad indices."""
    check_needs(algorithm, task.available())
    if training_rows is not None and (isinstance(training_rows, bool) or not isinstance(training_rows, (int, np.integer))
                                      or not 1 <= training_rows <= MAX_JSON_INT):
        raise DataError(f"training_rows must be a positive integer, got {training_rows!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or abs(int(seed)) > MAX_JSON_INT:
        raise DataError(f"seed must be an integer of at most 2^53 - 1 (what a receipt's canonical JSON holds "
                        f"exactly), got {seed!r}")
    if forget_indices is not None:
        _check_indices(forget_indices, len(task.forget))


def _check_indices(indices: Sequence[int] | np.ndarray, n_forget: int) -> None:
    if len(indices) != n_forget:
        raise DataError(f"forget_indices has {len(indices)} entries but the forget set has {n_forget} samples")
    values, counts = np.unique(np.asarray(indices, dtype=np.int64), return_counts=True)
    if (counts > 1).any():
        raise DataError(f"forget_indices repeats index {values[counts > 1][0]}: each forget sample needs its own index")


def _evidence(model: nn.Module, unlearned: nn.Module, task: UnlearningTask, seed: int,
              wall_time: dict[str, float]) -> dict[str, Any]:
    """Metrics before and after (the library's ``evaluate``; what the data do not allow is listed
    under ``skipped``) and the forget-set change with its no-op flag; adds the time to ``wall_time``."""
    with Timer() as timer:
        before, after = evaluate(model, task, seed=seed), evaluate(unlearned, task, seed=seed)
        change = forget_change(model, unlearned, task.forget)
    skipped = {**before.pop("skipped", {}), **after.pop("skipped", {})}
    metrics: dict[str, Any] = {"before": before, "after": after}
    if skipped:
        metrics["skipped"] = skipped
    wall_time["evaluation"] = timer.seconds
    return {"metrics": metrics, "no_op": change.pop("no_op"), "forget_change": change}
