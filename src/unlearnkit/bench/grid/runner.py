"""Run a benchmark spec: pending cells go to a backend, finished cells go to the results store.

Cells are computed by the experiment pipeline's worker side (``pipeline.cells``) on a backend of
``pipeline.backends`` (``local``: a process pool, or in-process with one worker; ``ray``: Ray tasks,
the ``unlearnkit[ray]`` extra), the same registry ``audit`` uses. Workers
only compute; the coordinating process alone writes the store, one transaction per cell, so the
store semantics are the same on every backend. Trained originals and Retrain models come from the
shared ``ModelCache`` (file locks, atomic writes); on a cluster its directory must be shared.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional

from ..pipeline.backends import get_backend
from ..pipeline.cache import ModelCache
from ..pipeline.cells import cell_payload, compute_cells, order_cells
from ..pipeline.config import base_hash
from ..pipeline.runtime import plan_workers
from .spec import BenchSpec, Cell
from .store import ResultStore, code_version

log = logging.getLogger(__name__)


@dataclass
class BenchSummary:
    total: int
    already: int
    ran: int
    done: int
    skipped: int
    errors: int
    seconds: float


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
                say(f"  {cell.group} seed {cell.seed} {cell.method}: {' '.join(warning.split())}")
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
