"""GA: gradient ascent on the forget set (NegGrad).

Thudi et al., "Unrolling SGD", EuroS&P 2022; Graves et al., AAAI 2021; baseline of Jia et al.,
NeurIPS 2023 (https://arxiv.org/abs/2304.04934).

    theta <- theta + lr * grad CE(f_theta(x_f), y_f)        for (x_f, y_f) in D_forget

Defaults: 5 epochs (Jia et al.'s command ``--unlearn GA --unlearn_lr 0.0001 --unlearn_epochs 5``);
lr 0.01 tuned on digits/cnn and mnist1d/mlp (the reference 1e-4 does not move our models), see
BENCHMARKS.md#tuning-of-method-defaults. ``--set ga.lr=1e-4`` restores the reference value.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch.nn import functional as F

from ._peer_utils import ReferenceSGDParams
from .base import IterativeMethod, hp, register_method


@dataclass
class GAParams(ReferenceSGDParams):
    epochs: int = hp(5, "ascent epochs on forget", "Jia et al. 2023 scripts")
    lr: float = hp(0.01, "SGD learning rate", "tuned (reference 1e-4), see BENCHMARKS.md#tuning-of-method-defaults")


@register_method
class GradientAscent(IterativeMethod):
    name = "ga"
    summary = "gradient ascent on the forget set (NegGrad)"
    Params = GAParams
    has_max_phase = True

    def max_step(self, x, y, epoch):
        return -F.cross_entropy(self.model(x), y)
