"""dist_match: the concept-mode stopping statistic (against scikit-learn's default classifier), and
the whole-label rule (concept mode checks only before the first step when the forget set is a whole
label)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from unlearnkit.methods import get_method
from unlearnkit.methods.blocks.dist_match.stats import auc_stop, two_sample_auc
from conftest import make_toy


def _softmax_rows(rng: np.random.Generator, n: int, scale: float, favoured: int = -1, shift: float = 0.0) -> np.ndarray:
    logits = rng.normal(size=(n, 10)) * scale
    if favoured >= 0:
        logits[:, favoured] += shift
    e = np.exp(logits - logits.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("shift", [0.0, 1.0, 3.0])
def test_check_agrees_with_scikit_learns_default_classifier_and_roc_auc(shift):
    """The exact Newton solver and the rank AUC give the held-out AUC of scikit-learn's default
    LogisticRegression scored with roc_auc_score, up to that solver's tolerance."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(int(shift * 10))
    for seed in range(3):
        a, b = _softmax_rows(rng, 110, 2.0, favoured=3, shift=shift), _softmax_rows(rng, 128, 2.0)
        order = np.random.default_rng(seed)
        pa, pb = order.permutation(len(a)), order.permutation(len(b))
        ha, hb = (pa[:55], pa[55:]), (pb[:64], pb[64:])
        aucs = []
        for fit, score in ((0, 1), (1, 0)):
            clf = LogisticRegression(C=1.0, max_iter=500).fit(np.concatenate([a[ha[fit]], b[hb[fit]]]),
                                                              np.r_[np.ones(55), np.zeros(64)])
            held_out = np.concatenate([a[ha[score]], b[hb[score]]])
            aucs.append(roc_auc_score(np.r_[np.ones(55), np.zeros(64)], clf.decision_function(held_out)))
        assert two_sample_auc(a, b, seed=seed) == pytest.approx(np.mean(aucs), abs=2e-3)


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
