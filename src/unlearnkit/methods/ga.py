"""GA: gradient ascent on the forget set (NegGrad).

Thudi et al., "Unrolling SGD: Understanding Factors Influencing Machine Unlearning", EuroS&P 2022;
Graves et al., "Amnesiac Machine Learning", AAAI 2021; as run in Jia et al., "Model Sparsity Can
Simplify Machine Unlearning", NeurIPS 2023 (https://arxiv.org/abs/2304.04934).

    theta <- theta + lr * grad CE(f_theta(x_f), y_f)        for (x_f, y_f) in D_forget

Defaults:
    epochs 5            Jia et al.'s command (``--unlearn GA --unlearn_lr 0.0001 --unlearn_epochs 5``)
    lr 0.01             our tuning (the reference 1e-4 leaves our models unchanged), see the notes
    forget_loss ce      the reference objective; ``confidence`` keeps a gradient on saturated models
    optimizer sgd, momentum 0.9, weight_decay 5e-4    Jia et al. / SalUn / RUM ``arg_parser.py``
    batch_size 64       ours: the batch size of our original models' recipes (reference: 256)
    select all, select_fraction 0.05    SAPS parameter selection, off: the method as published
    retain_budget None  family option; unused here (ga reads no retain data)
    restarts 3, clip_grad_norm None   family options: a diverged run restarts clipped at 1, then with lr
                        halved, at most 3 times; no clipping otherwise (ours)

    >>> ga = get_method("ga", lr=1e-4)                # the reference step size
    >>> unlearned = ga.unlearn(model, task)           # needs only the forget set

Design notes: docs/methods/ga.md
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
    lr: float = hp(0.01, "SGD learning rate", "tuned (reference 1e-4), see docs/methods/tuning.md#tuning-of-method-defaults")
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
