"""The ``subclass`` scenario: a k-means cluster of one class is forgotten, the rest of it retained."""

from __future__ import annotations

import numpy as np
import pytest

from unlearnkit.data import load_dataset
from unlearnkit.errors import DataError
from unlearnkit.scenarios import get_scenario


def test_subclass_forgets_one_cluster_of_one_class():
    bundle = load_dataset("synthetic", n_samples=400, n_features=10, n_classes=4)
    scenario = get_scenario("subclass", forget_class=1, n_clusters=3, cluster=0)
    data = scenario.build(bundle, seed=0)
    task = data.task
    assert set(task.forget.y.tolist()) == {1}
    members = int((bundle.train.y == 1).sum())
    assert 0 < len(task.forget) < members                     # part of the class, not all of it
    assert int((task.retain.y == 1).sum()) == members - len(task.forget)
    assert len(task.forget) + len(task.retain) == len(bundle.train)
    assert "forget_class" not in task.metadata and task.metadata["subclass_of"] == 1
    # cluster 0 is the largest group; the groups do not depend on the run seed
    sizes = [len(get_scenario("subclass", forget_class=1, n_clusters=3, cluster=c).build(bundle, 0).task.forget)
             for c in range(3)]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == members
    again = scenario.build(bundle, seed=7)
    assert np.array_equal(again.forget_indices, data.forget_indices)
    # test samples of the group are held out for test_forget_acc, the rest form test
    assert len(task.test) + len(data.eval_splits["test_forget"]) == len(bundle.test)
    assert set(data.eval_splits["test_forget"].y.tolist()) <= {1}


def test_subclass_rejects_bad_options():
    bundle = load_dataset("synthetic", n_samples=200, n_features=10, n_classes=4)
    with pytest.raises(DataError, match="forget_class"):
        get_scenario("subclass", forget_class=9).build(bundle, 0)
    with pytest.raises(DataError, match="cluster"):
        get_scenario("subclass", n_clusters=3, cluster=3).build(bundle, 0)
