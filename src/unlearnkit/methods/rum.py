"""RUM (Refined-Unlearning Meta-algorithm): Zhao, Kurmanji, Bărbulescu, Triantafillou and
Triantafillou, "What makes unlearning hard and what to do about it", NeurIPS 2024
(https://arxiv.org/abs/2406.01257; code https://github.com/kairanzhao/RUM).

    s_i = memorisation proxy of forget example i;  split D_forget into 3 equal groups by s (low, mid, high);
    for g in (low, mid, high):  NegGrad+ on g:  L = alpha_g CE(retain batch) - (1 - alpha_g) CE(g batch)

The proxy is the input-loss curvature of Garg, Ravikumar and Roy (ICML 2024), measured once at the
input weights, as in the reference's proxy pipeline (``main_rum_proxy.py``) with NegGrad+ in every
step.

Defaults:
    alpha_low / alpha_mid / alpha_high 0.9, lr_low / lr_mid / lr_high 0.03,
    epochs_low / epochs_mid / epochs_high 5     our ``neggrad_plus`` defaults (tuned) for every group;
        the reference's per-group values (alpha 0.99 / 0.97 / 0.97, lr 0.01 / 0.01 / 0.001, epochs
        5 / 5 / 10) leave a memorising model unchanged, see the notes
    batch_size 256      the reference command (``--batch_size 256``)
    h 0.01              curvature step (``--h`` default of the reference ``arg_parser.py``)
    SGD, momentum 0.9 and weight decay 5e-4 inside each step: the ``neggrad_plus`` defaults

    >>> rum = get_method("rum")
    >>> unlearned = rum.unlearn(model, task)        # task needs forget and retain

Design notes: docs/methods/rum.md
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..data.split import Split
from ..errors import DivergenceWarning, NonFiniteError, OverForgetWarning
from .blocks.peers import eval_mode
from .base import Hyperparameters, UnlearningMethod, hp, register_method
from .neggrad_plus import NegGradPlus

LEVELS = ("low", "mid", "high")
_REF = ("neggrad_plus default (tuned); reference main_rum_proxy.py: alpha 0.99/0.97/0.97, "
        "lr 0.01/0.01/0.001, epochs 5/5/10 (low/mid/high), see docs/methods/tuning.md#rum-and-scar")


def curvature_scores(model: nn.Module, split: Split, h: float, batch_size: int = 256) -> torch.Tensor:
    """Input-loss curvature of every example of ``split`` under ``model`` (eval mode), one value
    per example: the norm of the change of the input gradient along the sign-gradient direction."""
    scores = []
    with eval_mode(model):
        for x, y in split.batches(batch_size, shuffle=False):
            x = x.clone().requires_grad_(True)
            grad = torch.autograd.grad(F.cross_entropy(model(x), y, reduction="sum"), x)[0]
            direction = torch.sign(grad) + 1e-7
            norm = direction.flatten(1).norm(dim=1).view(-1, *([1] * (x.dim() - 1)))
            z = h * direction / (norm + 1e-7)
            diff = F.cross_entropy(model(x + z), y, reduction="none") - F.cross_entropy(model(x), y, reduction="none")
            grad_diff = torch.autograd.grad(diff.sum(), x)[0]
            scores.append(grad_diff.flatten(1).norm(dim=1).detach())
    model.zero_grad(set_to_none=True)
    return torch.cat(scores).cpu()


def memorisation_groups(scores: torch.Tensor, n_groups: int = 3) -> list[np.ndarray]:
    """Positions of the examples split into ``n_groups`` (near-)equal groups by score, lowest
    scores first; ties keep the split's order."""
    order = torch.argsort(scores, stable=True).numpy()
    return [g for g in np.array_split(order, n_groups)]


@dataclass
class RUMParams(Hyperparameters):
    alpha_low: float = hp(0.9, "NegGrad+ retain weight for the least memorised third", _REF, ge=0, le=1)
    alpha_mid: float = hp(0.9, "NegGrad+ retain weight for the middle third", _REF, ge=0, le=1)
    alpha_high: float = hp(0.9, "NegGrad+ retain weight for the most memorised third", _REF, ge=0, le=1)
    epochs_low: int = hp(5, "NegGrad+ epochs for the least memorised third", _REF, ge=0)
    epochs_mid: int = hp(5, "NegGrad+ epochs for the middle third", _REF, ge=0)
    epochs_high: int = hp(5, "NegGrad+ epochs for the most memorised third", _REF, ge=0)
    lr_low: float = hp(0.03, "NegGrad+ SGD learning rate for the least memorised third", _REF, gt=0)
    lr_mid: float = hp(0.03, "NegGrad+ SGD learning rate for the middle third", _REF, gt=0)
    lr_high: float = hp(0.03, "NegGrad+ SGD learning rate for the most memorised third", _REF, gt=0)
    batch_size: int = hp(256, "mini-batch size of every step", "RUM reference command (--batch_size 256)")
    h: float = hp(0.01, "curvature finite-difference step", "RUM reference arg_parser.py (--h)", gt=0)


@register_method
class RUM(UnlearningMethod):
    name = "rum"
    summary = "split the forget set by memorisation (curvature proxy) and NegGrad+ each group, low to high (Zhao et al.)"
    family = "other"  # a meta-algorithm: it runs NegGrad+ per group
    Params = RUMParams
    requires = ("forget", "retain")

    def _unlearn(self, model, task):
        p = self.params
        scores = curvature_scores(model, task.forget, p.h, p.batch_size)
        self.groups = memorisation_groups(scores, len(LEVELS))
        self.restarts = 0  # the divergence guard's restarts of the inner NegGrad+ runs, all groups together
        for step, (level, group) in enumerate(zip(LEVELS, self.groups)):
            epochs = getattr(p, f"epochs_{level}")
            if len(group) == 0 or epochs == 0:
                continue
            inner = NegGradPlus(alpha=getattr(p, f"alpha_{level}"), lr=getattr(p, f"lr_{level}"), epochs=epochs,
                                batch_size=p.batch_size)
            self._run_group(inner, model, replace(task, forget=task.forget.subset(group)), step, level)
            self.restarts += inner.restarts
        return model

    def _run_group(self, inner: NegGradPlus, model: nn.Module, task, step: int, level: str) -> None:
        """NegGrad+ on one group, its errors and divergence warnings naming this method and the group (not
        the inner NegGrad+ and its derived seed); its over-forgetting check is this method's, on the whole
        forget set, so the group's is not repeated."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                inner.unlearn(model, task, seed=self.seed + step, device=self.device, inplace=True)
                failed = False
            except NonFiniteError:
                failed = True
        for w in caught:
            if issubclass(w.category, DivergenceWarning):
                warnings.warn(f"rum: NegGrad+ on the {level}-memorisation group diverged with seed {self.seed} and "
                              f"restarted with a smaller step ({w.message})", DivergenceWarning, stacklevel=4)
            elif not issubclass(w.category, OverForgetWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if failed:
            raise NonFiniteError(f"method 'rum' diverged (NaN or infinite weights) on its {level}-memorisation group "
                                 f"with seed {self.seed}, also after {inner.params.restarts} restart(s) with the step "
                                 f"halved; lower lr_{level} or epochs_{level}")
