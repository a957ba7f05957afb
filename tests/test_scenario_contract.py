"""The contract every registered scenario honours (run over the whole registry).

Disjoint forget and retain sets that together make the training set the original trains on, forget
rows that are those training rows as trained, the same data for the same seed, a ``train_key``
exactly when the training set was modified (so the model cache never mixes originals), extra
metrics that are numbers, and options checked by name.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unlearnkit.data import load_dataset
from unlearnkit.errors import UnknownNameError
from unlearnkit.models import build_model
from unlearnkit.scenarios import SCENARIOS, get_scenario
from unlearnkit.utils import seeded

ALL = SCENARIOS.names()


@pytest.fixture(scope="module")
def bundle():
    return load_dataset("synthetic", n_samples=400, n_features=10, n_classes=4)


@pytest.fixture(scope="module")
def untrained(bundle):
    with seeded(0):
        return build_model("mlp", bundle.input_shape, bundle.num_classes, hidden=(16,)).eval()


def _same(a, b) -> bool:
    return torch.equal(a.x, b.x) and torch.equal(a.y, b.y)


@pytest.mark.parametrize("name", ALL)
def test_forget_and_retain_partition_the_training_set(name, bundle):
    data = get_scenario(name).build(bundle, seed=0)
    train, task, idx = data.train, data.task, np.asarray(data.forget_indices)
    n = len(train)
    assert len(idx) > 0 and len(np.unique(idx)) == len(idx), f"{name}: empty or repeated forget rows"
    assert 0 <= idx.min() and idx.max() < n and len(idx) < n
    assert _same(task.forget, train.subset(idx)), f"{name}: forget is not the training rows as trained"
    rest = np.setdiff1d(np.arange(n), idx)
    assert _same(task.retain, train.subset(rest)), f"{name}: retain is not the training set minus forget"
    assert task.test is not None and task.num_classes == bundle.num_classes
    if task.corrected is not None:  # corrections pair each forget row with its fixed version
        assert len(task.corrected) == len(task.forget) and not _same(task.corrected, task.forget)
    for request in data.requests:  # sequential requests split the forget rows
        assert set(np.asarray(request).tolist()) <= set(range(len(idx)))
    if data.requests:
        flat = np.concatenate(data.requests)
        assert len(np.unique(flat)) == len(flat) == len(idx)


@pytest.mark.parametrize("name", ALL)
def test_deterministic_under_the_seed(name, bundle):
    a, b = get_scenario(name).build(bundle, seed=3), get_scenario(name).build(bundle, seed=3)
    assert np.array_equal(a.forget_indices, b.forget_indices)
    assert _same(a.train, b.train) and _same(a.task.forget, b.task.forget) and _same(a.task.retain, b.task.retain)
    assert a.train_key == b.train_key
    assert a.task.metadata == b.task.metadata
    assert a.eval_splits.keys() == b.eval_splits.keys()
    assert all(_same(a.eval_splits[k], b.eval_splits[k]) for k in a.eval_splits)


@pytest.mark.parametrize("name", ALL)
def test_train_key_set_exactly_when_the_training_set_is_modified(name, bundle):
    """Originals are cached by (dataset, model, recipe, seed, train_key): a modified training set
    without a key, or two different sets under one key, would hand a method the wrong original."""
    sets = {seed: get_scenario(name).build(bundle, seed=seed) for seed in (0, 1)}
    for data in sets.values():
        modified = not _same(data.train, bundle.train)
        assert (data.train_key is not None) == modified, f"{name}: train_key={data.train_key!r}, modified={modified}"
    a, b = sets[0], sets[1]
    if a.train_key is not None and not _same(a.train, b.train):
        assert a.train_key != b.train_key, f"{name}: two different training sets share a cache key"


@pytest.mark.parametrize("name", ALL)
def test_extra_metrics_are_numbers(name, bundle, untrained):
    scenario = get_scenario(name)
    data = scenario.build(bundle, seed=0)
    scenario.prepare_task(untrained, data)
    extras = scenario.extra_metrics(untrained, data)
    assert isinstance(extras, dict)
    for key, value in extras.items():
        assert isinstance(value, float) and math.isfinite(value), f"{name}.{key} = {value!r}"


@pytest.mark.parametrize("name", ALL)
def test_options_are_checked_by_name(name):
    cls = SCENARIOS.get(name)
    assert cls.name == name and cls.summary.strip() and "\n" not in cls.summary
    assert cls.__module__ and len((__import__(cls.__module__, fromlist=["x"]).__doc__ or "").strip()) > 40
    with pytest.raises(UnknownNameError, match=r"no hyperparameter\(s\) \['no_such_option'\]; valid"):
        get_scenario(name, no_such_option=1)
