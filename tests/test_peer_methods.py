"""The defining mechanism of each peer method (SalUn, SSD, SCRUB, Bad Teacher, UNSIR, Boundary Shrink,
Fisher), checked against an independent computation on the toy problem, not only that it runs."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch.nn import functional as F

from unlearnkit.data.split import Split
from unlearnkit.errors import DataError
from unlearnkit.methods import get_method
from unlearnkit.methods import bad_teacher as bad_teacher_module
from unlearnkit.methods import unsir as unsir_module
from unlearnkit.methods.bad_teacher import mixed_target
from unlearnkit.methods.fisher import Fisher, diagonal_fisher
from unlearnkit.methods.scrub import SCRUB
from conftest import make_toy


def _params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _batch_grads(model, split, batch_size, square):
    """Per-batch gradients of the mean CE, in order: summed (square=False) or summed squares."""
    acc = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    count = 0
    for start in range(0, len(split), batch_size):
        x, y = split.x[start:start + batch_size], split.y[start:start + batch_size]
        model.zero_grad()
        F.cross_entropy(model(x), y).backward()
        for n, p in model.named_parameters():
            acc[n] += p.grad ** 2 if square else p.grad
        count += 1
    model.zero_grad()
    return acc, count


# -- SalUn -------------------------------------------------------------------------------------
def test_salun_mask_is_global_top_fraction_and_only_masked_weights_change(toy_class):
    model, data = toy_class
    task = data.task
    fraction = 0.3
    method = get_method("salun", fraction=fraction, epochs=2, lr=0.05)
    out = method.unlearn(model, task, seed=0, device="cpu")

    probe = copy.deepcopy(model).eval()
    grads, _ = _batch_grads(probe, task.forget, method.params.batch_size, square=False)
    scores = torch.cat([g.abs().flatten() for g in grads.values()])  # abs AFTER accumulation
    k = round(fraction * scores.numel())
    threshold = scores.sort(descending=True).values[k - 1]
    mask = method.saliency
    assert int(sum(m.sum() for m in mask.values())) == k
    for n, g in grads.items():
        assert torch.equal(mask[n].bool(), g.abs() >= threshold), n

    before, after = _params(model), _params(out)
    changed = 0
    for n in before:
        frozen = mask[n] == 0
        assert torch.equal(after[n][frozen], before[n][frozen]), f"{n}: a masked-out weight changed"
        changed += int((after[n][~frozen] != before[n][~frozen]).sum())
    assert changed > 0.5 * k, "salient weights should move"


# -- SSD ---------------------------------------------------------------------------------------
def test_ssd_dampens_only_selected_weights_by_the_stated_factor(toy_class):
    model, data = toy_class
    task = data.task
    alpha, lam = 2.0, 1.0
    out = get_method("ssd", alpha=alpha, lam=lam).unlearn(model, task, seed=0, device="cpu")

    probe = copy.deepcopy(model).eval()
    i_d, n_d = _batch_grads(probe, Split.concat(task.retain, task.forget), 64, square=True)
    i_f, n_f = _batch_grads(probe, task.forget, 64, square=True)
    before, after = _params(model), _params(out)
    n_selected = 0
    for n in before:
        d, f = i_d[n] / n_d, i_f[n] / n_f
        sel = f > alpha * d
        n_selected += int(sel.sum())
        assert torch.equal(after[n][~sel], before[n][~sel]), f"{n}: an unselected weight changed"
        factor = torch.clamp(lam * d / f, max=1.0)
        torch.testing.assert_close(after[n][sel], before[n][sel] * factor[sel], rtol=1e-4, atol=1e-7)
        assert (factor[sel] < 1).all()
    assert n_selected > 0


# -- SCRUB -------------------------------------------------------------------------------------
class _CountingSCRUB(SCRUB):
    def max_step(self, x, y, epoch):
        self.calls.append(("max", epoch))
        return super().max_step(x, y, epoch)

    def min_step(self, x, y, epoch):
        self.calls.append(("min", epoch))
        return super().min_step(x, y, epoch)

    def prepare(self, model, task):
        self.calls = []


def test_scrub_max_steps_only_in_the_first_msteps_epochs(toy_class):
    model, data = toy_class
    task = data.task
    method = _CountingSCRUB(epochs=4, msteps=2, forget_batch_size=16, batch_size=64)
    method.unlearn(model, task, seed=0, device="cpu")
    n_forget = math.ceil(len(task.forget) / 16)
    n_retain = math.ceil(len(task.retain) / 64)
    for epoch in range(4):
        maxes = [c for c in method.calls if c == ("max", epoch)]
        mins = [c for c in method.calls if c == ("min", epoch)]
        assert len(maxes) == (n_forget if epoch < 2 else 0), f"epoch {epoch}"
        assert len(mins) == n_retain
    # within an epoch, max-steps come before min-steps
    first = [kind for kind, e in method.calls if e == 0]
    assert first == ["max"] * n_forget + ["min"] * n_retain


def test_scrub_max_step_moves_the_student_away_from_the_teacher(toy_class):
    model, data = toy_class
    task = data.task
    out = get_method("scrub", epochs=2, msteps=2, alpha=0.0, gamma=0.0, lr=1e-2, weight_decay=0.0).unlearn(
        model, task, seed=0, device="cpu")
    with torch.no_grad():
        kl = F.kl_div(F.log_softmax(out(task.forget.x), 1), F.softmax(model(task.forget.x), 1), reduction="batchmean")
    assert kl > 0.1


# -- Bad Teacher -------------------------------------------------------------------------------
def test_bad_teacher_target_mixes_the_two_teachers():
    torch.manual_seed(0)
    good, bad = torch.randn(6, 4), torch.randn(6, 4)
    flags = torch.tensor([1, 0, 1, 0, 0, 1])
    for t in (1.0, 2.0):
        target = mixed_target(flags, good, bad, t)
        expected = torch.where(flags.bool().view(-1, 1), F.softmax(bad / t, 1), F.softmax(good / t, 1))
        torch.testing.assert_close(target, expected)
        torch.testing.assert_close(target.sum(1), torch.ones(6))


def test_bad_teacher_uses_the_incompetent_teacher_on_forget_rows_only(toy_class, monkeypatch):
    model, data = toy_class
    task = data.task
    seen = []

    def spy(flags, competent, incompetent, temperature):
        seen.append((flags.clone(), competent.clone(), incompetent.clone()))
        return mixed_target(flags, competent, incompetent, temperature)

    monkeypatch.setattr(bad_teacher_module, "mixed_target", spy)
    method = get_method("bad_teacher", epochs=1, batch_size=32, retain_fraction=0.3)
    method.unlearn(model, task, seed=0, device="cpu")
    n_forget = sum(int(f.sum()) for f, _, _ in seen)
    n_retain = sum(int((1 - f).sum()) for f, _, _ in seen)
    assert n_forget == len(task.forget)
    assert n_retain == round(0.3 * len(task.retain))
    # the competent teacher is the original model, the incompetent one a different network, and
    # the rows flagged 1 are exactly the forget examples
    _, competent, incompetent = seen[0]
    assert not torch.allclose(competent, incompetent)
    flagged = torch.cat([c[f.bool()] for f, c, _ in seen])
    with torch.no_grad():
        forget_logits = model(task.forget.x)
        retain_logits = model(task.retain.x)
    assert (torch.cdist(flagged, forget_logits, compute_mode="donot_use_mm_for_euclid_dist").min(1).values < 1e-4).all()
    assert (torch.cdist(flagged, retain_logits, compute_mode="donot_use_mm_for_euclid_dist").min(1).values > 1e-4).all()


# -- UNSIR -------------------------------------------------------------------------------------
def test_unsir_labels_noise_with_the_forgotten_class(monkeypatch):
    model, data = make_toy("class", forget_class=2)
    labels = []
    real = unsir_module.learn_error_maximizing_noise

    def spy(model_, shape, label, *args, **kwargs):
        labels.append(label)
        return real(model_, shape, label, *args, **kwargs)

    monkeypatch.setattr(unsir_module, "learn_error_maximizing_noise", spy)
    method = get_method("unsir", repair_epochs=1, noise_steps=5)
    method.unlearn(model, data.task, seed=0, device="cpu")
    assert labels == [2]
    assert method.noise is not None and len(method.noise) > 0
    assert (method.noise.y == 2).all()

    # without metadata, the single forget label is used; a mixed forget set needs an explicit class
    task = data.task
    bare = type(task)(forget=task.forget, retain=task.retain, test=task.test, num_classes=task.num_classes)
    labels.clear()
    get_method("unsir", repair_epochs=1, noise_steps=2).unlearn(model, bare, seed=0, device="cpu")
    assert labels == [2]


def test_unsir_rejects_a_multi_class_forget_set_without_a_class(toy_random):
    model, data = toy_random
    with pytest.raises(DataError, match="forget_class"):
        get_method("unsir").unlearn(model, data.task, seed=0, device="cpu")
    labels = sorted(set(data.task.forget.y.tolist()))
    out = get_method("unsir", forget_class=labels[0], repair_epochs=1, noise_steps=2).unlearn(
        model, data.task, seed=0, device="cpu")
    assert out is not model


def test_unsir_noise_maximises_the_loss_of_its_label(toy_class):
    model, _ = toy_class
    noise = unsir_module.learn_error_maximizing_noise(model, (32, 10), 0, 30, 0.1, 0.1,
                                                      torch.Generator().manual_seed(0), "cpu")
    start = torch.randn((32, 10), generator=torch.Generator().manual_seed(0))
    label = torch.zeros(32, dtype=torch.long)
    with torch.no_grad():
        assert F.cross_entropy(model(noise), label) > F.cross_entropy(model(start), label)


# -- Boundary Shrink ---------------------------------------------------------------------------
def test_boundary_shrink_labels_are_fgsm_nearest_wrong_labels(toy_random):
    model, data = toy_random
    task = data.task
    eps = 0.5
    method = get_method("boundary_shrink", eps=eps, epochs=1)
    method.unlearn(model, task, seed=0, device="cpu")

    probe = copy.deepcopy(model).eval()
    x = task.forget.x.clone().requires_grad_(True)
    F.cross_entropy(probe(x), task.forget.y).backward()
    with torch.no_grad():
        logits = probe(task.forget.x + eps * x.grad.sign())
    expected = []
    for row, y in zip(logits, task.forget.y):
        order = row.argsort(descending=True)
        expected.append(int(order[0] if order[0] != y else order[1]))
    assert method.shrink_labels.tolist() == expected
    assert (method.shrink_labels != task.forget.y).all()


# -- Fisher ------------------------------------------------------------------------------------
def test_fisher_diagonal_matches_the_per_example_definition(toy_class):
    model, data = toy_class
    split = data.task.retain.subset(list(range(12)))
    fast = diagonal_fisher(model, split, batch_size=5)
    probe = copy.deepcopy(model).eval()
    slow = {n: torch.zeros_like(p) for n, p in probe.named_parameters()}
    for i in range(len(split)):
        x = split.x[i:i + 1]
        probs = F.softmax(probe(x), 1).detach()[0]
        for c in range(probs.numel()):
            probe.zero_grad()
            F.cross_entropy(probe(x), torch.tensor([c])).backward()
            for n, p in probe.named_parameters():
                slow[n] += probs[c] * p.grad ** 2
    for n in slow:
        torch.testing.assert_close(fast[n], slow[n] / len(split), rtol=1e-4, atol=1e-9)


def test_fisher_noise_scale_follows_the_inverse_fisher(toy_class):
    model, data = toy_class
    task = data.task
    alpha, max_var = 1e-4, 1e3
    method = Fisher(alpha=alpha, max_var=max_var, reference_tweaks=False, forget_class_reset=False, max_samples=0)
    out = method.unlearn(model, task, seed=5, device="cpu")
    fisher = diagonal_fisher(model, task.retain)
    gen = torch.Generator().manual_seed(5)
    before, after = _params(model), _params(out)
    for n in before:
        std = (alpha * torch.clamp(1.0 / (fisher[n] + 1e-8), max=max_var)).sqrt()
        z = torch.randn(before[n].shape, generator=gen)
        torch.testing.assert_close(after[n], before[n] + std * z, rtol=1e-4, atol=1e-6)
    # the weights the retain set constrains least get the most noise
    n = next(iter(before))
    delta = (after[n] - before[n]).abs().flatten()
    f = fisher[n].flatten()
    low, high = f < f.median(), f >= f.median()
    assert delta[low].mean() > delta[high].mean()


def test_fisher_resets_the_forgotten_class_row(toy_class):
    model, data = toy_class
    out = get_method("fisher", alpha=0.0).unlearn(model, data.task, seed=0, device="cpu")
    head_w = list(out.parameters())[-2]
    assert head_w[0].abs().max() < 0.2  # mean 0, std sqrt(1e-3)
    before = list(model.parameters())[-2]
    torch.testing.assert_close(head_w[1:], before[1:].detach())


def test_ssd_default_alpha_scales_with_the_forget_fraction(toy_class):
    model, data = toy_class
    task = data.task
    method = get_method("ssd")
    method.unlearn(model, task, seed=0, device="cpu")
    ratio = (len(task.retain) + len(task.forget)) / len(task.forget)
    assert method.alpha == pytest.approx(0.7 * ratio)
    fixed = get_method("ssd", alpha=10.0)
    fixed.unlearn(model, task, seed=0, device="cpu")
    assert fixed.alpha == 10.0


def test_salun_reference_order_runs_forget_batches_first_with_fresh_uniform_labels(toy_random, monkeypatch):
    from torch.nn import functional as F

    from unlearnkit.methods import salun as salun_module

    model, data = toy_random
    task = data.task
    seen = []
    real = F.cross_entropy

    def spy(logits, target, *a, **k):
        seen.append((len(target), target.clone()))
        return real(logits, target, *a, **k)

    monkeypatch.setattr(salun_module.F, "cross_entropy", spy)
    get_method("salun", order="forget_then_retain", epochs=2, batch_size=16).unlearn(model, task, seed=0, device="cpu")
    n_forget = -(-len(task.forget) // 16)
    n_retain = -(-len(task.retain) // 16)
    seen = seen[n_forget:]  # the saliency pass over the forget batches comes first
    assert len(seen) == 2 * (n_forget + n_retain)
    forget_labels = [t for _, t in seen[:n_forget]]
    second = [t for _, t in seen[n_forget + n_retain:2 * n_forget + n_retain]]
    assert sum(len(t) for t in forget_labels) == len(task.forget)
    drawn = torch.cat(forget_labels)
    assert not torch.equal(drawn.sort().values, torch.cat(second).sort().values)  # labels redrawn each epoch
    retain_targets = torch.cat([t for _, t in seen[n_forget:n_forget + n_retain]])
    assert torch.equal(retain_targets.sort().values, task.retain.y.sort().values)


def test_scrub_step_decay_follows_the_reference_milestones(toy_class):
    from unlearnkit.errors import HyperparameterError

    model, data = toy_class
    method = get_method("scrub", lr_decay_epochs="2,3", epochs=4, msteps=1)
    method.unlearn(model, data.task, seed=0, device="cpu")
    lrs = []
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = method.make_scheduler(opt)
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1.0, 1.0, 0.1, 0.01])  # reference: epoch e (1-based) > milestone -> x0.1
    assert get_method("scrub").make_scheduler(opt) is None
    with pytest.raises(HyperparameterError, match="comma-separated integers"):
        get_method("scrub", lr_decay_epochs="5;8").make_scheduler(opt)
