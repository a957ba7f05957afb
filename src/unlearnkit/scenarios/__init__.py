"""Scenarios (one file each, registered on import): random, class, ..."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from .base import SCENARIOS, Scenario, ScenarioData, check_indices, make_task, register_scenario, resolve_count

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name != "base" and not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")


def get_scenario(name: str, **options: Any) -> Scenario:
    return SCENARIOS.get(name)(**options)


__all__ = ["SCENARIOS", "Scenario", "ScenarioData", "check_indices", "get_scenario", "make_task",
           "register_scenario", "resolve_count"]
