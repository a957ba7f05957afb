"""``random``: forget a uniformly random subset of the training set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..params import Hyperparameters, hp
from .base import ScenarioData, Scenario, check_indices, make_task, register_scenario, resolve_count


@dataclass
class RandomOptions(Hyperparameters):
    forget_size: float = hp(0.1, "fraction (< 1) or count (>= 1) of training samples to forget")
    forget_indices: Optional[str] = hp(None, "explicit comma-separated training indices (overrides forget_size)")


@register_scenario
class RandomScenario(Scenario):
    name = "random"
    summary = "forget a random fraction or count of training samples"
    Options = RandomOptions

    def build(self, bundle, seed):
        n = len(bundle.train)
        if self.options.forget_indices:
            idx = check_indices(parse_indices(self.options.forget_indices), n)
        else:
            k = resolve_count(self.options.forget_size, n)
            idx = np.sort(np.random.default_rng(seed).choice(n, k, replace=False))
        return ScenarioData(bundle.train, idx, make_task(bundle, bundle.train, idx, metadata={"scenario": self.name}))


def parse_indices(text) -> list[int]:
    from ..errors import DataError

    if isinstance(text, (list, tuple, np.ndarray)):
        return list(text)
    try:
        return [int(t) for t in str(text).replace(" ", "").split(",") if t]
    except ValueError:
        raise DataError(f"forget indices must be comma-separated integers, got {text!r}") from None
