"""Fisher forgetting: Golatkar, Achille and Soatto, "Eternal Sunshine of the Spotless Net: Selective
Forgetting in Deep Networks", CVPR 2020 (https://arxiv.org/abs/1911.04933).

    F_r = E_{x in D_retain} sum_y p_theta(y|x) (grad_theta log p_theta(y|x))^2      (diagonal Fisher)
    theta <- theta + sqrt(alpha * min(1 / (F_r + 1e-8), max_var)) * N(0, I)

Weights the retain set does not constrain (small Fisher) get large noise, which destroys what only
the forget set needed. The Fisher is exact per example (``torch.func``, eval mode); the noise comes
from a generator seeded by the method's seed.

Defaults:
    alpha 1e-6, max_var 1e3     the reference code (Golatkar et al.; the SSD repository's ``fisher``);
                                kept after a sweep on digits/cnn (see the notes)
    reference_tweaks True       the reference code's adjustments: variance averaged per output row,
                                output layer clamped at 1e2, output layer and 1-D parameters x10
    forget_class_reset True     the reference class-forgetting code: with a named forgotten class,
                                its output row is set to 0 with variance 1e-4
    max_samples 256             ours, for speed: retain examples the Fisher is computed on (reference:
                                the whole retain set)
    batch_size 64               ours: memory and speed only, the result does not depend on it

    >>> fisher = get_method("fisher", alpha=1e-7)
    >>> unlearned = fisher.unlearn(model, task)       # task needs forget and retain

Design notes: docs/methods/fisher.md
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

from ..data.split import Split
from .blocks.peers import eval_mode
from .base import ClosedFormMethod, Hyperparameters, hp, register_method


def diagonal_fisher(model: nn.Module, split: Split, batch_size: int = 64) -> dict[str, torch.Tensor]:
    """E_x sum_y p(y|x) (d log p(y|x) / d theta)^2 over ``split``, per parameter name (eval mode).

    Exact: one per-example gradient per (example, class). No class may be skipped: for a confident
    model the low-probability classes dominate the sum (their score is ~1, the true class's ~1 - p)."""
    from torch.func import functional_call, grad, vmap

    named = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    acc = {n: torch.zeros_like(p) for n, p in named.items()}

    def nll(params, x, c):
        logits = functional_call(model, (params, buffers), (x.unsqueeze(0),))
        return F.cross_entropy(logits, c.unsqueeze(0))

    per_example = vmap(grad(nll), in_dims=(None, 0, 0))
    with eval_mode(model):
        for x, _ in split.batches(batch_size, shuffle=False):
            with torch.no_grad():
                probs = F.softmax(model(x), dim=1)
            for c in range(probs.shape[1]):
                grads = per_example(named, x, torch.full((len(x),), c, dtype=torch.long, device=x.device))
                w = probs[:, c]
                for n, g in grads.items():
                    acc[n] += (w.view(-1, *([1] * (g.dim() - 1))) * g.pow(2)).sum(0)
    return {n: a / max(len(split), 1) for n, a in acc.items()}


def output_layer(model: nn.Module, num_classes: int) -> list[str]:
    """Names of the parameters of the module that produces the logits (the last parameterised module,
    when its parameters have ``num_classes`` rows)."""
    names = [n for n, _ in model.named_parameters()]
    if not names:
        return []
    prefix = names[-1].rsplit(".", 1)[0] if "." in names[-1] else ""
    params = dict(model.named_parameters())
    head = [n for n in names if (n.rsplit(".", 1)[0] if "." in n else "") == prefix]
    return [n for n in head if params[n].shape[0] == num_classes]


def noise_variance(model: nn.Module, fisher: dict[str, torch.Tensor], alpha: float, max_var: float,
                   reference_tweaks: bool, head: list[str], eps: float = 1e-8) -> dict[str, torch.Tensor]:
    """alpha * min(1 / (F + eps), max_var) per entry, with the reference code's tweaks if asked."""
    params = dict(model.named_parameters())
    var = {}
    for n, f in fisher.items():
        v = (1.0 / (f + eps)).clamp(max=max_var)
        if reference_tweaks:
            if n in head:
                v = v.clamp(max=1e2)
            v = alpha * v
            if v.dim() > 1:
                v = v.mean(dim=1, keepdim=True).expand_as(params[n]).clone()
            if n in head or v.dim() == 1:
                v = v * 10
        else:
            v = alpha * v
        var[n] = v
    return var


@dataclass
class FisherParams(Hyperparameters):
    alpha: float = hp(1e-6, "noise scale: variance = alpha / Fisher (clamped)", "reference code", ge=0)
    max_var: float = hp(1e3, "clamp of 1 / Fisher before scaling by alpha", "reference code", gt=0)
    reference_tweaks: bool = hp(True, "row-averaged variance, output-layer clamp 1e2 and x10, 1-D params x10",
                                "reference code")
    forget_class_reset: bool = hp(True, "zero the forgotten class's output row (class scenario only)",
                                  "reference class-forgetting code")
    batch_size: int = hp(64, "examples per per-example-gradient batch", "ours: memory/speed only, the result does not depend on it")
    max_samples: int = hp(256, "random retain examples the Fisher is computed on (0 = all)",
                          "our choice for speed (reference: the whole retain set; exact per-example Fisher costs "
                          "one gradient per example and class)")


@register_method
class Fisher(ClosedFormMethod):
    name = "fisher"
    summary = "Fisher forgetting: Gaussian noise scaled by the inverse retain Fisher (Golatkar et al.)"
    Params = FisherParams
    requires = ("forget", "retain")

    def _unlearn(self, model, task):
        p = self.params
        retain = task.retain
        if p.max_samples and p.max_samples < len(retain):
            keep = torch.randperm(len(retain), generator=self.generator)[:p.max_samples]
            retain = retain.subset(keep.numpy())
        num_classes = self.num_classes(task)
        self.fisher = diagonal_fisher(model, retain, p.batch_size)
        head = output_layer(model, num_classes)
        self.variance = noise_variance(model, self.fisher, p.alpha, p.max_var, p.reference_tweaks, head)
        forget_class: Optional[int] = task.metadata.get("forget_class") if task.metadata else None
        noise_gen = torch.Generator().manual_seed(self.seed)
        with torch.no_grad():
            for n, q in model.named_parameters():
                if n not in self.variance:
                    continue
                mu, var = q.detach().clone(), self.variance[n]
                if p.forget_class_reset and forget_class is not None and n in head:
                    mu[int(forget_class)] = 0.0
                    var = var.clone()
                    var[int(forget_class)] = 1e-4 * (10 if p.reference_tweaks else 1)  # reference: 1e-4, then x10
                z = torch.randn(q.shape, generator=noise_gen).to(q.device, q.dtype)
                q.copy_(mu + var.sqrt() * z)
        return model
