"""Unlearning methods: one file per method, each registered by name on import.

Every module in this package (but the family bases ``base`` and ``iterative``) is a method and is
imported here, so adding a method is adding a file. The building blocks that methods share (the
registry, no-op detection, parameter selection, request state, gradient sums, ...) live in
``blocks/``.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from torch import nn

from ..task import UnlearningTask
from .base import METHODS, ClosedFormMethod, Hyperparameters, UnlearningMethod, hp, register_method
from .iterative import IterativeMethod, IterativeParams
from .blocks.state import RequestState

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.ispkg and _info.name not in ("base", "iterative") and not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")


def get_method(name: str, **hyperparameters: Any) -> UnlearningMethod:
    """Instantiate a registered method with hyperparameter overrides."""
    return METHODS.get(name)(**hyperparameters)


def method_and_task(model: Any, method: str, hyperparameters: dict[str, Any], **data: Any
                    ) -> tuple[UnlearningMethod, UnlearningTask]:
    """The two checked halves of an API call: the method built from its name and hyperparameters,
    then the task built from the user's data (``forget``, ``retain``, ... as ``UnlearningTask.from_data``
    takes them) and validated against ``model``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    algorithm = get_method(method, **hyperparameters)  # validates the name and hyperparameters first
    return algorithm, UnlearningTask.from_data(model, **data)


def list_methods() -> list[str]:
    return METHODS.names()


__all__ = ["METHODS", "ClosedFormMethod", "Hyperparameters", "IterativeMethod", "IterativeParams",
           "RequestState", "UnlearningMethod", "get_method", "hp", "list_methods", "register_method"]
