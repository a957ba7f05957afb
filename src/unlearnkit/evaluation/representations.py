"""What a model does with the data, class by class and layer by layer: any model in, numbers out.

* ``per_class_accuracy`` and ``prediction_matrix``: accuracy per true class, and how often each class
  is predicted as each other class.
* ``layer_grams``: the Gram matrix ``X Xᵀ`` of each conv/linear layer's output on a set of inputs
  (n x n whatever the layer's width, so a wide layer costs no memory beyond its batch).
* ``cka`` / ``linear_cka``: linear centred kernel alignment (Kornblith et al., "Similarity of Neural
  Network Representations Revisited", ICML 2019, https://arxiv.org/abs/1905.00414) from the unbiased
  HSIC estimator (Song et al., JMLR 2012), as in Nguyen et al. (ICLR 2021). 1 for the same
  representation, invariant to orthogonal transforms and isotropic scaling, near 0 for independent
  ones even when the width exceeds the number of examples (the biased estimator is not).
* ``penultimate_features`` and ``embed_2d``: the input of the last linear layer, projected to 2-D by
  PCA and optionally turned (orthogonal Procrustes) to match another model's projection, so that two
  models' pictures of the same examples can be laid side by side.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd

from ..data.split import Split
from ..errors import DataError
from ..utils import eval_mode
from .metrics import predict_logits


def _check_classes(split: Split, num_classes: int) -> None:
    if num_classes < 1:
        raise DataError(f"num_classes must be >= 1, got {num_classes}")
    if len(split) and (int(split.y.min()) < 0 or int(split.y.max()) >= num_classes):
        raise DataError(f"labels must be in [0, {num_classes - 1}], found {int(split.y.min())}..{int(split.y.max())}")


def predictions(model: nn.Module, split: Split) -> np.ndarray:
    """Top-1 predicted class of every example (empty for an empty split)."""
    if len(split) == 0:
        return np.zeros(0, dtype=np.int64)
    return predict_logits(model, split).argmax(1).numpy()


def per_class_accuracy(model: nn.Module, split: Split, num_classes: int) -> np.ndarray:
    """Accuracy on the examples of each true class (``num_classes`` values; NaN for a class with none)."""
    _check_classes(split, num_classes)
    pred, y = predictions(model, split), split.y.cpu().numpy()
    counts = np.bincount(y, minlength=num_classes).astype(float)
    correct = np.bincount(y[pred == y], minlength=num_classes).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, correct / np.maximum(counts, 1), np.nan)


def prediction_matrix(model: nn.Module, split: Split, num_classes: int) -> np.ndarray:
    """Counts ``m[true, predicted]`` over ``split`` (a confusion matrix; rows sum to the class sizes)."""
    _check_classes(split, num_classes)
    pred, y = predictions(model, split), split.y.cpu().numpy()
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (y, np.clip(pred, 0, num_classes - 1)), 1)
    return m


# -- layers ------------------------------------------------------------------------------------------
def weighted_layers(model: nn.Module, max_layers: int = 12) -> list[tuple[str, nn.Module]]:
    """The model's conv and linear modules in registration order (the forward order of the models
    here), as (name, module); at most ``max_layers`` of them, evenly spaced, the last always kept."""
    layers = [(name or type(m).__name__, m) for name, m in model.named_modules() if isinstance(m, (_ConvNd, nn.Linear))]
    if len(layers) > max_layers:
        keep = np.unique(np.linspace(0, len(layers) - 1, max_layers).round().astype(int))
        layers = [layers[i] for i in keep]
    return layers


@torch.no_grad()
def layer_grams(model: nn.Module, x: torch.Tensor, layers: Optional[list[tuple[str, nn.Module]]] = None,
                batch_size: int = 256) -> dict[str, np.ndarray]:
    """Layer name -> Gram matrix ``X Xᵀ`` (n x n, float64) of that layer's flattened output on ``x``,
    for ``layers`` (default: ``weighted_layers(model)``); the model runs in eval mode. When ``x`` fits
    in one batch, each layer's Gram matrix is formed as its output appears and the output dropped, so a
    wide network never holds more than one layer's activations at once."""
    layers = weighted_layers(model) if layers is None else layers
    one_batch = len(x) <= batch_size
    outputs: dict[str, list[torch.Tensor]] = {name: [] for name, _ in layers}

    def keep(name: str, out: torch.Tensor) -> None:
        feats = out.detach().flatten(1).cpu()
        outputs[name].append((feats.double() @ feats.double().T) if one_batch else feats.float())

    hooks = [module.register_forward_hook(lambda _m, _i, out, name=name: keep(name, out)) for name, module in layers]
    device = next(iter(model.parameters()), torch.zeros(0)).device
    try:
        with eval_mode(model):
            for start in range(0, len(x), batch_size):
                model(x[start:start + batch_size].to(device))
    finally:
        for h in hooks:
            h.remove()
    if one_batch:
        return {name: parts[0].numpy() for name, parts in outputs.items()}
    grams = {}
    for name, parts in outputs.items():
        feats = torch.cat(parts).double()
        grams[name] = (feats @ feats.T).numpy()
    return grams


