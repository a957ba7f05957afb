"""dist_match: MMD / median heuristic / AUC stopping rule by hand, the method without
retain data, and the backdoor scenario (trigger placement, poison rate, ASR formula)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from unlearnkit.data import load_dataset
from unlearnkit.data.split import Split
from unlearnkit.methods import get_method
from unlearnkit.methods.dist_match import (auc_stop, gaussian_mmd2, lira_confidence, median_bandwidth,
                                           two_sample_auc)
from unlearnkit.scenarios import get_scenario
from unlearnkit.scenarios.backdoor import apply_trigger, attack_success_rate, trigger_region
from conftest import make_toy


# -- MMD and the median heuristic ----------------------------------------------------------------
def test_mmd_zero_for_identical_samples():
    x = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
    assert float(gaussian_mmd2(x, x.clone())) == pytest.approx(0.0, abs=1e-7)


def test_mmd_hand_computed_two_points():
    # x = {0}, y = {1} in 1-D, sigma = 1: MMD^2 = k(0,0) + k(1,1) - 2 k(0,1) = 2 - 2 exp(-1/2)
    x, y = torch.zeros(1, 1), torch.ones(1, 1)
    assert float(gaussian_mmd2(x, y, sigma=1.0)) == pytest.approx(2 - 2 * math.exp(-0.5), rel=1e-6)


def test_mmd_grows_with_shift():
    g = torch.Generator().manual_seed(1)
    x, noise = torch.randn(50, 2, generator=g), torch.randn(50, 2, generator=g)
    values = [float(gaussian_mmd2(x, noise + shift, sigma=1.0)) for shift in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert values == sorted(values) and values[-1] > 10 * values[0]


def test_median_bandwidth():
    # pooled points 0, 1, 3 (1-D): distinct pairwise distances 1, 3, 2 (each twice) -> median 2
    x, y = torch.tensor([[0.0], [1.0]]), torch.tensor([[3.0]])
    assert float(median_bandwidth(x, y)) == pytest.approx(2.0)
    # all points equal: falls back to 1 instead of a zero bandwidth
    assert float(median_bandwidth(torch.zeros(3, 2), torch.zeros(2, 2))) == 1.0


def test_lira_confidence_matches_definition():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    p = torch.softmax(logits, 1)[0]
    expected = math.log(p[0]) - math.log(p[1] + p[2])
    assert float(lira_confidence(logits, torch.tensor([0]))) == pytest.approx(expected, rel=1e-5)


# -- the stopping rule ---------------------------------------------------------------------------------
def test_auc_separable_and_indistinguishable():
    rng = np.random.default_rng(0)
    same_a, same_b = rng.normal(size=(200, 3)), rng.normal(size=(200, 3))
    far = rng.normal(size=(200, 3)) + 5
    auc_same, auc_far = two_sample_auc(same_a, same_b), two_sample_auc(far, same_b)
    assert abs(auc_same - 0.5) < 0.1 and auc_stop(auc_same, 0.1)
    assert auc_far > 0.99 and not auc_stop(auc_far, 0.05)
    assert auc_stop(0.3, 0.05)  # below chance = nothing that generalises: stop


def test_stopping_rule_stops_early_when_already_matched():
    """With the forget set drawn from the same distribution as the third-party set the rule fires
    before any update: the model is returned unchanged and only one AUC was computed."""
    model, data = make_toy("random", forget_size=0.1)
    task = data.task
    task.forget = task.third_party.subset(np.arange(40))  # forget = unseen data: already indistinguishable
    m = get_method("dist_match", epochs=3, stop_tol=0.2)
    out = m.unlearn(model, task, seed=0)
    assert len(m.history) == 1 and auc_stop(m.history[0], 0.2)
    assert all(torch.equal(a, b) for a, b in zip(out.state_dict().values(), model.state_dict().values()))


# -- the method -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("discrepancy", ["mmd", "adv"])
def test_runs_without_retain_and_forgets_a_class(discrepancy):
    model, data = make_toy("class", forget_class=0)
    task = data.task
    from dataclasses import replace
    no_retain = replace(task, retain=None)
    m = get_method("dist_match", discrepancy=discrepancy, epochs=5, lr=3e-3)
    out = m.unlearn(model, no_retain, seed=0)
    before = (model(task.forget.x).argmax(1) == task.forget.y).float().mean()
    after = (out(task.forget.x).argmax(1) == task.forget.y).float().mean()
    if discrepancy == "mmd":
        assert after < before - 0.3
    else:  # the discriminator needs a few epochs to learn before its gradient helps: it must run and move
        assert len(m.history) > 1
        assert not all(torch.equal(a, b) for a, b in zip(out.state_dict().values(), model.state_dict().values()))
    assert m.marginal and m.retain_set is None
    assert not torch.isin(m.target_set.y, torch.tensor([0])).any()  # forgotten class withheld


def test_conditional_matching_for_subsets():
    model, data = make_toy("random", forget_size=0.1)
    m = get_method("dist_match", epochs=1, min_epochs=1, features="both")
    m.unlearn(model, data.task, seed=0)
    assert not m.marginal and len(m.target_set) == len(data.task.third_party)


# -- the backdoor scenario ------------------------------------------------------------------------------
def test_backdoor_trigger_and_poison_rate():
    bundle = load_dataset("digits")
    sc = get_scenario("backdoor", poison_rate=0.1, target=3)
    d = sc.build(bundle, seed=0)
    n = len(bundle.train)
    assert len(d.forget_indices) == round(0.1 * n) and d.train_key
    assert (d.task.forget.y == 3).all() and (bundle.train.y[d.forget_indices] != 3).all()
    hi = float(bundle.train.x.max())
    # 2x2 patch of the maximum value in the bottom-right corner, nothing else changed
    assert torch.all(d.task.forget.x[:, :, 6:, 6:] == hi)
    diff = (d.train.x != bundle.train.x).flatten(1).any(1).numpy()
    assert set(np.flatnonzero(diff)) <= set(d.forget_indices.tolist())
    rest = np.setdiff1d(np.arange(n), d.forget_indices)
    assert torch.equal(d.train.y[rest], bundle.train.y[rest])
    assert len(d.task.retain) == n - len(d.forget_indices)
    # a different seed poisons different samples and keys a different original
    assert sc.build(bundle, seed=1).train_key != d.train_key


def test_trigger_region_scales_and_1d():
    assert trigger_region((1, 8, 8)) == (slice(None), slice(6, 8), slice(6, 8))
    assert trigger_region((3, 32, 32)) == (slice(None), slice(28, 32), slice(28, 32))
    assert trigger_region((1, 40)) == (slice(None), slice(35, 40))


class _Detector(nn.Module):
    """Predicts class 2 when the bottom-right pixel is 1, else class 0 (a perfect backdoor)."""

    def forward(self, x):
        trig = (x[:, 0, -1, -1] == 1.0).float()
        return torch.stack([1 - trig, torch.zeros_like(trig), trig], 1) * 5.0


def test_asr_formula_on_a_hand_made_model():
    x = torch.zeros(6, 1, 4, 4)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    region = trigger_region((1, 4, 4), 1)
    triggered = Split(apply_trigger(x, torch.ones(1, 1, 1), region), y)
    # every non-target sample is flipped to the target: ASR = 1 (target-class samples are excluded)
    assert attack_success_rate(_Detector(), triggered, target=2) == 1.0
    # trigger absent: nothing goes to the target
    assert attack_success_rate(_Detector(), Split(x, y), target=2) == 0.0
    # half the non-target samples triggered: ASR = 2 / 4
    half = x.clone()
    half[[0, 2]] = triggered.x[[0, 2]]
    assert attack_success_rate(_Detector(), Split(half, y), target=2) == 0.5
