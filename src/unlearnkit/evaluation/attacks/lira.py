"""LiRA: the likelihood-ratio membership attack (Carlini et al., "Membership Inference Attacks From
First Principles", IEEE S&P 2022, https://arxiv.org/abs/2112.03570).

K shadow models are trained on random halves of a population (a balanced keep matrix: every
example is IN for exactly K/2 models). For each example, Gaussians are fitted to the statistic
phi = log p_y - log sum_{j!=y} p_j over the models that trained on it (IN) and those that did not
(OUT); a target model's phi on the example is scored by the log-likelihood ratio
log N(phi; IN) - log N(phi; OUT). With few shadow models the reference fixes the variance
globally (one pooled std for IN and one for OUT); ``variance="auto"`` does so below 64 models.

This module only computes: train the shadows wherever you like (``bench/audit.py`` does it with the
model cache and a process pool) and pass their statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ...errors import DataError
from .base import AttackResult, fit_gaussians, likelihood_ratio

#: below this many shadow models ``variance="auto"`` pools the variance (reference behaviour)
GLOBAL_VARIANCE_BELOW = 64


def balanced_keep_matrix(n_models: int, n_examples: int, seed: int = 0) -> np.ndarray:
    """Boolean (models, examples) matrix: column j says which models train on example j. Every
    example is IN for exactly ``n_models // 2`` models (``n_models`` must be even and >= 2); each
    model gets about half the examples. Rows are random permutations per column, so models differ."""
    if n_models < 2 or n_models % 2:
        raise DataError(f"LiRA needs an even number of shadow models >= 2, got {n_models}")
    if n_examples < 1:
        raise DataError("the LiRA population is empty")
    rng = np.random.default_rng(seed)
    # argsort of iid uniforms per column = a random permutation of models; the first half is IN
    order = np.argsort(rng.random((n_models, n_examples)), axis=0)
    return order < n_models // 2


def resolve_variance(variance: str, n_models: int) -> str:
    if variance == "auto":
        return "global" if n_models < GLOBAL_VARIANCE_BELOW else "per_example"
    if variance not in ("global", "per_example"):
        raise DataError(f"variance={variance!r}: use 'auto', 'global' or 'per_example'")
    return variance


@dataclass
class LiRA:
    """Fitted per-example IN/OUT Gaussians over a population."""

    mean_in: np.ndarray
    std_in: np.ndarray
    mean_out: np.ndarray
    std_out: np.ndarray
    n_models: int
    variance: str

    @classmethod
    def fit(cls, shadow_stats: np.ndarray, keep: np.ndarray, variance: str = "auto") -> "LiRA":
        """``shadow_stats``: phi of each shadow model on each population example (models, examples);
        ``keep``: the keep matrix used to train them (same shape)."""
        shadow_stats = np.asarray(shadow_stats, dtype=np.float64)
        keep = np.asarray(keep, dtype=bool)
        if shadow_stats.shape != keep.shape:
            raise DataError(f"shadow statistics {shadow_stats.shape} and keep matrix {keep.shape} differ in shape")
        if not keep.any(0).all() or keep.all(0).any():
            raise DataError("every example needs at least one IN and one OUT shadow model")
        variance = resolve_variance(variance, shadow_stats.shape[0])
        mean_in, std_in = fit_gaussians(shadow_stats, keep, variance)
        mean_out, std_out = fit_gaussians(shadow_stats, ~keep, variance)
        return cls(mean_in, std_in, mean_out, std_out, shadow_stats.shape[0], variance)

    def score(self, target_stats: np.ndarray, index: Optional[np.ndarray] = None) -> np.ndarray:
        """Log-likelihood ratio of the target's phi (on population examples ``index``, default all)."""
        idx = slice(None) if index is None else np.asarray(index)
        return likelihood_ratio(np.asarray(target_stats, dtype=np.float64), self.mean_in[idx], self.std_in[idx],
                                self.mean_out[idx], self.std_out[idx])

    def attack(self, target_stats: np.ndarray, member: np.ndarray, index: Optional[np.ndarray] = None
               ) -> AttackResult:
        """Membership attack on one target model: ``member`` (bool per scored example) is the truth."""
        scores = self.score(target_stats, index)
        return AttackResult(scores, np.asarray(member, dtype=int),
                            info={"n_shadow": self.n_models, "variance": self.variance})


def lira_attack(shadow_stats: np.ndarray, keep: np.ndarray, target_stats: np.ndarray, member: np.ndarray,
                variance: str = "auto") -> AttackResult:
    """One call: fit on the shadows, score the target on every population example."""
    return LiRA.fit(shadow_stats, keep, variance).attack(target_stats, member)
