"""No silent no-ops: the detector on hand-made cases, the warning through the Python API on a model
trained to zero loss, the row flag of the pipeline, and the saturation-proof forget objective."""

from __future__ import annotations

import copy
import warnings
from dataclasses import replace

import pytest
import torch
from torch import nn

import unlearnkit
from unlearnkit.data import load_dataset
from unlearnkit.data.split import Split
from unlearnkit.errors import NoOpWarning
from unlearnkit.methods import METHODS, get_method
from unlearnkit.methods.blocks.forget_loss import forget_ascent_loss, logit_confidence
from unlearnkit.methods.blocks.noop import detect_noop
from unlearnkit.models import build_model
from unlearnkit.scenarios import get_scenario
from unlearnkit.training import TrainRecipe, train_model
from unlearnkit.utils import seeded
from conftest import forget_loss

MEMORISE = TrainRecipe("adam", lr=3e-3, momentum=0.0, weight_decay=0.0, epochs=40, batch_size=32,
                       schedule="constant")


@pytest.fixture(scope="module")
def zero_loss():
    """A 20-64-64-4 MLP trained to (near) zero loss on noisy synthetic data it can only memorise,
    with every split a method may read."""
    bundle = load_dataset("synthetic", n_samples=400, n_features=20, n_classes=4, separation=0.6)
    data = get_scenario("random", forget_size=0.05).build(bundle, seed=0)
    with seeded(0):
        model = build_model("mlp", bundle.input_shape, bundle.num_classes, hidden=(64, 64))
    train_model(model, data.train, MEMORISE, seed=0)
    task = replace(data.task, recipe=MEMORISE, corrected=data.task.forget.with_labels((data.task.forget.y + 1) % 4))
    return model, task


def _noop_warnings(record) -> list:
    return [w for w in record if issubclass(w.category, NoOpWarning)]


# -- the detector ----------------------------------------------------------------------------------------
def test_detect_noop_hand_made():
    x, y = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1])
    forget = Split(x, y)
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2) * 4)
        model.bias.zero_()
    same = copy.deepcopy(model)
    report = detect_noop(model, same, forget)
    assert report is not None and report.loss_before == pytest.approx(report.loss_after)
    softer = copy.deepcopy(model)  # same predictions, loss 0.018 -> 0.135: more than 10%, not a no-op
    with torch.no_grad():
        softer.weight.mul_(0.5)
    assert detect_noop(model, softer, forget) is None
    flipped = copy.deepcopy(model)  # one prediction changes: not a no-op
    with torch.no_grad():
        flipped.bias.copy_(torch.tensor([10.0, 0.0]))
    assert detect_noop(model, flipped, forget) is None


def test_fires_on_a_saturated_model_through_the_api(zero_loss):
    model, task = zero_loss
    with pytest.warns(NoOpWarning, match="saturated") as record:
        out = unlearnkit.unlearn(model, (task.forget.x, task.forget.y), method="ga", lr=1e-2, epochs=1)
    assert "forget_loss=confidence" in str(record[0].message)  # names what to try
    assert forget_loss(out, task) == pytest.approx(forget_loss(model, task), rel=0.1)


def test_silent_on_a_working_method(zero_loss):
    model, task = zero_loss
    method = get_method("ga", lr=1e-2, epochs=1, forget_loss="confidence")  # same step as above
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        out = method.unlearn(model, task, seed=0)
    assert not _noop_warnings(record) and method.noop is None
    assert forget_loss(out, task) > 1.1 * forget_loss(model, task)


@pytest.mark.parametrize("name", sorted(n for n in METHODS.names() if n != "original"))
def test_no_method_silently_does_nothing_on_a_zero_loss_model(zero_loss, name):
    """Either the forget loss moves by more than 10% or the call says it did nothing."""
    model, task = zero_loss
    if name == "unsir":  # forgets a whole class only: forget every training sample of class 0
        full = Split.concat(task.forget, task.retain)
        task = replace(task, forget=full.subset(torch.nonzero(full.y == 0).squeeze(1)),
                       retain=full.subset(torch.nonzero(full.y != 0).squeeze(1)), corrected=None)
    method = get_method(name)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        out = method.unlearn(model, task, seed=0)
    before, after = forget_loss(model, task), forget_loss(out, task)
    moved = abs(after - before) > 0.1 * before
    assert moved or (_noop_warnings(record) and method.noop is not None)


def test_pipeline_row_records_the_noop(tmp_path):
    from unlearnkit.bench.pipeline import ExperimentConfig, run_experiment

    config = ExperimentConfig(dataset="synthetic", model="mlp", scenario="random", methods=["original", "ga"],
                              seeds=[0], method_params={"ga": {"lr": 1e-7, "epochs": 1}})
    with pytest.warns(NoOpWarning):
        rows = {r["method"]: r for r in run_experiment(config, tmp_path, progress=False)["rows"]}
    assert rows["ga"]["noop"] is True and "noop" not in rows["original"]


# -- the saturation-proof objective ----------------------------------------------------------------------
def test_confidence_objective_keeps_its_gradient_when_saturated():
    logits = torch.tensor([[30.0, 0.0, 0.0]], requires_grad=True)  # p_y = 1 - 2e-13
    y = torch.tensor([0])
    (g_ce,) = torch.autograd.grad(forget_ascent_loss(logits, y, "ce"), logits)
    (g_conf,) = torch.autograd.grad(forget_ascent_loss(logits, y, "confidence"), logits)
    assert g_ce.abs().max() < 1e-10 and g_conf[0, 0] == pytest.approx(1.0)
    # s = log p_y - log(1 - p_y) and the clip: no pull once p_y <= 1/2
    assert float(logit_confidence(logits.detach(), y)) == pytest.approx(30 - torch.log(torch.tensor(2.0)).item(), rel=1e-6)
    low = torch.tensor([[0.0, 1.0, 0.0]], requires_grad=True)
    (g_low,) = torch.autograd.grad(forget_ascent_loss(low, y, "confidence"), low)
    assert torch.equal(g_low, torch.zeros_like(g_low))
