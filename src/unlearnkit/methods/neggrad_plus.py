"""NegGrad+: descent on retain and ascent on forget in one weighted loss.

Kurmanji, Triantafillou, Hayes and Triantafillou, "Towards Unbounded Machine Unlearning" (the SCRUB
paper), NeurIPS 2023 (https://arxiv.org/abs/2302.09880), baseline "NegGrad+".

    L = alpha * CE(retain batch) - (1 - alpha) * CE(forget batch)

Each retain batch is paired with the next forget batch (the forget set is cycled), in train mode.

Defaults:
    epochs 5            the Unlearn-Sparse / RUM command (``--unlearn NG --unlearn_epochs 5``)
    alpha 0.9, lr 0.03  our tuning (the reference alpha 0.99 / lr 0.01 leaves our models unchanged),
                        see the notes
    forget_loss ce      the reference objective; ``confidence`` keeps a gradient on saturated models
    optimizer sgd, momentum 0.9, weight_decay 5e-4    Jia et al. / SalUn / RUM ``arg_parser.py``
    batch_size 64       ours: the batch size of our original models' recipes (reference: 256)
    select all, select_fraction 0.05    SAPS parameter selection, off: the method as published
    retain_budget None  the whole retain set (our option: a random subset caps the cost)
    restarts 3, clip_grad_norm None   family options: a diverged run restarts clipped at 1, then with lr
                        halved, at most 3 times; no clipping otherwise (ours)

    >>> ng = get_method("neggrad_plus", alpha=0.95)
    >>> unlearned = ng.unlearn(model, task)           # task needs forget and retain

Design notes: docs/methods/neggrad_plus.md
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
    lr: float = hp(0.03, "SGD learning rate", "tuned, see docs/methods/tuning.md#tuning-of-method-defaults")
    alpha: float = hp(0.9, "weight of the retain loss; 1 - alpha weighs the forget ascent",
                      "tuned, see docs/methods/tuning.md#tuning-of-method-defaults")
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
