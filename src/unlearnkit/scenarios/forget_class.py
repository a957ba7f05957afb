"""``class``: forget every training sample of one class (or of several: ``forget_class`` = "3,5,7").

Test metrics separate the forgotten classes from the rest: ``test_acc`` is on the remaining classes
(so it measures utility) and ``test_forget_acc`` on test samples of the forgotten classes (should
fall to ~0, as for Retrain, which never saw them).

With ``requests`` = R > 1 the listed classes are forgotten in R consecutive groups, one request
after the other (continual deletion; R = the number of classes: one class per request).
``test_acc`` then stays on the classes no request names, ``test_forget_acc`` covers the classes
requested so far.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from ..evaluation.metrics import accuracy
from ..params import Hyperparameters, hp
from .base import Scenario, ScenarioData, check_class, check_requests, group_requests, make_task, register_scenario
from .random import parse_indices


@dataclass
class ClassOptions(Hyperparameters):
    forget_class: str = hp("0", "the class whose training samples are forgotten, or several: 3,5,7")
    requests: int = hp(1, "sequential deletion requests: the listed classes in this many consecutive groups "
                       "(must divide their number; = the number of classes: one class per request)")

    @classmethod
    def from_dict(cls, values, owner="method"):
        values = dict(values)
        if isinstance(values.get("forget_class"), int) and not isinstance(values["forget_class"], bool):
            values["forget_class"] = str(values["forget_class"])  # YAML/API give one class as a number
        return super().from_dict(values, owner)


@register_scenario
class ClassScenario(Scenario):
    name = "class"
    summary = "forget every training sample of one class (or of several, optionally one class per request)"
    Options = ClassOptions

    def classes(self, bundle) -> list[int]:
        classes = [int(c) for c in parse_indices(self.options.forget_class)]
        if not classes:
            raise DataError("forget_class is empty: name at least one class, e.g. forget_class=3")
        if len(set(classes)) != len(classes):
            raise DataError(f"forget_class={self.options.forget_class!r} names a class twice")
        for k in classes:
            check_class(bundle, k, "forget_class")
        if len(classes) >= bundle.num_classes:
            raise DataError(f"forget_class names all {bundle.num_classes} classes; nothing would remain")
        return classes

    def build(self, bundle, seed):
        classes, r = self.classes(bundle), self.options.requests
        check_requests(r)
        if len(classes) % r:
            raise DataError(f"{len(classes)} classes cannot be split into requests={r} equal groups")
        y = bundle.train.y.numpy()
        groups = [np.flatnonzero(np.isin(y, part)) for part in np.array_split(np.asarray(classes), r)]
        for k in classes:
            if not (y == k).any():
                raise DataError(f"class {k} has no training samples in {bundle.name}")
        idx, requests = group_requests(groups)
        test_y = bundle.test.y.numpy()
        listed = np.isin(test_y, classes)
        test_rest, test_listed = bundle.test.subset(np.flatnonzero(~listed)), bundle.test.subset(np.flatnonzero(listed))
        task = make_task(bundle, bundle.train, idx, test=test_rest,
                         metadata={"scenario": self.name, "forget_class": classes[0] if len(classes) == 1 else classes,
                                   "forget_like_unseen": False})  # the over-forgetting check skips it
        return ScenarioData(bundle.train, idx, task, eval_splits={"test_forget": test_listed}, requests=requests)

    def forget_subset(self, data, rows, removed=None):
        sub = super().forget_subset(data, rows, removed)
        classes = sorted({int(c) for c in sub.task.forget.y.unique().tolist()})
        sub.task.metadata["forget_class"] = classes[0] if len(classes) == 1 else classes
        return sub

    def extra_metrics(self, model, data):
        test = data.eval_splits["test_forget"]  # test samples of every listed class
        meta = data.task.metadata["forget_class"]
        classes = meta if isinstance(meta, list) else [meta]
        return {"test_forget_acc": accuracy(model, test.subset(np.flatnonzero(np.isin(test.y.numpy(), classes))))}
