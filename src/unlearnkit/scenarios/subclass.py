"""``subclass``: forget one fine-grained group inside a class (sub-class forgetting).

Datasets with fine labels (CIFAR-100 fine classes inside CIFAR-20 superclasses, as in Foster et al.'s
SSD and Chundawat et al.'s Bad Teacher experiments) define the group directly. The embedded datasets
have none, so this scenario uses a documented proxy: the training samples of ``forget_class`` are
clustered with k-means (``n_clusters``, on the flattened inputs, a fixed k-means seed so the groups
are a property of the data, not of the run seed), and cluster ``cluster`` (0 = the largest, 1 = the
next...) is forgotten. Test samples of that class are assigned to the nearest centre:
``test_forget_acc`` is the accuracy on the test samples of the forgotten group (Retrain usually
still classifies many of them correctly, from the rest of the class), ``test_acc`` on every other
test sample. ``task.metadata`` records ``subclass_of`` and ``cluster``; it does not set
``forget_class``, since the class itself is not forgotten. With ``requests`` = R > 1 the group is
deleted in R random disjoint batches, one request after the other (continual deletion).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from ..evaluation.metrics import accuracy
from ..params import Hyperparameters, hp
from .base import Scenario, ScenarioData, batch_requests, check_class, make_task, register_scenario


@dataclass
class SubclassOptions(Hyperparameters):
    forget_class: int = hp(0, "the class that contains the forgotten group")
    n_clusters: int = hp(3, "k-means clusters within the class (the proxy for fine labels)")
    cluster: int = hp(0, "which cluster to forget, by size rank (0 = the largest)")
    requests: int = hp(1, "sequential deletion requests: the group is deleted in this many random batches")


@register_scenario
class SubclassScenario(Scenario):
    name = "subclass"
    summary = "forget one group inside a class (proxy: a k-means cluster of the class)"
    Options = SubclassOptions

    def build(self, bundle, seed):
        from sklearn.cluster import KMeans

        o = self.options
        check_class(bundle, o.forget_class, "forget_class")
        if o.n_clusters < 2:
            raise DataError(f"n_clusters={o.n_clusters}: a sub-class needs at least 2 clusters")
        if not 0 <= o.cluster < o.n_clusters:
            raise DataError(f"cluster={o.cluster} must be in [0, {o.n_clusters - 1}]")
        y = bundle.train.y.numpy()
        members = np.flatnonzero(y == o.forget_class)
        if members.size < 2 * o.n_clusters:
            raise DataError(f"class {o.forget_class} has {members.size} training samples, too few for "
                            f"{o.n_clusters} clusters")
        feats = bundle.train.x[members].flatten(1).numpy()
        km = KMeans(n_clusters=o.n_clusters, n_init=10, random_state=0).fit(feats)
        sizes = np.bincount(km.labels_, minlength=o.n_clusters)
        by_size = np.argsort(-sizes, kind="stable")
        chosen = by_size[o.cluster]
        idx, requests = batch_requests(members[km.labels_ == chosen], o.requests, seed)

        test_y = bundle.test.y.numpy()
        test_members = np.flatnonzero(test_y == o.forget_class)
        in_group = np.zeros(len(test_y), dtype=bool)
        if test_members.size:
            assigned = km.predict(bundle.test.x[test_members].flatten(1).numpy())
            in_group[test_members[assigned == chosen]] = True
        test_rest = bundle.test.subset(np.flatnonzero(~in_group))
        test_group = bundle.test.subset(np.flatnonzero(in_group))
        task = make_task(bundle, bundle.train, idx, test=test_rest,
                         metadata={"scenario": self.name, "subclass_of": o.forget_class, "cluster": o.cluster,
                                   "forget_like_unseen": False})  # the over-forgetting check skips it
        return ScenarioData(bundle.train, idx, task, eval_splits={"test_forget": test_group}, requests=requests)

    def extra_metrics(self, model, data):
        return {"test_forget_acc": accuracy(model, data.eval_splits["test_forget"])}
