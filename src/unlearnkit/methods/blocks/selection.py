"""Parameter selection: which weights an unlearning update may change ("SAPS + X").

Malekmohammadi, Lee and Xiong, "Sharpness-aware Parameter Selection for Machine Unlearning",
arXiv 2504.06398 (2025): update only the parameters with the largest diagonal Hessian entries of the
loss at the learned parameters; those move the unlearning target most per unit of change.

    mask = select_params(model, data, fraction=0.05, score="hessian")   # {name: 0/1 tensor}

Scores (one number per parameter entry, larger = more important):

* ``hessian``: diag(H) of the mean cross-entropy on ``data``, estimated with Hutchinson's estimator
  diag(H) ~= mean_k v_k * (H v_k), v_k Rademacher, H v by double back-propagation (Hessian-vector
  products, no Hessian is formed). Ranked by the signed estimate ("largest diagonal value", as in
  the paper), so directions of negative curvature are never preferred.
* ``fisher``: empirical Fisher diagonal, mean over samples of the squared per-sample gradient.
* ``grad``: |gradient of the mean loss on ``data``|.
* ``random``: uniform random scores (the same-size control for the others).
* ``last_layer``: every entry of the parameters of the last module that has parameters (the usual
  "last layer only" baseline); ``fraction`` is ignored.
* ``all``: every entry (no restriction); ``fraction`` is ignored.

The top ``fraction`` is kept over all parameters together (``per_layer=False``, the default: the
paper's global ranking, which lets a few layers take most of the budget) or within each parameter
tensor (``per_layer=True``: every weight and bias tensor keeps round(fraction * numel), at least 1).
Exactly ``k = max(1, round(fraction * numel))`` entries are selected; ties are broken by ``topk``.

Only parameters with ``requires_grad`` are scored and appear in the mask. Batch-norm layers are
put in eval mode while scoring (running statistics are not touched); the model's modes are restored.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ...data.split import Split, as_split
from ...errors import HyperparameterError
from ...utils import eval_mode
from .gradients import gradient_sum

SCORES = ("hessian", "fisher", "grad", "random", "last_layer", "all")


def select_params(
    model: nn.Module,
    data: Any,
    fraction: float,
    score: str = "hessian",
    per_layer: bool = False,
    *,
    n_probes: int = 16,
    batch_size: int = 256,
    max_samples: Optional[int] = 2048,
    generator: Optional[torch.Generator] = None,
) -> dict[str, torch.Tensor]:
    """Return ``{parameter name: float 0/1 tensor}`` selecting the top ``fraction`` of entries by
    ``score`` (see the module docstring). ``data`` is a ``Split``, an ``(x, y)`` pair, or a list of
    Splits (concatenated); it may be ``None`` for the data-free scores (random, last_layer, all).
    ``n_probes`` Rademacher probes are used for ``hessian``; ``max_samples`` caps the examples used
    by the data scores (the first ones; None = all)."""
    if score not in SCORES:
        raise HyperparameterError(f"select score {score!r} is not one of {list(SCORES)}")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise HyperparameterError("the model has no trainable parameters to select from")
    if score == "all":
        return {n: torch.ones_like(p) for n, p in named}
    if score == "last_layer":
        return last_layer_mask(model)
    if not (0.0 < float(fraction) <= 1.0):
        raise HyperparameterError(f"select_fraction={fraction!r} must be in (0, 1]")
    if score == "random":
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        scores = {n: torch.rand(p.shape, generator=gen).to(p.device) for n, p in named}
    else:
        split = _as_data(data, max_samples)
        scores = score_params(model, split, score, n_probes=n_probes, batch_size=batch_size, generator=generator)
    return top_fraction_mask(scores, fraction, per_layer)


def score_params(model: nn.Module, data: Split, score: str, *, n_probes: int = 16, batch_size: int = 256,
                 generator: Optional[torch.Generator] = None) -> dict[str, torch.Tensor]:
    """Per-entry importance scores ``{name: tensor}`` (``hessian``, ``fisher`` or ``grad``)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    device = params[0].device
    data = data.to(device)
    n = len(data)
    with eval_mode(model):
        if score == "grad":
            total = gradient_sum(lambda x, y: F.cross_entropy(model(x), y, reduction="sum") / n,
                                 data.batches(batch_size), params)
            out = [t.abs() for t in total]
        elif score == "fisher":  # per-sample squared gradients: batches of one
            total = gradient_sum(lambda x, y: F.cross_entropy(model(x), y), data.batches(1), params, torch.square)
            out = [t / n for t in total]
        elif score == "hessian":
            out = hutchinson_diag(model, data, n_probes=n_probes, batch_size=batch_size, generator=generator)
        else:
            raise HyperparameterError(f"score_params: unknown data score {score!r}")
    return {name: s.detach() for (name, _), s in zip(named, out)}


