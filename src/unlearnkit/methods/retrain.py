"""Retrain: train from scratch on the retain set only, the gold standard unlearning is measured against.

No paper of its own: a model retrained without the forgotten data is what exact unlearning means,
and every approximate method's row is read as its distance to this one.

    theta <- reset_parameters();  theta <- train(theta, D_retain [+ D_corrected], recipe of the original)

Every layer is re-initialised and trained with the original model's recipe (``task.recipe``); for
a correction request (``task.corrected`` set) the corrected examples join the retain set.

Defaults:
    epochs None       the original model's recipe (``task.recipe``): Retrain repeats its training
    lr 0.05           used only when the task carries no recipe: ``TrainRecipe``'s default
    optimizer sgd     used only when the task carries no recipe: ``TrainRecipe``'s default

    >>> gold = get_method("retrain").unlearn(model, task)   # task needs forget and retain

Design notes: docs/methods/retrain.md
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..data.split import Split
from ..models import reinitialize
from ..training import TrainRecipe, train_model
from .base import Hyperparameters, UnlearningMethod, hp, register_method


@dataclass
class RetrainParams(Hyperparameters):
    epochs: Optional[int] = hp(None, "epochs; None = the original model's recipe (task.recipe)",
                               "Retrain repeats the original training")
    lr: float = hp(0.05, "learning rate when the task carries no recipe", "TrainRecipe default (training.py)")
    optimizer: str = hp("sgd", "optimiser when the task carries no recipe", "TrainRecipe default (training.py)",
                        choices=("sgd", "adam"))


@register_method
class Retrain(UnlearningMethod):
    name = "retrain"
    summary = "train from scratch on the retain set with the original recipe (gold standard)"
    family = "reference"
    Params = RetrainParams
    requires = ("forget", "retain")
    optional = ("corrected",)  # a correction request trains on retain + the corrected examples

    def _unlearn(self, model, task):
        data, recipe = self._training_plan(model, task)
        return train_model(model, data, recipe, seed=self.seed, device=self.device)

    def _training_plan(self, model, task):
        recipe = task.recipe or TrainRecipe(optimizer=self.params.optimizer, lr=self.params.lr)
        if self.params.epochs:
            recipe = TrainRecipe(**{**recipe.to_dict(), "epochs": self.params.epochs})
        reinitialize(model)
        return (task.retain if task.corrected is None else Split.concat(task.retain, task.corrected)), recipe
