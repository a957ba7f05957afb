"""``UnlearningTask``: the data an unlearning method may use, validated against the model."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional

import torch
from torch import nn

from .data.split import Split, as_model_dtype, as_split
from .errors import DataError
from .training import TrainRecipe
from .utils import eval_mode

SPLIT_NAMES = ("forget", "retain", "test", "third_party", "corrected")


@dataclass
class UnlearningTask:
    """What is to be forgotten and what else a method may look at.

    ``forget`` is required; ``retain`` (the rest of the training data), ``test`` and
    ``third_party`` (unseen data) are optional: a method declares which it needs. ``corrected``
    holds the fixed versions of the forget examples when the request is a correction (wrong labels,
    a sensitive feature) rather than a deletion; Retrain then trains on retain + corrected. ``recipe`` is
    the training recipe of the original model (used by Retrain). ``metadata`` carries scenario
    facts (forgotten class, trigger, target labels for relabelling, ...).
    """

    forget: Split
    retain: Optional[Split] = None
    test: Optional[Split] = None
    third_party: Optional[Split] = None
    corrected: Optional[Split] = None
    num_classes: Optional[int] = None
    recipe: Optional[TrainRecipe] = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def available(self) -> set[str]:
        return {name for name in SPLIT_NAMES if getattr(self, name) is not None}

    def to(self, device: torch.device) -> "UnlearningTask":
        moved = {n: getattr(self, n).to(device) for n in SPLIT_NAMES if getattr(self, n) is not None}
        return replace(self, **moved)

    @classmethod
    def from_data(
        cls,
        model: Optional[nn.Module],
        forget: Any,
        retain: Any = None,
        test: Any = None,
        third_party: Any = None,
        num_classes: Optional[int] = None,
        **kwargs: Any,
    ) -> "UnlearningTask":
        """Build a task from user data (Datasets, DataLoaders or (x, y) pairs) and validate it:
        the same input shape everywhere, labels inside the model's output range. Inputs of another
        dtype (float64 as NumPy saves by default, float16, integers) are converted to the dtype of the
        model's parameters; labels of any integer dtype become int64."""
        splits = {"forget": as_split(forget, "forget")}
        for name, value in (("retain", retain), ("test", test), ("third_party", third_party)):
            if value is not None:
                splits[name] = as_split(value, name)
        if model is not None:
            splits = {name: as_model_dtype(model, split, name) for name, split in splits.items()}
            num_classes = validate_against_model(model, splits, num_classes)
        return cls(num_classes=num_classes, **splits, **kwargs)


def validate_against_model(model: nn.Module, splits: dict[str, Split], num_classes: Optional[int]) -> int:
    """Check every split has the same example shape, the model accepts it, and labels fit the
    model's outputs; return the number of classes."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    shapes = {name: tuple(s.x.shape[1:]) for name, s in splits.items()}
    if len(set(shapes.values())) > 1:
        raise DataError(f"splits have different input shapes: {shapes}")
    example = next(iter(splits.values())).x[:1]
    params = list(model.parameters())
    device = params[0].device if params else torch.device("cpu")
    try:
        with eval_mode(model), torch.no_grad():
            out = model(example.to(device))
    except RuntimeError as exc:
        raise DataError(
            f"the model cannot process inputs of shape {tuple(example.shape[1:])}: {exc}".split("\n")[0]
        ) from exc
    if out.ndim != 2:
        raise DataError(f"the model must return logits of shape (batch, classes), got {tuple(out.shape)}")
    n_out = int(out.shape[1])
    if num_classes is not None and num_classes != n_out:
        raise DataError(f"num_classes={num_classes} but the model outputs {n_out} logits")
    for name, s in splits.items():
        lo, hi = int(s.y.min()), int(s.y.max())
        if lo < 0 or hi >= n_out:
            bad = lo if lo < 0 else hi
            raise DataError(f"{name} labels must be in [0, {n_out - 1}] (the model has {n_out} outputs), "
                            f"found label {bad}")
    return n_out
