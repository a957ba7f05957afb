"""dist_match: the concept-mode stopping statistic against the scikit-learn classifier it reimplements,
the whole-label rule (concept mode checks only before the first step when the forget set is a whole
label), and the retain weight of correction requests."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from unlearnkit.methods import get_method
from unlearnkit.methods._dist_match_stats import auc_stop, fit_logistic, two_sample_auc
from conftest import make_toy


def _sklearn_check(a: np.ndarray, b: np.ndarray, seed: int) -> float:
    """The check as scikit-learn computes it: the same halves, LogisticRegression(C=1), roc_auc_score."""
    rng = np.random.default_rng(seed)
    pa, pb = rng.permutation(len(a)), rng.permutation(len(b))
    ha, hb = (pa[: len(a) // 2], pa[len(a) // 2:]), (pb[: len(b) // 2], pb[len(b) // 2:])
    aucs = []
    for fit, score in ((0, 1), (1, 0)):
        x = np.concatenate([a[ha[fit]], b[hb[fit]]])
        y = np.r_[np.ones(len(ha[fit])), np.zeros(len(hb[fit]))]
        clf = LogisticRegression(C=1.0, max_iter=500).fit(x, y)
        xs = np.concatenate([a[ha[score]], b[hb[score]]])
        aucs.append(roc_auc_score(np.r_[np.ones(len(ha[score])), np.zeros(len(hb[score]))], clf.decision_function(xs)))
    return float(np.mean(aucs))


def _softmax_rows(rng: np.random.Generator, n: int, scale: float, favoured: int = -1, shift: float = 0.0) -> np.ndarray:
    logits = rng.normal(size=(n, 10)) * scale
    if favoured >= 0:
        logits[:, favoured] += shift
    e = np.exp(logits - logits.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


def test_fit_logistic_matches_scikit_learn():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 4))
    y = (x[:, 0] - x[:, 2] + 0.5 * rng.normal(size=80) > 0).astype(float)
    w = fit_logistic(torch.tensor(x), torch.tensor(y))
    ref = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(x, y)
    assert w[:-1].tolist() == pytest.approx(ref.coef_[0].tolist(), abs=1e-4)
    assert float(w[-1]) == pytest.approx(float(ref.intercept_[0]), abs=1e-4)


def test_fit_logistic_stays_finite_on_separable_samples():
    # perfectly separable in 1-D: unpenalised weights would diverge, the C = 1 penalty keeps them finite
    x, y = torch.tensor([[0.0], [1.0], [2.0], [3.0]], dtype=torch.float64), torch.tensor([0.0, 0.0, 1.0, 1.0],
                                                                                         dtype=torch.float64)
    w = fit_logistic(x, y)
    ref = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(x.numpy(), y.numpy())
    assert torch.isfinite(w).all() and float(w[0]) > 0
    assert float(w[0]) == pytest.approx(float(ref.coef_[0, 0]), abs=1e-4)


@pytest.mark.parametrize("shift", [0.0, 1.0, 3.0])
def test_check_equals_the_scikit_learn_check_on_softmax_vectors(shift):
    """Same halves, same penalised fit: the held-out AUCs agree up to the solvers' tolerance (at most
    a pair of near-equal decision values may swap)."""
    rng = np.random.default_rng(int(shift * 10))
    for seed in range(5):
        a = _softmax_rows(rng, 110, 2.0, favoured=3, shift=shift)
        b = _softmax_rows(rng, 128, 2.0)
        assert two_sample_auc(a, b, seed=seed) == pytest.approx(_sklearn_check(a, b, seed), abs=2e-3)


def test_check_detects_a_separable_forget_set_and_not_an_indistinguishable_one():
    rng = np.random.default_rng(1)
    third = _softmax_rows(rng, 128, 2.0)
    kept = _softmax_rows(rng, 110, 2.0, favoured=3, shift=6.0)  # outputs still concentrated on the label
    matched = _softmax_rows(rng, 110, 2.0)  # drawn like the third-party outputs
    detected, matched_auc = two_sample_auc(kept, third), two_sample_auc(matched, third)
    assert detected > 0.9 and not auc_stop(detected, 0.05)
    assert abs(matched_auc - 0.5) < 0.1 and auc_stop(matched_auc, 0.1)


# -- the whole-label rule -----------------------------------------------------------------------------
def test_whole_label_means_no_retain_sample_has_the_label():
    model, data = make_toy("class", forget_class=0)
    task, cls = data.task, type(get_method("dist_match"))
    assert cls.whole_label(task)
    some = task.retain.subset(torch.nonzero(task.retain.y == 1).squeeze(1)[:1])
    assert not cls.whole_label(replace(task, retain=some.with_labels(torch.zeros(1, dtype=torch.long))))
    assert not cls.whole_label(replace(task, retain=None))  # unknown without retain data: checks stay on


def test_whole_label_removal_checks_only_before_the_first_step():
    """Class removal: one check (the no-op test before any step), then concept_epochs. With the
    checks kept on, they run after every epoch but the last; when none fires the weights are the same,
    since a check draws nothing from the method's random stream."""
    model, data = make_toy("class", forget_class=0)
    fast = get_method("dist_match", concept_epochs=3)
    out = fast.unlearn(model, data.task, seed=0)
    assert fast.mode == "concept" and fast.epochs_run == 3 and len(fast.history) == 1
    full = get_method("dist_match", concept_epochs=3, check_whole_label=True, concept_stop_tol=0.0)
    out_full = full.unlearn(model, data.task, seed=0)
    assert len(full.history) == 3 and min(full.history[1:]) > 0.5  # checked after epochs 1 and 2, none fired
    assert all(torch.equal(a, b) for a, b in zip(out.state_dict().values(), out_full.state_dict().values()))