def hutchinson_diag(model: nn.Module, data: Split, *, n_probes: int = 16, batch_size: int = 256,
                    generator: Optional[torch.Generator] = None,
                    params: Optional[list[torch.Tensor]] = None) -> list[torch.Tensor]:
    """Hutchinson estimate of diag(H), H the Hessian of the mean cross-entropy on ``data`` w.r.t. the
    trainable parameters (in ``model.parameters()`` order; or w.r.t. ``params``, the Hessian block of
    those): mean over probes of v * Hv, with v
    Rademacher (+-1) and Hv a Hessian-vector product. Unbiased; the variance of an entry is
    sum_{j != i} H_ij^2 / n_probes."""
    if n_probes < 1:
        raise HyperparameterError(f"n_probes={n_probes} must be >= 1")
    if params is None:
        params = [p for p in model.parameters() if p.requires_grad]
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    n = len(data)
    probes = [[(torch.randint(0, 2, p.shape, generator=gen) * 2 - 1).to(p.device, p.dtype) for p in params]
              for _ in range(n_probes)]
    acc = [torch.zeros_like(p) for p in params]
    for x, y in data.batches(batch_size):
        loss = F.cross_entropy(model(x), y, reduction="sum") / n
        grads = torch.autograd.grad(loss, params, create_graph=True)
        for k, v in enumerate(probes):
            hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=k < n_probes - 1)
            for a, vi, hvi in zip(acc, v, hv):
                a.add_(vi * hvi, alpha=1.0 / n_probes)
    return acc


def top_fraction_mask(scores: dict[str, torch.Tensor], fraction: float, per_layer: bool = False
                      ) -> dict[str, torch.Tensor]:
    """0/1 masks keeping the ``k = max(1, round(fraction * numel))`` highest scores, globally or per
    tensor."""
    if not (0.0 < float(fraction) <= 1.0):
        raise HyperparameterError(f"select_fraction={fraction!r} must be in (0, 1]")
    if per_layer:
        out = {}
        for name, s in scores.items():
            k = max(1, int(round(fraction * s.numel())))
            out[name] = _topk_mask(s.reshape(-1), k).reshape(s.shape)
        return out
    flat = torch.cat([s.reshape(-1).float() for s in scores.values()])
    k = max(1, int(round(fraction * flat.numel())))
    chosen = _topk_mask(flat, k)
    out, start = {}, 0
    for name, s in scores.items():
        out[name] = chosen[start:start + s.numel()].reshape(s.shape).to(s.dtype if s.dtype.is_floating_point
                                                                        else torch.float32)
        start += s.numel()
    return out


def last_layer_mask(model: nn.Module) -> dict[str, torch.Tensor]:
    """All-ones for the parameters of the last module (in registration order) that owns trainable
    parameters, zeros elsewhere."""
    last = None
    for mod_name, module in model.named_modules():
        if any(p.requires_grad for p in module.parameters(recurse=False)):
            last = mod_name
    prefix = f"{last}." if last else ""
    return {n: (torch.ones_like(p) if n.startswith(prefix) and "." not in n[len(prefix):] else torch.zeros_like(p))
            for n, p in model.named_parameters() if p.requires_grad}


def mask_fraction(mask: dict[str, torch.Tensor]) -> float:
    """Fraction of entries a mask selects."""
    total = sum(m.numel() for m in mask.values())
    return float(sum(float(m.sum()) for m in mask.values()) / max(total, 1))


def _topk_mask(flat: torch.Tensor, k: int) -> torch.Tensor:
    mask = torch.zeros_like(flat, dtype=torch.float32)
    mask[torch.topk(flat.float(), k, sorted=False).indices] = 1.0
    return mask


def _as_data(data: Any, max_samples: Optional[int]) -> Split:
    if data is None:
        raise HyperparameterError("this selection score needs data (the forget set); got None")
    if isinstance(data, (list, tuple)) and data and all(isinstance(d, Split) or d is None for d in data):
        split = Split.concat(*data)
    else:
        split = as_split(data, "selection")
    if max_samples is not None and len(split) > max_samples:
        split = Split(split.x[:max_samples], split.y[:max_samples],
                      None if split.indices is None else split.indices[:max_samples])
    return split


#: the task splits the data scores read (``selection_data``); a method that takes ``select`` declares them
SELECTION_SPLITS = ("forget", "corrected")


def selection_data(task: Any) -> Sequence[Split]:
    """The data the selection scores use for a task: the forget set, plus its corrected versions when
    the request is a correction (so the score sees both terms of grad L(Z~) - grad L(Z))."""
    return [s for s in (getattr(task, name, None) for name in SELECTION_SPLITS) if s is not None]
