"""NegGrad+: descent on retain and ascent on forget in one weighted loss.

Kurmanji et al., "Towards Unbounded Machine Unlearning" (SCRUB paper), NeurIPS 2023
(https://arxiv.org/abs/2302.09880), baseline "NegGrad+".

    L = alpha * CE(retain batch) - (1 - alpha) * CE(forget batch)

Each retain batch is paired with the next forget batch (the forget set is cycled).
Defaults: alpha 0.99 (the reference code's weighting keeps the retain term dominant), SGD lr 0.01,
5 epochs.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from torch.nn import functional as F

from .base import IterativeMethod, IterativeParams, hp, register_method


@dataclass
class NegGradPlusParams(IterativeParams):
    epochs: int = hp(5, "epochs over the retain set", "Kurmanji et al. 2023 code")
    lr: float = hp(0.01, "SGD learning rate", "Kurmanji et al. 2023 code")
    alpha: float = hp(0.99, "weight of the retain loss; 1 - alpha weighs the forget ascent",
                      "Kurmanji et al. 2023 code")


@register_method
class NegGradPlus(IterativeMethod):
    name = "neggrad_plus"
    summary = "joint descent on retain and ascent on forget, weighted by alpha"
    Params = NegGradPlusParams
    requires = ("forget", "retain")

    def run_epoch(self, epoch):
        forget_batches = itertools.cycle(list(self.batches(self.task.forget)))
        a = self.params.alpha
        for xr, yr in self.batches(self.task.retain):
            xf, yf = next(forget_batches)
            loss = a * F.cross_entropy(self.model(xr), yr) - (1 - a) * F.cross_entropy(self.model(xf), yf)
            self.update(loss)
