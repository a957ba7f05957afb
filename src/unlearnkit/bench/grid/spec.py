"""Benchmark specs: a YAML grid of datasets x models x scenarios x methods x seeds.

```yaml
name: quick                      # names the default store (bench-results/<name>.sqlite)
seeds: [0, 1, 2]
datasets:                        # a name, or {name, options, models, recipe}
  - {name: digits, models: [cnn]}
scenarios:                       # a name, or {name, options, methods | extra_methods | exclude_methods}
  - {name: random, options: {forget_size: 0.1}}
  - {name: class, options: {forget_class: 3}, extra_methods: [unsir]}
methods: [original, retrain, ft, ga]
method_params: {ft: {epochs: 5}} # fixed hyperparameters (override defaults)
search:                          # Optuna search spaces (tuned against Retrain on a validation split)
  ga: {lr: {low: 1.0e-4, high: 1.0e-2, log: true}, epochs: {choices: [2, 5]}}
tune: {trials: 8, seeds: [1000]}
threads: 1                       # torch threads per worker process (part of every cell key)
```

One ``ExperimentConfig`` per (dataset, model, scenario); its cells are (method, seed). Every name is
checked against the registries when the spec loads, so an unregistered method fails before any work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ...checks import check_seeds, read_yaml
from ...data.datasets import non_default_options
from ...errors import UnlearnkitError, UnknownNameError
from ...utils import stable_hash
from ..pipeline.config import ExperimentConfig, base_hash, cell_key, experiment_identity  # noqa: F401 (base_hash re-exported)

SPEC_KEYS = {"name", "description", "seeds", "datasets", "models", "scenarios", "methods", "method_params",
             "search", "tune", "device", "threads"}


def _label(name: str, options: dict) -> str:
    if not options:
        return name
    return name + "(" + ",".join(f"{k}={options[k]}" for k in sorted(options)) + ")"


@dataclass
class Cell:
    """One (experiment, method, seed) of the grid."""

    config: ExperimentConfig
    method: str
    seed: int
    key: str
    group: str  # dataset/model/scenario label

    @property
    def params(self) -> dict:
        return self.config.method_params.get(self.method, {})


@dataclass
class TuneSettings:
    trials: int = 10
    seeds: list[int] = field(default_factory=lambda: [1000])
    timeout_s: Optional[float] = None


@dataclass
class BenchSpec:
    name: str
    experiments: list[ExperimentConfig]
    search: dict[str, dict[str, Any]] = field(default_factory=dict)
    tune: TuneSettings = field(default_factory=TuneSettings)
    path: Optional[Path] = None
    description: str = ""

    @staticmethod
    def group_of(config: ExperimentConfig) -> str:
        """The experiment's label in reports, e.g. ``mnist1d(n_samples=20000)/cnn1d/random(forget_size=30)``:
        the dataset with the options that differ from its defaults (two sizes of one dataset are two
        experiments), the model, the scenario with its options."""
        dataset = _label(config.dataset, non_default_options(config.dataset, config.dataset_options))
        return f"{dataset}/{config.model}/{_label(config.scenario, config.scenario_options)}"

    def check_data(self) -> None:
        """Load each dataset and build each scenario once (first seed), so that configuration errors
        that depend on the data (a forget size that selects nothing, a class the dataset lacks, a bad
        dataset option) fail before any cell runs instead of in every cell."""
        from ...data import load_dataset
        from ...scenarios import get_scenario

        bundles: dict[str, Any] = {}
        for c in self.experiments:
            key = stable_hash([c.dataset, c.dataset_options])
            try:
                if key not in bundles:
                    bundles[key] = load_dataset(c.dataset, **c.dataset_options)
                get_scenario(c.scenario, **c.scenario_options).build(bundles[key], c.seeds[0])
            except UnlearnkitError as exc:
                raise type(exc)(f"spec {self.name}, {self.group_of(c)}: {exc}") from None

    def cells(self) -> list[Cell]:
        out = []
        for c in self.experiments:
            for seed in c.seeds:
                for m in c.methods:
                    out.append(Cell(c, m, seed, cell_key(c, m, seed), self.group_of(c)))
        return out


def _as_list(value: Any, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise UnlearnkitError(f"spec key {what!r} must be a list, got {value!r}")
    return value


def _entry(value: Any, what: str) -> dict:
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, dict) and "name" in value:
        return dict(value)
    raise UnlearnkitError(f"each of {what} must be a name or a mapping with 'name', got {value!r}")


def _check_search(search: dict) -> None:
    for method, space in search.items():
        if not isinstance(space, dict) or not space:
            raise UnlearnkitError(f"search space of {method!r} must map parameter -> range, got {space!r}")
        for param, rng in space.items():
            ok = isinstance(rng, dict) and ("choices" in rng or ("low" in rng and "high" in rng))
            if not ok:
                raise UnlearnkitError(f"search.{method}.{param} must be {{low, high[, log]}} or {{choices: [...]}}, "
                                      f"got {rng!r}")
        _check_space_values(method, space)


def _check_space_values(method: str, space: dict) -> None:
    """Every searched name is a hyperparameter of the method and every end of its range (or every
    choice) is a valid value, so that a bad space fails before the first trial, not after all of them."""
    from ...methods import METHODS, get_method

    if method not in METHODS:
        return  # reported with the other unregistered names
    for param, rng in space.items():
        values = list(rng["choices"]) if "choices" in rng else [rng["low"], rng["high"]]
        if "choices" not in rng and not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise UnlearnkitError(f"search.{method}.{param}: low and high must be numbers, got {values}")
        if "choices" not in rng and not rng["low"] < rng["high"]:
            raise UnlearnkitError(f"search.{method}.{param}: low ({rng['low']}) must be below high ({rng['high']})")
        for value in values:
            try:
                get_method(method, **{param: value})
            except UnlearnkitError as exc:
                raise type(exc)(f"search.{method}.{param}: {exc}") from None


def _check_method_names(data: dict, mentioned: set, where: str) -> None:
    """Every method the spec names (top level and per scenario) must be registered."""
    from ...methods import METHODS

    for s in _as_list(data.get("scenarios"), "scenarios"):
        if isinstance(s, dict):
            for k in ("methods", "extra_methods", "exclude_methods"):
                mentioned |= set(s.get(k) or [])
    registered = set(METHODS.names())
    missing = sorted(mentioned - registered)
    if missing:
        raise UnknownNameError(f"{where}: method(s) {missing} are not registered; registered methods: "
                               f"{', '.join(sorted(registered))} (see `unlearnkit methods`)")


def _scenario_methods(s: dict, methods: list[str], where: str) -> list[str]:
    """A scenario's methods: its own list or the spec's, plus extra_methods, minus exclude_methods."""
    base = list(s.get("methods") or methods)
    ms = base + [m for m in s.get("extra_methods") or [] if m not in base]
    ms = [m for m in ms if m not in set(s.get("exclude_methods") or [])]
    if not ms:
        raise UnlearnkitError(f"{where}: scenario {s['name']!r} has no methods")
    return ms


def _with_params(config: ExperimentConfig, method_params: dict, tuned: dict, where: str) -> ExperimentConfig:
    """``config`` with the spec's fixed hyperparameters and the tuned values of the searched keys,
    resolved (typed and checked; errors name the experiment)."""
    group = BenchSpec.group_of(config)
    params = {}
    for m in config.methods:
        p = dict(method_params.get(m) or {})
        p.update(tuned.get((group, m), {}))
        if p:
            params[m] = p
    config.method_params = params
    try:
        return config.validate()
    except UnlearnkitError as exc:
        raise type(exc)(f"{where}, {group}: {exc}") from None


def parse_spec(data: dict, path: Optional[Path] = None, tuned: Optional[dict] = None) -> BenchSpec:
    """Build and validate a spec from a mapping. ``tuned`` maps (group, method) -> tuned params,
    merged under the spec's fixed ``method_params`` for methods that have a search space."""
    where = f"spec {path}" if path else "spec"
    if not isinstance(data, dict):
        raise UnlearnkitError(f"{where} must be a mapping")
    unknown = set(data) - SPEC_KEYS
    if unknown:
        raise UnlearnkitError(f"{where}: unknown key(s) {sorted(unknown)}; valid: {sorted(SPEC_KEYS)}")
    name = str(data.get("name") or (path.stem if path else "bench"))
    seeds = check_seeds(_as_list(data.get("seeds", [0]), "seeds"), f"{where}: seeds")
    methods = [str(m) for m in _as_list(data.get("methods"), "methods")]
    method_params = dict(data.get("method_params") or {})
    search = dict(data.get("search") or {})
    _check_search(search)
    _check_method_names(data, set(methods) | set(method_params) | set(search), where)
    tune_raw = dict(data.get("tune") or {})
    bad = set(tune_raw) - {"trials", "seeds", "timeout_s"}
    if bad:
        raise UnlearnkitError(f"{where}: unknown tune key(s) {sorted(bad)}; valid: trials, seeds, timeout_s")
    tune = TuneSettings(**tune_raw)
    overlap = set(tune.seeds) & set(seeds)
    if overlap:
        raise UnlearnkitError(f"{where}: tune.seeds {sorted(overlap)} are also benchmark seeds; tuning must use "
                              "other seeds (other forget sets and models) than the reported runs")
    default_models = [str(m) for m in _as_list(data.get("models"), "models")]
    datasets = [_entry(d, "datasets") for d in _as_list(data.get("datasets"), "datasets")]
    scenarios = [_entry(s, "scenarios") for s in _as_list(data.get("scenarios") or ["random"], "scenarios")]
    if not datasets:
        raise UnlearnkitError(f"{where}: 'datasets' is empty")
    experiments = []
    for d in datasets:
        models = [str(m) for m in (d.get("models") or default_models)]
        if not models:
            raise UnlearnkitError(f"{where}: dataset {d['name']!r} has no models (give 'models')")
        for model in models:
            for s in scenarios:
                config = ExperimentConfig(
                    dataset=d["name"], model=model, scenario=s["name"], methods=_scenario_methods(s, methods, where),
                    seeds=list(seeds), dataset_options=dict(d.get("options") or {}),
                    model_options=dict(d.get("model_options") or {}), scenario_options=dict(s.get("options") or {}),
                    recipe=dict(d.get("recipe") or {}), device=str(data.get("device", "auto")),
                    threads=data.get("threads", 1))
                experiments.append(_with_params(config, method_params, tuned or {}, where))
    return BenchSpec(name, experiments, search, tune, path, str(data.get("description", "")))


def load_spec(path: str | Path, tuned: Optional[dict] = None) -> BenchSpec:
    path = Path(path)
    return parse_spec(read_yaml(path, "spec file"), path, tuned)
