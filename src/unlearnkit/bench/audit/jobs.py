"""The audit's worker side: typed jobs (one job = one model), each built or loaded from the model
cache in a worker process and returned as statistics (phi on the whole population, metrics).

A worker process keeps its shared pieces (experiment, scenario data, attack population, LiRA keep
matrix) in ``_STATE``, set up by ``init_worker`` and completed on first use, so that a process pool
initializer can prepare it; jobs are independent, so any backend of ``pipeline.backends`` runs them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any, NamedTuple, Optional

import numpy as np

from ..._version import __version__
from ...data.split import Split
from ...evaluation.attacks import balanced_keep_matrix
from ...evaluation.attacks.base import model_statistic
from ...evaluation.registry import MetricInputs, compute_metrics
from ...methods import get_method
from ...training import train_model
from ...utils import Timer, exit_with_parent, seeded, stable_hash
from ..pipeline.cache import ModelCache
from ..pipeline.cells import collected_warnings
from ..pipeline.config import ExperimentConfig
from ..pipeline.experiment import Experiment
from ..pipeline.runtime import runtime_key
from .comparison import job_comparison
from .config import AuditConfig

log = logging.getLogger(__name__)

#: seed offsets: unlearning runs and LiRA shadows never share a seed with originals/Retrain
UNLEARN_SEED = 1000
SHADOW_SEED = 10_000
#: metrics computed for every model and reported as the mean over the N challenge runs (the rest of
#: the registry is computed on the main run only)
PER_RUN_METRICS = ("forget_acc", "retain_acc", "test_acc", "forget_loss")


class AuditJob(NamedTuple):
    """One model: ``kind`` original / retrain / shadow / unlearned, the ``method`` of an unlearned
    model, ``k`` the original it starts from (or the shadow's index), its ``seed``, and ``full``:
    compute every metric (the main run of a method) rather than the per-run ones."""

    kind: str
    method: str
    k: int
    seed: int
    full: bool = False

    @property
    def id(self) -> tuple[str, str, int, int]:
        return (self.kind, self.method, self.k, self.seed)

    @property
    def name(self) -> str:
        return f"{self.method or self.kind} k={self.k} seed={self.seed}"


_STATE: dict[str, Any] = {}


def init_worker(config: dict, cache_root: Optional[str], cache_enabled: bool) -> None:
    exit_with_parent()
    _STATE.clear()
    _STATE["config"] = config
    _STATE["cache"] = ModelCache(cache_root, enabled=cache_enabled)


def worker_context() -> dict[str, Any]:
    """Per-process shared pieces, built once: experiment, scenario data, pool, keep matrix."""
    if "exp" not in _STATE:
        cfg = _STATE["config"]
        ecfg = ExperimentConfig(**cfg["experiment"])
        exp = Experiment(ecfg, cache=_STATE["cache"], progress=False)
        _STATE.update(exp=exp, **scenario_pieces(exp, cfg))
    return _STATE


def scenario_pieces(exp: Experiment, cfg: dict) -> dict[str, Any]:
    from ...scenarios import get_scenario

    seed = cfg["experiment"]["seeds"][0]
    c = exp.config
    scenario = get_scenario(c.scenario, **c.scenario_options)
    data = scenario.build(exp.bundle(), seed)
    data.task.recipe = c.training_recipe()
    b = exp.bundle()
    parts = [data.train] + [s for s in (b.test, b.third_party) if s is not None and len(s)]
    pool = Split.concat(*parts) if len(parts) > 1 else parts[0]
    keep = balanced_keep_matrix(cfg["shadow_models"], len(pool), seed=SHADOW_SEED + seed)
    return {"scenario": scenario, "data": data, "pool": pool, "keep": keep, "n_train": len(data.train)}


def original_key(exp: Experiment, data, k: int) -> dict:
    return exp.model_key(k, data)


def retrain_key(exp: Experiment, data, j: int) -> dict:
    return {**exp.model_key(j, data), "kind": "retrain", "forget": stable_hash(data.forget_indices.tolist()),
            "corrected": None if data.task.corrected is None else stable_hash(data.task.corrected.x.sum().item())}


def get_original(st: dict, k: int):
    exp, data = st["exp"], st["data"]
    recipe = exp.config.training_recipe()

    def create():
        model = exp.new_model(k)
        with Timer() as t, seeded(k):
            train_model(model, data.train, recipe, seed=k, device=exp.device)
        return model.cpu(), {"time_s": t.seconds}

    model, meta = st["cache"].get_or_create(original_key(exp, data, k), exp.new_model(k), create)
    return model.eval(), meta


def get_retrain(st: dict, j: int):
    exp, data = st["exp"], st["data"]

    def create():  # Retrain re-initialises: an untrained model of the architecture is enough
        with Timer() as t:
            model = get_method("retrain").unlearn(exp.new_model(j), data.task, seed=j, device=exp.device)
        return model.cpu(), {"time_s": t.seconds}

    model, meta = st["cache"].get_or_create(retrain_key(exp, data, j), exp.new_model(j), create)
    return model.eval(), meta


def shadow_key(st: dict, k: int) -> tuple[dict, np.ndarray]:
    """Cache key of LiRA shadow ``k`` and the pool rows it trains on."""
    c = st["exp"].config
    rows = np.flatnonzero(st["keep"][k])
    key = {"kind": "lira_shadow", "dataset": c.dataset, "dataset_options": c.dataset_options, "model": c.model,
           "model_options": c.model_options, "recipe": c.training_recipe().to_dict(),
           "train": st["data"].train_key, "pool": stable_hash(rows.tolist()), "seed": SHADOW_SEED + k,
           "runtime": runtime_key(st["exp"].device, c.threads)}
    return key, rows


def get_shadow(st: dict, k: int):
    exp, pool = st["exp"], st["pool"]
    seed = SHADOW_SEED + k
    key, rows = shadow_key(st, k)

    def create():
        model = exp.new_model(seed)
        with Timer() as t, seeded(seed):
            train_model(model, pool.subset(rows), exp.config.training_recipe(), seed=seed, device=exp.device)
        return model.cpu(), {"time_s": t.seconds}

    model, meta = st["cache"].get_or_create(key, exp.new_model(seed), create)
    return model.eval(), meta


def task_data(st: dict, original):
    """The worker's scenario data with its own metadata: prepare_task may add what depends on the original."""
    data = replace(st["data"], task=replace(st["data"].task, metadata=dict(st["data"].task.metadata)))
    st["scenario"].prepare_task(original, data)
    return data


def unlearned_key(exp: Experiment, data, method: str, algorithm, k: int, seed: int) -> dict:
    # resolved hyperparameters (defaults included): a changed default must not reuse a cached model
    return {"kind": "unlearned", "method": method, "params": algorithm.params.to_dict(),
            "original": original_key(exp, data, k), "forget": stable_hash(data.forget_indices.tolist()),
            "seed": seed, "version": __version__}


def get_unlearned(st: dict, method: str, k: int, seed: int):
    exp = st["exp"]
    params = exp.config.method_params.get(method, {})
    if method == "retrain" and not params:  # Retrain ignores the input weights: share the pool
        return get_retrain(st, seed)
    original, _ = get_original(st, k)
    data = task_data(st, original)
    algorithm = get_method(method, **params)
    original = exp.start_model(k, data, original, algorithm)  # SISA: its shard ensemble of original k
    key = unlearned_key(exp, data, method, algorithm, k, seed)

    def create():
        with Timer() as t:
            model = algorithm.unlearn(original, data.task, seed=seed, device=exp.device)
        return model.cpu(), {"time_s": t.seconds}

    template = (algorithm.original_template(exp.new_model(k), len(data.train))
                if getattr(algorithm, "trains_original", False) else exp.new_model(k))
    model, meta = st["cache"].get_or_create(key, template, create)
    return model.eval(), meta


def run_job(job: AuditJob) -> dict[str, Any]:
    """Build (or load) one model and return its statistics, with the warnings raised meanwhile."""
    out: dict[str, Any] = {}
    with collected_warnings(out):
        result = _run_job(job)
    return {**result, **out}


def _run_job(job: AuditJob) -> dict[str, Any]:
    st = worker_context()
    kind, method, k, seed, full = job
    t0 = time.perf_counter()
    if kind == "original":
        model, meta = get_original(st, k)
    elif kind == "retrain":
        model, meta = get_retrain(st, k)
    elif kind == "shadow":
        model, meta = get_shadow(st, k)
    else:
        model, meta = get_unlearned(st, method, k, seed)
    cfg = _STATE["config"]
    data, pool = st["data"], st["pool"]
    phi = model_statistic(model, pool, cfg["augment"])
    out: dict[str, Any] = {"phi": phi, "time_s": float(meta.get("time_s", 0.0)), "cached": bool(meta.get("cached")),
                           "wall_s": time.perf_counter() - t0}
    if kind != "shadow":
        # every model: the metrics averaged over the N challenge runs; the main model: all of them
        names = None if full else PER_RUN_METRICS
        reference = get_retrain(st, 0)[0] if full else None
        if full:  # the comparison page's views of the main models
            out["comparison"] = job_comparison(st, kind, method, model, get_original(st, 0)[0], reference)
        inputs = MetricInputs(data.task, reference=reference, seed=cfg["experiment"]["seeds"][0])
        out["metrics"], _ = compute_metrics(model, inputs, names)
        if full:
            try:
                out["extra"] = st["scenario"].extra_metrics(model, data)
            except Exception as exc:  # pragma: no cover - a scenario extra must not sink the audit
                log.warning("extra metrics failed: %s", exc)
                out["extra"] = {"extra_metrics": f"skipped: {type(exc).__name__}: {exc}"}
    return out


def plan_jobs(cfg: AuditConfig, methods: list[str]) -> list[AuditJob]:
    """Every model the audit needs, each once (Retrain as a method maps onto the Retrain pool)."""
    K, N = cfg.shadow_models, cfg.challenge_models
    jobs: list[AuditJob] = []
    shadow_ulira = cfg.ulira and cfg.ulira_originals == "shadow"
    need_originals = range(K) if shadow_ulira else range(1)
    n_retrain = max(K if shadow_ulira else 0, N if cfg.challenge else 0, 1)
    for k in need_originals:
        jobs.append(AuditJob("original", "", k, k, k == 0))
    for j in range(n_retrain):
        jobs.append(AuditJob("retrain", "", j, j, j == 0))
    if cfg.lira:
        jobs += [AuditJob("shadow", "", k, SHADOW_SEED + k) for k in range(K)]
    for m in methods:
        if m == "original":
            continue
        runs = set()
        if cfg.challenge:
            runs |= {(0, UNLEARN_SEED + j) for j in range(N)}
        if shadow_ulira:
            runs |= {(k, UNLEARN_SEED + k) for k in range(K)}
        runs.add((0, UNLEARN_SEED))
        if is_plain_retrain(cfg, m):  # the model depends on the seed only: one job per seed
            runs = {(0, s) for _, s in runs}
        for k, s in sorted(runs, key=lambda r: (r[1], r[0])):
            jobs.append(AuditJob("unlearned", m, k, s, (k, s) == (0, UNLEARN_SEED)))
    unique: dict[tuple, AuditJob] = {}
    for j in jobs:
        unique.setdefault(j.id, j)
    return list(unique.values())


def is_plain_retrain(cfg: AuditConfig, method: str) -> bool:
    return method == "retrain" and not cfg.experiment.method_params.get("retrain")


def config_payload(cfg: AuditConfig) -> dict:
    return {"experiment": cfg.experiment.to_dict(), "shadow_models": cfg.shadow_models, "augment": cfg.augment}
