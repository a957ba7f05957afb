"""cf_k / eu_k (Goel et al.): only the last k layers change; eu_k starts them from a fresh init."""

from __future__ import annotations

import copy

import pytest
import torch

from unlearnkit.errors import HyperparameterError
from unlearnkit.methods import get_method
from unlearnkit.methods.blocks.last_layers import last_layers
from unlearnkit.methods.eu_k import ExactUnlearnK
from unlearnkit.utils import seeded


def _changed(before: torch.nn.Module, after: torch.nn.Module) -> set[str]:
    a, b = before.state_dict(), after.state_dict()
    return {k for k in a if not torch.equal(a[k], b[k])}


def _cnn():
    from unlearnkit.models import build_model

    with seeded(0):
        return build_model("cnn", (1, 8, 8), 4, width=4)


def test_last_layers_counts_conv_and_linear_and_takes_the_norms_between():
    model = _cnn()  # conv, bn, conv, bn, linear, linear
    assert [type(m).__name__ for m in last_layers(model, 1)] == ["Linear"]
    assert [type(m).__name__ for m in last_layers(model, 3)] == ["Conv2d", "BatchNorm2d", "Linear", "Linear"]
    with pytest.raises(HyperparameterError, match="between 1 and .* \\(4\\)"):
        last_layers(model, 5)


@pytest.mark.parametrize("name", ["cf_k", "eu_k"])
@pytest.mark.parametrize("k", [1, 2])
def test_only_the_last_k_layers_change(name, k, toy_class):
    model, data = toy_class  # 10-32-32-4 MLP: Linear layers 1, 3, 5 of the Sequential
    out = get_method(name, k=k, epochs=2).unlearn(model, data.task, seed=0, device="cpu")
    trained = {f"{i}.{p}" for i in (5, 3)[:k] for p in ("weight", "bias")}
    assert _changed(model, out) == trained


def test_cf_k_keeps_frozen_batchnorm_statistics(toy_class):
    _, data = toy_class
    model = _cnn()
    task = copy.copy(data.task)
    task.retain = data.task.retain.with_labels(data.task.retain.y)
    task.retain.x = torch.randn(len(task.retain), 1, 8, 8, generator=torch.Generator().manual_seed(0))
    task.forget = data.task.forget.with_labels(data.task.forget.y)
    task.forget.x = torch.randn(len(task.forget), 1, 8, 8, generator=torch.Generator().manual_seed(1))
    out = get_method("cf_k", k=2, epochs=1).unlearn(model, task, seed=0, device="cpu")
    # k=2 trains the two Linear layers only: the conv blocks, BatchNorm statistics included, stay
    assert _changed(model, out) == {"2.weight", "2.bias", "4.weight", "4.bias"}


def test_eu_k_reinitialises_the_last_k_layers_before_training(toy_class, monkeypatch):
    model, data = toy_class
    seen = {}
    real = ExactUnlearnK.min_step

    def spy(self, x, y, epoch):
        if not seen:  # the weights at the first training step
            seen.update({k: v.clone() for k, v in self.model.state_dict().items()})
        return real(self, x, y, epoch)

    monkeypatch.setattr(ExactUnlearnK, "min_step", spy)
    get_method("eu_k", k=2, epochs=1).unlearn(model, data.task, seed=5, device="cpu")
    expected = copy.deepcopy(model)
    with seeded(5):  # the method's seed: the same fresh draw as Retrain's initialisation would make
        for m in last_layers(expected, 2):
            m.reset_parameters()
    for key, value in expected.state_dict().items():
        assert torch.equal(seen[key], value), key
    assert not torch.equal(seen["5.weight"], model.state_dict()["5.weight"])


def test_layer_baselines_follow_the_task_recipe(toy_class):
    model, data = toy_class
    method = get_method("cf_k")
    method.unlearn(model, data.task, seed=0, device="cpu")
    assert method.params.epochs is None  # the recipe's values are used for the call only
    assert get_method("cf_k", epochs=3).params.epochs == 3
