"""Targeted L2 projected gradient descent (the adversarial examples of ``instance_adv``)."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F


def targeted_l2_pgd(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, *, eps: float, step: float,
                    steps: int, clip: Optional[tuple[float, float]] = None,
                    generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Targeted L2 projected gradient descent on CE(model(x + delta), target), ||delta||_2 <= eps, from a
    random start in the ball; returns for each input the last iterate the model classified as its
    target (the final iterate where it never did). ``model`` must be in eval mode."""
    flat = lambda t: t.flatten(1)  # noqa: E731
    shape = (-1,) + (1,) * (x.dim() - 1)

    def project(delta: torch.Tensor) -> torch.Tensor:
        norm = flat(delta).norm(dim=1).clamp_min(1e-12)
        delta = delta * (eps / norm).clamp(max=1.0).view(shape)
        if clip is not None:
            delta = (x + delta).clamp(*clip) - x
        return delta

    d = x[0].numel()
    noise = torch.randn(x.shape, generator=generator).to(x.device)
    radius = eps * torch.rand(len(x), generator=generator).pow(1.0 / d).to(x.device)
    delta = project(noise / flat(noise).norm(dim=1).clamp_min(1e-12).view(shape) * radius.view(shape))
    best = (x + delta).detach().clone()
    for _ in range(steps):
        delta.requires_grad_(True)
        logits = model(x + delta)
        loss = F.cross_entropy(logits, targets, reduction="sum")
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            hit = logits.argmax(1) == targets
            best[hit] = (x + delta)[hit]
            g_norm = flat(grad).norm(dim=1).clamp_min(1e-12).view(shape)
            delta = project(delta - step * grad / g_norm)
    with torch.no_grad():
        final = x + delta
        hit = model(final).argmax(1) == targets
        best[hit] = final[hit]
        never = ~(model(best).argmax(1) == targets)
        best[never] = final[never]
    return best.detach()
