"""Shared machinery of the layer baselines ``cf_k`` and ``eu_k`` (Goel et al.): find the last k
layers of any model, train only them on the retain set with the original model's recipe.

A *layer* is a convolution or a linear module, counted from the end in module registration order
(the order ``model.modules()`` lists them, which is the forward order for ``nn.Sequential`` and the
ResNets here); normalisation layers that come after the earliest selected layer are trained with
them, as in the reference (``src/methods.py``, ``resetFinalResnet``). Everything else is frozen
and runs in eval mode, so frozen BatchNorm statistics stay exactly as they were (the reference
leaves them in train mode, where their running statistics keep drifting).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

from ...errors import HyperparameterError
from ...training import TrainRecipe
from ..base import hp
from ..iterative import IterativeMethod, IterativeParams

_NORMS = (_BatchNorm, nn.LayerNorm, nn.GroupNorm)
_RECIPE_SOURCE = "Goel et al. reference trains with the original model's arguments (src/unlearn.py, args_rf/args_ftF)"


def last_layers(model: nn.Module, k: int) -> list[nn.Module]:
    """The modules trained by a last-k-layers method: the last ``k`` conv/linear modules plus the
    normalisation modules registered after the earliest of them, in registration order."""
    modules = list(model.modules())
    weighted = [i for i, m in enumerate(modules) if isinstance(m, (_ConvNd, nn.Linear))]
    if k < 1 or k > len(weighted):
        raise HyperparameterError(
            f"k={k} must be between 1 and the model's number of conv/linear layers ({len(weighted)}); "
            "k equal to that number retrains the whole network (use 'retrain' for that)"
        )
    start = weighted[-k]
    return [m for m in modules[start:] if isinstance(m, (_ConvNd, nn.Linear, *_NORMS))]


@dataclass
class LastLayersParams(IterativeParams):
    k: int = hp(1, "number of final conv/linear layers trained (counted from the output)",
                "Goel et al. reference sweeps k in {1, 3, 5, 7} (scripts/unlearn.sh); 1 = the classifier")
    epochs: Optional[int] = hp(None, "epochs on the retain set; None = the original model's recipe", _RECIPE_SOURCE)
    lr: Optional[float] = hp(None, "learning rate; None = the original model's recipe", _RECIPE_SOURCE)
    batch_size: Optional[int] = hp(None, "mini-batch size; None = the original model's recipe", _RECIPE_SOURCE)
    optimizer: Optional[str] = hp(None, "sgd or adam; None = the original model's recipe", _RECIPE_SOURCE,
                                  choices=("sgd", "adam"))
    momentum: Optional[float] = hp(None, "SGD momentum; None = the original model's recipe", _RECIPE_SOURCE)
    weight_decay: Optional[float] = hp(None, "weight decay; None = the original model's recipe", _RECIPE_SOURCE)


class LastLayersMethod(IterativeMethod):
    """Train only ``last_layers(model, k)`` on the retain set (min phase); subclasses may
    re-initialise them first (``reinitialise``)."""

    Params = LastLayersParams
    requires = ("forget", "retain")
    has_min_phase = True
    reinitialise = False

    def _unlearn(self, model, task):
        declared, self.recipe = self.params, task.recipe or TrainRecipe()
        fill = {f: getattr(self.recipe, f) for f in ("epochs", "lr", "batch_size", "optimizer", "momentum",
                                                      "weight_decay") if getattr(declared, f) is None}
        self.params = replace(declared, **fill)  # None = the recipe's value, for this call only
        try:
            super()._unlearn(model, task)
        finally:
            self.params = declared

    def prepare(self, model, task):
        self.trained = last_layers(model, self.params.k)
        names = {id(p) for m in self.trained for p in m.parameters(recurse=False)}
        self.grad_flags = [(p, p.requires_grad) for p in model.parameters()]
        for p in model.parameters():
            p.requires_grad_(id(p) in names)
        trained_ids = {id(m) for m in self.trained}
        for m in model.modules():  # frozen parts run in eval mode: their statistics stay as they were
            if id(m) not in trained_ids and not any(id(c) in trained_ids for c in m.modules()):
                m.eval()
        if self.reinitialise:
            with torch.no_grad():
                for m in self.trained:
                    m.reset_parameters()
                    if isinstance(m, _BatchNorm):
                        m.reset_running_stats()

    def make_scheduler(self, optimizer):
        if self.recipe.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.params.epochs)
        return None

    def finish(self, model, task):
        for p, flag in self.grad_flags:
            p.requires_grad_(flag)

    def min_step(self, x, y, epoch):
        return nn.functional.cross_entropy(self.model(x), y)
