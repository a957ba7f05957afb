"""``label``: some training labels were wrong (label-flip poisoning) and must be corrected.

Setting of Warnecke et al., "Machine Unlearning of Features and Labels", NDSS 2023. In each of the
``classes`` (default: every class) a random ``fraction`` of the training samples (default 10%) is
relabelled to ``target`` (default -1: the next class, c -> (c + 1) mod K). The original model trains
on this poisoned set. The task's ``forget`` holds the affected samples *as trained* (wrong labels,
Z) and ``corrected`` the same samples with their true labels (Z~, same order); Retrain trains on
retain + corrected.

Metrics: ``forget_acc`` is accuracy w.r.t. the wrong labels (falls as the flip is unlearned);
``corrected_acc`` is accuracy on the affected samples w.r.t. their true labels (rises; Retrain's
value is the target).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import DataError
from ..evaluation.metrics import accuracy
from ..params import Hyperparameters, hp
from ..utils import stable_hash
from .base import Scenario, ScenarioData, check_class, make_task, register_scenario


@dataclass
class LabelOptions(Hyperparameters):
    classes: str = hp("all", "comma-separated classes whose samples are flipped, or 'all'")
    fraction: float = hp(0.1, "fraction of each chosen class's training samples flipped", "our choice")
    target: int = hp(-1, "class the flipped samples get; -1 = the next class (c + 1) mod K")


def parse_classes(text: str, num_classes: int, what: str = "classes") -> list[int]:
    if str(text).strip().lower() == "all":
        return list(range(num_classes))
    try:
        out = sorted({int(t) for t in str(text).replace(" ", "").split(",") if t})
    except ValueError:
        raise DataError(f"{what} must be 'all' or comma-separated class indices, got {text!r}") from None
    bad = [c for c in out if not 0 <= c < num_classes]
    if not out or bad:
        raise DataError(f"{what}={text!r}: classes must be in 0..{num_classes - 1}")
    return out


@register_scenario
class LabelScenario(Scenario):
    name = "label"
    summary = "correct flipped labels of a fraction of some classes (label-flip poisoning)"
    Options = LabelOptions

    def build(self, bundle, seed):
        o = self.options
        k = bundle.num_classes
        classes = parse_classes(o.classes, k)
        if not 0.0 < o.fraction <= 1.0:
            raise DataError(f"label fraction={o.fraction} must be in (0, 1]")
        if o.target != -1:
            check_class(bundle, o.target, "label target", sentinel="-1 = next class")
        y = bundle.train.y.numpy()
        rng = np.random.default_rng(seed)
        picked = []
        for c in classes:
            if c == o.target:
                continue  # flipping a class to itself changes nothing
            members = np.flatnonzero(y == c)
            count = int(round(o.fraction * members.size))
            if count:
                picked.append(rng.choice(members, count, replace=False))
        if not picked:
            raise DataError(f"label scenario flips no sample (classes={o.classes!r}, fraction={o.fraction}); "
                            "use a larger fraction")
        idx = np.sort(np.concatenate(picked))
        if idx.size >= len(y):
            raise DataError("the label scenario would flip every training sample; use a smaller fraction")
        wrong = y.copy()
        wrong[idx] = (y[idx] + 1) % k if o.target == -1 else o.target
        train = bundle.train.with_labels(torch.as_tensor(wrong))
        clean = bundle.train.subset(idx)
        task = make_task(bundle, train, idx, corrected=clean,
                         metadata={"scenario": self.name, "classes": classes, "target": o.target,
                                   "true_labels": clean.y.tolist()})
        key = f"label:{stable_hash({'options': o.to_dict(), 'seed': seed, 'idx': idx.tolist()})}"
        return ScenarioData(train, idx, task, eval_splits={"corrected": clean}, train_key=key)

    def extra_metrics(self, model, data):
        return {"corrected_acc": accuracy(model, data.eval_splits["corrected"])}
