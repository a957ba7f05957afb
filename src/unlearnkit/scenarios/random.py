"""``random``: forget a uniformly random subset of the training set.

With ``requests`` = R > 1, R disjoint random subsets of ``forget_size`` each are forgotten one
request after the other (continual deletion); explicit ``forget_indices`` are then split into R
equal consecutive groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import DataError
from ..params import Hyperparameters, hp
from .base import (Scenario, ScenarioData, check_requests, draw_requests, given_requests, make_task,
                   register_scenario, resolve_count)


@dataclass
class RandomOptions(Hyperparameters):
    forget_size: float = hp(0.1, "fraction (< 1) or count (>= 1) of training samples to forget")
    forget_indices: Optional[str] = hp(None, "explicit comma-separated training indices (overrides forget_size)")
    requests: int = hp(1, "sequential deletion requests, each of forget_size samples (continual deletion)")


@register_scenario
class RandomScenario(Scenario):
    name = "random"
    summary = "forget a random fraction or count of training samples"
    Options = RandomOptions

    def build(self, bundle, seed):
        n, r = len(bundle.train), self.options.requests
        check_requests(r)
        if self.options.forget_indices:
            idx, requests = given_requests(parse_indices(self.options.forget_indices), n, r)
        else:
            idx, requests = draw_requests(np.arange(n), resolve_count(self.options.forget_size, n), r, seed)
        task = make_task(bundle, bundle.train, idx, metadata={"scenario": self.name})
        return ScenarioData(bundle.train, idx, task, requests=requests)


def parse_indices(text) -> list[int]:
    if isinstance(text, (list, tuple, np.ndarray)):
        return list(text)
    try:
        return [int(t) for t in str(text).replace(" ", "").split(",") if t]
    except ValueError:
        raise DataError(f"forget indices must be comma-separated integers, got {text!r}") from None
