"""Shared fixtures: a tiny trained model on the synthetic dataset, built once per session."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch import nn

from unlearnkit.data import load_dataset
from unlearnkit.models import build_model
from unlearnkit.scenarios import get_scenario
from unlearnkit.training import TrainRecipe, train_model
from unlearnkit.utils import seeded

torch.set_num_threads(1)  # the suite runs with -n 2 on 2 cores


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    os.environ["UNLEARNKIT_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield


# Short training on overlapping clusters: the model fits its training set without the extreme
# confidence (loss ~1e-3) under which gradient-based forgetting barely moves, as on real data.
TOY_RECIPE = TrainRecipe("adam", lr=3e-3, momentum=0.0, weight_decay=0.0, epochs=5, batch_size=32,
                         schedule="constant")


def make_toy(scenario: str = "class", **options):
    """Synthetic 4-class problem, a 10-32-32-4 MLP trained on it, and the scenario's task."""
    bundle = load_dataset("synthetic", n_samples=400, n_features=10, n_classes=4, separation=1.5)
    data = get_scenario(scenario, **options).build(bundle, seed=0)
    with seeded(0):
        model = build_model("mlp", bundle.input_shape, bundle.num_classes, hidden=(32, 32))
    train_model(model, data.train, TOY_RECIPE, seed=0)
    data.task.recipe = TOY_RECIPE
    return model, data


@pytest.fixture(scope="session")
def toy_class():
    """(model, scenario data) for forgetting class 0 of the toy problem, with every split set:
    third_party and a `corrected` copy of the forget set relabelled to the next class."""
    model, data = make_toy("class", forget_class=0)
    task = data.task
    task.corrected = task.forget.with_labels((task.forget.y + 1) % 4)
    return model, data


@pytest.fixture(scope="session")
def toy_random():
    return make_toy("random", forget_size=0.1)


class ConfidenceModel(nn.Module):
    """Two-class model whose probability of class 0 is the (single) input feature."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        c = x[:, 0].clamp(1e-6, 1 - 1e-6)
        return torch.stack([c.log(), (1 - c).log()], 1) + 0 * self.dummy


def missing_component(what: str, how: str) -> None:
    """Skip a test whose optional component is absent - or fail it where the CI script
    (UNLEARNKIT_REQUIRE_COMPONENTS=1) promises the component, so CI never silently skips it."""
    message = f"{what} is not installed ({how})"
    if os.environ.get("UNLEARNKIT_REQUIRE_COMPONENTS") == "1":
        pytest.fail(message + "; UNLEARNKIT_REQUIRE_COMPONENTS=1 requires it")
    pytest.skip(message)


def state_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def forget_accuracy(model, task) -> float:
    from unlearnkit.evaluation import accuracy

    return accuracy(model, task.forget)


def forget_loss(model, task) -> float:
    """Mean cross-entropy of ``model`` on the forget set."""
    from torch.nn import functional as F

    from unlearnkit.evaluation import predict_logits

    return float(F.cross_entropy(predict_logits(model, task.forget), task.forget.y))


__all__ = ["ConfidenceModel", "make_toy", "missing_component", "state_equal", "forget_accuracy", "np"]
