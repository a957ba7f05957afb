"""The terms ``instance_adv`` adds to its forget loss: adversarial examples (representation-level
regulariser), MAS weight importance (parameter-level regulariser), given retain data the retain term,
and without it the anchor term; and the targeted L2 PGD that makes the adversarial examples. A mixin
of ``InstanceAdv``: it reads ``self.params``, ``self.generator``, ``self.original``, ``self.reference``,
``self.adv_x`` and ``self.train_mode``.
"""

from __future__ import annotations

import logging
from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

from ....errors import DataError
from ..gradients import gradient_sum
from ..peers import kl_teacher_student
from .stream import normalise_per_tensor

log = logging.getLogger(__name__)


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


class InstanceTerms:
    """Mixin: the regularisers (see the module docstring)."""

    def attack_radius(self, x: torch.Tensor) -> float:
        if self.params.eps > 0:
            return float(self.params.eps)
        return float(self.params.eps_ratio * x.flatten(1).norm(dim=1).mean())

    def adversarial_examples(self, x: torch.Tensor, y: torch.Tensor, num_classes: int,
                             attacker: Optional[nn.Module] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``num_adv`` targeted L2-PGD examples per instance from ``attacker`` (default: the input
        model), each towards a uniformly random class other than the true one; only those the
        attacker classifies as their target are kept. Returns (inputs, attack targets)."""
        attacker = self.original if attacker is None else attacker
        if num_classes < 2:
            raise DataError("adversarial examples need at least 2 classes")
        p = self.params
        xs = x.repeat_interleave(p.num_adv, dim=0)
        ys = y.repeat_interleave(p.num_adv, dim=0)
        shift = torch.randint(1, num_classes, ys.shape, generator=self.generator).to(ys.device)
        targets = (ys + shift) % num_classes
        eps = self.attack_radius(x)
        adv = targeted_l2_pgd(attacker, xs, targets, eps=eps, step=p.pgd_step_ratio * eps, steps=p.pgd_steps,
                              clip=(float(x.min()), float(x.max())), generator=self.generator)
        with torch.no_grad():
            hit = attacker(adv).argmax(1) == targets
        self.adv_eps, self.adv_success = eps, float(hit.float().mean())
        self.adv_source = torch.arange(len(x), device=x.device).repeat_interleave(p.num_adv)[hit]  # forget row
        if not bool(hit.any()):
            log.warning("instance_adv: no adversarial example reached its target within eps=%.3g; continuing "
                        "without the adversarial term (raise eps_ratio or pgd_steps to keep it)", eps)
        return adv[hit].detach(), targets[hit]

    def mas_importance(self, model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """MAS importance on the forget instances, min-max normalised to [0, 1] per tensor:
        Omega = mean over instances of |d ||f(x)||_2 / d theta|."""
        return normalise_per_tensor(self.mas_sums(model, x), len(x))

    def mas_sums(self, model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per parameter, the sum over instances of |d ||f(x)||_2 / d theta| (not normalised)."""
        was = model.training
        self.train_mode(model)
        if not self.params.freeze_bn:  # train-mode BN: per-instance batches of one are not defined
            model.eval()
        # gradients w.r.t. detached copies: ``model`` may be a frozen reference (requires_grad off)
        params = {n: q.detach().requires_grad_(True) for n, q in model.named_parameters()}
        one_at_a_time = ((x[i:i + 1], None) for i in range(len(x)))  # |gradient| per instance
        sums = gradient_sum(lambda xi, _: torch.func.functional_call(model, params, (xi,)).norm(p=2, dim=1).sum(),
                            one_at_a_time, list(params.values()), torch.abs)
        model.train(was)
        return dict(zip(params, sums))

    def retain_term(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """KL(f0 || f) on a retain batch ``x`` (``logits`` = f(x)): the reference's predictions there
        are kept."""
        with torch.no_grad():
            target = F.log_softmax(self.reference(x), dim=1)
        return F.kl_div(F.log_softmax(logits, dim=1), target, reduction="batchmean", log_target=True)

    def anchor_pool(self, task) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
        """Inputs of the anchor term and the reference model's logits on them: the adversarial
        examples (of every request so far with ``carry_state``), plus the task's third_party inputs
        when given and ``anchor_third_party``; None when there are none."""
        parts = [self.adv_x] if self.adv and len(self.adv_x) else []
        third = task.third_party
        if self.params.anchor_third_party and third is not None and len(third):
            parts.append(third.x)
        if not parts:
            return None
        x = torch.cat(parts)
        with torch.no_grad():  # the reference is in eval mode
            logits = torch.cat([self.reference(chunk) for chunk in x.split(1024)])
        return x, logits

    def anchor_term(self, logits: torch.Tensor, reference_logits: torch.Tensor) -> torch.Tensor:
        """T^2 KL(softmax(z0 / T) || softmax(z / T)) over an anchor batch (``logits`` = z = f(x), z0 =
        the reference's): at T > 1 the reference's smaller logits, not only its top class, are kept."""
        t = self.params.anchor_temperature
        return kl_teacher_student(logits, F.softmax(reference_logits / t, dim=1), t)

    def importance_penalty(self, model: nn.Module) -> torch.Tensor:
        total: Optional[torch.Tensor] = None
        for n, q in model.named_parameters():
            if n in self.weights:
                term = (self.weights[n] * (q - self.anchor[n]).pow(2)).sum() / 2
                total = term if total is None else total + term
        return total if total is not None else torch.zeros(())
