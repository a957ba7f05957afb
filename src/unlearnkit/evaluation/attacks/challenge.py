"""The NeurIPS 2023 Machine Unlearning Challenge score (Triantafillou et al., "Are we making progress
in unlearning? Findings from the first NeurIPS unlearning competition", 2024,
https://arxiv.org/abs/2406.09073).

N unlearned models (the method run N times with different seeds from one original model) and N
retrained models are compared on every forget example:

1. For each example, threshold attacks separate the N unlearned from the N retrained values of
   the statistic phi: every single threshold (both directions) and every symmetric double
   threshold (an interval) around the median of the peakier of the two distributions (the one
   with the smaller spread), both directions. Each attack has an empirical FPR and FNR
   (positive = "unlearned").
2. Each attack gives eps = max(log(1 - delta - FPR) - log FNR, log(1 - delta - FNR) - log FPR),
   clipped at 0, with delta = 1e-5. With finite N an attack with exactly one zero rate would give an
   infinite epsilon from sampling alone: it is discarded. Both rates zero (perfect separation) is
   the worst case: infinite, capped at the largest epsilon N models can resolve (see 3). The
   example's epsilon is the max over attacks (0 when every attack was discarded).
3. Epsilons fall in buckets of width 0.5 up to E = ceil(ln(N - 1)) (about the largest finite
   epsilon that N models can show: FPR = FNR = 1/N); bucket n = 1, 2, ... (eps in [0.5(n-1), 0.5n))
   earns 2 / 2^n points, beyond the last bucket (eps >= E, incl. perfect separation) 0 points.
4. Forgetting quality F = mean points over the forget set (1 = as good as retraining, 0 = exposed);
   final score = F x (mean retain acc of unlearned / of retrained) x (mean test acc of unlearned /
   of retrained).

The reference used N = 512; any N >= 3 works here and is reported: a smaller N resolves a smaller
epsilon range (E = 4 for N = 32, 7 for N = 512).

Estimating the rates. ``rates="empirical"`` plugs the empirical FPR/FNR into the formula, as the
challenge did. Taking the max over ~4N attacks of plug-in epsilons is biased upwards: two sets of
*identically distributed* models already get a median epsilon of about 1.6 and F of about 0.17 (for
N = 32 and for N = 512 alike), so with this estimator Retrain itself scores about 0.17, the ceiling
any method can reach. ``rates="clopper_pearson"`` replaces each rate by its one-sided
Clopper-Pearson upper bound (``confidence`` 0.95; no attack is discarded and no special case is
needed), which turns epsilon into a high-confidence lower bound as in DP auditing: identically
distributed models get F of about 1 and a clearly exposed method still gets F near 0. The audit
reports both (``forgetting_quality`` = empirical, ``forgetting_quality_cp``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ...errors import DataError

DELTA = 1e-5
BUCKET_WIDTH = 0.5


def attack_epsilon(fpr: np.ndarray | float, fnr: np.ndarray | float, delta: float = DELTA) -> np.ndarray:
    """Epsilon of threshold attacks with the given error rates (element-wise).

    NaN marks a discarded attack (exactly one rate is zero); +inf marks perfect separation (both
    zero); otherwise max(log(1 - delta - FPR) - log FNR, log(1 - delta - FNR) - log FPR) clipped at
    0 (a logarithm of a non-positive number counts as -inf)."""
    fpr = np.asarray(fpr, dtype=np.float64)
    fnr = np.asarray(fnr, dtype=np.float64)
    if np.any((fpr < 0) | (fpr > 1) | (fnr < 0) | (fnr > 1)):
        raise DataError("FPR and FNR must lie in [0, 1]")
    with np.errstate(divide="ignore", invalid="ignore"):
        a = 1.0 - delta - fpr
        b = 1.0 - delta - fnr
        log_a = np.where(a > 0, np.log(np.where(a > 0, a, 1.0)), -np.inf)
        log_b = np.where(b > 0, np.log(np.where(b > 0, b, 1.0)), -np.inf)
        eps1 = log_a - np.log(np.where(fnr > 0, fnr, 1.0))
        eps2 = log_b - np.log(np.where(fpr > 0, fpr, 1.0))
    eps = np.maximum(np.maximum(eps1, eps2), 0.0)
    both = (fpr == 0) & (fnr == 0)
    one = (fpr == 0) ^ (fnr == 0)
    eps = np.where(one, np.nan, eps)
    return np.where(both, np.inf, eps)


def max_epsilon(n_models: int) -> int:
    """E = ceil(ln(N - 1)): the upper edge of the last bucket for N models per side."""
    if n_models < 3:
        raise DataError(f"the challenge score needs at least 3 unlearned and 3 retrained models, got N={n_models}")
    return int(math.ceil(math.log(n_models - 1)))


def example_epsilon(fprs: np.ndarray, fnrs: np.ndarray, n_models: int, delta: float = DELTA) -> float:
    """Epsilon of one example from its attacks' rates: max over non-discarded attacks (0 if none),
    capped at ``max_epsilon(n_models)``."""
    eps = attack_epsilon(fprs, fnrs, delta)
    kept = eps[~np.isnan(eps)]
    value = float(kept.max()) if kept.size else 0.0
    return min(value, float(max_epsilon(n_models)))


def bucket_index(eps: np.ndarray | float, n_models: int, width: float = BUCKET_WIDTH) -> np.ndarray:
    """Bucket n >= 1 of each epsilon ([0.5(n-1), 0.5n)); 0 means beyond the last bucket."""
    eps = np.asarray(eps, dtype=np.float64)
    if np.any(eps < 0) or np.any(np.isnan(eps)):
        raise DataError("epsilons must be non-negative numbers")
    top = max_epsilon(n_models)
    n = np.floor(eps / width).astype(np.int64) + 1
    return np.where(eps >= top, 0, n)


def epsilon_points(eps: np.ndarray | float, n_models: int, width: float = BUCKET_WIDTH) -> np.ndarray:
    """2 / 2^n points for bucket n, 0 beyond the last bucket."""
    n = bucket_index(eps, n_models, width)
    return np.where(n > 0, 2.0 / np.power(2.0, np.maximum(n, 1)), 0.0)


def _single_threshold_rates(u: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, FNR) of "unlearned if phi > t" for every t in {-inf} U samples, and the reverse rule."""
    us, rs = np.sort(u), np.sort(r)
    t = np.r_[-np.inf, np.unique(np.r_[u, r])]
    tpr = 1.0 - np.searchsorted(us, t, side="right") / len(u)
    fpr = 1.0 - np.searchsorted(rs, t, side="right") / len(r)
    fnr = 1.0 - tpr
    return np.r_[fpr, 1.0 - fpr], np.r_[fnr, 1.0 - fnr]


