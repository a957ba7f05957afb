"""The retain budget: iterative methods read a fixed number of retain examples per run."""

from __future__ import annotations

import pytest
import torch
from conftest import make_toy

from unlearnkit.errors import HyperparameterError
from unlearnkit.methods import get_method
from unlearnkit.methods.ft import FineTune


def test_budget_caps_the_retain_examples_each_epoch_reads(monkeypatch):
    model, data = make_toy("random", forget_size=0.1)
    seen: list[torch.Tensor] = []
    original_step = FineTune.min_step
    monkeypatch.setattr(FineTune, "min_step", lambda self, x, y, e: seen.append(x) or original_step(self, x, y, e))
    get_method("ft", epochs=2, retain_budget=50).unlearn(model, data.task, seed=3)
    rows = torch.cat(seen)
    assert len(rows) == 2 * 50  # two epochs over the 50 budgeted examples, not the whole retain set
    assert len(torch.unique(rows, dim=0)) == 50
    seen.clear()
    get_method("ft", epochs=1).unlearn(model, data.task, seed=3)
    assert len(torch.cat(seen)) == len(data.task.retain) > 50


def test_budget_is_deterministic_under_the_seed_and_changes_the_result():
    model, data = make_toy("random", forget_size=0.1)
    a = get_method("rl", epochs=2, retain_budget=40).unlearn(model, data.task, seed=1)
    b = get_method("rl", epochs=2, retain_budget=40).unlearn(model, data.task, seed=1)
    full = get_method("rl", epochs=2).unlearn(model, data.task, seed=1)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert any(not torch.equal(p, q) for p, q in zip(a.parameters(), full.parameters()))
    # a budget at least the retain set's size is no budget
    same = get_method("rl", epochs=2, retain_budget=10_000).unlearn(model, data.task, seed=1)
    assert all(torch.equal(p, q) for p, q in zip(same.parameters(), full.parameters()))


def test_budget_in_keys_only_when_set_and_validated():
    assert "retain_budget" not in get_method("ft").params.to_dict()
    assert get_method("ft", retain_budget="500").params.to_dict()["retain_budget"] == 500
    with pytest.raises(HyperparameterError, match="retain_budget"):
        get_method("ft", retain_budget=0)


def test_stacked_plan_honours_the_budget():
    from unlearnkit.training_stacked import train_many

    model, data = make_toy("random", forget_size=0.1)
    run, recipe = get_method("ft", epochs=2, retain_budget=30).training_run(model, data.task, seed=2, device="cpu")
    assert len(run.data) == 30
    (stacked,) = train_many([run], recipe)
    serial = get_method("ft", epochs=2, retain_budget=30).unlearn(model, data.task, seed=2, device="cpu")
    assert max((p - q).abs().max().item() for p, q in zip(stacked.parameters(), serial.parameters())) < 1e-5
