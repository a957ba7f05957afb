"""The one training loop used for original models, Retrain and fine-tuning baselines."""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, fields
from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

from .checks import nonfinite_parameters
from .data.split import Split, as_model_dtype
from .errors import HyperparameterError, NonFiniteError
from .params import convert_fields

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainRecipe:
    """How a model is trained from scratch. Part of the cache key of trained models."""

    optimizer: str = "sgd"  # "sgd" | "adam"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    epochs: int = 30
    batch_size: int = 64
    schedule: str = "cosine"  # "cosine" | "constant"

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adam"):
            raise HyperparameterError(f"optimizer {self.optimizer!r} is not supported; use 'sgd' or 'adam'")
        if self.schedule not in ("cosine", "constant"):
            raise HyperparameterError(f"schedule {self.schedule!r} is not supported; use 'cosine' or 'constant'")
        for name in ("lr", "momentum", "weight_decay"):
            if not math.isfinite(getattr(self, name)):
                raise HyperparameterError(f"train.{name}={getattr(self, name)!r} must be a finite number")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.momentum < 0 or self.weight_decay < 0:
            raise HyperparameterError(f"recipe needs epochs >= 1, batch_size >= 1, lr > 0, momentum >= 0, "
                                      f"weight_decay >= 0: {self}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainRecipe":
        """From a mapping; CLI/YAML strings are converted to each field's type ("1e-3" -> 0.001)."""
        names = {f.name for f in fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise HyperparameterError(f"unknown training-recipe key(s) {sorted(unknown)}; valid: {sorted(names)}")
        return cls(**convert_fields(cls, values, owner="train"))


#: Recipes that give a well-trained original model on each embedded (dataset, model) pair (the
#: accuracies they reach are in BENCHMARKS.md).
DEFAULT_RECIPES: dict[tuple[str, str], TrainRecipe] = {
    ("digits", "cnn"): TrainRecipe("sgd", lr=0.05, epochs=30, batch_size=64),
    ("digits", "mlp"): TrainRecipe("sgd", lr=0.05, epochs=30, batch_size=64),
    ("mnist1d", "mlp"): TrainRecipe("adam", lr=1e-3, momentum=0.0, weight_decay=0.0, epochs=60,
                                    batch_size=64, schedule="constant"),
    ("mnist1d", "cnn1d"): TrainRecipe("adam", lr=1e-3, momentum=0.0, weight_decay=0.0, epochs=60,
                                      batch_size=64, schedule="constant"),
    ("synthetic", "mlp"): TrainRecipe("adam", lr=3e-3, momentum=0.0, weight_decay=0.0, epochs=20,
                                      batch_size=64, schedule="constant"),
    ("cifar10", "resnet18"): TrainRecipe("sgd", lr=0.1, epochs=100, batch_size=256),
    ("cifar100", "resnet18"): TrainRecipe("sgd", lr=0.1, epochs=100, batch_size=256),
}


def default_recipe(dataset: str, model: str) -> TrainRecipe:
    return DEFAULT_RECIPES.get((dataset, model), TrainRecipe())


def fused_supported(device: torch.device) -> bool:
    """Whether torch has a fused (one kernel for all parameters) SGD/Adam step on ``device``."""
    return torch.device(device).type in ("cpu", "cuda")


def make_optimizer(params, name: str, lr: float, momentum: float = 0.9, weight_decay: float = 0.0):
    """SGD or Adam, fused where torch supports it (fewer kernel launches per step; same update)."""
    params = list(params)
    fused = bool(params) and fused_supported(params[0].device)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, fused=fused)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused)
    raise HyperparameterError(f"optimizer {name!r} is not supported; use 'sgd' or 'adam'")


def epoch_learning_rates(recipe: TrainRecipe) -> list[float]:
    """The learning rate of each epoch (``schedule``: cosine annealing to 0 over the epochs, or constant)."""
    if recipe.schedule == "constant":
        return [recipe.lr] * recipe.epochs
    # torch's own scheduler on a throw-away optimiser: the same values it gives a real one
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=recipe.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=recipe.epochs)
    rates = []
    for _ in range(recipe.epochs):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return rates


def train_model(
    model: nn.Module,
    data: Split,
    recipe: TrainRecipe,
    *,
    seed: int = 0,
    generator: Optional[torch.Generator] = None,
    device: Optional[torch.device] = None,
    progress: bool = False,
    desc: str = "train",
) -> nn.Module:
    """Train ``model`` in place on ``data`` with cross-entropy and return it (in eval mode).

    Batch order depends only on ``seed`` (or comes from ``generator``); the caller seeds initialisation.
    """
    device = device or next(model.parameters()).device
    model.to(device).train()
    data = as_model_dtype(model, data, "training").to(device)  # float64 inputs (NumPy's default) and the like
    opt = make_optimizer(model.parameters(), recipe.optimizer, recipe.lr, recipe.momentum, recipe.weight_decay)
    gen = generator if generator is not None else torch.Generator().manual_seed(seed)
    has_batchnorm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    rates = epoch_learning_rates(recipe)
    if progress:
        from tqdm.auto import tqdm

        rates = tqdm(rates, desc=desc, leave=False)
    for lr in rates:
        for group in opt.param_groups:
            group["lr"] = lr
        for xb, yb in data.batches(recipe.batch_size, shuffle=True, generator=gen):
            if has_batchnorm and len(yb) < 2:
                continue  # a batch of one breaks BatchNorm statistics
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
    diverged = nonfinite_parameters(model)
    if diverged:
        raise NonFiniteError(f"training diverged: {desc} has NaN or infinite weights ({', '.join(diverged[:3])}); "
                             f"lower the learning rate (train.lr={recipe.lr})")
    return model.eval()