def test_a_label_that_stays_keeps_its_checks():
    model, data = make_toy("class", forget_class=0)
    task = data.task
    # the retain set keeps some samples of the label (as with backdoor poison or a removed sub-class)
    label_rows = torch.nonzero(task.forget.y == 0).squeeze(1)
    kept = task.forget.subset(label_rows[: len(label_rows) // 4])
    task = replace(task, retain=type(task.retain).concat(task.retain, kept),
                   forget=task.forget.subset(label_rows[len(label_rows) // 4:]))
    m = get_method("dist_match", concept_epochs=3, concept_stop_tol=0.0)
    m.unlearn(model, task, seed=0)
    assert m.mode == "concept" and len(m.history) == 3


# -- correction requests ------------------------------------------------------------------------------
@pytest.mark.parametrize("corrected, setting, weight", [
    (True, None, 12.0),   # unset: the retain weight of deletions
    (True, 4.0, 4.0),     # set: used for the correction request
    (False, 4.0, 12.0),   # set, but a deletion: retain_weight
])
def test_correction_requests_use_their_own_retain_weight(corrected, setting, weight):
    model, data = make_toy("random", forget_size=0.1)
    task = data.task
    if corrected:
        task = replace(task, corrected=task.forget.with_labels((task.forget.y + 1) % 4))
    m = get_method("dist_match", epochs=1, correction_retain_weight=setting)
    m.unlearn(model, task, seed=0)
    assert m.mode == "subset" and m.retention_setting() == (1.0, None, weight, 256)


def test_correction_weight_reaches_the_loss():
    """A zero correction weight drops the retain term of a correction request (no retain forward
    pass), while a deletion keeps it."""
    model, data = make_toy("random", forget_size=0.1)
    task = replace(data.task, corrected=data.task.forget.with_labels((data.task.forget.y + 1) % 4))
    sizes: list[int] = []
    original_forward = type(model).forward

    def spy(module, x):  # records the batch of every training-mode forward pass
        if module.training:
            sizes.append(len(x))
        return original_forward(module, x)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(model), "forward", spy)
        get_method("dist_match", epochs=1, batch_size=8, correction_retain_weight=0.0).unlearn(model, task, seed=0)
        assert sizes[:2] == [16, 16]
        sizes.clear()
        get_method("dist_match", epochs=1, batch_size=8, correction_retain_weight=0.0).unlearn(model, data.task, seed=0)
        assert sizes[:2] == [16, 256]
