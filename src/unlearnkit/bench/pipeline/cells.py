"""Computing cells in worker processes: the one worker side of ``run``/``demo`` with workers and of
``bench``.

A cell is one (method, seed) of an experiment. ``compute_cells`` sends plain payloads
(``cell_payload``) to a backend (``backends``: a local process pool, or Ray); each worker runs
``execute_cell``, which reuses the ``Experiment`` and seed context of earlier cells in that process
(originals and Retrain models come from the shared model cache) and returns the rows, or the error,
with the warnings raised meanwhile. Workers only compute: the calling process records the results.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import time
import traceback
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from ...errors import MissingSplitError, UnlearnkitError
from ...utils import exit_with_parent, stable_hash
from .backends import get_backend
from .cache import ModelCache
from .config import ExperimentConfig, base_hash
from .experiment import Experiment
from .runtime import apply_threads

log = logging.getLogger(__name__)

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
