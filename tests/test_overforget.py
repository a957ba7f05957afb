"""Over-forgetting is flagged like a no-op: the criterion on hand-made outputs at its boundaries, when it
applies, and the warning, report and row flag on a memorising model, where it fires for a method that
pushes the forget set past unseen data and stays silent for Retrain and dist_match."""

from __future__ import annotations

import warnings
from dataclasses import replace

import pytest
import torch
from torch import nn

from unlearnkit.data import load_dataset
from unlearnkit.data.split import Split
from unlearnkit.errors import OverForgetWarning
from unlearnkit.methods import get_method
from unlearnkit.methods.blocks.noop import (ACC_MARGIN, AUC_MARGIN, OVERFORGET_Z, below_probability,
                                                  check_overforget, not_applicable, overforget_report)
from unlearnkit.models import build_model
from unlearnkit.scenarios import get_scenario
from unlearnkit.training import TrainRecipe, train_model
from unlearnkit.utils import seeded


def _passthrough() -> nn.Module:
    """Two logits equal to the two input features."""
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
        model.bias.zero_()
    return model


def _split(phis: list[float]) -> Split:
    """Class-0 examples whose logit-scaled confidence phi = z_0 - z_1 is each of ``phis``."""
    x = torch.tensor([[p, 0.0] for p in phis])
    return Split(x, torch.zeros(len(phis), dtype=torch.long))


def test_below_probability_hand_computed():
    assert below_probability(torch.tensor([1.0, 2.0, 3.0]).numpy(), torch.tensor([2.0]).numpy()) == 0.5  # (1 + 1/2) / 3
    assert below_probability(torch.tensor([0.0, 0.0]).numpy(), torch.tensor([1.0, 2.0]).numpy()) == 1.0
    assert below_probability(torch.tensor([5.0]).numpy(), torch.tensor([1.0, 5.0, 9.0]).numpy()) == 0.5


def test_the_accuracy_arm_fires_from_its_margin():
    """Large sets (the margin, not the noise, sets the threshold): unseen 80% correct; forget 65% correct
    is 15 points below (fires), 65.05% is not; the ranks alone stay below their threshold."""
    unseen = _split([1.0] * 3200 + [-1.0] * 800)
    model = _passthrough()
    at = overforget_report(model, _split([1.0] * 1300 + [-1.0] * 700), unseen)
    assert at.forget_acc == pytest.approx(0.65) and at.unseen_acc == pytest.approx(0.80)
    assert at.acc_threshold == ACC_MARGIN and at.auc < 0.5 + AUC_MARGIN
    assert at.acc_gap == pytest.approx(0.15) and at.overforget
    inside = overforget_report(model, _split([1.0] * 1301 + [-1.0] * 699), unseen)
    assert inside.acc_gap < ACC_MARGIN and not inside.overforget


def test_the_rank_arm_fires_from_its_margin():
    """Every example correct (no accuracy gap): forget phi = 1 is below 600 of 1000 unseen phi (2.0, the
    rest 0.5), A = 0.60 = 0.5 + AUC_MARGIN: fires; below 599 of them: does not."""
    model = _passthrough()
    forget = _split([1.0] * 1000)
    at = overforget_report(model, forget, _split([2.0] * 600 + [0.5] * 400))
    assert at.acc_gap == 0 and at.auc == pytest.approx(0.60) and at.auc_threshold == pytest.approx(0.5 + AUC_MARGIN)
    assert at.overforget
    below = overforget_report(model, forget, _split([2.0] * 599 + [0.5] * 401))
    assert below.auc == pytest.approx(0.599) and not below.overforget


def test_a_small_forget_set_is_not_flagged_for_its_noise():
    """4 forget examples, all wrong and below every unseen one: A = 1 and a 100-point accuracy gap, but
    both are within OVERFORGET_Z null standard deviations of what 4 unseen-like examples can give."""
    report = overforget_report(_passthrough(), _split([-1.0] * 4), _split([1.0] * 50 + [-1.0] * 50))
    sigma = ((4 + 100 + 1) / (12 * 4 * 100)) ** 0.5
    assert report.auc == pytest.approx(0.75) and report.auc_threshold == pytest.approx(0.5 + OVERFORGET_Z * sigma)
    assert not report.overforget
    assert overforget_report(_passthrough(), _split([-1.0] * 4), Split(torch.ones(3, 2), torch.ones(3).long())) is None


