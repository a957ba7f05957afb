"""SSD: Foster, Schoepf and Brintrup, "Fast Machine Unlearning Without Retraining Through Selective
Synaptic Dampening", AAAI 2024 (https://arxiv.org/abs/2308.07707).

    I_D = E_batches[(grad CE on D)^2],  I_f = E_batches[(grad CE on D_forget)^2]   (diagonal Fisher)
    for every parameter entry with I_f > alpha * I_D:  theta <- theta * min(lambda * I_D / I_f, 1)

D is the full training set (retain + forget), as in the reference ``calc_importance(full_train_dl)``;
importances are the mean over mini-batches of the squared mini-batch gradient, in eval mode. No
training: one pass over D and one over the forget set. Batch-norm running statistics are untouched.

Defaults:
    lambda 1 (dampening constant): paper / reference scripts.
    alpha (selection weighting): the reference uses 10 on CIFAR/ResNet-18 and scales it by hand per
        model and forget-set size. We make the forget-size part explicit: D's batches are taken in
        order (retain, then forget, as in the reference), so for a weight that only the forget data
        uses I_f / I_D ~ |D| / |D_f|; by default alpha = alpha_rel * |D| / |D_f| (``alpha = 0``).
        Give ``alpha`` > 0 for a fixed value (``alpha=10`` = the reference).
    alpha_rel 0.7: tuned on digits/cnn (alpha ~ 7 there, where |D| / |D_f| ~ 10; the reference
        alpha 10 selects almost nothing on class 3), see BENCHMARKS.md#tuning-of-method-defaults.
    batch_size 64: the reference's class-forgetting loaders (``forget_full_class_main.py``, ``-b 64``);
        its random-forgetting script uses 128 (``forget_random_main.py``, ``-b 128`` and forget /
        retain loaders of 128).
    Automatic alpha vs the reference's alpha = 10 (``selection_weighting = 10 * model_size_scaler``):
        both dampen only entries where the forget importance dominates. On a memorising model
        (mnist1d/mlp, training loss ~0) the forget gradients vanish, so I_f is tiny everywhere and
        neither rule selects anything that matters: random 10%, seed 0, avg gap 25.65 (automatic,
        alpha = 0.7 x 3000 / 300 = 7) vs 25.68 (alpha 10) vs 25.68 for the Original (BENCHMARKS.md#rum-and-scar).

    >>> ssd = get_method("ssd")                        # alpha = 0.7 * |D| / |D_f|
    >>> reference = get_method("ssd", alpha=10.0, lam=1.0)
    >>> unlearned = ssd.unlearn(model, task)          # task needs forget and retain
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
                          "tuned on digits/cnn, see BENCHMARKS.md#tuning-of-method-defaults", gt=0)
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
