"""GA: gradient ascent on the forget set (NegGrad).

Thudi et al., "Unrolling SGD", EuroS&P 2022; Graves et al., AAAI 2021; baseline of Jia et al.,
NeurIPS 2023 (https://arxiv.org/abs/2304.04934).

    theta <- theta + lr * grad CE(f_theta(x_f), y_f)        for (x_f, y_f) in D_forget

Defaults: 5 epochs (Jia et al.'s command ``--unlearn GA --unlearn_lr 0.0001 --unlearn_epochs 5``);
lr 0.01 tuned on digits/cnn and mnist1d/mlp (the reference 1e-4 does not move our models), see
BENCHMARKS.md#tuning-of-method-defaults. ``--set ga.lr=1e-4`` restores the reference value.

On a model trained to zero loss the ascended cross-entropy has a vanishing gradient;
``forget_loss=confidence`` descends max(0, log p_y - log(1 - p_y)) instead, whose gradient does not
(``blocks/forget_loss.py``). The default stays the reference loss; on the saturated test model of
``tests/test_noop.py`` the same step leaves the forget set unchanged with ``ce`` and moves its loss
by more than 10% with ``confidence``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .blocks.forget_loss import FORGET_LOSS_HELP, FORGET_LOSSES, OVERSHOOT_HINT, SATURATION_HINT, forget_ascent_loss
from .blocks.peers import ReferenceSGDParams
from .base import hp, register_method
from .iterative import IterativeMethod


@dataclass
class GAParams(ReferenceSGDParams):
    epochs: int = hp(5, "ascent epochs on forget", "Jia et al. 2023 scripts")
    lr: float = hp(0.01, "SGD learning rate", "tuned (reference 1e-4), see BENCHMARKS.md#tuning-of-method-defaults")
    forget_loss: str = hp("ce", FORGET_LOSS_HELP, "reference: ce", choices=FORGET_LOSSES)


@register_method
class GradientAscent(IterativeMethod):
    name = "ga"
    summary = "gradient ascent on the forget set (NegGrad)"
    Params = GAParams
    has_max_phase = True
    noop_hint = SATURATION_HINT
    overforget_hint = OVERSHOOT_HINT

    def max_step(self, x, y, epoch):
        return forget_ascent_loss(self.model(x), y, self.params.forget_loss)
