"""U-LiRA: the per-example likelihood-ratio attack against unlearning (Hayes, Shumailov,
Triantafillou, Khalifa, Papernot, "Inexact Unlearning Needs More Careful Evaluations to Avoid a
False Sense of Privacy", SaTML 2025, https://arxiv.org/abs/2403.01218).

Shadow models are trained, the *same* unlearning method is run on them with a forget set that
contains the target examples, and retrained models are trained without those examples. For each
forget example, one Gaussian is fitted to phi over the shadow *unlearned* models and one over the
shadow *retrained* models; a target model (either unlearned or retrained, balanced) is scored by
the log-likelihood ratio, predicting "unlearned" when it is > 0. Accuracy 0.5 (and AUC 0.5) means
the method is indistinguishable from retraining on these examples; 1.0 means it is exposed.

``ulira_leave_one_out`` uses K (unlearned, retrained) shadow pairs: each pair in turn is the
target pair and the Gaussians are fitted on the other K - 1 pairs, so every model is both shadow
and target and no model is wasted.
"""

from __future__ import annotations

import numpy as np

from ...errors import DataError
from .base import AttackResult, auc, fit_gaussians, likelihood_ratio
from .lira import resolve_variance


def ulira_scores(shadow_unlearned: np.ndarray, shadow_retrained: np.ndarray, target: np.ndarray,
                 variance: str = "auto") -> np.ndarray:
    """Log-likelihood ratios (> 0: "unlearned") of target statistics (targets, examples) given shadow
    statistics (models, examples) of unlearned and retrained models."""
    u = np.asarray(shadow_unlearned, dtype=np.float64)
    r = np.asarray(shadow_retrained, dtype=np.float64)
    if u.ndim != 2 or r.ndim != 2 or u.shape[1] != r.shape[1]:
        raise DataError(f"shadow statistics must be (models, examples) with the same examples, got {u.shape}, {r.shape}")
    v = resolve_variance(variance, min(len(u), len(r)))
    mu, su = fit_gaussians(u, np.ones_like(u, dtype=bool), v)
    mr, sr = fit_gaussians(r, np.ones_like(r, dtype=bool), v)
    return likelihood_ratio(np.atleast_2d(np.asarray(target, dtype=np.float64)), mu, su, mr, sr)


def ulira_leave_one_out(unlearned: np.ndarray, retrained: np.ndarray, variance: str = "auto") -> AttackResult:
    """U-LiRA with K shadow pairs, each pair the target once (fit on the other K - 1 pairs).

    ``unlearned`` and ``retrained``: phi of K unlearned and K retrained models on the forget
    examples, shape (K, examples). Returns scores of all 2K x examples predictions with labels
    (1 = the target was unlearned) and per-example accuracy / mean score in ``per_example``;
    ``info`` holds ``acc`` (balanced: threshold 0 on the likelihood ratio) and ``auc``.
    """
    u = np.asarray(unlearned, dtype=np.float64)
    r = np.asarray(retrained, dtype=np.float64)
    if u.shape != r.shape or u.ndim != 2:
        raise DataError(f"U-LiRA needs equal (K, examples) arrays of unlearned and retrained statistics, "
                        f"got {u.shape} and {r.shape}")
    k = u.shape[0]
    if k < 3:
        raise DataError(f"U-LiRA leave-one-out needs at least 3 shadow pairs, got {k}")
    v = resolve_variance(variance, k - 1)
    scores_u = np.empty_like(u)
    scores_r = np.empty_like(r)
    keep = np.ones(k, dtype=bool)
    for i in range(k):
        keep[:] = True
        keep[i] = False
        mu, su = fit_gaussians(u[keep], np.ones((k - 1, u.shape[1]), bool), v)
        mr, sr = fit_gaussians(r[keep], np.ones((k - 1, r.shape[1]), bool), v)
        scores_u[i] = likelihood_ratio(u[i], mu, su, mr, sr)
        scores_r[i] = likelihood_ratio(r[i], mu, su, mr, sr)
    correct = np.concatenate([scores_u > 0, scores_r <= 0])  # (2K, examples)
    scores = np.concatenate([scores_u, scores_r])
    labels = np.concatenate([np.ones_like(scores_u, dtype=int), np.zeros_like(scores_r, dtype=int)])
    per_example_acc = correct.mean(0)
    info = {"acc": float(correct.mean()), "auc": auc(scores.ravel(), labels.ravel()), "k": k, "variance": v,
            "n_examples": u.shape[1]}
    return AttackResult(scores.ravel(), labels.ravel(),
                        per_example={"acc": per_example_acc,
                                     "mean_score_unlearned": scores_u.mean(0),
                                     "mean_score_retrained": scores_r.mean(0)},
                        info=info)