def _double_threshold_rates(u: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, FNR) of interval rules |phi - c| <= w around the median c of the peakier distribution,
    for every width w in {0} U |samples - c|: the peakier side is predicted inside the interval
    (and, as the reverse rule, outside)."""
    u_peaky = np.std(u) <= np.std(r)
    c = np.median(u if u_peaky else r)
    du, dr = np.sort(np.abs(u - c)), np.sort(np.abs(r - c))
    w = np.unique(np.r_[0.0, du, dr])
    inside_u = np.searchsorted(du, w, side="right") / len(u)  # fraction of unlearned inside
    inside_r = np.searchsorted(dr, w, side="right") / len(r)
    if u_peaky:  # "unlearned" inside
        tpr, fpr = inside_u, inside_r
    else:        # "unlearned" outside
        tpr, fpr = 1.0 - inside_u, 1.0 - inside_r
    fnr = 1.0 - tpr
    return np.r_[fpr, 1.0 - fpr], np.r_[fnr, 1.0 - fnr]


def threshold_attack_rates(u: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All single and double threshold attacks on one example: arrays of FPR and FNR."""
    u = np.asarray(u, dtype=np.float64).ravel()
    r = np.asarray(r, dtype=np.float64).ravel()
    if not (np.isfinite(u).all() and np.isfinite(r).all()):
        raise DataError("the statistic has non-finite values; compute it with lira_statistic (stable)")
    f1, n1 = _single_threshold_rates(u, r)
    f2, n2 = _double_threshold_rates(u, r)
    return np.r_[f1, f2], np.r_[n1, n2]


