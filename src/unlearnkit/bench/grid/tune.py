"""Hyperparameter tuning against Retrain with Optuna, on data the reported metrics never touch.

Objective = average gap to Retrain over (forget acc, retain acc, validation acc, MIA-efficacy),
averaged over the tuning seeds. What keeps it honest:

* **Other seeds.** Tuning runs on ``tune.seeds`` (default 1000), which a spec may not share with its
  benchmark seeds: other forget sets, other originals, other Retrain models.
* **A validation split disjoint from the test split.** The dataset's ``third_party`` split (held-out
  data no model trains on) is split in half, stratified, with a fixed seed: one half is the
  validation split (it replaces ``test`` for accuracy and as the MIA's non-members), the other half
  stays ``third_party`` for methods that use unseen data. The ``test`` split, which the benchmark
  reports, is never evaluated during tuning. Scenario extras (e.g. ASR) are not in the objective.

The best values are stored in the results store (``tuned``) under a key of the experiment, the
method, the search space, the fixed parameters, the budget and the tuning seeds; ``bench`` merges
them into ``method_params`` (so tuned cells get their own cell keys).
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import warnings
from dataclasses import replace
from typing import Any, Callable, Optional

import numpy as np

from ...errors import NoOpWarning, UnlearnkitError
from ...evaluation.registry import CORE_METRICS
from ...methods import METHODS, get_method
from ...utils import stable_hash
from ..pipeline.cache import ModelCache
from ..pipeline.experiment import Experiment, ExperimentConfig, SeedContext
from .spec import BenchSpec, base_hash, load_spec
from .store import ResultStore

log = logging.getLogger(__name__)

VALIDATION = "half of the third_party split (stratified, split seed 0) replaces test; the other half stays third_party"


def validation_split(third_party, seed: int = 0):
    """(validation, rest) halves of the third-party split, stratified by label."""
    from sklearn.model_selection import train_test_split

    y = third_party.y.cpu().numpy()
    idx = np.arange(len(y))
    try:
        val, rest = train_test_split(idx, train_size=0.5, stratify=y, random_state=seed)
    except ValueError:  # a class with a single example: fall back to a plain split
        val, rest = train_test_split(idx, train_size=0.5, random_state=seed)
    return third_party.subset(np.sort(val)), third_party.subset(np.sort(rest))


class ValidationExperiment(Experiment):
    """An Experiment whose tasks see a validation split instead of the test split."""

    def prepare(self, seed: int) -> SeedContext:
        ctx = super().prepare(seed)
        task = ctx.data.task
        if task.third_party is None:
            raise UnlearnkitError("tuning needs the dataset's third_party split to carve a validation split from")
        val, rest = validation_split(task.third_party)
        ctx.data = replace(ctx.data, task=replace(task, test=val, third_party=rest))
        return ctx

    def validation_metrics(self, model, ctx: SeedContext) -> dict[str, float]:
        """The gap metrics of ``model``; ``test_acc`` is on the validation split here."""
        return self.evaluate(model, ctx, list(CORE_METRICS))


def tune_key(config: ExperimentConfig, method: str, space: dict, fixed: dict, trials: int, seeds: list[int]) -> str:
    return stable_hash({"base": base_hash(config), "method": method, "space": space, "fixed": fixed,
                        "trials": trials, "seeds": seeds, "validation": VALIDATION})


def _suggest(trial, name: str, rng: dict) -> Any:
    if "choices" in rng:
        return trial.suggest_categorical(name, list(rng["choices"]))
    low, high = rng["low"], rng["high"]
    if isinstance(low, int) and isinstance(high, int) and not rng.get("log_float"):
        return trial.suggest_int(name, low, high, log=bool(rng.get("log", False)))
    return trial.suggest_float(name, float(low), float(high), log=bool(rng.get("log", False)))


def tune_spec(spec: BenchSpec, store: ResultStore, fixed_params: dict[str, dict], *, cache: Optional[ModelCache] = None,
              trials: Optional[int] = None, methods: Optional[list[str]] = None,
              say: Callable[[str], None] = lambda s: None, progress: bool = False) -> dict[tuple[str, str], dict]:
    """Tune every (experiment, method) with a search space that has no stored result yet.
    Returns (group, method) -> best params for all of them (stored or new). ``progress`` shows a bar
    per tuned method (trials done, best validation gap so far)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cache = cache or ModelCache()
    n_trials = trials or spec.tune.trials
    out: dict[tuple[str, str], dict] = {}
    for config in spec.experiments:
        group = BenchSpec.group_of(config)
        todo = [m for m in config.methods if m in spec.search and (methods is None or m in methods)]
        exp: Optional[ValidationExperiment] = None
        contexts: dict[int, tuple[SeedContext, dict]] = {}
        for method in todo:
            space = spec.search[method]
            fixed = {k: v for k, v in (fixed_params.get(method) or {}).items() if k not in space}
            key = tune_key(config, method, space, fixed, n_trials, spec.tune.seeds)
            stored = store.get_tuned(key)
            if stored is not None:
                out[(group, method)] = stored["params"]
                continue
            if exp is None:
                base = replace(config, methods=["original", "retrain"], method_params={}, seeds=list(spec.tune.seeds))
                exp = ValidationExperiment(base, cache=cache, progress=False)
            for s in spec.tune.seeds:
                if s not in contexts:
                    ctx = exp.prepare(s)
                    contexts[s] = (ctx, exp.validation_metrics(ctx.retrain, ctx))

            def objective(trial) -> float:
                params = {**fixed, **{p: _suggest(trial, p, rng) for p, rng in space.items()}}
                gaps = []
                for s, (ctx, ref) in contexts.items():
                    model = _trial_model(method, params, ctx, s, exp.device)
                    got = exp.validation_metrics(model, ctx)
                    gaps.append(float(np.mean([abs(got[m] - ref[m]) for m in ref])))
                value = float(np.mean(gaps))
                return value if math.isfinite(value) else 1.0

            study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=0))
            with _trial_bar(progress, n_trials, f"tuning {method} on {group}") as callback:
                study.optimize(objective, n_trials=n_trials, timeout=spec.tune.timeout_s, catch=(Exception,),
                               callbacks=[callback])
            done = [t for t in study.trials if t.value is not None]
            if not done:
                raise UnlearnkitError(f"tuning {method} on {group}: every trial failed; check the search space")
            best = study.best_trial
            store.put_tuned(key, group, method, best.params, best.value, len(done), space,
                            {"seeds": spec.tune.seeds, "fixed": fixed, "validation": VALIDATION,
                             "budget": n_trials, "sampler": "TPE(seed=0)"},
                            [{"params": t.params, "value": t.value} for t in done])
            say(f"tuned {method} on {group}: {best.params} (validation avg gap {100 * best.value:.2f} pts, "
                f"{len(done)} trials)")
            out[(group, method)] = best.params
    return out


