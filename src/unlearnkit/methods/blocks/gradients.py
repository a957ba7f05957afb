"""Gradient sums over mini-batches, shared by the methods that accumulate gradients or squared
gradients before they update anything (SalUn's saliency, SSD's importances, the SAPS ``grad`` and
``fisher`` scores, the first/second-order gradient difference, instance_adv's MAS importance)."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Sequence

import torch


def gradient_sum(loss_of: Callable[[torch.Tensor, Any], torch.Tensor], batches: Iterable[tuple[torch.Tensor, Any]],
                 params: Sequence[torch.Tensor],
                 transform: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> list[torch.Tensor]:
    """Sum over ``batches`` of ``transform(d loss_of(x, y) / d params)`` (the raw gradient without a
    transform; ``torch.square`` for squared gradients, ``torch.abs`` for magnitudes). One tensor per
    parameter, in ``params`` order; a parameter a batch's loss does not reach adds nothing. The caller
    chooses the mode (eval for importances) and the loss reduction (a batch mean or sum)."""
    total = [torch.zeros_like(p) for p in params]
    for x, y in batches:
        grads = torch.autograd.grad(loss_of(x, y), params, allow_unused=True)
        for t, g in zip(total, grads):
            if g is not None:
                t.add_(g.detach() if transform is None else transform(g.detach()))
    return total
