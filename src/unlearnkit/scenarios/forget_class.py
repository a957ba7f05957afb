"""``class``: forget every training sample of one class.

Test metrics separate the forgotten class from the rest: ``test_acc`` is on the remaining classes
(so it measures utility) and ``test_forget_acc`` on test samples of the forgotten class (should
fall to ~0, as for Retrain, which never saw the class).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from ..evaluation.metrics import accuracy
from ..params import Hyperparameters, hp
from .base import Scenario, ScenarioData, check_class, make_task, register_scenario


@dataclass
class ClassOptions(Hyperparameters):
    forget_class: int = hp(0, "the class whose training samples are forgotten")


@register_scenario
class ClassScenario(Scenario):
    name = "class"
    summary = "forget every training sample of one class"
    Options = ClassOptions

    def build(self, bundle, seed):
        k = self.options.forget_class
        check_class(bundle, k, "forget_class")
        y = bundle.train.y.numpy()
        idx = np.flatnonzero(y == k)
        if idx.size == 0:
            raise DataError(f"class {k} has no training samples in {bundle.name}")
        test_y = bundle.test.y.numpy()
        test_rest = bundle.test.subset(np.flatnonzero(test_y != k))
        test_class = bundle.test.subset(np.flatnonzero(test_y == k))
        task = make_task(bundle, bundle.train, idx, test=test_rest,
                         metadata={"scenario": self.name, "forget_class": k})
        return ScenarioData(bundle.train, idx, task, eval_splits={"test_forget": test_class})

    def extra_metrics(self, model, data):
        return {"test_forget_acc": accuracy(model, data.eval_splits["test_forget"])}
