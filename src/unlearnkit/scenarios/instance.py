"""``instance``: forget k individual training instances, optionally as R sequential requests.

The setting of Cha et al., "Learning to Unlearn: Instance-wise Unlearning for Pre-trained
Classifiers", AAAI 2024 (https://arxiv.org/abs/2301.11578): a handful of specific training
instances must be deleted from a trained classifier. Two goals:

* ``misclassify``: an instance is forgotten once the model no longer predicts its (true) label;
* ``relabel``: an instance is forgotten once the model predicts its target label. The default
  target is the most likely class *other than the true label* under the original model (for the
  correctly classified instances, i.e. nearly all training instances, the second most likely
  class); ``targets`` gives them explicitly (one per instance, in the order of ``forget_indices``
  when those are given: the forget rows themselves are sorted by training index within each request).

Instances are drawn uniformly at random under the seed (``forget_size`` = k, a count or a fraction of
the training set) or given as ``forget_indices``. With ``requests`` = R > 1 the scenario draws R
disjoint groups of k instances that are forgotten one request after the other by the same model
(continual deletion, see ``scenarios/base.py``); rows then carry ``request`` (1..R) and their
metrics cover every instance requested so far.

Task metadata (what a method may read): ``goal``, ``target_labels`` (relabel only: a list aligned
with the rows of ``task.forget``; set by ``prepare_task`` once the original model exists).
Extra metric: ``goal_success`` = fraction of the forget instances (all forgotten so far) that meet
the goal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import nn

from ..data.split import Split
from ..errors import DataError
from ..evaluation.metrics import predict_logits
from ..goals import GOALS, goal_met, highest_wrong_class
from ..params import Hyperparameters, hp
from .base import (Scenario, ScenarioData, check_requests, draw_requests, given_requests, make_task,
                   register_scenario, resolve_count)
from .random import parse_indices


@dataclass
class InstanceOptions(Hyperparameters):
    forget_size: float = hp(16, "instances per request: a count (>= 1) or a fraction (< 1) of the training set",
                            "Cha et al. 2024 use k in {1, 8, 16, 64, 128}")
    forget_indices: Optional[str] = hp(None, "explicit comma-separated training indices (overrides forget_size); "
                                       "with requests R > 1 they are split in R equal consecutive groups")
    goal: str = hp("misclassify", "misclassify: no longer predict the true label; relabel: predict the target "
                   "label", "Cha et al. 2024", choices=GOALS)
    targets: Optional[str] = hp(None, "relabel targets: one comma-separated class per instance (in the order of "
                                "forget_indices when given), or one class for all (default: the most likely "
                                "wrong class under the original model)")
    requests: int = hp(1, "number of sequential deletion requests of forget_size instances each (continual)")


def most_likely_wrong_class(model: nn.Module, split: Split) -> torch.Tensor:
    """Per example, the class with the highest logit other than its label ``y`` (the default relabel
    target: the second most likely class whenever the model classifies the example correctly)."""
    return highest_wrong_class(predict_logits(model, split), split.y.cpu())


@register_scenario
class InstanceScenario(Scenario):
    name = "instance"
    summary = "forget k individual instances (misclassify or relabel), optionally as R sequential requests"
    Options = InstanceOptions

    def build(self, bundle, seed):
        o = self.options
        n = len(bundle.train)
        check_requests(o.requests)
        if o.forget_indices:
            idx, requests = given_requests(parse_indices(o.forget_indices), n, o.requests)
        else:
            idx, requests = draw_requests(np.arange(n), resolve_count(o.forget_size, n), o.requests, seed)
        task = make_task(bundle, bundle.train, idx, metadata={"scenario": self.name, "goal": o.goal})
        if o.goal == "relabel" and o.targets is not None:
            task.metadata["target_labels"] = self._explicit_targets(idx, task.forget.y, bundle.num_classes)
        elif o.goal == "misclassify" and o.targets is not None:
            raise DataError("targets are only used with goal 'relabel'")
        return ScenarioData(bundle.train, idx, task, requests=requests)

    def _explicit_targets(self, idx: np.ndarray, y: torch.Tensor, num_classes: int) -> list[int]:
        """The ``targets`` option aligned with the forget rows (training indices ``idx``, labels ``y``)."""
        targets = parse_indices(self.options.targets)
        if len(targets) == 1:
            targets = targets * len(y)
        if len(targets) != len(y):
            raise DataError(f"targets: got {len(targets)} labels for {len(y)} forget instances; give one per "
                            "instance or a single label for all")
        if self.options.forget_indices:  # given in that order; the rows are sorted by index per request
            by_index = dict(zip(parse_indices(self.options.forget_indices), targets))
            targets = [by_index[i] for i in idx.tolist()]
        for i, t, label in zip(idx.tolist(), targets, y.tolist()):
            if not 0 <= t < num_classes:
                raise DataError(f"target label {t} is not a class (classes are 0..{num_classes - 1})")
            if t == label:
                raise DataError(f"target label {t} equals the true label of training instance {i}; relabelling "
                                "must change the label")
        return [int(t) for t in targets]

    def prepare_task(self, original, data):
        """Relabel goal: default targets = most likely wrong class under the original model."""
        meta = data.task.metadata
        if meta.get("goal") == "relabel" and "target_labels" not in meta:
            meta["target_labels"] = most_likely_wrong_class(original, data.task.forget).tolist()

    def forget_subset(self, data, rows, removed=None):
        sub = super().forget_subset(data, rows, removed)
        targets = data.task.metadata.get("target_labels")
        if targets is not None:
            sub.task.metadata = {**sub.task.metadata, "target_labels": [targets[i] for i in np.asarray(rows)]}
        return sub

    def extra_metrics(self, model, data):
        task = data.task
        targets = task.metadata.get("target_labels")
        ok = goal_met(predict_logits(model, task.forget), task.forget.y.cpu(), task.metadata["goal"],
                      None if targets is None else torch.as_tensor(targets))
        return {"goal_success": float(ok.float().mean())}
