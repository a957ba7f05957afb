"""Computing cells in worker processes: the one worker side of ``run``/``demo`` with workers and of
``bench``.

A cell is one (method, seed) of an experiment. ``compute_cells`` sends plain payloads
(``cell_payload``) to a backend (``backends``: a local process pool, or Ray); each worker runs
``execute_cell``, which reuses the ``Experiment`` and seed context of earlier cells in that process
(originals and Retrain models come from the shared model cache) and returns the rows, or the error,
with the warnings raised meanwhile. Workers only compute: the calling process records the results.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import platform
import time
import traceback
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

from ...errors import MissingSplitError, NoOpWarning, UnlearnkitError
from ...utils import exit_with_parent, stable_hash
from .backends import get_backend
from .cache import ModelCache
from .comparison import ComparisonCollector
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
    with collected_warnings(out):
        _compute_cell(payload, config, method, seed, out)
    out["wall_s"] = time.perf_counter() - start
    return out


class _ListHandler(logging.Handler):
    """Keeps WARNING and above as text; passes the rest on to the root logger's handlers, where they
    would have gone."""

    def __init__(self, records: list[str]) -> None:
        super().__init__(logging.NOTSET)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.records.append(f"{record.levelname.lower()} ({record.name}): {record.getMessage()}")
            return
        for handler in logging.getLogger().handlers:
            if record.levelno >= handler.level:
                handler.handle(record)


@contextlib.contextmanager
def collected_warnings(out: dict[str, Any]):
    """Warnings logged (or ``warnings.warn``-ed) while a cell runs travel with its result (``out["warnings"]``:
    "Category: message" or "level (logger): message"): the coordinator raises them again with the cell
    named (``raise_again``). Printed by a worker they would land on the progress bar's line, without
    saying which cell they belong to."""
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


def raise_again(where: str, texts: Iterable[str], stacklevel: int = 3) -> None:
    """Raise each collected warning again here, prefixed with ``where`` (e.g. "seed 1 ft"): a warning
    as a warning of its category (UserWarning when it is not a built-in or unlearnkit one), a logged
    record as a log record of this module."""
    for text in texts:
        kind, _, message = text.partition(": ")
        if " (" in kind:  # "warning (unlearnkit.methods.x)": it was logged
            log.log(logging.getLevelName(kind.split(" ")[0].upper()), "%s: %s", where, message)
            continue
        category = NoOpWarning if kind == NoOpWarning.__name__ else getattr(builtins, kind, UserWarning)
        if not (isinstance(category, type) and issubclass(category, Warning)):
            category = UserWarning
        warnings.warn(f"{where}: {message}", category, stacklevel=stacklevel)


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
        compare_seed = payload.get("compare_seed")
        collector = exp.on_model = None if compare_seed is None else ComparisonCollector(compare_seed)
        rows = exp.run_cell(ctx, method)
        out.update(status="done", rows=rows, time_s=float(sum(r["time_s"] for r in rows)))
        if collector is not None:
            out["comparison"] = collector.take(method)
    except MissingSplitError as exc:  # the method cannot apply here: it needs a split this scenario lacks
        out.update(status="skipped", error=f"{type(exc).__name__}: {exc}")
    except UnlearnkitError as exc:  # a configuration error (or a diverged model): an error, in one line
        out.update(status="error", error=f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - recorded in the store, the grid goes on
        out.update(status="error", error="".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:])


def cell_payload(config: ExperimentConfig, method: str, seed: int, key: str, cache: ModelCache,
                 checkpoint_root: Optional[Path] = None, compare_seed: Optional[int] = None) -> dict[str, Any]:
    """What ``execute_cell`` needs to compute one cell in a worker (plain, picklable values); with
    ``compare_seed``, a cell of that seed also returns its comparison record (``pipeline/comparison.py``)."""
    return {"config": config.to_dict(), "method": method, "seed": seed, "cell_key": key,
            "cache_root": str(cache.root), "cache_enabled": cache.enabled,
            "checkpoint_root": None if checkpoint_root is None else str(checkpoint_root),
            "compare_seed": compare_seed}


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
