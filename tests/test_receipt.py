"""Deletion receipts: hashes on hand-computed cases, the no-op flag, the API, and the shadow audit."""

from __future__ import annotations

import copy
import hashlib

import numpy as np
import pytest
import torch
from conftest import state_equal
from torch import nn

import unlearnkit
from unlearnkit.ledger.audit import audit_request
from unlearnkit.data import Split
from unlearnkit.errors import DataError
from unlearnkit.methods import get_method
from unlearnkit.ledger.hashes import indices_sha256, match_weights, samples_sha256, weights_sha256
from unlearnkit.ledger.receipt import (forget_change,
                                      unlearn_with_receipt)
from unlearnkit.task import UnlearningTask
from unlearnkit.training import TrainRecipe, train_model
from unlearnkit.utils import seeded


def test_weights_hash_is_the_documented_byte_stream():
    state = {"b": torch.tensor([1.0, 2.0]), "a": torch.tensor([3])}
    expected = hashlib.sha256(b"a|torch.int64|(1,)|" + np.array([3], "<i8").tobytes()
                              + b"b|torch.float32|(2,)|" + np.array([1.0, 2.0], "<f4").tobytes()).hexdigest()
    assert weights_sha256(state) == expected
    assert weights_sha256({"a": state["a"], "b": state["b"]}) == expected  # key order does not matter
    assert weights_sha256({"a": state["a"], "b": torch.tensor([1.0, 2.0001])}) != expected
    assert weights_sha256({"a": state["a"], "b": torch.tensor([1.0, 2.0], dtype=torch.float64)}) != expected
    assert weights_sha256({"a": state["a"], "b": torch.tensor([[1.0, 2.0]])}) != expected  # shape counts


def test_forget_hashes_ignore_the_order_the_indices_come_in():
    assert indices_sha256([5, 1, 3]) == indices_sha256(np.array([1, 3, 5])) == hashlib.sha256(
        np.array([1, 3, 5], "<i8").tobytes()).hexdigest()
    x, y = torch.arange(6.0).view(3, 2), torch.tensor([0, 1, 2])
    order = [2, 0, 1]
    assert samples_sha256(Split(x, y), [10, 20, 30]) == samples_sha256(Split(x[order], y[order]), [30, 10, 20])
    assert samples_sha256(Split(x, y)) != samples_sha256(Split(x, torch.tensor([0, 1, 1])))


def test_no_op_flag_reads_predictions_and_loss(toy_random):
    model, data = toy_random
    assert forget_change(model, copy.deepcopy(model), data.task.forget)["no_op"] is True
    broken = copy.deepcopy(model)
    with torch.no_grad():
        broken[-1].bias.add_(torch.tensor([5.0, 0.0, 0.0, 0.0]))  # pushes every prediction to class 0
    change = forget_change(model, broken, data.task.forget)
    assert change["no_op"] is False and change["forget_predictions_changed"] > 0


def test_unlearn_with_receipt_is_unlearn_plus_a_deterministic_receipt(toy_random):
    model, data = toy_random
    task, before = data.task, copy.deepcopy(model)
    idx = task.forget.indices
    args = dict(forget=(task.forget.x, task.forget.y), retain=(task.retain.x, task.retain.y), method="ga",
                forget_indices=idx, seed=3, lr=0.05, epochs=2)
    first, second = unlearn_with_receipt(model, **args), unlearn_with_receipt(model, **args)
    plain = unlearnkit.unlearn(model, args["forget"], args["retain"], method="ga", seed=3, lr=0.05, epochs=2)
    assert state_equal(model, before)  # the input is untouched
    assert state_equal(first.model, plain) and state_equal(first.model, second.model)
    r = first.receipt
    assert r["hashes"]["output_weights_sha256"] == second.receipt["hashes"]["output_weights_sha256"]
    assert match_weights(r, first.model) == "output" and match_weights(r, model) == "input"
    assert r["hashes"]["forget_indices_sha256"] == indices_sha256(idx)
    assert r["method"]["hyperparameters"] == get_method("ga", lr=0.05, epochs=2).params.to_dict()
    assert r["counts"]["test"] == 0 and "test_acc" not in r["metrics"]["after"]
    assert set(r["metrics"]["skipped"]) == {"mia_efficacy", "test_acc"}
    with pytest.raises(DataError, match="forget_indices has 2 entries"):
        unlearn_with_receipt(model, **{**args, "forget_indices": [0, 1]})
    with pytest.raises(DataError, match="repeats index 0"):
        unlearn_with_receipt(model, **{**args, "forget_indices": [0] * len(idx)})
    with pytest.raises(DataError, match="not an unlearnkit deletion receipt"):
        match_weights({"method": "ga"}, model)


@pytest.mark.slow
def test_shadow_audit_exposes_a_no_op_and_not_retraining():
    """U-LiRA with 4 shadow pairs from a factory: a method that changes nothing is told apart from
    retraining (the forget examples keep their training-set confidence), Retrain itself is not."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 120)
    x = rng.normal(size=(120, 12)).astype(np.float32)
    x[np.arange(120), y] += 1.5
    train = Split(torch.from_numpy(x), torch.from_numpy(y))
    recipe = TrainRecipe("adam", lr=1e-2, momentum=0.0, weight_decay=0.0, epochs=30, batch_size=32,
                         schedule="constant")

    def factory() -> nn.Module:
        return nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 3))

    with seeded(0):
        model = factory()
    train_model(model, train, recipe)
    forget = np.arange(0, 120, 6)
    task = UnlearningTask.from_data(model, train.subset(forget), train.subset(np.setdiff1d(np.arange(120), forget)),
                                    recipe=recipe)
    result = {}
    for name, params in (("ga", {"lr": 1e-9, "epochs": 1}), ("retrain", {})):
        method = get_method(name, **params)
        result[name] = audit_request(factory, task, method, method.unlearn(model, task), recipe, 4,
                                     forget_indices=forget)
    assert result["ga"]["ulira_acc"] > 0.7 and result["ga"]["target_looks_unlearned_fraction"] > 0.8
    assert result["retrain"]["ulira_acc"] < 0.6 and result["retrain"]["target_looks_unlearned_fraction"] < 0.7
    assert result["ga"]["shadow_train_acc"] > 0.95
    assert {e["index"] for e in result["ga"]["most_exposed"]} <= set(forget.tolist())
