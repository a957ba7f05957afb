"""The public Python API: unlearn(), evaluate(), save/load, bad input."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import unlearnkit
from unlearnkit.errors import MissingSplitError, UnknownNameError
from conftest import state_equal


def _data(toy):
    model, data = toy
    t = data.task
    return model, (t.forget.x, t.forget.y), (t.retain.x, t.retain.y), (t.test.x, t.test.y)


@pytest.mark.parametrize("kind", ["tensors", "dataset", "loader"])
def test_unlearn_accepts_tensors_datasets_and_loaders(toy_random, kind):
    model, forget, retain, _ = _data(toy_random)
    wrap = {"tensors": lambda d: d, "dataset": lambda d: TensorDataset(*d),
            "loader": lambda d: DataLoader(TensorDataset(*d), batch_size=16)}[kind]
    before = copy.deepcopy(model)
    out = unlearnkit.unlearn(model, forget=wrap(forget), retain=wrap(retain), method="ft", epochs=1)
    assert state_equal(model, before), "the input model must not be modified"
    assert not state_equal(out, model)
    ref = unlearnkit.unlearn(model, forget=forget, retain=retain, method="ft", epochs=1)
    assert state_equal(out, ref), "the same data in any container gives the same result"


def test_inplace_modifies_the_given_model(toy_random):
    model, forget, retain, _ = _data(toy_random)
    mine = copy.deepcopy(model)
    out = unlearnkit.unlearn(mine, forget=forget, retain=retain, method="ft", epochs=1, inplace=True)
    assert out is mine and not state_equal(mine, model)


def test_missing_retain_data_is_a_clear_error(toy_random):
    model, forget, _, _ = _data(toy_random)
    with pytest.raises(MissingSplitError, match=r"method 'ft' needs the retain data, .* pass retain=\.\.\., or "
                                                r"choose a method that runs on the data given: .*\bga\b.*instance_adv_noretain"):
        unlearnkit.unlearn(model, forget=forget, method="ft")


def test_bad_method_and_hyperparameters_fail_before_any_work(toy_random):
    model, forget, retain, _ = _data(toy_random)
    with pytest.raises(UnknownNameError, match="unknown method 'sgd'"):
        unlearnkit.unlearn(model, forget=forget, retain=retain, method="sgd")
    with pytest.raises(TypeError, match="ft.lr must be of type float, got 'big'"):
        unlearnkit.unlearn(model, forget=forget, retain=retain, method="ft", lr="big")
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        unlearnkit.unlearn("model.pt", forget=forget)


def test_labels_outside_the_model_range_are_rejected(toy_random):
    model, (x, y), retain, _ = _data(toy_random)
    with pytest.raises(ValueError, match=r"forget labels must be in \[0, 3\].*found label 7"):
        unlearnkit.unlearn(model, forget=(x, y + 4), retain=retain, method="ft")


def test_evaluate_returns_the_metric_dict(toy_random):
    model, forget, retain, test = _data(toy_random)
    out = unlearnkit.evaluate(model, forget=forget, retain=retain, test=test, retrain_model=model)
    assert set(out) >= {"forget_acc", "retain_acc", "test_acc", "mia_efficacy", "js_to_retrain"}
    assert out["js_to_retrain"] == pytest.approx(0.0, abs=1e-9)
    assert all(0.0 <= out[k] <= 1.0 for k in ("forget_acc", "retain_acc", "test_acc", "mia_efficacy"))


def test_same_seed_same_model_different_seed_different_model(toy_random):
    model, forget, retain, _ = _data(toy_random)
    a = unlearnkit.unlearn(model, forget=forget, retain=retain, method="rl", epochs=1, seed=1)
    b = unlearnkit.unlearn(model, forget=forget, retain=retain, method="rl", epochs=1, seed=1)
    c = unlearnkit.unlearn(model, forget=forget, retain=retain, method="rl", epochs=1, seed=2)
    assert state_equal(a, b) and not state_equal(a, c)


def test_save_and_load_round_trip_with_safetensors(toy_random, tmp_path):
    model, *_ = _data(toy_random)
    path = unlearnkit.save_model(model, tmp_path / "m.safetensors", {"note": "x"})
    fresh = copy.deepcopy(model)
    with torch.no_grad():
        for p in fresh.parameters():
            p.zero_()
    unlearnkit.load_model(fresh, path)
    assert state_equal(fresh, model)
    with pytest.raises(ValueError, match="does not match the model"):
        unlearnkit.load_model(torch.nn.Linear(2, 2), path)
