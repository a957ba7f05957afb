"""Second-order update for unlearning features and labels.

Warnecke, Pirch, Wressnegger and Rieck, "Machine Unlearning of Features and Labels", NDSS 2023
(https://arxiv.org/abs/2108.11577). With Z = ``task.forget`` (as trained), Z~ = ``task.corrected``:

    theta <- theta* - H^-1 (grad L(Z~; theta*) - grad L(Z; theta*)),   L(Z) = sum_{z in Z} l(z)

a Newton step on the corrected training loss, H the Hessian of the summed loss over retain + Z~ (Z~
alone without retain data). We solve (H_mean + damping I) x = (grad L(Z~) - grad L(Z)) / n by
conjugate gradient with exact Hessian-vector products and set theta <- theta* - scale * x.

Defaults:
    damping 0.1         our tuning on digits/cnn ``label`` (other settings need 1 to 10; see the notes)
    scale 1.0           the paper's update (a full Newton step)
    solver cg           ours: applies H^-1 up to its tolerance; ``diag`` is a cheap Hutchinson diagonal
    cg_iters 50         ours: CG usually stops earlier, on its residual or on negative curvature
    hessian_samples 1024  ours: examples of retain + Z~ the Hessian is taken on (all of digits)
    n_probes 16         ours: Rademacher probes of the ``diag`` solver
    batch_size 256      ours: memory and speed only, the result does not depend on it
    select all, select_fraction 0.05    SAPS parameter selection (``methods/blocks/selection.py``),
                        off: the update as published

    >>> so = get_method("second_order", damping=1.0)
    >>> unlearned = so.unlearn(model, task)           # task needs forget and corrected (+ retain)

Design notes: docs/methods/second_order.md
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F

from ..data.split import Split
from .base import hp, register_method
from .first_order import CorrectionMethod, CorrectionParams, eval_mode
from .blocks.selection import hutchinson_diag


@dataclass
class SecondOrderParams(CorrectionParams):
    solver: str = hp("cg", "how H^-1 is applied: conjugate gradient with HVPs, or damped Hutchinson diagonal",
                     "ours: cg applies H^-1 exactly up to its tolerance; diag is the cheaper approximation", choices=("cg", "diag"))
    damping: float = hp(0.1, "added to the mean-loss Hessian (lambda I)", "our tuning on digits/cnn label")
    scale: float = hp(1.0, "multiplier of the Newton step (1 = the paper's update)", "paper")
    cg_iters: int = hp(50, "maximum conjugate-gradient iterations (HVPs)", "our choice")
    hessian_samples: int = hp(1024, "examples of retain + corrected the Hessian is computed on", "our choice")
    n_probes: int = hp(16, "Rademacher probes of the diagonal solver", "our choice")


@register_method
class SecondOrder(CorrectionMethod):
    name = "second_order"
    summary = "second-order feature/label unlearning: theta - H^-1 (grad L(Z~) - grad L(Z)) (Warnecke et al.)"
    Params = SecondOrderParams
    optional = ("retain",)  # the Hessian is taken on retain + corrected when retain is given

    def _unlearn(self, model, task):
        self.check_pairs(task)
        p = self.params
        mask = self.selection_mask(model, task)
        named = self.active(model, mask)
        params = [q for _, q in named]
        masks = None if mask is None else [mask[n].to(q.device, q.dtype) for n, q in named]
        with eval_mode(model):
            diff = self.gradient_difference(model, task, named)
            full = task.corrected if task.retain is None else Split.concat(task.retain, task.corrected)
            n = len(full)
            rhs = [d / n for d in diff]
            if masks is not None:
                rhs = [r * m for r, m in zip(rhs, masks)]
            sample = self.hessian_sample(full)
            if p.solver == "diag":
                diag = hutchinson_diag(model, sample, n_probes=p.n_probes, batch_size=p.batch_size,
                                       generator=torch.Generator().manual_seed(self.seed + 104729), params=params)
                step = [r / (dg.clamp_min(0) + p.damping) for r, dg in zip(rhs, diag)]
            else:
                hvp = make_hvp(model, sample, params, p.batch_size)
                if masks is None:
                    op = lambda v: [h + p.damping * vi for h, vi in zip(hvp(v), v)]  # noqa: E731
                else:
                    op = lambda v: [m * h + p.damping * vi  # noqa: E731
                                    for m, h, vi in zip(masks, hvp([m * vi for m, vi in zip(masks, v)]), v)]
                step, self.cg_info = conjugate_gradient(op, rhs, p.cg_iters)
        self.apply(named, [p.scale * s for s in step], mask)

    def hessian_sample(self, full: Split) -> Split:
        k = self.params.hessian_samples
        if len(full) <= k:
            return full
        idx = np.sort(torch.randperm(len(full), generator=torch.Generator().manual_seed(self.seed + 15485863))[:k].numpy())
        return full.subset(idx)


def make_hvp(model, data: Split, params: list[torch.Tensor], batch_size: int = 256
             ) -> Callable[[list[torch.Tensor]], list[torch.Tensor]]:
    """v -> H v, H the Hessian of the mean cross-entropy on ``data``; the first-order graph is built
    once (per batch) and reused by every product."""
    n = len(data)
    graphs = []
    for x, y in data.batches(batch_size):
        loss = F.cross_entropy(model(x), y, reduction="sum") / n
        graphs.append(torch.autograd.grad(loss, params, create_graph=True))

    def hvp(v: list[torch.Tensor]) -> list[torch.Tensor]:
        out = [torch.zeros_like(q) for q in params]
        for grads in graphs:
            hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True, allow_unused=True)
            for o, h in zip(out, hv):
                if h is not None:
                    o.add_(h.detach())
        return out

    return hvp


def conjugate_gradient(op: Callable[[list[torch.Tensor]], list[torch.Tensor]], b: list[torch.Tensor],
                       iters: int, tol: float = 1e-4) -> tuple[list[torch.Tensor], dict]:
    """Solve op(x) = b for a symmetric operator on lists of tensors, starting at 0. Stops at
    relative residual ``tol``, after ``iters`` products, or on non-positive curvature (returning the
    last iterate, which is then a damped-gradient-like step). Returns (x, info)."""
    def dot(a, c):
        return sum(float((ai * ci).sum()) for ai, ci in zip(a, c))

    x = [torch.zeros_like(t) for t in b]
    r = [t.clone() for t in b]
    d = [t.clone() for t in b]
    rr = dot(r, r)
    b_norm = rr ** 0.5
    info = {"iters": 0, "residual": 1.0, "stopped": "max_iters"}
    if b_norm == 0:
        info.update(residual=0.0, stopped="zero_rhs")
        return x, info
    for k in range(iters):
        ad = op(d)
        curv = dot(d, ad)
        if curv <= 0:
            info["stopped"] = "negative_curvature"
            if k == 0:  # fall back to a gradient step scaled like the damping term would
                x = [t.clone() for t in b]
            break
        alpha = rr / curv
        x = [xi + alpha * di for xi, di in zip(x, d)]
        r = [ri - alpha * ai for ri, ai in zip(r, ad)]
        rr_new = dot(r, r)
        info.update(iters=k + 1, residual=rr_new ** 0.5 / b_norm)
        if rr_new ** 0.5 <= tol * b_norm:
            info["stopped"] = "converged"
            break
        d = [ri + (rr_new / rr) * di for ri, di in zip(r, d)]
        rr = rr_new
    return x, info
