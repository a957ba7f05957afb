"""Defining mechanisms of the baseline methods and of the iterative family's update mask."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch
from torch.nn import functional as F

from unlearnkit.methods import IterativeMethod, get_method
from unlearnkit.methods.l1_sparse import l1_norm
from unlearnkit.methods.rl import random_wrong_labels
from conftest import forget_loss, state_equal


def scrambled_forget(task):
    """The same task with different forget inputs and labels."""
    f = task.forget
    return replace(task, forget=f.with_labels((f.y + 1) % 4).__class__(f.x.flip(0) + 1.0, (f.y + 1) % 4))


def test_ft_only_learns_from_retain(toy_random):
    model, data = toy_random
    a = get_method("ft", epochs=2).unlearn(model, data.task, seed=0)
    b = get_method("ft", epochs=2).unlearn(model, scrambled_forget(data.task), seed=0)
    assert state_equal(a, b)
    assert not state_equal(a, model)


def test_ga_ascends_the_forget_loss_and_needs_no_retain(toy_random):
    model, data = toy_random
    forget_only = replace(data.task, retain=None, test=None, third_party=None)
    losses = [forget_loss(get_method("ga", lr=0.05, epochs=e).unlearn(model, forget_only, seed=0), data.task)
              for e in (2, 5, 8)]
    assert forget_loss(model, data.task) < losses[0] < losses[1] < losses[2]


def test_neggrad_plus_weights_the_forget_term_by_one_minus_alpha(toy_random):
    model, data = toy_random
    scrambled = scrambled_forget(data.task)
    # alpha = 1: the forget term has weight 0, so the forget data cannot matter
    assert state_equal(get_method("neggrad_plus", alpha=1.0, epochs=1).unlearn(model, data.task, seed=0),
                       get_method("neggrad_plus", alpha=1.0, epochs=1).unlearn(model, scrambled, seed=0))
    assert not state_equal(get_method("neggrad_plus", alpha=0.5, epochs=1).unlearn(model, data.task, seed=0),
                           get_method("neggrad_plus", alpha=0.5, epochs=1).unlearn(model, scrambled, seed=0))
    low = get_method("neggrad_plus", alpha=0.5, epochs=2).unlearn(model, data.task, seed=0)
    high = get_method("neggrad_plus", alpha=0.999, epochs=2).unlearn(model, data.task, seed=0)
    assert forget_loss(low, data.task) > forget_loss(high, data.task)


def test_random_labels_are_always_wrong_and_cover_the_other_classes():
    y = torch.zeros(4000, dtype=torch.long)
    wrong = random_wrong_labels(y, 5, torch.Generator().manual_seed(0))
    assert (wrong != y).all()
    counts = torch.bincount(wrong, minlength=5)
    assert counts[0] == 0 and (counts[1:] > 900).all()


def test_l1_sparse_decays_alpha_linearly_and_shrinks_weights(toy_random):
    model, data = toy_random
    method = get_method("l1_sparse", alpha=1e-3, epochs=4)
    assert [method.alpha_at(e) for e in range(4)] == pytest.approx([1e-3, 7.5e-4, 5e-4, 2.5e-4])
    sparse = method.unlearn(model, data.task, seed=0)
    plain = get_method("ft", epochs=4, lr=method.params.lr).unlearn(model, data.task, seed=0)
    assert l1_norm(sparse) < l1_norm(plain)


def test_retrain_never_depends_on_the_original_weights_or_the_forget_set(toy_random):
    model, data = toy_random
    perturbed = copy.deepcopy(model)
    with torch.no_grad():
        for p in perturbed.parameters():
            p.add_(torch.randn_like(p))
    a = get_method("retrain", epochs=2).unlearn(model, data.task, seed=0)
    b = get_method("retrain", epochs=2).unlearn(perturbed, scrambled_forget(data.task), seed=0)
    assert state_equal(a, b)


class _AscentEverywhere(IterativeMethod):
    """Unregistered test method: ascent on forget with an update mask on the first layer's weight."""

    name = "_mask_probe"
    summary = "test"
    has_max_phase = True

    def prepare(self, model, task):
        mask = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
        first = next(n for n, p in model.named_parameters() if p.ndim == 2)
        mask[first][:4] = 1.0
        self.set_update_mask(mask)
        self.first = first

    def max_step(self, x, y, epoch):
        return -F.cross_entropy(self.model(x), y)


def test_update_mask_keeps_masked_out_entries_exactly_despite_momentum_and_weight_decay(toy_random):
    model, data = toy_random
    out = _AscentEverywhere(epochs=3, lr=0.05, momentum=0.9, weight_decay=0.01).unlearn(model, data.task, seed=0)
    before, after = dict(model.named_parameters()), dict(out.named_parameters())
    first = next(n for n, p in model.named_parameters() if p.ndim == 2)
    for name in before:
        if name == first:
            assert torch.equal(after[name][4:], before[name][4:])
            assert not torch.equal(after[name][:4], before[name][:4])
        else:
            assert torch.equal(after[name], before[name]), name
