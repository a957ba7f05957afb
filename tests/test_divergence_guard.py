"""The divergence guard of the iterative family: a run whose loss, weights or outputs stop being finite
restarts from the input model with every learning rate halved, and its result is exactly that of a
fresh run at the smaller rate; a run that still diverges is an error naming method, seed and setting."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import unlearnkit
from unlearnkit.errors import DivergenceWarning, NonFiniteError
from unlearnkit.methods import get_method
from unlearnkit.methods.blocks.state import RequestState
from unlearnkit.methods.iterative import GROWTH_LIMIT, GUARD_CLIP, Diverged, IterativeMethod, IterativeParams


class Fragile(IterativeMethod):
    """Fine-tuning on the retain set whose loss turns infinite whenever its step is above ``LIMIT``:
    a stand-in for a method that diverges at its default lr and not at half of it. It also appends
    to the request state in ``prepare`` (as methods that carry state across requests do) and draws
    from the global random stream (as dropout does)."""

    name = "fragile"
    requires = ("forget", "retain")
    has_min_phase = True
    LIMIT = 0.03

    def prepare(self, model, task):
        self.state.data["calls"] = self.state.data.get("calls", []) + [len(task.forget)]
        self.noise = torch.rand(1).item()

    def min_step(self, x, y, epoch):
        loss = F.cross_entropy(self.model(x), y) * (1 + 1e-3 * self.noise)
        if self.optimizer.param_groups[0]["lr"] > self.LIMIT and epoch == 1:
            return loss * float("inf")
        return loss


def _same(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_diverging_run_restarts_clipped_then_with_half_the_lr_and_equals_a_fresh_run_there(toy_random):
    model, data = toy_random
    state = RequestState()
    method = Fragile(IterativeParams(lr=0.1, epochs=2))
    with pytest.warns(DivergenceWarning) as record:
        out = method.unlearn(model, data.task, seed=3, state=state)
    # lr 0.1 diverges in its second epoch, clipped or not, and so does 0.05; 0.025 does not
    assert method.restarts == 3 and method.clip_norm == GUARD_CLIP and method.lr_scale == 0.25
    assert [str(w.message).split(";")[0] for w in record] == [
        "fragile diverged with seed 3 (infinite loss at epoch 2)"] * 3
    assert [str(w.message).split("with the ")[-1] for w in record] == [
        "gradient norm clipped at 1 (lr 0.1)", "gradient norm clipped at 1 and every learning rate x0.5 (lr 0.05)",
        "gradient norm clipped at 1 and every learning rate x0.25 (lr 0.025)"]
    fresh = Fragile(IterativeParams(lr=0.025, epochs=2, clip_grad_norm=GUARD_CLIP))
    fresh_state = RequestState()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergenceWarning)  # it does not diverge
        expected = fresh.unlearn(model, data.task, seed=3, state=fresh_state)
    assert fresh.restarts == 0 and _same(out, expected)
    assert state.data == fresh_state.data == {"calls": [len(data.task.forget)]}  # the state as after one run


def test_clipping_bounds_every_step(toy_random):
    """With clip_grad_norm the gradient that reaches the optimiser has at most that norm."""
    model, data = toy_random
    seen = []

    class Watched(Fragile):
        LIMIT = 10.0

        def after_backward(self):  # called before the clipping: record what the clipping leaves
            self.optimizer.register_step_pre_hook(lambda opt, *_: seen.append(
                float(torch.sqrt(sum((p.grad ** 2).sum() for g in opt.param_groups for p in g["params"]
                                     if p.grad is not None)))))
            self.after_backward = lambda: None

    Watched(IterativeParams(lr=0.01, epochs=1, clip_grad_norm=0.01)).unlearn(model, data.task, seed=0)
    assert seen and max(seen) <= 0.01 * (1 + 1e-5)


def test_a_run_that_still_diverges_names_method_seed_and_setting(toy_random):
    model, data = toy_random
    method = Fragile(IterativeParams(lr=1.0, epochs=2, restarts=2))  # 1.0, 0.5, 0.25: all above the limit
    with pytest.warns(DivergenceWarning), pytest.raises(NonFiniteError) as err:
        method.unlearn(model, data.task, seed=5)
    text = str(err.value)
    assert "'fragile' diverged (infinite loss at epoch 2) with seed 5" in text
    assert ("after 2 restart(s), the last with the gradient norm clipped at 1 and every learning rate x0.5 (lr 0.5)"
            in text and "--set fragile.lr=" in text)


def test_restarts_zero_fails_at_once(toy_random):
    model, data = toy_random
    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergenceWarning)
        with pytest.raises(NonFiniteError, match=r"with seed 0 \(no restart allowed, no gradient clipping \(lr 0.1\)\)"):
            Fragile(IterativeParams(lr=0.1, epochs=2, restarts=0)).unlearn(model, data.task, seed=0)


def test_the_default_guard_keeps_cache_and_cell_keys():
    assert not {"restarts", "clip_grad_norm"} & set(get_method("ga").params.to_dict())
    values = get_method("ga", restarts=1, clip_grad_norm=2).params.to_dict()
    assert values["restarts"] == 1 and values["clip_grad_norm"] == 2.0


def test_weights_that_overflow_the_outputs_count_as_diverged(toy_random):
    model, data = toy_random
    blown = copy.deepcopy(model)
    with torch.no_grad():
        for p in blown.parameters():
            p.mul_(1e20)  # finite weights, infinite logits
    assert all(bool(torch.isfinite(p).all()) for p in blown.parameters())
    guard = get_method("ft")
    guard.original = model  # the input model of a run
    with pytest.raises(Diverged, match="non-finite outputs on the forget set"):
        guard.check_diverged(blown, data.task)
    guard.check_diverged(model, data.task)  # the trained model passes


def test_weights_that_grew_past_the_limit_count_as_diverged(toy_random):
    """Weights whose norm ends just over GROWTH_LIMIT times the input's (outputs still finite) are
    diverged; just under it, they are not."""
    model, data = toy_random
    guard = get_method("ft")
    guard.original = model
    for factor, diverged in ((GROWTH_LIMIT * 1.01, True), (GROWTH_LIMIT * 0.99, False)):
        grown = copy.deepcopy(model)
        with torch.no_grad():
            for p in grown.parameters():
                p.mul_(factor)
        if diverged:
            with pytest.raises(Diverged, match=r"the weights' norm grew 101-fold, over the limit of 100"):
                guard.check_diverged(grown, data.task)
        else:
            guard.check_diverged(grown, data.task)


def test_a_real_method_far_past_its_step_still_fails_with_its_setting(toy_random):
    model, data = toy_random
    with pytest.warns(DivergenceWarning), pytest.raises(NonFiniteError, match=r"'ga' .* seed 0 .*--set ga.lr="):
        unlearnkit.unlearn(model, (data.task.forget.x, data.task.forget.y), method="ga", lr=1e30, epochs=3)