def _trial_model(method: str, params: dict, ctx: SeedContext, seed: int, device) -> Any:
    """One trial's unlearned model. A trial that changes nothing just scores badly: its no-op
    warning would repeat for every such trial, so it is silenced here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoOpWarning)
        return get_method(method, **params).unlearn(ctx.original, ctx.data.task, seed=seed, device=device)


@contextlib.contextmanager
def _trial_bar(enabled: bool, total: int, desc: str):
    """An Optuna callback that advances a progress bar (on stderr) after every trial."""
    if not enabled:
        yield lambda study, trial: None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="trial", file=sys.stderr)

    def callback(study, trial) -> None:
        bar.update(1)
        values = [t.value for t in study.trials if t.value is not None]
        if values:
            bar.set_postfix_str(f"best gap {100 * min(values):.2f} pts")

    try:
        yield callback
    finally:
        bar.close()


def load_spec_with_tuning(path, store: ResultStore, *, cache: Optional[ModelCache] = None, tune: bool = True,
                          trials: Optional[int] = None, say: Callable[[str], None] = lambda s: None,
                          progress: bool = False) -> BenchSpec:
    """Load a spec; when it has search spaces, tune what is not tuned yet (or, with ``tune=False``,
    use whatever is stored) and return the spec with the tuned values merged in."""
    import yaml

    spec = load_spec(path)
    if not spec.search:
        return spec
    raw = yaml.safe_load(open(path).read())
    # typed like the cells' values (a YAML "1e-3" is a string until the method's Params convert it)
    fixed = {m: METHODS.get(m).Params.typed_overrides(dict(v or {}), owner=m)
             for m, v in (raw.get("method_params") or {}).items()}
    if tune:
        tuned = tune_spec(spec, store, fixed, cache=cache, trials=trials, say=say, progress=progress)
    else:
        tuned = {}
        for config in spec.experiments:
            group = BenchSpec.group_of(config)
            for m in config.methods:
                if m in spec.search:
                    space = spec.search[m]
                    f = {k: v for k, v in (fixed.get(m) or {}).items() if k not in space}
                    stored = store.get_tuned(tune_key(config, m, space, f, trials or spec.tune.trials, spec.tune.seeds))
                    if stored is not None:
                        tuned[(group, m)] = stored["params"]
    return load_spec(path, tuned=tuned)
