"""Shared pieces of the per-example attacks: the LiRA statistic, Gaussian fits, ROC summaries.

Everything here takes models and data (or arrays of statistics) and returns numbers; no attack
knows about unlearning methods or trains anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ...data.split import Split, as_split
from ...errors import DataError
from ...utils import eval_mode

#: smallest standard deviation a fitted Gaussian may have (phi is a log-odds, O(1..30))
MIN_STD = 1e-4


# -- the statistic ---------------------------------------------------------------------------
def lira_statistic(logits: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray) -> np.ndarray:
    """phi = log p_y - log sum_{j != y} p_j for each row, in float64, from logits.

    Computed as z_y - logsumexp_{j != y} z_j (the softmax normaliser cancels), so it stays finite
    and exact when p_y is within 1e-16 of 1, where ``log(p) - log(1 - p)`` on probabilities would
    give inf or nan. Works for any number of classes >= 2.
    """
    z = torch.as_tensor(np.asarray(logits) if not isinstance(logits, torch.Tensor) else logits)
    z = z.detach().to(torch.float64).cpu()
    y = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
    y = y.detach().long().cpu().view(-1)
    if z.ndim != 2 or z.shape[0] != y.shape[0]:
        raise DataError(f"lira_statistic needs logits of shape (n, classes) and n labels, got "
                        f"{tuple(z.shape)} and {tuple(y.shape)}")
    if z.shape[1] < 2:
        raise DataError(f"lira_statistic needs at least 2 classes, got {z.shape[1]}")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= z.shape[1]):
        raise DataError(f"labels must be in [0, {z.shape[1] - 1}], found {int(y.min())}..{int(y.max())}")
    z_y = z.gather(1, y.view(-1, 1)).squeeze(1)
    others = z.scatter(1, y.view(-1, 1), float("-inf"))
    return (z_y - torch.logsumexp(others, dim=1)).numpy()


def _augment_views(x: torch.Tensor, augment: str) -> list[torch.Tensor]:
    if augment == "none":
        return [x]
    if augment == "flip":
        if x.ndim != 4:
            raise DataError(f"augment='flip' needs images (N, C, H, W), got inputs of shape {tuple(x.shape)}; "
                            "use augment='none'")
        return [x, torch.flip(x, dims=[3])]
    raise DataError(f"augment={augment!r} is not supported; use 'none' or 'flip'")


@torch.no_grad()
def model_statistic(model: nn.Module, data: Any, augment: str = "none", batch_size: int = 1024) -> np.ndarray:
    """phi of ``model`` on every example of ``data`` (a Split, (x, y) pair, Dataset or DataLoader),
    optionally averaged over augmented views (``"flip"``: identity + horizontal flip, for image
    models trained with flips; digits/mnist1d are not, so the default is ``"none"``)."""
    split = data if isinstance(data, Split) else as_split(data, "attack")
    params = list(model.parameters())
    device = params[0].device if params else torch.device("cpu")
    with eval_mode(model):
        total = np.zeros(len(split), dtype=np.float64)
        for start in range(0, len(split), batch_size):
            xb = split.x[start:start + batch_size]
            yb = split.y[start:start + batch_size]
            acc = np.zeros(len(yb), dtype=np.float64)
            vs = _augment_views(xb, augment)
            for v in vs:
                acc += lira_statistic(model(v.to(device)), yb)
            total[start:start + len(yb)] = acc / len(vs)
    return total


# -- Gaussians -------------------------------------------------------------------------------
def gaussian_logpdf(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    std = np.maximum(std, MIN_STD)
    return -0.5 * ((x - mean) / std) ** 2 - np.log(std) - 0.5 * math.log(2 * math.pi)


def fit_gaussians(stats: np.ndarray, mask: np.ndarray, variance: str = "global"
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and std of ``stats`` (models x examples) over the rows where ``mask`` is
    True. ``variance="global"`` pools one std over all examples (the LiRA reference's choice with
    few models: per-example variances from a handful of samples are too noisy), ``"per_example"``
    uses each column's own. Columns with no sample get mean NaN."""
    if variance not in ("global", "per_example"):
        raise DataError(f"variance={variance!r}: use 'global' or 'per_example'")
    stats = np.asarray(stats, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    count = mask.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, (stats * mask).sum(0) / np.maximum(count, 1), np.nan)
        sq = ((stats - mean) ** 2 * mask).sum(0)
        if variance == "global":
            dof = (count - 1).clip(min=0).sum()
            std = np.full(stats.shape[1], math.sqrt(sq.sum() / dof) if dof > 0 else MIN_STD)
        else:
            std = np.sqrt(np.where(count > 1, sq / np.maximum(count - 1, 1), 0.0))
    return mean, np.maximum(std, MIN_STD)


