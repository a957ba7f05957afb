"""Parameter selection (SAPS): Hutchinson's diagonal, exact-fraction masks, masked updates."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from unlearnkit.data.split import Split
from unlearnkit.errors import HyperparameterError
from unlearnkit.methods import get_method
from unlearnkit.methods.blocks.selection import (hutchinson_diag, last_layer_mask, mask_fraction, score_params,
                                          select_params, top_fraction_mask)


def tiny_model_and_data(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3))
    data = Split(torch.randn(24, 3), torch.randint(0, 3, (24,)))
    return model, data


def exact_hessian(model: nn.Module, data: Split) -> torch.Tensor:
    """Full Hessian of the mean cross-entropy w.r.t. the flattened parameters."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss(theta):
        tensors, start = {}, 0
        for n, s in zip(names, shapes):
            k = int(torch.tensor(s).prod())
            tensors[n] = theta[start:start + k].reshape(s)
            start += k
        out = torch.func.functional_call(model, tensors, (data.x,))
        return F.cross_entropy(out, data.y)

    return torch.autograd.functional.hessian(loss, flat)


def test_hutchinson_single_probe_is_v_times_exact_hessian_v():
    model, data = tiny_model_and_data()
    h = exact_hessian(model, data)
    est = torch.cat([d.reshape(-1) for d in hutchinson_diag(model, data, n_probes=1, batch_size=10,
                                                             generator=torch.Generator().manual_seed(5))])
    gen = torch.Generator().manual_seed(5)  # the same Rademacher draw, parameter by parameter
    v = torch.cat([(torch.randint(0, 2, p.shape, generator=gen) * 2 - 1).float().reshape(-1)
                   for p in model.parameters()])
    assert torch.allclose(est, v * (h @ v), atol=1e-5)


def test_hutchinson_matches_exact_hessian_diagonal():
    model, data = tiny_model_and_data()
    h = exact_hessian(model, data)
    exact = h.diagonal()
    n_probes = 400
    est = torch.cat([d.reshape(-1) for d in hutchinson_diag(model, data, n_probes=n_probes,
                                                             generator=torch.Generator().manual_seed(1))])
    # unbiased, entry variance = sum_{j != i} H_ij^2 / n_probes: every entry within 5 sigma
    sigma = ((h ** 2).sum(1) - exact ** 2).clamp_min(0).div(n_probes).sqrt()
    assert ((est - exact).abs() <= 5 * sigma + 1e-6).all()
    assert torch.corrcoef(torch.stack([est, exact]))[0, 1] > 0.95


@pytest.mark.parametrize("fraction", [0.01, 0.05, 0.2, 0.5])
def test_global_mask_selects_exact_fraction_of_top_scores(fraction):
    torch.manual_seed(0)
    scores = {"a": torch.randn(7, 11), "b": torch.randn(13), "c": torch.randn(3, 3, 5)}
    mask = top_fraction_mask(scores, fraction)
    total = sum(s.numel() for s in scores.values())
    k = max(1, round(fraction * total))
    assert int(sum(m.sum() for m in mask.values())) == k
    assert all(set(m.unique().tolist()) <= {0.0, 1.0} for m in mask.values())
    chosen = torch.cat([s[m.bool()] for s, m in zip(scores.values(), mask.values())])
    rest = torch.cat([s[~m.bool()] for s, m in zip(scores.values(), mask.values())])
    assert chosen.min() >= rest.max()


@pytest.mark.parametrize("fraction", [0.05, 0.3])
def test_per_layer_mask_selects_fraction_of_each_tensor(fraction):
    torch.manual_seed(0)
    scores = {"a": torch.randn(7, 11), "b": torch.randn(13), "c": torch.randn(2)}
    mask = top_fraction_mask(scores, fraction, per_layer=True)
    for name, s in scores.items():
        assert int(mask[name].sum()) == max(1, round(fraction * s.numel()))
        assert s[mask[name].bool()].min() >= s[~mask[name].bool()].max()


@pytest.mark.parametrize("score", ["hessian", "fisher", "grad", "random"])
def test_select_params_scores(score):
    model, data = tiny_model_and_data()
    mask = select_params(model, data, 0.25, score=score, generator=torch.Generator().manual_seed(0))
    assert set(mask) == {n for n, _ in model.named_parameters()}
    total = sum(p.numel() for p in model.parameters())
    assert int(sum(m.sum() for m in mask.values())) == round(0.25 * total)
    again = select_params(model, data, 0.25, score=score, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(mask[n], again[n]) for n in mask)


def test_grad_and_fisher_scores_by_hand():
    model, data = tiny_model_and_data()
    params = list(model.parameters())
    g = torch.autograd.grad(F.cross_entropy(model(data.x), data.y), params)
    grad = score_params(model, data, "grad")
    assert all(torch.allclose(grad[n], gi.abs(), atol=1e-6) for (n, _), gi in zip(model.named_parameters(), g))
    fisher = score_params(model, data, "fisher")
    per = [torch.autograd.grad(F.cross_entropy(model(data.x[i:i + 1]), data.y[i:i + 1]), params)
           for i in range(len(data))]
    for j, (n, _) in enumerate(model.named_parameters()):
        want = torch.stack([p[j] ** 2 for p in per]).mean(0)
        assert torch.allclose(fisher[n], want, atol=1e-6)


def test_last_layer_and_all():
    model, data = tiny_model_and_data()
    ll = last_layer_mask(model)
    assert ll["2.weight"].all() and ll["2.bias"].all() and not ll["0.weight"].any() and not ll["0.bias"].any()
    assert mask_fraction(select_params(model, None, 0.1, score="all")) == 1.0
    assert torch.equal(select_params(model, None, 0.1, score="last_layer")["2.weight"], ll["2.weight"])


def test_bad_selection_options():
    model, data = tiny_model_and_data()
    with pytest.raises(HyperparameterError, match="not one of"):
        select_params(model, data, 0.1, score="sharp")
    with pytest.raises(HyperparameterError, match="select_fraction"):
        select_params(model, data, 0.0, score="hessian")
    with pytest.raises(HyperparameterError, match="needs data"):
        select_params(model, None, 0.1, score="hessian")
    with pytest.raises(HyperparameterError, match="not one of"):
        get_method("ga", select="bogus")


@pytest.fixture(scope="module")
def toy(toy_random):
    return toy_random


@pytest.mark.parametrize("method", ["ga", "ft"])
def test_masked_iterative_update_changes_only_selected_entries(method, toy):
    model, data = toy
    m = get_method(method, select="hessian", select_fraction=0.05, epochs=2)
    out = m.unlearn(model, data.task, seed=0, device="cpu")
    mask = select_params(model, [data.task.forget], 0.05, score="hessian",
                         generator=torch.Generator().manual_seed(0 + 7919))
    changed = 0
    for (n, before), after in zip(model.named_parameters(), out.parameters()):
        diff = before.detach() != after.detach()
        assert not (diff & ~mask[n].bool()).any(), f"{method} changed unselected entries of {n}"
        changed += int(diff.sum())
    assert changed > 0


def test_select_all_and_full_random_mask_match_the_unmasked_method(toy):
    model, data = toy
    plain = get_method("ga", epochs=2).unlearn(model, data.task, seed=3, device="cpu")
    full = get_method("ga", epochs=2, select="random", select_fraction=1.0).unlearn(model, data.task, seed=3, device="cpu")
    for a, b in zip(plain.parameters(), full.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
