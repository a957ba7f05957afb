"""``unlearnkit bench SPEC.yaml``: run a benchmark grid into a resumable SQLite results store."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..bench.grid import ResultStore, default_workers, load_spec, load_spec_with_tuning, run_bench
from ..bench.pipeline import BACKENDS
from ..errors import UnlearnkitError
from .common import cache_from_args


def add_store_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", type=Path, default=None,
                   help="SQLite results store (default: bench-results/<spec name>.sqlite)")


def store_path(args: argparse.Namespace, spec_name: str) -> Path:
    return args.store or Path("bench-results") / f"{spec_name}.sqlite"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run a benchmark spec (grid of datasets x models x scenarios x methods x seeds)",
                       description="Run every cell (experiment, method, seed) of a YAML spec that is not yet in the "
                                   "results store. Killing it loses only the cells in flight; run it again to resume. "
                                   "Methods with a search space in the spec are tuned first (see `unlearnkit tune`).")
    p.add_argument("spec", type=Path, help="benchmark spec (YAML), e.g. benchmarks/quick.yaml")
    add_store_arg(p)
    p.add_argument("--workers", "-j", type=int, default=0,
                   help="parallel cells (0 = as many as the cores allow at the spec's threads per worker, "
                        "default 1; 1 = in this process); workers x threads may not exceed the cores")
    p.add_argument("--backend", choices=BACKENDS, default="local",
                   help="local process pool (default) or ray (pip install 'unlearnkit[ray]')")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--retry-failed", action="store_true", help="also re-run cells recorded as skipped or error")
    p.add_argument("--no-tune", action="store_true",
                   help="do not tune; use tuned values already in the store (defaults otherwise)")
    p.add_argument("--report", type=Path, default=None, help="also write the leaderboard/HTML report to DIR")

    p.add_argument("--seeds", default=None, help="run only these seeds of the spec (comma-separated; a subset "
                   "of the spec's grid: the same cells, so a later full run only adds the rest)")
    p.add_argument("--only-datasets", default=None, help="run only these datasets of the spec (comma-separated)")
    p.add_argument("--only-models", default=None, help="run only these models of the spec (comma-separated)")
    p.add_argument("--only-scenarios", default=None, help="run only these scenarios of the spec (comma-separated)")
    p.add_argument("--only-methods", default=None, help="run only these methods of the spec (comma-separated; "
                   "include original,retrain for a report with its references)")
    p.add_argument("--dry-run", action="store_true",
                   help="summarise the cells to run per experiment with a time estimate from the store, and exit "
                        "without writing anything (-v also lists each cell)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or status lines")
    p.add_argument("--verbose", "-v", action="store_true", help="debug logs")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="model cache (default: $UNLEARNKIT_CACHE or ~/.cache/unlearnkit); shared by all workers")
    p.add_argument("--no-cache", action="store_true", help="never read or write the model cache")
    p.set_defaults(func=main)


def restrict(spec, args: argparse.Namespace):
    """The spec limited to some seeds / datasets / models / scenarios / methods (cell keys do not change)."""
    from dataclasses import replace

    from .common import _csv, _seeds

    exps = spec.experiments
    if args.only_datasets:
        exps = [e for e in exps if e.dataset in _csv(args.only_datasets)]
    if args.only_models:
        exps = [e for e in exps if e.model in _csv(args.only_models)]
    if args.only_scenarios:
        exps = [e for e in exps if e.scenario in _csv(args.only_scenarios)]
    if args.only_methods:
        wanted = _csv(args.only_methods)
        bad = sorted(set(wanted) - {m for e in exps for m in e.methods})
        if bad:
            raise UnlearnkitError(f"--only-methods {bad} are not methods of spec {spec.name}")
        exps = [replace(e, methods=[m for m in e.methods if m in wanted],
                        method_params={m: v for m, v in e.method_params.items() if m in wanted}) for e in exps]
        exps = [e for e in exps if e.methods]
    if args.seeds:
        wanted = _seeds(args.seeds)
        bad = sorted(set(wanted) - set(spec.experiments[0].seeds))
        if bad:
            raise UnlearnkitError(f"--seeds {bad} are not seeds of spec {spec.name}")
        exps = [replace(e, seeds=[s for s in e.seeds if s in wanted]) for e in exps]
    if not exps:
        raise UnlearnkitError("the --only-* filters leave no experiment of the spec")
    return replace(spec, experiments=exps)


def main(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    spec = restrict(load_spec(args.spec), args)  # validates names and values before anything runs
    spec.check_data()  # and what depends on the data, before the store is created
    if args.workers < 0:
        raise UnlearnkitError(f"--workers must be >= 0 (0 = as many as the cores allow), got {args.workers}")
    if args.dry_run:
        return dry_run(args, spec)
    say = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr))
    cache = cache_from_args(args)
    from tqdm.contrib.logging import logging_redirect_tqdm

    # log lines (warnings of a cell, say) print above the progress bars instead of onto them
    with ResultStore(store_path(args, spec.name)) as store, logging_redirect_tqdm():
        spec = load_spec_with_tuning(args.spec, store, cache=cache, tune=not args.no_tune, say=say,
                                     progress=not args.quiet)
        spec = restrict(spec, args)
        summary = run_bench(spec, store, cache=cache, workers=args.workers,
                            backend=args.backend, ray_address=args.ray_address, retry_failed=args.retry_failed,
                            progress=not args.quiet)
        if args.report:
            from ..bench.reports import write_report

            keys = [c.key for c in spec.cells()]
            paths = write_report(store.result_rows(keys), store.runs(keys), args.report, title=f"unlearnkit bench: {spec.name}")
            say(f"report: {paths['markdown']}  {paths['html']}")
        print(f"{spec.name}: {summary.total} cells, {summary.already} already done, ran {summary.ran} "
              f"({summary.done} done, {summary.skipped} skipped, {summary.errors} errors) in "
              f"{time.perf_counter() - start:.1f} s; store {store.path}")
        for line in problem_lines(store, [c.key for c in spec.cells()]):
            print(line, file=sys.stderr)
    return 1 if summary.errors else 0


def dry_run(args: argparse.Namespace, spec) -> int:
    """What ``bench`` would do, per experiment, with a time estimate from the store's own timings;
    opens the store read-only (or not at all when it does not exist) and writes nothing."""
    path = store_path(args, spec.name)
    status: dict[str, str] = {}
    runs: list[dict] = []
    if path.exists():
        with ResultStore(path, readonly=True) as store:
            spec = load_spec_with_tuning(args.spec, store, tune=False)
            status, runs = store.status_of(c.key for c in spec.cells()), store.runs(status="done")
    spec = restrict(spec, args)
    cells = spec.cells()
    estimate = _cell_time_estimator(runs)
    pending = [c for c in cells if c.key not in status or (args.retry_failed and status[c.key] != "done")]
    print(f"{spec.name}: {len(cells)} cells, {len(cells) - len(pending)} already in {path}"
          f"{'' if path.exists() else ' (no store yet)'}, {len(pending)} to run")
    total, unknown = 0.0, 0
    for group in dict.fromkeys(c.group for c in cells):
        mine = [c for c in pending if c.group == group]
        times = [estimate(c) for c in mine]
        known = [t for t in times if t is not None]
        total, unknown = total + sum(known), unknown + len(times) - len(known)
        est = f"~{_duration(sum(known))}" if known else "no stored timing"
        print(f"  {group}: {len(mine)} of {sum(c.group == group for c in cells)} to run ({est})")
        if args.verbose:
            for c in mine:
                print(f"    {c.method}\tseed {c.seed}\t{c.params or ''}")
    workers = args.workers or default_workers(max(c.threads for c in spec.experiments))
    if pending:
        print(f"estimated cell time {_duration(total)} (~{_duration(total / workers)} on {workers} worker(s))"
              + (f"; {unknown} cell(s) without a stored timing are not counted" if unknown else ""))
    if spec.search:
        print(f"methods tuned before the grid unless --no-tune: {', '.join(sorted(spec.search))}")
    print("dry run: nothing was run or written")
    return 0


def _cell_time_estimator(runs: list[dict]):
    """A cell's expected wall time: the mean of stored finished cells of the same experiment and
    method, else of the same method anywhere in the store, else None."""
    by_group: dict[tuple, list[float]] = {}
    by_method: dict[str, list[float]] = {}
    for r in runs:
        if r.get("wall_s") is not None:
            by_group.setdefault((r["grp"], r["method"]), []).append(r["wall_s"])
            by_method.setdefault(r["method"], []).append(r["wall_s"])

    def estimate(cell) -> float | None:
        times = by_group.get((cell.group, cell.method)) or by_method.get(cell.method)
        return sum(times) / len(times) if times else None

    return estimate


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def problem_lines(store: ResultStore, keys: list[str]) -> list[str]:
    """One line per distinct reason a cell of this spec was skipped or failed, with its cells."""
    reasons: dict[tuple[str, str], list[str]] = {}
    for run in store.runs(keys):
        if run["status"] != "done":
            last = (run["error"] or "").strip().splitlines()
            cell = f"{run['grp']} {run['method']} seed {run['seed']}"
            reasons.setdefault((run["status"], last[-1] if last else "no reason recorded"), []).append(cell)
    lines = []
    for (status, reason), cells in sorted(reasons.items()):
        shown = "; ".join(cells[:3]) + (f"; and {len(cells) - 3} more" if len(cells) > 3 else "")
        lines.append(f"{'error' if status == 'error' else 'skipped'} ({len(cells)} cell(s): {shown}): {reason}")
    return lines
