"""The typed experiment config: what determines an experiment's results, resolved once.

``ExperimentConfig.validate()`` converts every value from flags, YAML or a bench spec to the type its
owner declares (a method's Params, a scenario's Options, TrainRecipe) and checks it, before any
training. ``cell_key`` and ``experiment_identity`` hash the typed values plus the runtime facts that
change trained weights (``bench/runtime.py``).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any

from ..._version import __version__
from ...checks import check_field_types, check_seeds
from ...data import DATASETS
from ...errors import UnlearnkitError
from ...methods import METHODS, get_method
from ...models import MODELS
from ...scenarios import SCENARIOS
from ...training import TrainRecipe, default_recipe
from ...utils import resolve_device, stable_hash
from .runtime import runtime_key


@dataclass
class ExperimentConfig:
    """Everything that determines an experiment's results (saved in results.json)."""

    dataset: str = "digits"
    model: str = "cnn"
    scenario: str = "random"
    methods: list[str] = field(default_factory=lambda: ["original", "retrain", "ft"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    dataset_options: dict[str, Any] = field(default_factory=dict)
    model_options: dict[str, Any] = field(default_factory=dict)
    scenario_options: dict[str, Any] = field(default_factory=dict)
    method_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)  # overrides of the default training recipe
    device: str = "auto"
    threads: int = 1  # torch threads of each process that trains (bench/runtime.py: the policy)

    def validate(self) -> "ExperimentConfig":
        """Resolve in place, before any training: names are checked against the registries, and
        method hyperparameters, scenario options and recipe overrides are converted to the types
        their owners declare (a method's Params, a scenario's Options, TrainRecipe) and range-checked.
        ``--set ga.lr=0.1`` is then stored, hashed and written as the float 0.1. Returns ``self``."""
        if not isinstance(self.seeds, list):
            raise UnlearnkitError(f"experiment setting 'seeds' must be a list of integers, got {self.seeds!r}")
        self.seeds = [_seed(s) for s in self.seeds]
        check_field_types(self, "experiment setting")
        check_seeds(self.seeds)
        if not self.methods:
            raise UnlearnkitError("no methods given: pass at least one, e.g. --methods ft,ga")
        if not self.seeds:
            raise UnlearnkitError("no seeds given: pass at least one, e.g. --seeds 0")
        self.methods = [str(m) for m in self.methods]
        dupes = {m for m in self.methods if self.methods.count(m) > 1}
        if dupes:
            raise UnlearnkitError(f"method(s) listed twice: {sorted(dupes)}")
        DATASETS.get(self.dataset)
        MODELS.get(self.model)
        for name in self.methods:
            METHODS.get(name)
        for name in self.method_params:
            if name not in self.methods:
                raise UnlearnkitError(f"hyperparameters given for {name!r}, which is not among the methods "
                                      f"{self.methods}")
        self.method_params = {name: METHODS.get(name).Params.typed_overrides(dict(params), owner=name)
                              for name, params in self.method_params.items()}
        self.scenario_options = SCENARIOS.get(self.scenario).Options.typed_overrides(
            dict(self.scenario_options), owner=f"scenario {self.scenario!r}")
        recipe = self.training_recipe()
        self.recipe = {k: getattr(recipe, k) for k in self.recipe}
        self.device = str(self.device)
        resolve_device(self.device)
        if isinstance(self.threads, bool) or not str(self.threads).isdigit() or int(self.threads) < 1:
            raise UnlearnkitError(f"threads must be an integer >= 1, got {self.threads!r}")
        self.threads = int(self.threads)
        return self

    def training_recipe(self) -> TrainRecipe:
        base = default_recipe(self.dataset, self.model).to_dict()
        return TrainRecipe.from_dict({**base, **self.recipe})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).lstrip("-").isdigit():
        raise UnlearnkitError(f"seeds must be integers, got {value!r}")
    return int(value)


def cell_key(config: ExperimentConfig, method: str, seed: int) -> str:
    """Identity of one (method, seed) cell: everything in the config that can change its row.

    The method's hyperparameters enter fully resolved (defaults included), so a changed default
    makes a fresh cell instead of silently reusing a row computed with the old value; every other
    value enters typed, so "0.1" from a flag and 0.1 from YAML are the same cell."""
    config = copy.deepcopy(config).validate()
    params = get_method(method, **config.method_params.get(method, {})).params.to_dict()
    return stable_hash({"config": experiment_identity(config), "method": method, "params": params, "seed": seed,
                        "version": __version__})


def experiment_identity(config: ExperimentConfig) -> dict[str, Any]:
    """What determines an experiment's data and models, typed: the config without methods, seeds
    and hyperparameters, with the runtime facts that change trained weights (torch version, device
    type, CPU threads) in place of the device string ("auto" and "cpu" on a CPU-only machine agree)."""
    config = copy.deepcopy(config).validate()
    c = config.to_dict()
    for k in ("methods", "seeds", "method_params", "device", "threads"):
        c.pop(k)
    c["runtime"] = runtime_key(resolve_device(config.device), config.threads)
    return c


def base_hash(config: ExperimentConfig) -> str:
    """Hash of what determines an experiment's data and models (not methods, seeds or params), of
    the typed values."""
    return stable_hash(experiment_identity(config))
