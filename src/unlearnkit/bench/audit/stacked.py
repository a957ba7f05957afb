"""Stacked training of the audit's models, before the per-model statistics jobs.

The audit's originals, Retrain models, LiRA shadows and the unlearned models of plain-training
methods (``UnlearningMethod.training_run``: Retrain, FT, RL) share one architecture and are trained
``max_stack`` at a time with ``training_stacked.train_many`` (one batched forward/backward per step).
Each trained model goes into the model cache under the key the serial path uses, so the per-model
jobs that follow load it and only compute statistics; a model this phase could not stack (other
methods, BatchNorm models, a failed chunk) is trained by its job as before. Phase 1 trains the
originals, Retrain models and shadows; phase 2 the unlearned models, which start from the originals.
"""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Optional

import torch

from ...methods import get_method
from ...training_stacked import TrainingRun, stack_blocker, train_many
from ...utils import Timer, spawn_without_main
from . import jobs as audit_jobs

log = logging.getLogger(__name__)


def _plan(st: dict, job: tuple) -> Optional[tuple[dict, TrainingRun, Any]]:
    """(cache key, run, recipe) for a job whose model is missing from the cache and is plain training."""
    exp, data, cache = st["exp"], st["data"], st["cache"]
    kind, method, k, seed, _ = job
    if kind == "original":
        key, run, recipe = audit_jobs.original_key(exp, data, k), None, exp.config.training_recipe()
        if not cache.path(key).exists():
            run = TrainingRun(exp.new_model(k), data.train, torch.Generator().manual_seed(k))
    elif kind == "retrain" or (method == "retrain" and not exp.config.method_params.get("retrain")):
        key = audit_jobs.retrain_key(exp, data, seed)
        planned = None if cache.path(key).exists() else get_method("retrain").training_run(
            exp.new_model(seed), data.task, seed=seed, device=exp.device)
        run, recipe = planned if planned else (None, None)
    elif kind == "shadow":
        key, rows = audit_jobs.shadow_key(st, k)
        run, recipe = None, exp.config.training_recipe()
        if not cache.path(key).exists():
            run = TrainingRun(exp.new_model(seed), st["pool"].subset(rows), torch.Generator().manual_seed(seed))
    else:
        algorithm = get_method(method, **exp.config.method_params.get(method, {}))
        original, _ = audit_jobs.get_original(st, k)
        task_data = audit_jobs.task_data(st, original)
        key = audit_jobs.unlearned_key(exp, task_data, method, algorithm, k, seed)
        planned = None if cache.path(key).exists() else algorithm.training_run(
            original, task_data.task, seed=seed, device=exp.device)
        run, recipe = planned if planned else (None, None)
    return None if run is None else (key, run, recipe)


def train_chunk(chunk: list[tuple]) -> list[tuple]:
    """Worker side: train the chunk's uncached plain-training models as stacks and cache them.
    Returns the ids (``job[:4]``) of the models it trained."""
    st = audit_jobs.worker_context()
    groups: dict[str, list[tuple]] = {}
    for job in chunk:
        planned = _plan(st, job)
        if planned is not None:
            groups.setdefault(repr(planned[2]), []).append((job[:4], *planned))
    trained: list[tuple] = []
    for members in groups.values():
        with Timer() as t:
            train_many([run for _, _, run, _ in members], members[0][3], device=st["exp"].device)
        meta = {"time_s": t.seconds / len(members), "stacked": len(members)}  # the stack's time, shared out
        for job_id, key, run, _ in members:
            st["cache"].get_or_create(key, run.model, lambda m=run.model: (m.cpu(), meta))
            trained.append(job_id)
    return trained


def _chunks(jobs: list[tuple], size: int) -> list[list[tuple]]:
    """Jobs of one kind (and method) in chunks of ``size``, each chunk one stack."""
    by_kind: dict[tuple, list[tuple]] = {}
    for job in jobs:
        by_kind.setdefault(job[:2], []).append(job)
    return [group[i:i + size] for group in by_kind.values() for i in range(0, len(group), size)]


def _run_chunk(chunk: list[tuple]) -> list[tuple]:
    try:
        return train_chunk(chunk)
    except Exception as exc:  # the chunk's models are trained one by one by their jobs
        log.warning("stacked training failed, those models train serially: %s: %s", type(exc).__name__, exc)
        return []


def pretrain_stacked(jobs: list[tuple], cfg, cache, workers: int, model, max_stack: int = 8) -> dict[str, Any]:
    """Train every stackable model of ``jobs`` (phase 1, then phase 2) in stacks and cache them;
    ``model`` is an instance of the architecture. Returns what it did, for the results, with
    ``trained``: the ids of the models it trained."""
    if not cache.enabled:
        return {"skipped": "the model cache is disabled (stacked models reach their jobs through it)"}
    blocker = stack_blocker(model)
    if blocker is not None:
        return {"skipped": f"the model cannot be trained stacked: {blocker}"}
    phases = [[j for j in jobs if j[0] != "unlearned"], [j for j in jobs if j[0] == "unlearned"]]
    # at least two chunks per worker, so that every core trains a stack
    size = max(2, min(max_stack, -(-len(phases[0]) // (2 * max(1, workers)))))
    init_args = (audit_jobs.config_payload(cfg), str(cache.root), cache.enabled)
    if workers <= 1:
        audit_jobs.init_worker(*init_args)
        trained = [i for phase in phases for chunk in _chunks(phase, size) for i in _run_chunk(chunk)]
        return {"stacked_models": len(trained), "max_stack": size, "trained": trained}
    import multiprocessing as mp

    trained = []  # each worker's Experiment applies the threading policy (the config's threads)
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=audit_jobs.init_worker,
                             initargs=init_args) as pool, spawn_without_main():
        for phase in phases:  # phase 2 starts from the originals phase 1 trained
            trained += [i for ids in pool.map(_run_chunk, _chunks(phase, size)) for i in ids]
    return {"stacked_models": len(trained), "max_stack": size, "trained": trained}
