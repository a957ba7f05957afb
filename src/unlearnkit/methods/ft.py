"""FT: fine-tune on the retain set, relying on catastrophic forgetting of the forget set.

Baseline of Warnecke et al. (NDSS 2023) and Golatkar et al. (CVPR 2020), as run in Jia et al.,
"Model Sparsity Can Simplify Machine Unlearning", NeurIPS 2023 (https://arxiv.org/abs/2304.04934).

    theta <- theta - lr * grad CE(f_theta(x_r), y_r)        for (x_r, y_r) in D_retain

Defaults:
    epochs 10, lr 0.01  Jia et al.'s command (``--unlearn FT --unlearn_lr 0.01 --unlearn_epochs 10``,
                        repeated in the RUM README); a sweep found no better setting (see the notes)
    optimizer sgd, momentum 0.9, weight_decay 5e-4    Jia et al. / SalUn / RUM ``arg_parser.py``
    batch_size 64       ours: the batch size of our original models' recipes (reference: 256)
    select all, select_fraction 0.05    SAPS parameter selection, off: the method as published
    retain_budget None  the whole retain set (our option: a random subset caps the cost)

    >>> ft = get_method("ft", epochs=5)
    >>> unlearned = ft.unlearn(model, task)           # task needs forget and retain

Design notes: docs/methods/ft.md
"""

from __future__ import annotations

from dataclasses import dataclass

from torch.nn import functional as F

from .blocks.peers import ReferenceSGDParams
from .base import hp, register_method
from .iterative import IterativeMethod


@dataclass
class FTParams(ReferenceSGDParams):
    epochs: int = hp(10, "fine-tuning epochs on retain", "Jia et al. 2023 scripts (--unlearn_epochs 10)")
    lr: float = hp(0.01, "SGD learning rate", "Jia et al. 2023 scripts")


@register_method
class FineTune(IterativeMethod):
    name = "ft"
    summary = "fine-tune on the retain set"
    Params = FTParams
    requires = ("forget", "retain")
    has_min_phase = True

    def min_step(self, x, y, epoch):
        return F.cross_entropy(self.model(x), y)

    def _training_plan(self, model, task):
        return (task.retain, self.plain_recipe()) if self.params.select == "all" else None
