"""Arguments shared by the commands that run experiments (run, demo, audit, ...)."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..bench.pipeline import ExperimentConfig, ModelCache
from ..checks import check_field_types, read_yaml
from ..errors import UnlearnkitError
from ..scenarios import SCENARIOS


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _seeds(text: str) -> list[int]:
    try:
        return [int(t) for t in _csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be comma-separated integers, got {text!r}") from None


def scenario_option_fields() -> dict[str, list[str]]:
    """Option name -> scenarios that accept it (every scenario's Options fields)."""
    out: dict[str, list[str]] = {}
    for name in SCENARIOS.names():
        for f in fields(SCENARIOS.get(name).Options):
            out.setdefault(f.name, []).append(name)
    return out


def add_workers_arg(p: argparse.ArgumentParser, default: int) -> None:
    """``--workers`` of the commands that run an experiment's cells (``run``, ``demo``)."""
    p.add_argument("--workers", type=int, default=default,
                   help=f"processes computing cells, the seeds side by side (default {default}; 0 = as many as the "
                        "cores allow at --threads each, 1 = in this process); workers x threads may not exceed "
                        "the cores")


def add_common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars or info logs")
    p.add_argument("--verbose", "-v", action="store_true", help="debug logs")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="where trained originals/Retrain models are cached (default: $UNLEARNKIT_CACHE "
                        "or ~/.cache/unlearnkit)")
    p.add_argument("--no-cache", action="store_true", help="always train, never read or write the cache")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:1 ...")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per process that trains (default 1: the same weights on every machine; "
                        "part of the model-cache keys)")


