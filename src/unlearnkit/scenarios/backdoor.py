"""``backdoor``: BadNets-style poisoning (Gu et al., "BadNets: Identifying Vulnerabilities in the
Machine Learning Model Supply Chain", arXiv 1708.06733, 2017) that must be unlearned.

A fraction ``poison_rate`` of the training set (default 10%, drawn among samples whose label is not
``target``) gets a small patch trigger stamped in the bottom-right corner and its label changed to
``target``. The original model trains on this poisoned set and learns "trigger -> target".
The forget set is the poisoned samples *as trained* (triggered inputs, target label); Retrain trains
on the clean rest. ``task.third_party`` stays the dataset's clean held-out split (never trained on).

Trigger: a square of the data's maximum value whose side scales with the image (``patch_size`` = 0:
max(2, round(side / 8)): 2x2 on 8x8 digits, 4x4 on 28x28 / 32x32 images), placed in the last rows
and columns; on 1-D inputs ((C, L) or (L,)) a segment of the same length rule (5 values on the
40-long mnist1d signals) alternating the data's maximum and minimum, at the end of the signal.

Metrics: ``test_acc`` is clean test accuracy; ``asr`` = P(pred(x + trigger) = target | y != target)
on the test set (high for Original, near chance of the target class for Retrain);
``forget_true_acc`` = accuracy on the poisoned samples w.r.t. their true labels.

With ``requests`` = R > 1 the poisoned samples are found and removed in R random disjoint batches,
one request after the other (continual deletion); until the last request, the training data still
holds the poison of the later batches (so Retrain after request r < R still has a backdoor).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.split import Split
from ..errors import DataError
from ..evaluation.metrics import accuracy, predict_logits
from ..params import Hyperparameters, hp
from ..utils import stable_hash
from .base import Scenario, ScenarioData, batch_requests, check_class, make_task, register_scenario, resolve_count


@dataclass
class BackdoorOptions(Hyperparameters):
    poison_rate: float = hp(0.1, "fraction (< 1) or count (>= 1) of training samples poisoned",
                            "our choice (a 10% poisoning of the training set)")
    target: int = hp(0, "class the poisoned samples are relabelled to (the backdoor's target)")
    patch_size: int = hp(0, "trigger side (images) or length (1-D); 0 = auto: max(2, round(side / 8))")
    requests: int = hp(1, "sequential deletion requests: the poisoned samples are removed in this many random batches")


def trigger_region(shape: tuple[int, ...], size: int = 0) -> tuple:
    """Index of the trigger inside one example of ``shape``: the last ``size`` rows and columns of
    an image (C, H, W), the last ``size`` values of a signal (C, L) or flat vector (L,)."""
    spatial = shape[1:] if len(shape) > 1 else shape
    if size == 0:
        size = max(2, int(round(min(spatial) / 8)))
    return corner_region(shape, size, "backdoor patch_size")


def corner_region(shape: tuple[int, ...], size: int, what: str = "patch_size") -> tuple:
    """Index selecting the last ``size`` positions of every spatial axis of an example of ``shape``
    ((C, H, W) or (C, L), all channels; a flat (D,) example uses its last ``size`` features)."""
    spatial = shape[1:] if len(shape) > 1 else shape
    if size < 1 or any(size > s for s in spatial):
        raise DataError(f"{what}={size} does not fit inputs of shape {shape} (needs 1 <= size <= {min(spatial)})")
    region = tuple(slice(s - size, s) for s in spatial)
    return (slice(None),) + region if len(shape) > 1 else region


def trigger_pattern(shape: tuple[int, ...], region: tuple, lo: float, hi: float) -> torch.Tensor:
    """The values written into ``region``: all ``hi`` on images, alternating hi/lo on 1-D inputs."""
    probe = torch.zeros(shape)[region]
    spatial = shape[1:] if len(shape) > 1 else shape
    if len(spatial) >= 2:
        return torch.full_like(probe, hi)
    alt = torch.tensor([hi if i % 2 == 0 else lo for i in range(probe.shape[-1])])
    return alt.expand_as(probe).clone()


def apply_trigger(x: torch.Tensor, pattern: torch.Tensor, region: tuple) -> torch.Tensor:
    """Copy of the batch ``x`` with the trigger stamped on every example."""
    out = x.clone()
    out[(slice(None),) + region] = pattern.to(out.device, out.dtype)
    return out


@register_scenario
class BackdoorScenario(Scenario):
    name = "backdoor"
    summary = "unlearn a BadNets patch-trigger backdoor (forget = the poisoned training samples)"
    Options = BackdoorOptions

    def build(self, bundle, seed):
        o = self.options
        check_class(bundle, o.target, "backdoor target")
        x, y = bundle.train.x, bundle.train.y.numpy()
        pool = np.flatnonzero(y != o.target)
        count = resolve_count(o.poison_rate, len(y), "poison_rate")
        if count > pool.size:
            raise DataError(f"poison_rate={o.poison_rate} asks for {count} samples but only {pool.size} are "
                            f"outside the target class {o.target}")
        poisoned = np.sort(np.random.default_rng(seed).choice(pool, count, replace=False))
        idx, requests = batch_requests(poisoned, o.requests, seed)
        shape = tuple(x.shape[1:])
        region = trigger_region(shape, o.patch_size)
        lo, hi = float(x.min()), float(x.max())
        pattern = trigger_pattern(shape, region, lo, hi)
        px, py = x.clone(), bundle.train.y.clone()
        sel = torch.as_tensor(idx)
        px[sel] = apply_trigger(x[sel], pattern, region)
        py[sel] = o.target
        train = Split(px, py, bundle.train.indices)
        test = bundle.test
        victims = test.subset(np.flatnonzero(test.y.numpy() != o.target))
        evals = {"triggered_test": Split(apply_trigger(victims.x, pattern, region), victims.y, victims.indices),
                 "forget_clean": bundle.train.subset(idx)}
        # a poisoned example with its target label is not like unseen data to Retrain: no over-forgetting check
        meta = {"scenario": self.name, "forget_like_unseen": False, "target": o.target, "poison_rate": o.poison_rate,
                "region": [(s.start, s.stop) for s in region if s.start is not None],
                "pattern_values": pattern.tolist(), "true_labels": y[idx].tolist()}
        task = make_task(bundle, train, idx, metadata=meta)
        poison = {k: v for k, v in o.to_dict().items() if k != "requests"}  # the same poisoned set for any R
        key = f"backdoor:{stable_hash({'options': poison, 'seed': seed, 'idx': poisoned.tolist()})}"
        return ScenarioData(train, idx, task, eval_splits=evals, train_key=key, requests=requests)

    def forget_subset(self, data, rows, removed=None):
        sub = super().forget_subset(data, rows, removed)
        rows = np.asarray(rows, dtype=np.int64)
        sub.eval_splits = {**data.eval_splits, "forget_clean": data.eval_splits["forget_clean"].subset(rows)}
        sub.task.metadata["true_labels"] = [data.task.metadata["true_labels"][i] for i in rows]
        return sub

    def extra_metrics(self, model, data):
        return {"asr": attack_success_rate(model, data.eval_splits["triggered_test"], data.task.metadata["target"]),
                "forget_true_acc": accuracy(model, Split(data.task.forget.x.cpu(),
                                                         data.eval_splits["forget_clean"].y))}


def attack_success_rate(model, triggered: Split, target: int) -> float:
    """Fraction of ``triggered`` (test samples whose true label is not ``target``, trigger stamped)
    that ``model`` classifies as ``target``; NaN when empty."""
    keep = triggered.y != target
    if int(keep.sum()) == 0:
        return float("nan")
    pred = predict_logits(model, triggered).argmax(1)
    return float((pred[keep.cpu()] == target).float().mean())
