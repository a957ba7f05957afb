"""The metric functions: any model in, numbers out. Their names, labels, units and directions live in
``evaluation.registry``."""

from __future__ import annotations

import logging
import math
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..data.split import Split
from ..utils import eval_mode

log = logging.getLogger(__name__)


@torch.no_grad()
def predict_logits(model: nn.Module, split: Split, batch_size: int = 512) -> torch.Tensor:
    """Logits of ``model`` on ``split`` (eval mode; the model's mode is restored)."""
    params = list(model.parameters())
    device = params[0].device if params else torch.device("cpu")
    with eval_mode(model):
        outs = [model(xb.to(device)).float().cpu() for xb, _ in split.batches(batch_size)]
    return torch.cat(outs) if outs else torch.empty(0)


def predict_probs(model: nn.Module, split: Split) -> torch.Tensor:
    return F.softmax(predict_logits(model, split), dim=1)


def accuracy(model: nn.Module, split: Optional[Split]) -> float:
    """Top-1 accuracy in [0, 1]; NaN for an empty or missing split."""
    if split is None or len(split) == 0:
        return float("nan")
    return float((predict_logits(model, split).argmax(1) == split.y.cpu()).float().mean())


def mean_loss(model: nn.Module, split: Optional[Split]) -> float:
    """Mean cross-entropy on ``split``: a finer signal of forgetting than accuracy when every
    example stays correctly classified (e.g. random forgetting on an easy dataset)."""
    if split is None or len(split) == 0:
        return float("nan")
    return float(F.cross_entropy(predict_logits(model, split), split.y.cpu()))


def confidence(probs: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """p_y: the probability assigned to the true label. A diverged model (NaN outputs) gets
    confidence 0 for those examples rather than crashing the attack."""
    conf = probs.gather(1, labels.view(-1, 1).cpu()).squeeze(1).double()
    if not torch.isfinite(conf).all():
        log.warning("model outputs are not finite for %d examples (a diverged model); "
                    "their confidence counts as 0", int((~torch.isfinite(conf)).sum()))
        conf = torch.nan_to_num(conf, nan=0.0, posinf=0.0, neginf=0.0)
    return conf.numpy()


def mia_efficacy(model: nn.Module, retain: Split, test: Split, forget: Split, seed: int = 0) -> float:
    """OPTML-Group MIA-efficacy: an RBF SVC (C=3, gamma='auto') fit on the confidence p_y of
    retain samples (members, 1) vs test samples (non-members, 0), balanced by sub-sampling the
    larger side; returns the fraction of forget samples predicted non-member (higher = more
    forgotten)."""
    from sklearn.svm import SVC

    rng = np.random.default_rng(seed)
    n = min(len(retain), len(test))
    r_idx = rng.choice(len(retain), n, replace=False)
    t_idx = rng.choice(len(test), n, replace=False)
    member = confidence(predict_probs(model, retain.subset(r_idx)), retain.y[r_idx])
    non_member = confidence(predict_probs(model, test.subset(t_idx)), test.y[t_idx])
    x = np.concatenate([member, non_member]).reshape(-1, 1)
    y = np.concatenate([np.ones(n), np.zeros(n)])
    clf = SVC(C=3, gamma="auto", kernel="rbf")
    clf.fit(x, y)
    target = confidence(predict_probs(model, forget), forget.y).reshape(-1, 1)
    return float(1.0 - clf.predict(target).mean())


def js_divergence(p: torch.Tensor, q: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Per-row Jensen-Shannon divergence (natural log, in [0, ln 2]) between probability rows."""
    p = p.double().clamp_min(eps)
    q = q.double().clamp_min(eps)
    m = 0.5 * (p + q)
    return 0.5 * (p * (p / m).log()).sum(1) + 0.5 * (q * (q / m).log()).sum(1)


def js_to_model(model: nn.Module, reference: nn.Module, split: Split) -> float:
    """Mean JS divergence between the softmax outputs of two models on ``split``."""
    return float(js_divergence(predict_probs(model, split), predict_probs(reference, split)).mean())


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value), ignoring NaNs."""
    arr = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if arr.size == 0:
        return float("nan"), float("nan")
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0
