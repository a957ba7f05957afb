"""Scenarios ``label`` / ``feature`` and the first- / second-order correction updates."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from unlearnkit.data import load_dataset
from unlearnkit.data.split import Split
from unlearnkit.errors import DataError, MissingSplitError
from unlearnkit.methods import get_method
from unlearnkit.methods.second_order import conjugate_gradient
from unlearnkit.scenarios import get_scenario
from unlearnkit.task import UnlearningTask


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic", n_samples=400, n_features=10, n_classes=4)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


# -- label ------------------------------------------------------------------------------------
def test_label_scenario_flips_a_fraction_of_each_class(synthetic):
    data = get_scenario("label").build(synthetic, seed=0)
    y = synthetic.train.y
    idx = data.forget_indices
    for c in range(4):
        assert (y[idx] == c).sum() == round(0.1 * int((y == c).sum()))
    task = data.task
    assert torch.equal(task.forget.y, (y[idx] + 1) % 4)           # Z: as trained (wrong labels)
    assert torch.equal(task.corrected.y, y[idx])                   # Z~: true labels, same order
    assert torch.equal(task.forget.x, task.corrected.x)
    assert torch.equal(data.train.y[idx], task.forget.y)           # the original trains on Z
    assert len(task.retain) + len(task.forget) == len(synthetic.train)
    assert data.train_key and data.train_key != get_scenario("label").build(synthetic, seed=1).train_key
    m = get_scenario("label").extra_metrics(ConstantModel(4, 0), data)
    assert m["corrected_acc"] == pytest.approx(float((task.corrected.y == 0).float().mean()))


def test_label_scenario_options(synthetic):
    data = get_scenario("label", classes="1,2", fraction=0.5, target=3).build(synthetic, seed=0)
    y = synthetic.train.y[data.forget_indices]
    assert set(y.tolist()) == {1, 2} and (data.task.forget.y == 3).all()
    with pytest.raises(DataError, match="target"):
        get_scenario("label", target=9).build(synthetic, seed=0)
    with pytest.raises(DataError, match="classes"):
        get_scenario("label", classes="0,7").build(synthetic, seed=0)


# -- feature ----------------------------------------------------------------------------------
def test_feature_scenario_plants_and_removes_a_patch(digits):
    data = get_scenario("feature").build(digits, seed=0)
    task, idx = data.task, data.forget_indices
    assert (digits.train.y[idx] == 0).all() and len(idx) == int((digits.train.y == 0).sum())
    hi = float(digits.train.x.max())
    assert (task.forget.x[:, :, -3:, -3:] == hi).all()                # 3x3 corner patch as trained
    assert torch.equal(task.corrected.x, digits.train.x[idx])         # removed in Z~
    assert torch.equal(task.forget.y, task.corrected.y)
    assert torch.equal(data.train.x[idx], task.forget.x)
    others = np.setdiff1d(np.arange(len(digits.train)), idx)
    assert torch.equal(data.train.x[others], digits.train.x[others])
    metrics = get_scenario("feature").extra_metrics(PatchDetector(), data)
    assert metrics["pattern_flip"] == 1.0 and metrics["pattern_target"] == 1.0   # reacts fully
    assert metrics["pattern_class_acc"] == 1.0  # every marked class-0 test input goes to class 0
    metrics = get_scenario("feature").extra_metrics(ConstantModel(10, 3), data)
    assert metrics["pattern_flip"] == 0.0 and metrics["pattern_class_acc"] == 0.0  # class 3, never 0


def test_feature_canary_exposure(digits):
    sc = get_scenario("feature", pattern="canary", target_class=-1, fraction=0.05, n_candidates=31)
    data = sc.build(digits, seed=0)
    assert len(data.forget_indices) == round(0.05 * len(digits.train))
    canary = torch.tensor(data.task.metadata["pattern_values"])
    assert canary.shape == (1, 4, 4) and set(canary.unique().tolist()) <= {0.0, 1.0}
    # a model that ignores inputs ranks the canary in the middle (ties count half): exposure ~ 1
    assert sc.extra_metrics(ConstantModel(10, 3), data)["canary_exposure"] == pytest.approx(5 - np.log2(16.5))
    # a model that knows the canary (low loss only with it) ranks it first: exposure = log2(32) = 5
    knows = CanaryModel(canary, data.task.corrected.y)
    assert sc.extra_metrics(knows, data)["canary_exposure"] == pytest.approx(5.0)
    with pytest.raises(DataError, match="patch_size"):
        get_scenario("feature", pattern="canary", patch_size=2).build(digits, seed=0)


def test_feature_scenario_on_1d_signals(synthetic):
    data = get_scenario("feature", target_class=1, fraction=0.5).build(synthetic, seed=0)
    assert (data.task.forget.x[:, -9:] == float(synthetic.train.x.max())).all()
    assert not torch.equal(data.task.forget.x, data.task.corrected.x)


# -- first / second order -----------------------------------------------------------------------
def linear_task(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Linear(3, 3)
    x = torch.randn(30, 3)
    y = torch.randint(0, 3, (30,))
    forget = Split(x[:5], y[:5])
    corrected = Split(x[:5] + 0.5, (y[:5] + 1) % 3)
    return model, UnlearningTask(forget=forget, retain=Split(x[5:], y[5:]), corrected=corrected, num_classes=3)


def summed_grad_by_hand(model: nn.Linear, split: Split):
    """sum_i (softmax(W x_i + b) - onehot(y_i)) [x_i, 1]: the gradient of summed cross-entropy."""
    with torch.no_grad():
        err = F.softmax(split.x @ model.weight.T + model.bias, 1) - F.one_hot(split.y, 3).float()
    return err.T @ split.x, err.sum(0)


def test_first_order_update_by_hand():
    model, task = linear_task()
    tau = 0.05
    out = get_method("first_order", tau=tau).unlearn(model, task, seed=0, device="cpu")
    gw_c, gb_c = summed_grad_by_hand(model, task.corrected)
    gw_f, gb_f = summed_grad_by_hand(model, task.forget)
    assert torch.allclose(out.weight, model.weight - tau * (gw_c - gw_f), atol=1e-6)
    assert torch.allclose(out.bias, model.bias - tau * (gb_c - gb_f), atol=1e-6)


def flat_hessian(model: nn.Linear, split: Split) -> torch.Tensor:
    def loss(theta):
        w, b = theta[:9].reshape(3, 3), theta[9:]
        return F.cross_entropy(split.x @ w.T + b, split.y)
    return torch.autograd.functional.hessian(loss, torch.cat([model.weight.detach().reshape(-1), model.bias.detach()]))


def test_second_order_update_by_hand():
    model, task = linear_task()
    damping = 0.1
    out = get_method("second_order", damping=damping, cg_iters=100).unlearn(model, task, seed=0, device="cpu")
    full = Split.concat(task.retain, task.corrected)                 # the corrected training set D~
    h = flat_hessian(model, full)                                    # Hessian of the MEAN loss
    gw_c, gb_c = summed_grad_by_hand(model, task.corrected)
    gw_f, gb_f = summed_grad_by_hand(model, task.forget)
    g = torch.cat([(gw_c - gw_f).reshape(-1), gb_c - gb_f])
    # theta - (n H_mean + n*damping I)^-1 g  ==  theta - (H_mean + damping I)^-1 g / n
    step = torch.linalg.solve(h + damping * torch.eye(12), g / len(full))
    assert torch.allclose(out.weight, model.weight - step[:9].reshape(3, 3), atol=1e-5)
    assert torch.allclose(out.bias, model.bias - step[9:], atol=1e-5)


def test_second_order_with_selection_solves_the_restricted_system():
    model, task = linear_task()
    damping = 0.1
    out = get_method("second_order", damping=damping, cg_iters=100, select="last_layer").unlearn(
        model, task, seed=0, device="cpu")
    assert not torch.equal(out.weight, model.weight)  # nn.Linear alone: the last layer is everything
    mask = {"weight": torch.zeros(3, 3), "bias": torch.ones(3)}
    method = get_method("second_order", damping=damping, cg_iters=100)
    method.selection_mask = lambda m, t: mask                       # restrict to the bias
    out = method.unlearn(model, task, seed=0, device="cpu")
    assert torch.equal(out.weight, model.weight)
    full = Split.concat(task.retain, task.corrected)
    h = flat_hessian(model, full)[9:, 9:]
    _, gb_c = summed_grad_by_hand(model, task.corrected)
    _, gb_f = summed_grad_by_hand(model, task.forget)
    step = torch.linalg.solve(h + damping * torch.eye(3), (gb_c - gb_f) / len(full))
    assert torch.allclose(out.bias, model.bias - step, atol=1e-5)


def test_diag_solver_and_masked_first_order():
    model, task = linear_task()
    out = get_method("second_order", solver="diag", damping=1.0).unlearn(model, task, seed=0, device="cpu")
    assert not torch.equal(out.weight, model.weight)
    out = get_method("first_order", tau=0.05, select="hessian", select_fraction=0.25).unlearn(
        model, task, seed=0, device="cpu")
    changed = int((out.weight != model.weight).sum() + (out.bias != model.bias).sum())
    assert changed == 3  # round(0.25 * 12)


def test_conjugate_gradient_solves_spd_system():
    torch.manual_seed(0)
    a = torch.randn(6, 6)
    a = a @ a.T + 0.5 * torch.eye(6)
    b = torch.randn(6)
    x, info = conjugate_gradient(lambda v: [a @ v[0]], [b], iters=50, tol=1e-8)
    assert torch.allclose(x[0], torch.linalg.solve(a, b), atol=1e-4) and info["stopped"] == "converged"


def test_correction_methods_need_corrected_pairs():
    model, task = linear_task()
    no_corr = UnlearningTask(forget=task.forget, retain=task.retain)
    with pytest.raises(MissingSplitError, match="corrected"):
        get_method("first_order").unlearn(model, no_corr)
    bad = UnlearningTask(forget=task.forget, retain=task.retain, corrected=task.retain)
    with pytest.raises(DataError, match="pairs"):
        get_method("second_order").unlearn(model, bad)


def test_label_end_to_end_first_order_moves_towards_corrected_labels(synthetic):
    from unlearnkit.evaluation.metrics import accuracy
    from unlearnkit.models import build_model
    from unlearnkit.training import TrainRecipe, train_model
    from unlearnkit.utils import seeded

    data = get_scenario("label", fraction=0.2).build(synthetic, seed=0)
    with seeded(0):
        model = build_model("mlp", synthetic.input_shape, 4, hidden=(32,))
    train_model(model, data.train, TrainRecipe("adam", lr=1e-2, momentum=0.0, weight_decay=0.0, epochs=30,
                                               batch_size=32, schedule="constant"), seed=0)
    before = accuracy(model, data.task.corrected)
    for name, params in (("first_order", {"tau": 2e-3}), ("second_order", {"damping": 0.1})):
        out = get_method(name, **params).unlearn(model, data.task, seed=0, device="cpu")
        assert accuracy(out, data.task.corrected) > before, name


# -- small models for metric checks -------------------------------------------------------------
class ConstantModel(nn.Module):
    def __init__(self, k: int, c: int) -> None:
        super().__init__()
        self.k, self.c = k, c
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        out = torch.zeros(len(x), self.k, device=x.device) + 0 * self.dummy
        out[:, self.c] = 1.0
        return out


class PatchDetector(ConstantModel):
    """Predicts class 0 when the 3x3 corner is bright, else class 5."""

    def __init__(self) -> None:
        super().__init__(10, 5)

    def forward(self, x):
        out = super().forward(x)
        marked = (x[:, :, -3:, -3:] >= 0.999).flatten(1).all(1)
        out[marked] = 0.0
        out[marked, 0] = 1.0
        return out


class CanaryModel(ConstantModel):
    """Low loss on the true labels only when the exact canary is in the corner."""

    def __init__(self, canary: torch.Tensor, labels: torch.Tensor) -> None:
        super().__init__(10, 0)
        self.canary = canary
        self.labels = labels

    def forward(self, x):
        out = torch.zeros(len(x), 10)
        hit = (x[:, :, -4:, -4:] == self.canary).flatten(1).all(1)
        if len(x) == len(self.labels):
            out[hit, self.labels[hit]] = 10.0
        return out
