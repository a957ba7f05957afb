"""Unlearning methods: one file per method, each registered by name on import.

Every module in this package is imported here, so adding a method is adding a file.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from .base import METHODS, ClosedFormMethod, Hyperparameters, UnlearningMethod, hp, register_method
from .iterative import IterativeMethod, IterativeParams
from .state import RequestState

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name not in ("base", "iterative") and not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")


def get_method(name: str, **hyperparameters: Any) -> UnlearningMethod:
    """Instantiate a registered method with hyperparameter overrides."""
    return METHODS.get(name)(**hyperparameters)


def list_methods() -> list[str]:
    return METHODS.names()


__all__ = ["METHODS", "ClosedFormMethod", "Hyperparameters", "IterativeMethod", "IterativeParams",
           "RequestState", "UnlearningMethod", "get_method", "hp", "list_methods", "register_method"]
