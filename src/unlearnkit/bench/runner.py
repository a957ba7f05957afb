"""Run a benchmark spec: pending cells go to a backend, finished cells go to the results store.

Cells run on a backend of ``bench.backends`` (``local``: a process pool, or in-process with one
worker; ``ray``: Ray tasks, the ``unlearnkit[ray]`` extra), the same registry ``audit`` uses. Workers
only compute; the coordinating process alone writes the store, one transaction per cell, so the
store semantics are the same on every backend. Trained originals and Retrain models come from the
shared ``ModelCache`` (file locks, atomic writes); on a cluster its directory must be shared.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import sys
import time
import traceback
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from ..errors import MissingSplitError, UnlearnkitError
from ..utils import exit_with_parent, stable_hash
from .cache import ModelCache
from .backends import BACKENDS, get_backend
from .experiment import Experiment, ExperimentConfig
from .runtime import apply_threads, plan_workers
from .spec import BenchSpec, Cell, base_hash
from .store import ResultStore, code_version

log = logging.getLogger(__name__)



# -- the worker side ------------------------------------------------------------------------------
_EXPERIMENTS: "OrderedDict[str, Experiment]" = OrderedDict()
_CONTEXTS: "OrderedDict[tuple, Any]" = OrderedDict()


def _init_worker(threads: int) -> None:
    exit_with_parent()
    apply_threads(threads)
    logging.basicConfig(level=logging.WARNING)


def execute_cell(payload: dict[str, Any]) -> dict[str, Any]:
    """Compute one cell (pure: no store access). Reuses the experiment and seed context of earlier
    cells in this process; the original and Retrain models come from the model cache."""
    start = time.perf_counter()
    config = ExperimentConfig(**payload["config"])
    method, seed = payload["method"], payload["seed"]
    out: dict[str, Any] = {"cell_key": payload["cell_key"], "host": platform.node()}
    with _collected_warnings(out):
        _compute_cell(payload, config, method, seed, out)
    out["wall_s"] = time.perf_counter() - start
    return out


class _ListHandler(logging.Handler):
    def __init__(self, records: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.levelname.lower()} ({record.name}): {record.getMessage()}")


@contextlib.contextmanager
def _collected_warnings(out: dict[str, Any]):
    """Warnings logged (or ``warnings.warn``-ed) while a cell runs travel with its result: the
    coordinator prints them above the progress bar with the cell named. Printed by a worker they
    would land on the bar's line, without saying which cell they belong to."""
    records: list[str] = []
    logger = logging.getLogger("unlearnkit")
    handler, propagate = _ListHandler(records), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        records += [f"{w.category.__name__}: {w.message}" for w in caught]
        if records:
            out["warnings"] = records


def _compute_cell(payload: dict[str, Any], config: ExperimentConfig, method: str, seed: int,
                  out: dict[str, Any]) -> None:
    try:
        h = stable_hash(config.to_dict())
        exp = _EXPERIMENTS.get(h)
        if exp is None:
            cache = ModelCache(payload["cache_root"], enabled=payload["cache_enabled"])
            exp = _EXPERIMENTS[h] = Experiment(config, cache=cache, progress=False)
            while len(_EXPERIMENTS) > 4:
                _EXPERIMENTS.popitem(last=False)
        ctx_key = (base_hash(config), seed)
        ctx, prepare_s = _CONTEXTS.get(ctx_key), 0.0
        if ctx is None:
            t0 = time.perf_counter()
            ctx = exp.prepare(seed)
            prepare_s = time.perf_counter() - t0
            _CONTEXTS[ctx_key] = ctx
            while len(_CONTEXTS) > 2:
                _CONTEXTS.popitem(last=False)
        if payload.get("checkpoint_root"):  # continual cells of ``run``: progress kept beside its results
            exp.checkpoint_root = Path(payload["checkpoint_root"])
        out["forget_indices"] = ctx.data.forget_indices.tolist()
        out["forget_hash"] = stable_hash(out["forget_indices"])
        out["prepare_s"] = prepare_s
        rows = exp.run_cell(ctx, method)
        out.update(status="done", rows=rows, time_s=float(sum(r["time_s"] for r in rows)))
    except MissingSplitError as exc:  # the method cannot apply here: it needs a split this scenario lacks
        out.update(status="skipped", error=f"{type(exc).__name__}: {exc}")
    except UnlearnkitError as exc:  # a configuration error (or a diverged model): an error, in one line
        out.update(status="error", error=f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - recorded in the store, the grid goes on
        out.update(status="error", error="".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:])


# -- the coordinator ------------------------------------------------------------------------------
@dataclass
class BenchSummary:
    total: int
    already: int
    ran: int
    done: int
    skipped: int
    errors: int
    seconds: float


def cell_payload(config: ExperimentConfig, method: str, seed: int, key: str, cache: ModelCache,
                 checkpoint_root: Optional[Path] = None) -> dict[str, Any]:
    """What ``execute_cell`` needs to compute one cell in a worker (plain, picklable values)."""
    return {"config": config.to_dict(), "method": method, "seed": seed, "cell_key": key,
            "cache_root": str(cache.root), "cache_enabled": cache.enabled,
            "checkpoint_root": None if checkpoint_root is None else str(checkpoint_root)}


