"""First-order update for unlearning features and labels.

Warnecke, Pirch, Wressnegger and Rieck, "Machine Unlearning of Features and Labels", NDSS 2023
(https://arxiv.org/abs/2108.11577). With Z the affected training examples as they were trained on
(``task.forget``) and Z~ their corrected versions (``task.corrected``, same order):

    theta <- theta* - tau * (grad L(Z~; theta*) - grad L(Z; theta*)),   L(Z) = sum_{z in Z} l(z)

one gradient step on the corrected training loss, taken at the learned weights in eval mode. No
retain data is needed.

Defaults:
    tau 1e-4            our tuning: the best tau was 5e-5 to 5e-4 across our label / feature settings
                        and 1e-4 collapses none of them (the paper tunes tau per dataset); see the notes
    batch_size 256      ours: memory and speed only, the result does not depend on it
    select all, select_fraction 0.05    SAPS parameter selection (``methods/blocks/selection.py``),
                        off: the update as published

    >>> fo = get_method("first_order", tau=5e-4)
    >>> unlearned = fo.unlearn(model, task)           # task needs forget and corrected

Design notes: docs/methods/first_order.md
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

from ..data.split import Split
from ..errors import DataError
from ..utils import eval_mode
from .blocks.gradients import gradient_sum
from .base import ClosedFormMethod, SelectionParams, hp, register_method


@dataclass
class CorrectionParams(SelectionParams):
    """Options shared by the first- and second-order updates."""

    batch_size: int = hp(256, "batch size of the gradient computations (does not change the result)",
                         "ours: memory/speed only")


@dataclass
class FirstOrderParams(CorrectionParams):
    tau: float = hp(1e-4, "step size of the first-order update (L = per-sample losses summed)",
                    "our tuning on digits/mnist1d label+feature, 5e-5..5e-4 (paper tunes per dataset)")


class CorrectionMethod(ClosedFormMethod):
    """Shared parts of first_order / second_order: the gradient difference and the selection."""

    requires = ("forget", "corrected")

    def check_pairs(self, task) -> None:
        if len(task.forget) != len(task.corrected):
            raise DataError(f"{self.name} pairs each forget example with its corrected version: forget has "
                            f"{len(task.forget)} examples but corrected has {len(task.corrected)}")

    def trainable(self, model: nn.Module) -> list[tuple[str, torch.Tensor]]:
        return [(n, p) for n, p in model.named_parameters() if p.requires_grad]

    def active(self, model: nn.Module, mask: Optional[dict[str, torch.Tensor]]) -> list[tuple[str, torch.Tensor]]:
        """Trainable parameters with at least one selected entry: gradients and HVPs are taken w.r.t.
        these only, so e.g. a last-layer selection never back-propagates into the feature extractor."""
        return [(n, p) for n, p in self.trainable(model) if mask is None or bool(mask[n].any())]

    def gradient_difference(self, model: nn.Module, task, named: list[tuple[str, torch.Tensor]]
                            ) -> list[torch.Tensor]:
        """grad L(Z~) - grad L(Z) at the current weights (sums over examples) w.r.t. ``named``."""
        params = [p for _, p in named]
        corrected = summed_gradient(model, task.corrected, params, self.params.batch_size)
        trained = summed_gradient(model, task.forget, params, self.params.batch_size)
        return [a - b for a, b in zip(corrected, trained)]

    def apply(self, named: list[tuple[str, torch.Tensor]], step: list[torch.Tensor],
              mask: Optional[dict[str, torch.Tensor]]) -> None:
        """theta <- theta - step for the ``named`` parameters (masked-out entries untouched)."""
        with torch.no_grad():
            for (n, p), s in zip(named, step):
                p.sub_(s if mask is None else s * mask[n].to(s.device, s.dtype))


@register_method
class FirstOrder(CorrectionMethod):
    name = "first_order"
    summary = "first-order feature/label unlearning: theta - tau (grad L(Z~) - grad L(Z)) (Warnecke et al.)"
    Params = FirstOrderParams

    def _unlearn(self, model, task):
        self.check_pairs(task)
        mask = self.selection_mask(model, task)
        named = self.active(model, mask)
        with eval_mode(model):
            diff = self.gradient_difference(model, task, named)
        self.apply(named, [self.params.tau * d for d in diff], mask)


def summed_gradient(model: nn.Module, split: Split, params: list[torch.Tensor], batch_size: int = 256
                    ) -> list[torch.Tensor]:
    """sum over the examples of ``split`` of grad cross-entropy w.r.t. ``params``."""
    return gradient_sum(lambda x, y: F.cross_entropy(model(x), y, reduction="sum"), split.batches(batch_size),
                        params)


