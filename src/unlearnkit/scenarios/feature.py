"""``feature``: a sensitive pattern was present in the inputs of a group of samples and must go.

Setting of Warnecke et al., "Machine Unlearning of Features and Labels", NDSS 2023. A group of
training samples - a ``fraction`` of class ``target_class`` (default: all of class 0, so the model
learns the mark as a shortcut and misclassifies unmarked zeros; -1 = a fraction of the whole
training set, e.g. ``--target-class -1 --fraction 0.1 --pattern canary``) - carries a planted pattern in the last ``patch_size`` positions
of every spatial axis (bottom-right corner of an image, end of a 1-D signal), all channels:

* ``patch``: the corner set to the training set's maximum value (a fixed, visible mark; 3x3 on images by default);
* ``canary``: a secret random pattern of the training set's minimum and maximum values, drawn from
  the seed (a "canary" in the sense of Carlini et al., The Secret Sharer, USENIX Security 2019).

Labels are unchanged. The original trains on the set with the pattern; ``forget`` holds the affected
samples as trained (with the pattern, Z) and ``corrected`` the same samples without it (Z~, same
order); Retrain trains on retain + corrected, so it never sees the pattern.

Metrics (beside the core ones):
* ``corrected_acc``: accuracy on the affected samples without the pattern;
* ``pattern_flip``: fraction of test inputs (of classes other than ``target_class``) whose
  prediction changes when the pattern is planted - how strongly the model still reacts to it;
* ``pattern_target`` (when ``target_class`` >= 0): fraction of those inputs predicted as the target
  class with the pattern planted;
* ``pattern_class_acc`` (when ``target_class`` >= 0): accuracy on the test inputs of ``target_class``
  with the pattern planted. For a model that never saw the pattern (Retrain) the forget samples are
  such inputs, so its forget accuracy is close to this;
* ``canary_exposure`` (``pattern=canary``): log2(N + 1) - log2(rank) of the true canary among N
  random candidate patterns of the same kind, ranked by the mean cross-entropy of the affected
  samples (pattern removed, candidate planted) - lower loss = more familiar. Max log2(N + 1) when the
  canary is ranked first; ~1 on average for a model that never saw it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from ..data.split import Split
from ..errors import DataError
from ..evaluation.metrics import accuracy, predict_logits
from ..params import Hyperparameters, hp
from ..utils import stable_hash
from .base import Scenario, ScenarioData, check_class, make_task, register_scenario
from .backdoor import apply_trigger, corner_region


@dataclass
class FeatureOptions(Hyperparameters):
    pattern: str = hp("patch", "planted pattern: a fixed corner patch or a random secret canary",
                      choices=("patch", "canary"))
    target_class: int = hp(0, "class whose samples carry the pattern; -1 = samples of every class")
    fraction: float = hp(1.0, "fraction (<= 1) or count (> 1) of the target class (or of the whole "
                              "training set when target_class = -1) carrying the pattern",
                         "our choice: with the whole class marked the model learns the mark as a shortcut")
    patch_size: int = hp(0, "pattern extent along each spatial axis (last positions); 0 = auto: the "
                            "smallest extent covering >= 9 values (patch: 3x3 on images) or >= 12 values (canary)")
    n_candidates: int = hp(99, "random candidate patterns the canary is ranked among")


def auto_size(shape: tuple[int, ...], min_values: int) -> int:
    spatial = shape[1:] if len(shape) > 1 else shape
    size = 1
    while int(np.prod([min(size, s) for s in spatial])) * (shape[0] if len(shape) > 1 else 1) < min_values \
            and size < max(spatial):
        size += 1
    return size


def pattern_region(shape: tuple[int, ...], size: int) -> tuple:
    """Index selecting the last ``size`` positions of every spatial axis of an example of ``shape``."""
    return corner_region(shape, size, "patch_size")


@register_scenario
class FeatureScenario(Scenario):
    name = "feature"
    summary = "remove a planted pattern (patch or canary) from the inputs of a group of samples"
    Options = FeatureOptions

    def build(self, bundle, seed):
        o = self.options
        x, y = bundle.train.x, bundle.train.y.numpy()
        if o.target_class != -1:
            check_class(bundle, o.target_class, "feature target_class", sentinel="-1 = any class")
        if o.n_candidates < 1:
            raise DataError(f"n_candidates={o.n_candidates} must be >= 1")
        pool = np.flatnonzero(y == o.target_class) if o.target_class >= 0 else np.arange(len(y))
        if pool.size < 2:
            raise DataError(f"class {o.target_class} has too few training samples for the feature scenario")
        if o.fraction > pool.size:
            raise DataError(f"feature fraction={o.fraction} asks for more samples than the {pool.size} available")
        count = int(pool.size) if o.fraction == 1 else int(round(o.fraction * pool.size)) if o.fraction < 1 \
            else int(o.fraction)
        if count < 1 or count >= len(y):
            raise DataError(f"feature fraction={o.fraction} marks {count} of {len(y)} training samples; "
                            "at least one must be marked and one left unmarked")
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(pool, count, replace=False))
        region = self.region(tuple(x.shape[1:]))
        lo, hi = float(x.min()), float(x.max())
        pattern = self.make_pattern(tuple(x.shape[1:]), region, lo, hi, np.random.default_rng([seed, 1]))
        poisoned_x = x.clone()
        poisoned_x[torch.as_tensor(idx)] = apply_trigger(x[torch.as_tensor(idx)], pattern, region)
        train = Split(poisoned_x, bundle.train.y, bundle.train.indices)
        clean = bundle.train.subset(idx)
        test = bundle.test
        others = test.subset(np.flatnonzero(test.y.numpy() != o.target_class)) if o.target_class >= 0 else test
        evals = {"corrected": clean, "probe": others}
        if o.target_class >= 0:
            evals["probe_class"] = test.subset(np.flatnonzero(test.y.numpy() == o.target_class))
        meta = {"scenario": self.name, "pattern": o.pattern, "target_class": o.target_class,
                "region": [(s.start, s.stop) for s in region if s.start is not None],
                "pattern_values": pattern.tolist(), "lo": lo, "hi": hi}
        task = make_task(bundle, train, idx, corrected=clean, metadata=meta)
        key = f"feature:{stable_hash({'options': o.to_dict(), 'seed': seed, 'idx': idx.tolist()})}"
        return ScenarioData(train, idx, task, eval_splits=evals, train_key=key)

    def region(self, shape: tuple[int, ...]) -> tuple:
        size = self.options.patch_size or auto_size(shape, 9 if self.options.pattern == "patch" else 12)
        region = pattern_region(shape, size)
        if self.options.pattern == "canary":
            values = torch.zeros(shape)[region].numel()
            if 2 ** min(values, 62) <= 4 * self.options.n_candidates:
                raise DataError(f"a canary of {values} binary values has too few possible patterns to rank among "
                                f"{self.options.n_candidates} candidates; use a larger patch_size")
        return region

    def make_pattern(self, shape, region, lo, hi, rng) -> torch.Tensor:
        template = torch.zeros(shape)[region]
        if self.options.pattern == "patch":
            return torch.full_like(template, hi)
        bits = torch.as_tensor(rng.integers(0, 2, tuple(template.shape)), dtype=template.dtype)
        return lo + (hi - lo) * bits

    def extra_metrics(self, model, data):
        o = self.options
        region = self.region(tuple(data.train.x.shape[1:]))
        pattern = torch.as_tensor(data.task.metadata["pattern_values"], dtype=data.train.x.dtype)
        probe = data.eval_splits["probe"]
        before = predict_logits(model, probe).argmax(1)
        after = predict_logits(model, Split(apply_trigger(probe.x, pattern, region), probe.y)).argmax(1)
        out = {"corrected_acc": accuracy(model, data.eval_splits["corrected"]),
               "pattern_flip": float((before != after).float().mean())}
        if o.target_class >= 0:
            out["pattern_target"] = float((after == o.target_class).float().mean())
            own = data.eval_splits["probe_class"]
            out["pattern_class_acc"] = accuracy(model, Split(apply_trigger(own.x, pattern, region), own.y))
        if o.pattern == "canary":
            out["canary_exposure"] = self.exposure(model, data, pattern, region)
        return out

    def exposure(self, model, data, canary, region) -> float:
        """log2(N + 1) - log2(rank of the canary among N random candidates + itself)."""
        clean = data.eval_splits["corrected"]
        lo, hi = data.task.metadata["lo"], data.task.metadata["hi"]
        rng = np.random.default_rng([12345, self.options.n_candidates])  # fixed candidates per option set

        def loss(p: torch.Tensor) -> float:
            logits = predict_logits(model, Split(apply_trigger(clean.x, p, region), clean.y))
            return float(F.cross_entropy(logits, clean.y.cpu()))

        shape = tuple(clean.x.shape[1:])
        true_loss = loss(canary)
        cand = []
        while len(cand) < self.options.n_candidates:
            p = self.make_pattern(shape, region, lo, hi, rng)
            if not torch.equal(p, canary.to(p.dtype)):
                cand.append(loss(p))
        # ties count half, so a model that ignores the pattern gets rank ~ (N + 1) / 2, exposure ~ 1
        rank = 1 + sum(c < true_loss for c in cand) + 0.5 * sum(c == true_loss for c in cand)
        return float(np.log2(len(cand) + 1) - np.log2(rank))
