"""SSD: Foster, Schoepf and Brintrup, "Fast Machine Unlearning Without Retraining Through Selective
Synaptic Dampening", AAAI 2024 (https://arxiv.org/abs/2308.07707).

    I_D = E_batches[(grad CE on D)^2],  I_f = E_batches[(grad CE on D_forget)^2]   (diagonal Fisher)
    for every parameter entry with I_f > alpha * I_D:  theta <- theta * min(lam * I_D / I_f, 1)

D is the full training set (retain + forget), as in the reference. No training: one pass over D and
one over the forget set, in eval mode.

Defaults:
    lam 1               the paper / reference scripts (dampening constant lambda)
    alpha 0             automatic: alpha = alpha_rel * |D| / |D_forget|; alpha > 0 fixes it (the
                        reference uses 10 on CIFAR/ResNet-18 and rescales it by hand per setting)
    alpha_rel 0.7       our tuning on digits/cnn (alpha ~ 7 there), see the notes
    batch_size 64       the reference's class-forgetting loaders (``forget_full_class_main.py -b 64``;
                        its random-forgetting script uses 128)

    >>> ssd = get_method("ssd")                        # alpha = 0.7 * |D| / |D_f|
    >>> reference = get_method("ssd", alpha=10.0, lam=1.0)
    >>> unlearned = ssd.unlearn(model, task)          # task needs forget and retain

Design notes: docs/methods/ssd.md
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..data.split import Split
from .blocks.peers import batch_grad_squares
from .base import ClosedFormMethod, Hyperparameters, hp, register_method


def dampen(model: nn.Module, importance_d: dict[str, torch.Tensor], importance_f: dict[str, torch.Tensor],
           alpha: float, lam: float) -> dict[str, torch.Tensor]:
    """Apply SSD's selection and dampening in place; return the boolean selection per parameter."""
    selected = {}
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n not in importance_f:
                continue
            i_d, i_f = importance_d[n], importance_f[n]
            sel = i_f > alpha * i_d
            beta = torch.clamp(lam * i_d / i_f.clamp_min(torch.finfo(i_f.dtype).tiny), max=1.0)
            p[sel] = p[sel] * beta[sel]
            selected[n] = sel
    return selected


@dataclass
class SSDParams(Hyperparameters):
    alpha: float = hp(0.0, "selection weighting: dampen entries with I_f > alpha * I_D; "
                      "0 = alpha_rel * |D| / |D_forget|", "reference 10 for CIFAR/ResNet-18 (hand-scaled per setting)", ge=0)
    alpha_rel: float = hp(0.7, "alpha relative to |D| / |D_forget| when alpha = 0",
                          "tuned on digits/cnn, see docs/methods/tuning.md#tuning-of-method-defaults", gt=0)
    lam: float = hp(1.0, "dampening constant lambda: factor min(lambda * I_D / I_f, 1)", "paper / reference code", gt=0)
    batch_size: int = hp(64, "mini-batch size of the importance passes",
                         "reference forget_full_class_main.py -b 64 (random forgetting: 128)")


@register_method
class SSD(ClosedFormMethod):
    name = "ssd"
    summary = "selective synaptic dampening of forget-specific weights by Fisher importances (Foster et al.)"
    Params = SSDParams
    requires = ("forget", "retain")

    def _unlearn(self, model, task):
        p = self.params
        full = Split.concat(task.retain, task.forget)
        self.alpha = p.alpha if p.alpha > 0 else p.alpha_rel * len(full) / len(task.forget)
        self.importance_d = batch_grad_squares(model, full, p.batch_size)
        self.importance_f = batch_grad_squares(model, task.forget, p.batch_size)
        self.selected = dampen(model, self.importance_d, self.importance_f, self.alpha, p.lam)
        return model
