"""``run_experiment``: an experiment's cells into an output folder, resumable.

The folder records the experiment it belongs to (``experiment.json``: everything that determines the
forget sets and models, not the methods or seeds, so adding a method or a seed resumes into the same
folder); running a different experiment into it is refused unless ``overwrite`` is given, which
first deletes the files a run writes (and nothing else). Each finished cell is one whole line of
``rows.jsonl``, written in a single append (a line torn by a kill is cut off before the next one),
and the seeds' forget rows go to ``forget_indices.json``; a second call computes only the missing
cells. At the end ``results.json``, ``report.md`` and plots are written from every row.

Cells are computed here (one worker) or by worker processes (``cells``), seeds side by side.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Iterator, Optional

from ..._version import __version__
from ...errors import UnlearnkitError
from ...utils import atomic_write_text, to_jsonable, warm_up_torch
from ..reports.summary import summarize, write_outputs
from .cache import ModelCache
from .cells import collected_warnings, raise_again
from .comparison import COMPARE_DIR, ComparisonCollector, save_record
from .config import ExperimentConfig, cell_key
from .experiment import Experiment, SeedContext
from .runtime import plan_workers, progress_bar, runtime_record

log = logging.getLogger(__name__)

EXPERIMENT_FILE = "experiment.json"
COMPARE_PAGE = "compare.html"
ROWS_FILE = "rows.jsonl"
RUN_FILES = (ROWS_FILE, "forget_indices.json", "results.json", "report.md", EXPERIMENT_FILE, COMPARE_PAGE)


def _recorded(out: Path) -> Any:
    path = out / EXPERIMENT_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (ValueError, OSError):
        return {"unreadable": str(path)}


def check_out_dir(out: Path, identity: dict[str, Any], overwrite: bool = False) -> None:
    """Refuse a file, an unwritable folder, or a folder holding another experiment (unless
    ``overwrite``: then delete the run files in it). Creates nothing."""
    if out.exists() and not out.is_dir():
        raise UnlearnkitError(f"output folder {out} is an existing file; give a folder path")
    if not out.exists():
        return
    if not os.access(out, os.W_OK | os.X_OK):
        raise UnlearnkitError(f"output folder {out} is not writable; choose another folder")
    previous = _recorded(out)
    if overwrite:
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
        for plot in out.glob("*.png"):
            plot.unlink()
        for record in out.glob(f"{COMPARE_DIR}/*.json"):
            record.unlink()
        return
    if previous is not None and previous != identity:
        changed = sorted(k for k in set(previous) | set(identity) if previous.get(k) != identity.get(k))
        raise UnlearnkitError(f"output folder {out} holds results of another experiment (different "
                              f"{', '.join(changed)}); choose another folder or pass --overwrite to replace them")


def start_writing(out: Path, identity: dict[str, Any]) -> None:
    """Create the folder and record its experiment (before the first result goes in)."""
    out.mkdir(parents=True, exist_ok=True)
    if _recorded(out) is None:
        atomic_write_text(out / EXPERIMENT_FILE, json.dumps(identity, sort_keys=True, indent=1))


def cut_torn_line(path: Path) -> None:
    """Drop a last line without its newline (the write of a killed process) so appends stay whole."""
    if not path.exists():
        return
    with path.open("rb+") as handle:
        data = handle.read()
        if data and not data.endswith(b"\n"):
            handle.truncate(data.rfind(b"\n") + 1)


def append_line(path: Path, line: str) -> None:
    """Append ``line`` and a newline with one write on an O_APPEND descriptor, then fsync."""
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        written = os.write(fd, data)
        while written < len(data):  # only on a full disk or a signal; finish the line
            written += os.write(fd, data[written:])
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_rows(path: Path) -> dict[str, list[dict]]:
    """Cell key -> its rows (a line holds "row", or "rows" for a cell of sequential requests)."""
    rows: dict[str, list[dict]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                item = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a kill: that cell simply runs again
                continue
            rows[item["cell"]] = item["rows"] if "rows" in item else [item["row"]]
    return rows


def run_experiment(config: ExperimentConfig, out_dir: str | Path, *, cache: Optional[ModelCache] = None,
                   progress: bool = True, overwrite: bool = False, workers: int = 1) -> dict[str, Any]:
    """Run (or resume) an experiment and write results.json, report.md and plots to ``out_dir``.
    A folder holding another experiment is refused unless ``overwrite`` (see ``check_out_dir``).

    ``workers`` > 1 computes cells in that many processes (0: as many as the cores allow at the
    config's threads), the seeds side by side; rows, files and resuming are as with one process, and
    a cell that fails there is reported, after the others have finished, in one ``UnlearnkitError``."""
    out = Path(out_dir)
    exp = Experiment(config, cache=cache, progress=progress, warm_up=False)  # warmed below where cells run here
    exp.checkpoint_root = out / "requests"
    identity = {k: v for k, v in config.to_dict().items() if k not in ("methods", "seeds", "method_params", "device")}
    check_out_dir(out, identity, overwrite)
    rows_path = out / ROWS_FILE
    cut_torn_line(rows_path)
    done, saved = _read_rows(rows_path), _saved_indices(out)
    cells = [(s, m) for s in config.seeds for m in config.methods]
    pending = [(s, m) for s, m in cells if not (cell_key(config, m, s) in done and str(s) in saved)]
    workers = 1 if workers == 1 else min(plan_workers(workers, config.threads), max(1, len(pending)))
    if workers == 1 and pending:
        warm_up_torch()
    elif pending:  # a data set generated on first use (mnist1d) is made once here, not by every worker
        exp.bundle()
    bar = progress_bar(len(cells), progress, "cells")
    bar.update(len(cells) - len(pending))
    compute = _cells_in_process(exp, pending, bar) if workers == 1 else _cells_in_workers(exp, pending, bar, workers)
    for seed, name, cell_rows, indices, comparison in compute:
        key = cell_key(config, name, seed)
        line = {"cell": key, "row": cell_rows[0]} if len(cell_rows) == 1 else {"cell": key, "rows": cell_rows}
        if saved.get(str(seed)) != indices:  # first row of this seed
            start_writing(out, identity)
            saved[str(seed)] = indices
            _save_indices(out, saved)
        save_record(out, comparison)
        append_line(rows_path, json.dumps(to_jsonable(line)))
        done[key] = cell_rows
        bar.update(1)
    bar.close()
    rows = [r for s, m in cells for r in done[cell_key(config, m, s)]]  # the config's order, however computed
    results = {"unlearnkit_version": __version__, "config": config.to_dict(),
               "runtime": runtime_record(exp.device, config.threads, workers=workers), "rows": rows,
               "summary": summarize(rows, group_keys=("method", "request") if any("request" in r for r in rows)
                                    else ("method",)),
               "forget_indices": {str(s): saved[str(s)] for s in config.seeds}}
    write_outputs(results, out)
    write_comparison(out, config)
    return results


def write_comparison(out: Path, config: ExperimentConfig) -> Optional[Path]:
    """``compare.html`` from the comparison records in ``out``; None when there are none (e.g. for a
    stream of deletion requests)."""
    from ..reports.compare import load_comparison, write_compare_page

    data = load_comparison(out, config.seeds[0], config.methods)
    if data is None:
        log.info("no comparison page: no comparison records in %s", out / COMPARE_DIR)
        return None
    c = config
    data["title"] = f"{c.dataset} / {c.model} / {c.scenario}"
    data["context"] = {"dataset": c.dataset, "model": c.model, "scenario": c.scenario,
                       "scenario_options": c.scenario_options}
    return write_compare_page(data, out / COMPARE_PAGE)


CellRows = Iterator[tuple[int, str, list[dict[str, Any]], list[int], Optional[dict[str, Any]]]]


def _cells_in_process(exp: Experiment, cells: list[tuple[int, str]], bar) -> CellRows:
    """(seed, method, rows, forget indices, comparison record) of each cell, computed here; a seed's
    context is reused."""
    ctx: Optional[SeedContext] = None
    collector = exp.on_model = ComparisonCollector(exp.config.seeds[0])
    for seed, name in cells:
        if ctx is None or ctx.seed != seed:
            bar.set_postfix_str(f"seed {seed}: original + retrain")
            ctx = exp.prepare(seed)
        bar.set_postfix_str(f"seed {seed}: {name}")
        caught: dict[str, Any] = {}
        with collected_warnings(caught):
            rows = exp.run_cell(ctx, name)
        raise_again(f"seed {seed} {name}", caught.get("warnings", ()))
        log.debug("seed %d %-14s forget %.3f test %.3f time %.2fs", seed, name, rows[-1]["forget_acc"],
                  rows[-1]["test_acc"], rows[-1]["time_s"])
        yield seed, name, rows, ctx.data.forget_indices.tolist(), collector.take(name)


def _cells_in_workers(exp: Experiment, cells: list[tuple[int, str]], bar, workers: int) -> CellRows:
    """The same, computed by ``workers`` processes (the benchmark runner's worker side); warnings
    raised there are raised again here, naming the cell."""
    from .cells import cell_payload, compute_cells, order_cells

    c = exp.config
    payloads = order_cells([cell_payload(c, m, s, cell_key(c, m, s), exp.cache, exp.checkpoint_root,
                                         compare_seed=c.seeds[0]) for s, m in cells], context=lambda p: p["seed"])
    failed = []
    for payload, res in compute_cells(payloads, workers=workers, threads=c.threads):
        where = f"seed {payload['seed']} {payload['method']}"
        raise_again(where, res.get("warnings", ()))
        if res["status"] != "done":
            reason = (res.get("error") or "").strip().splitlines()
            failed.append(f"{where}: {reason[-1] if reason else res['status']}")
            continue
        bar.set_postfix_str(where)
        yield payload["seed"], payload["method"], res["rows"], res["forget_indices"], res.get("comparison")
    if failed:
        raise UnlearnkitError(f"{len(failed)} cell(s) failed (the others are saved): " + "; ".join(failed))


def _saved_indices(out: Path) -> dict[str, list[int]]:
    path = out / "forget_indices.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _save_indices(out: Path, indices: dict[str, list[int]]) -> None:
    """Replace the file with ``indices`` (every seed's: the caller holds what was read at the start)."""
    atomic_write_text(out / "forget_indices.json", json.dumps(indices))