def clopper_pearson_upper(rate: np.ndarray, n: int, confidence: float = 0.95) -> np.ndarray:
    """One-sided Clopper-Pearson upper bound of a binomial proportion observed as ``rate`` out of ``n``."""
    from scipy.stats import beta

    k = np.rint(np.asarray(rate, dtype=np.float64) * n)
    with np.errstate(invalid="ignore"):
        up = beta.ppf(confidence, k + 1, n - k)
    return np.where(k >= n, 1.0, up)


RATE_ESTIMATORS = ("empirical", "clopper_pearson")


def per_example_epsilons(unlearned: np.ndarray, retrained: np.ndarray, delta: float = DELTA,
                         rates: str = "empirical", confidence: float = 0.95) -> np.ndarray:
    """Epsilon of every forget example. ``unlearned`` (N, examples) and ``retrained`` (M, examples):
    phi of each model on each forget example. N (and M) >= 3; the smaller sets the cap.
    ``rates``: "empirical" (the challenge's plug-in) or "clopper_pearson" (see the module docstring)."""
    if rates not in RATE_ESTIMATORS:
        raise DataError(f"rates={rates!r}: use one of {RATE_ESTIMATORS}")
    u = np.atleast_2d(np.asarray(unlearned, dtype=np.float64))
    r = np.atleast_2d(np.asarray(retrained, dtype=np.float64))
    if u.shape[1] != r.shape[1]:
        raise DataError(f"unlearned and retrained statistics cover different examples: {u.shape} vs {r.shape}")
    n = min(len(u), len(r))
    max_epsilon(n)  # validates N
    out = np.empty(u.shape[1])
    for j in range(u.shape[1]):
        fpr, fnr = threshold_attack_rates(u[:, j], r[:, j])
        if rates == "clopper_pearson":
            fpr, fnr = clopper_pearson_upper(fpr, len(r), confidence), clopper_pearson_upper(fnr, len(u), confidence)
        out[j] = example_epsilon(fpr, fnr, n, delta)
    return out


@dataclass
class ChallengeScore:
    forgetting_quality: float
    score: float
    epsilons: np.ndarray
    points: np.ndarray
    n_unlearned: int
    n_retrained: int
    max_epsilon: int
    utility: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"forgetting_quality": self.forgetting_quality, "challenge_score": self.score,
                "challenge_n": min(self.n_unlearned, self.n_retrained), "n_unlearned": self.n_unlearned,
                "n_retrained": self.n_retrained, "max_epsilon": self.max_epsilon,
                "mean_epsilon": float(np.mean(self.epsilons)), **self.utility}


def forgetting_quality(unlearned: np.ndarray, retrained: np.ndarray, delta: float = DELTA,
                       rates: str = "empirical") -> float:
    """F = mean points over the forget examples (see the module docstring)."""
    u = np.atleast_2d(unlearned)
    n = min(len(u), len(np.atleast_2d(retrained)))
    return float(np.mean(epsilon_points(per_example_epsilons(unlearned, retrained, delta, rates), n)))


def challenge_score(unlearned: np.ndarray, retrained: np.ndarray,
                    retain_acc_unlearned: Sequence[float], retain_acc_retrained: Sequence[float],
                    test_acc_unlearned: Sequence[float], test_acc_retrained: Sequence[float],
                    delta: float = DELTA, rates: str = "empirical") -> ChallengeScore:
    """Forgetting quality and the final score (utility-adjusted) of one method."""
    u = np.atleast_2d(np.asarray(unlearned, dtype=np.float64))
    r = np.atleast_2d(np.asarray(retrained, dtype=np.float64))
    n = min(len(u), len(r))
    eps = per_example_epsilons(u, r, delta, rates)
    pts = epsilon_points(eps, n)
    fq = float(pts.mean())
    ra_u, ra_r = float(np.mean(retain_acc_unlearned)), float(np.mean(retain_acc_retrained))
    ta_u, ta_r = float(np.mean(test_acc_unlearned)), float(np.mean(test_acc_retrained))
    if ra_r <= 0 or ta_r <= 0:
        raise DataError("retrained models have zero retain or test accuracy: the score's ratios are undefined")
    score = fq * (ra_u / ra_r) * (ta_u / ta_r)
    utility = {"retain_ratio": ra_u / ra_r, "test_ratio": ta_u / ta_r}
    return ChallengeScore(fq, score, eps, pts, len(u), len(r), max_epsilon(n), utility)