def likelihood_ratio(x: np.ndarray, mean_in: np.ndarray, std_in: np.ndarray,
                     mean_out: np.ndarray, std_out: np.ndarray) -> np.ndarray:
    """log N(x; in) - log N(x; out): > 0 means "more likely IN"."""
    return gaussian_logpdf(x, mean_in, std_in) - gaussian_logpdf(x, mean_out, std_out)


# -- ROC summaries --------------------------------------------------------------------------
def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) over every threshold, positives = labels 1, predicted positive when score >= t."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).astype(bool).ravel()
    ok = np.isfinite(scores)
    scores, labels = scores[ok], labels[ok]
    pos, neg = labels.sum(), (~labels).sum()
    if pos == 0 or neg == 0:
        raise DataError(f"an ROC needs both classes, got {pos} positives and {neg} negatives")
    order = np.argsort(-scores, kind="mergesort")
    s, lab = scores[order], labels[order]
    distinct = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(lab)[distinct]
    fp = np.cumsum(~lab)[distinct]
    return np.r_[0.0, fp / neg], np.r_[0.0, tp / pos]


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    fpr, tpr = roc_curve(scores, labels)
    return float(np.trapz(tpr, fpr)) if hasattr(np, "trapz") else float(np.trapezoid(tpr, fpr))


def tpr_at_fpr(scores: np.ndarray, labels: np.ndarray, max_fpr: float) -> float:
    """Highest TPR among thresholds whose FPR is <= ``max_fpr`` (0 if none)."""
    fpr, tpr = roc_curve(scores, labels)
    ok = fpr <= max_fpr + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def best_balanced_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """max over thresholds of (TPR + TNR) / 2 (0.5 = chance)."""
    fpr, tpr = roc_curve(scores, labels)
    return float(np.max((tpr + 1 - fpr) / 2))


@dataclass
class AttackResult:
    """Scores of a membership-style attack: higher score = "member" / "unlearned". ``labels`` are
    the truth (1 = member). ``per_example`` carries per-example summaries when the attack has them."""

    scores: np.ndarray
    labels: np.ndarray
    per_example: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def roc(self) -> tuple[np.ndarray, np.ndarray]:
        return roc_curve(self.scores, self.labels)

    def summary(self, fprs: Sequence[float] = (0.01, 0.001)) -> dict[str, float]:
        out = {"auc": auc(self.scores, self.labels),
               "balanced_acc": best_balanced_accuracy(self.scores, self.labels)}
        for f in fprs:
            out[f"tpr_at_{f:g}_fpr"] = tpr_at_fpr(self.scores, self.labels, f)
        out["n_pos"] = int(np.sum(self.labels == 1))
        out["n_neg"] = int(np.sum(self.labels == 0))
        return out


def stack_statistics(models: Sequence[nn.Module], data: Any, augment: str = "none",
                     progress: Optional[Any] = None) -> np.ndarray:
    """phi of each model on ``data``: array (models, examples)."""
    rows = []
    for m in models:
        rows.append(model_statistic(m, data, augment))
        if progress is not None:
            progress.update(1)
    return np.stack(rows) if rows else np.empty((0, 0))