def test_it_applies_to_deletions_only(toy_random, toy_class):
    _, random_data = toy_random
    assert not_applicable(random_data.task) is None
    class_task = replace(toy_class[1].task, corrected=None)
    assert "would not treat" in not_applicable(class_task)  # the class scenario says so
    assert "correction" in not_applicable(replace(random_data.task, corrected=random_data.task.forget))
    assert "no unseen" in not_applicable(replace(random_data.task, test=None, third_party=None))
    for name, options in (("subclass", {"forget_class": 0}), ("backdoor", {"poison_rate": 0.1})):
        bundle = load_dataset("synthetic", n_samples=200)
        assert not_applicable(get_scenario(name, **options).build(bundle, seed=0).task) is not None
    model, _ = toy_random
    assert check_overforget(model, class_task) is None


MEMORISE = TrainRecipe("adam", lr=3e-3, momentum=0.0, weight_decay=0.0, epochs=40, batch_size=32, schedule="constant")


@pytest.fixture(scope="module")
def memorised():
    """A 20-128-128-4 MLP trained to zero loss on synthetic data with 20% label noise (train 100%, test
    ~70%), and a 10% random deletion: Retrain leaves forget accuracy near test accuracy."""
    bundle = load_dataset("synthetic", n_samples=1500, n_features=20, n_classes=4, label_noise=0.2)
    data = get_scenario("random", forget_size=0.1).build(bundle, seed=0)
    with seeded(0):
        model = build_model("mlp", bundle.input_shape, bundle.num_classes, hidden=[128, 128])
    train_model(model, data.train, MEMORISE, seed=0)
    return model, replace(data.task, recipe=MEMORISE)


def _run(name: str, model, task, **params):
    method = get_method(name, **params)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        method.unlearn(model, task, seed=0)
    return method, [w for w in record if issubclass(w.category, OverForgetWarning)]


def test_fires_for_random_labels_pushed_too_far_and_not_for_retrain_or_dist_match(memorised):
    model, task = memorised
    original = check_overforget(model, task)
    assert original.forget_acc == 1.0 and not original.overforget  # the other side: under-forgotten
    retrain, said = _run("retrain", model, task)
    assert not retrain.overforget.overforget and not said
    assert abs(retrain.overforget.acc_gap) < 0.1  # Retrain treats the forget set like unseen data
    dist_match, said = _run("dist_match", model, task)
    assert not dist_match.overforget.overforget and not said
    rl, said = _run("rl", model, task, lr=0.01)  # the reference lr, which the rl docstring says over-unlearns
    report = rl.overforget
    assert report.overforget and report.acc_gap >= report.acc_threshold
    assert len(said) == 1 and "rl pushed the forget set past unseen data" in str(said[0].message)
    assert "Try: fewer epochs or a smaller lr" in str(said[0].message)
    assert set(report.to_dict()) >= {"overforget", "forget_acc", "unseen_acc", "auc", "acc_threshold", "auc_threshold"}


def test_the_row_records_the_flag(tmp_path):
    from unlearnkit.bench.pipeline import ExperimentConfig, run_experiment

    config = ExperimentConfig(dataset="synthetic", model="mlp", scenario="random", methods=["original", "rl", "ga"],
                              seeds=[0], dataset_options={"n_samples": 1000, "label_noise": 0.2},
                              method_params={"rl": {"lr": 0.1, "epochs": 20}, "ga": {"lr": 1e-6, "epochs": 1}})
    with pytest.warns(OverForgetWarning, match="rl pushed the forget set past unseen data"):
        rows = {r["method"]: r for r in run_experiment(config, tmp_path, progress=False)["rows"]}
    assert rows["rl"]["overforget"] is True and rows["ga"]["overforget"] is False
    assert 0 <= rows["rl"]["overforget_auc"] <= 1 and rows["rl"]["restarts"] == 0
    assert "overforget" not in rows["original"]


def test_the_receipt_records_the_flag_and_what_to_try(memorised):
    from unlearnkit.ledger.receipt import unlearn_with_receipt

    model, task = memorised
    splits = {"forget": task.forget, "retain": task.retain, "test": task.test}
    with pytest.warns(OverForgetWarning):
        pushed = unlearn_with_receipt(model, method="rl", lr=0.01, **splits).receipt["over_forgetting"]
    assert pushed["overforget"] is True and pushed["hint"].startswith("fewer epochs")
    kept = unlearn_with_receipt(model, method="original", **splits).receipt["over_forgetting"]
    assert kept == {"skipped": "original does not change the model"}
    unseen_free = unlearn_with_receipt(model, method="ft", epochs=1, forget=task.forget, retain=task.retain)
    assert "no unseen" in unseen_free.receipt["over_forgetting"]["skipped"]
