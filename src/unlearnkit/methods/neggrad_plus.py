"""NegGrad+: descent on retain and ascent on forget in one weighted loss.

Kurmanji et al., "Towards Unbounded Machine Unlearning" (SCRUB paper), NeurIPS 2023
(https://arxiv.org/abs/2302.09880), baseline "NegGrad+".

    L = alpha * CE(retain batch) - (1 - alpha) * CE(forget batch)

Each retain batch is paired with the next forget batch (the forget set is cycled), in train mode.

Defaults: 5 epochs (the Unlearn-Sparse / RUM command ``--unlearn NG --unlearn_epochs 5``); alpha 0.9
and SGD lr 0.03 tuned on digits/cnn and mnist1d/mlp (the reference alpha 0.99 / lr 0.01 leaves our
models unchanged), see BENCHMARKS.md#tuning-of-method-defaults.

Difference from the SCRUB reference variant (``small_scale_unlearning.ipynb``, ``negative_grad``):
it runs the model in eval mode (BatchNorm uses its stored statistics and does not update them) and
replaces weight decay by an L2 pull towards the original weights, + (wd / 2) ||theta - theta_0||^2,
with alpha 0.95, lr 0.01, 10 epochs. Ours trains in train mode with plain weight decay towards 0;
the pull is not offered.

On a model trained to zero loss the ascended cross-entropy has a vanishing gradient;
``forget_loss=confidence`` descends max(0, log p_y - log(1 - p_y)) instead, whose gradient does not
(``blocks/forget_loss.py``). The default stays the reference loss; on the saturated test model of
``tests/test_noop.py`` the same step leaves the forget set unchanged with ``ce`` and moves its loss
by more than 10% with ``confidence``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from torch.nn import functional as F

from .blocks.forget_loss import FORGET_LOSS_HELP, FORGET_LOSSES, OVERSHOOT_HINT, SATURATION_HINT, forget_ascent_loss
from .blocks.peers import ReferenceSGDParams
from .base import hp, register_method
from .iterative import IterativeMethod


@dataclass
class NegGradPlusParams(ReferenceSGDParams):
    epochs: int = hp(5, "epochs over the retain set", "Unlearn-Sparse / RUM command (--unlearn_epochs 5)")
    lr: float = hp(0.03, "SGD learning rate", "tuned, see BENCHMARKS.md#tuning-of-method-defaults")
    alpha: float = hp(0.9, "weight of the retain loss; 1 - alpha weighs the forget ascent",
                      "tuned, see BENCHMARKS.md#tuning-of-method-defaults")
    forget_loss: str = hp("ce", FORGET_LOSS_HELP, "reference: ce", choices=FORGET_LOSSES)


@register_method
class NegGradPlus(IterativeMethod):
    name = "neggrad_plus"
    summary = "joint descent on retain and ascent on forget, weighted by alpha"
    Params = NegGradPlusParams
    requires = ("forget", "retain")
    noop_hint = SATURATION_HINT
    overforget_hint = OVERSHOOT_HINT

    def run_epoch(self, epoch):
        forget_batches = itertools.cycle(list(self.batches(self.task.forget)))
        a = self.params.alpha
        for xr, yr in self.batches(self.task.retain):
            xf, yf = next(forget_batches)
            forget = forget_ascent_loss(self.model(xf), yf, self.params.forget_loss)
            loss = a * F.cross_entropy(self.model(xr), yr) + (1 - a) * forget
            self.update(loss)