@torch.no_grad()
def penultimate_features(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """The input of the model's last linear module for every row of ``x`` (n x width, float64); the
    logits themselves for a model without a linear module."""
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)]
    parts: list[torch.Tensor] = []
    device = next(iter(model.parameters()), torch.zeros(0)).device
    hook = linear[-1].register_forward_hook(lambda _m, inp, _o: parts.append(inp[0].detach().flatten(1).cpu())) \
        if linear else None
    try:
        with eval_mode(model):
            for start in range(0, len(x), batch_size):
                out = model(x[start:start + batch_size].to(device))
                if hook is None:
                    parts.append(out.detach().flatten(1).cpu())
    finally:
        if hook is not None:
            hook.remove()
    return torch.cat(parts).double().numpy() if parts else np.zeros((0, 0))


# -- CKA --------------------------------------------------------------------------------------------
def _unbiased_hsic(k: np.ndarray, l: np.ndarray) -> float:
    """Song et al.'s unbiased HSIC estimator of two n x n Gram matrices (n >= 4)."""
    n = k.shape[0]
    k, l = k.copy(), l.copy()
    np.fill_diagonal(k, 0.0)
    np.fill_diagonal(l, 0.0)
    ones_k, ones_l = k.sum(0), l.sum(0)
    trace = float((k * l).sum())
    return (trace + ones_k.sum() * ones_l.sum() / ((n - 1) * (n - 2)) - 2.0 * float(ones_k @ ones_l) / (n - 2)) \
        / (n * (n - 3))


def cka(k: np.ndarray, l: np.ndarray) -> float:
    """Linear CKA of two representations of the same n examples given as Gram matrices ``X Xᵀ`` and
    ``Y Yᵀ`` (debiased, see the module docstring); NaN when either representation is constant."""
    k, l = np.asarray(k, dtype=np.float64), np.asarray(l, dtype=np.float64)
    if k.ndim != 2 or k.shape != l.shape or k.shape[0] != k.shape[1]:
        raise DataError(f"cka needs two square Gram matrices of the same size, got {k.shape} and {l.shape}")
    if k.shape[0] < 4:
        raise DataError(f"cka needs at least 4 examples, got {k.shape[0]}")
    kl, kk, ll = _unbiased_hsic(k, l), _unbiased_hsic(k, k), _unbiased_hsic(l, l)
    if kk <= 0 or ll <= 0:
        return float("nan")
    return float(kl / math.sqrt(kk * ll))


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of two feature matrices (n x d1 and n x d2: rows are the same examples)."""
    x, y = np.asarray(x, dtype=np.float64).reshape(len(x), -1), np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    if len(x) != len(y):
        raise DataError(f"linear_cka needs the same examples in both: {len(x)} and {len(y)} rows")
    return cka(x @ x.T, y @ y.T)


# -- 2-D embeddings ---------------------------------------------------------------------------------
def embed_2d(features: np.ndarray, reference: Optional[np.ndarray] = None,
             match: Optional[np.ndarray] = None) -> np.ndarray:
    """PCA of ``features`` (n x d) to 2-D, scaled to unit RMS radius. Given ``reference`` (n x 2, the
    same examples in another model's projection), the result is rotated/reflected (orthogonal
    Procrustes, fit on the rows ``match`` or all rows) to lie as close to it as a rotation allows.

    The decompositions run in torch, under its thread setting (numpy's BLAS threads would not be)."""
    f = torch.as_tensor(np.asarray(features, dtype=np.float64))
    if f.ndim != 2 or len(f) < 2:
        raise DataError(f"embed_2d needs an (n >= 2, d) feature matrix, got shape {tuple(f.shape)}")
    f = f - f.mean(0)
    _, _, vt = torch.linalg.svd(f, full_matrices=False)
    coords = f @ vt[:2].T
    if coords.shape[1] < 2:  # a one-dimensional representation
        coords = torch.nn.functional.pad(coords, (0, 2 - coords.shape[1]))
    radius = float((coords ** 2).sum(1).mean().sqrt())
    coords = coords / radius if radius > 0 else coords
    if reference is not None:
        rows = slice(None) if match is None else torch.as_tensor(np.asarray(match))
        ref = torch.as_tensor(np.asarray(reference, dtype=np.float64))[rows]
        u, _, wt = torch.linalg.svd(coords[rows].T @ (ref - ref.mean(0)))  # argmin_R ||A R - B||, R orthogonal
        coords = coords @ (u @ wt)
    return coords.numpy()