def compute_cells(payloads: list[dict[str, Any]], *, workers: int, threads: int, backend: str = "local",
                  address: Optional[str] = None) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """``execute_cell`` on every payload, on the backend; yields (payload, result) as cells finish
    (a worker that died gives an error result)."""
    outcomes = get_backend(backend, address).run(execute_cell, payloads, workers=workers, threads=threads,
                                                 initializer=_init_worker, initargs=(threads,))
    for payload, res, failure in outcomes:
        if failure is not None:  # the worker process itself failed (execute_cell catches the rest)
            res = {"cell_key": payload["cell_key"], "status": "error", "error": failure}
        yield payload, res


def order_cells(cells: list, context: Callable[[Any], Any] = lambda c: (base_hash(c.config), c.seed)) -> list:
    """First the first cell of every context (experiment and seed), so parallel workers train
    different originals at once; then the rest grouped by context so a worker reuses it."""
    firsts, rest, seen = [], [], set()
    for c in cells:
        k = context(c)
        (rest if k in seen else firsts).append(c)
        seen.add(k)
    return firsts + rest


def run_bench(spec: BenchSpec, store: ResultStore, *, cache: Optional[ModelCache] = None, workers: int = 1,
              backend: str = "local", ray_address: Optional[str] = None, retry_failed: bool = False,
              progress: bool = True, status_line: Optional[Callable[[str], None]] = None,
              threads: Optional[int] = None) -> BenchSummary:
    """Run every pending cell of ``spec`` and record it in ``store``; cells already there are skipped
    (``retry_failed`` also re-runs skipped/error cells)."""
    get_backend(backend, ray_address)  # unknown names fail here (listing the valid ones), before any work
    start = time.perf_counter()
    cache = cache or ModelCache()
    threads = threads or max(c.threads for c in spec.experiments)  # the spec's (each Experiment applies its own)
    workers = plan_workers(workers, threads)
    cells = spec.cells()
    status = store.status_of(c.key for c in cells)
    relabelled = store.relabel({c.key: c.group for c in cells if c.key in status})
    if relabelled:  # their rows now group with the cells that run under the current label
        log.info("%s: %d stored cell(s) took the current group label", spec.name, relabelled)
    pending = [c for c in cells if c.key not in status or (retry_failed and status[c.key] != "done")]
    pending = order_cells(pending)
    by_key = {c.key: c for c in pending}
    payloads = [cell_payload(c.config, c.method, c.seed, c.key, cache) for c in pending]
    counts = {"done": 0, "skipped": 0, "error": 0}
    bar = None
    if progress and pending:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(pending), desc=f"{spec.name}: cells", unit="cell", file=sys.stderr)
    say = status_line or ((lambda s: (bar.write(s, file=sys.stderr) if bar else print(s, file=sys.stderr)))
                          if progress else (lambda s: None))
    if not pending:
        say(f"{spec.name}: all {len(cells)} cells already in {store.path}; nothing to do")
    else:
        say(f"{spec.name}: {len(pending)} of {len(cells)} cells to run ({len(cells) - len(pending)} already in "
            f"the store), backend {backend}, {workers} worker(s)")
    if pending:
        outcomes = compute_cells(payloads, workers=workers, threads=threads, backend=backend, address=ray_address)
        for n, (_, res) in enumerate(outcomes, start=1):
            cell = by_key[res["cell_key"]]
            c = cell.config
            store.put_run({
                "cell_key": cell.key, "spec": spec.name, "grp": cell.group, "dataset": c.dataset, "model": c.model,
                "scenario": c.scenario, "method": cell.method, "seed": cell.seed, "params": cell.params,
                "config": {**c.to_dict(), "methods": [cell.method], "seeds": [cell.seed]},
                "config_hash": base_hash(c), "forget_hash": res.get("forget_hash"), "code_version": code_version(),
                "status": res["status"], "error": res.get("error"), "rows": res.get("rows"),
                "time_s": res.get("time_s"), "prepare_s": res.get("prepare_s"), "wall_s": res.get("wall_s"),
                "backend": backend, "host": res.get("host")})
            counts[res["status"]] += 1
            if bar:
                bar.update(1)
            say(_status_line(n, len(pending), cell, res))
            for warning in res.get("warnings", ()):
                say(f"  {cell.group} seed {cell.seed} {cell.method}: {warning}")
    if bar:
        bar.close()
    return BenchSummary(len(cells), len(cells) - len(pending), len(pending), counts["done"], counts["skipped"],
                        counts["error"], time.perf_counter() - start)


def _status_line(n: int, total: int, cell: Cell, res: dict) -> str:
    head = f"[{n}/{total}] {cell.group} seed {cell.seed} {cell.method}:"
    if res["status"] != "done":
        reason = (res.get("error") or "").strip().splitlines()
        return f"{head} {res['status']} ({reason[-1] if reason else ''})"
    row = res["rows"][-1]
    return (f"{head} forget {100 * row['forget_acc']:.1f} retain {100 * row['retain_acc']:.1f} "
            f"test {100 * row['test_acc']:.1f} MIA {100 * row['mia_efficacy']:.1f} "
            f"({row['time_s']:.2f} s unlearning, {res['wall_s']:.1f} s cell)")


def default_workers(threads: int = 1) -> int:
    return plan_workers(0, threads)