def add_experiment_args(p: argparse.ArgumentParser, methods_default: str | None = None) -> None:
    g = p.add_argument_group("experiment")
    g.add_argument("--config", type=Path, help="YAML file with ExperimentConfig keys; flags override it")
    g.add_argument("--dataset", help="digits (default), mnist1d, synthetic, cifar10, ...")
    g.add_argument("--dataset-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="dataset option, e.g. n_samples=5000 or root=/data (repeatable)")
    g.add_argument("--model", help="cnn (default), mlp, cnn1d, resnet18")
    g.add_argument("--scenario", help=f"one of: {', '.join(SCENARIOS.names())} (default random)")
    # no argparse default: it would always beat the YAML's ``methods:`` (flags > YAML > command default)
    g.add_argument("--methods", type=_csv, default=None,
                   help="comma-separated method names (see `unlearnkit methods`)"
                        + (f"; default {methods_default}" if methods_default else ""))
    p.set_defaults(methods_default=_csv(methods_default) if methods_default else None)
    g.add_argument("--seeds", type=_seeds, help="comma-separated seeds (default 0,1,2)")
    g.add_argument("--set", dest="sets", action="append", default=[], metavar="METHOD.KEY=VALUE",
                   help="method hyperparameter, e.g. --set ft.lr=0.01 (repeatable); "
                        "train.KEY=VALUE sets the training recipe (e.g. train.epochs=20)")
    s = p.add_argument_group("scenario options (each applies to the scenarios named; YAML: scenario_options)")
    for name, owners in scenario_option_fields().items():
        metavar, text = scenario_option_help(name, owners)
        s.add_argument("--" + name.replace("_", "-"), dest=f"scenario_opt_{name}", default=None,
                       metavar=metavar, help=text)


def scenario_option_help(name: str, owners: list[str]) -> tuple[str, str]:
    """``--NAME``'s metavar (its type or choices) and help: what it means and, per scenario that
    accepts it, its default (a default can differ between scenarios, e.g. forget_size)."""
    import typing

    per_scenario, helps, first = [], {}, None
    for scenario in owners:
        options = SCENARIOS.get(scenario).Options
        f = next(f for f in fields(options) if f.name == name)
        first = first or (f, options.field_types()[name])
        helps[scenario] = f.metadata.get("help", "")
        per_scenario.append(f"{scenario}: default {f.default if f.default is not None else 'none'}")
    if len(set(helps.values())) > 1:  # the same flag means different things in different scenarios
        per_scenario = [f"{sc}: {helps[sc]}, {d.split(': ', 1)[1]}" for sc, d in zip(owners, per_scenario)]
    f, kind = first
    kind = next((a for a in typing.get_args(kind) if a is not type(None)), kind)  # Optional[X] -> X
    choices = f.metadata.get("choices")
    metavar = "{" + ",".join(map(str, choices)) + "}" if choices else getattr(kind, "__name__", "V").upper()
    lead = "" if len(set(helps.values())) > 1 else f"{f.metadata.get('help', '')} "
    return metavar, f"{lead}[{'; '.join(per_scenario)}]"


def _key_values(items: list[str], what: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        if "=" not in item:
            raise UnlearnkitError(f"{what} {item!r} must look like KEY=VALUE")
        k, v = item.split("=", 1)
        out.append((k.strip(), v.strip()))
    return out


def _yaml_scalar(text: str) -> Any:
    """Dataset options arrive as strings; YAML's scalar rules turn '5000' into an int (no eval)."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def config_from_args(args: argparse.Namespace, defaults: dict[str, Any] | None = None) -> ExperimentConfig:
    values: dict[str, Any] = dict(defaults or {})
    if getattr(args, "methods_default", None):
        values.setdefault("methods", list(args.methods_default))
    if getattr(args, "config", None):
        loaded = read_yaml(args.config, "config file") or {}
        if not isinstance(loaded, dict):
            raise UnlearnkitError(f"config file {args.config} must hold a mapping of ExperimentConfig keys")
        valid = {f.name for f in fields(ExperimentConfig)}
        unknown = set(loaded) - valid
        if unknown:
            raise UnlearnkitError(f"config file {args.config}: unknown key(s) {sorted(unknown)}; valid: {sorted(valid)}")
        check_field_types(ExperimentConfig(**loaded), f"config file {args.config}:")
        values.update(loaded)
    for key in ("dataset", "model", "scenario", "methods", "seeds", "device", "threads"):
        if getattr(args, key, None) is not None:
            values[key] = getattr(args, key)
    dataset_options = dict(values.get("dataset_options", {}))
    for k, v in _key_values(getattr(args, "dataset_opt", []), "--dataset-opt"):
        dataset_options[k] = _yaml_scalar(v)
    values["dataset_options"] = dataset_options
    scenario = values.get("scenario", "random")
    SCENARIOS.get(scenario)
    scenario_options = dict(values.get("scenario_options", {}))
    owners = scenario_option_fields()
    for name in owners:
        value = getattr(args, f"scenario_opt_{name}", None)
        if value is None:
            continue
        if scenario not in owners[name]:
            raise UnlearnkitError(f"option --{name.replace('_', '-')} does not apply to scenario "
                                  f"{scenario!r} (it belongs to: {', '.join(owners[name])})")
        scenario_options[name] = value
    values["scenario_options"] = scenario_options
    method_params: dict[str, dict[str, Any]] = {k: dict(v) for k, v in values.get("method_params", {}).items()}
    recipe = dict(values.get("recipe", {}))
    for k, v in _key_values(getattr(args, "sets", []), "--set"):
        if "." not in k:
            raise UnlearnkitError(f"--set {k}={v}: name the method, e.g. --set ft.lr=0.01")
        method, param = k.split(".", 1)
        if method == "train":
            recipe[param] = _yaml_scalar(v)
        else:
            method_params.setdefault(method, {})[param] = v
    values["method_params"] = method_params
    values["recipe"] = recipe
    config = ExperimentConfig(**values)
    config.validate()
    return config


def check_out_folder(path: Path) -> None:
    """Refuse, before any work, an output folder path that names an existing file."""
    if path.exists() and not path.is_dir():
        raise UnlearnkitError(f"--out {path} is an existing file; give a folder")


def cache_from_args(args: argparse.Namespace) -> ModelCache:
    cache = ModelCache(args.cache_dir, enabled=not args.no_cache)
    cache.check_usable()
    return cache
