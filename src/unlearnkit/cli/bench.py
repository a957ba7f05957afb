"""``unlearnkit bench SPEC.yaml``: run a benchmark grid into a resumable SQLite results store."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..bench.runner import BACKENDS, default_workers, run_bench
from ..bench.store import ResultStore
from ..bench.tune import load_spec_with_tuning
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
                   help="parallel cells (0 = one per CPU core; 1 = in this process)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
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
    p.add_argument("--only-scenarios", default=None, help="run only these scenarios of the spec (comma-separated)")
    p.add_argument("--dry-run", action="store_true", help="list the pending cells and exit")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or status lines")
    p.add_argument("--verbose", "-v", action="store_true", help="debug logs")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="model cache (default: $UNLEARNKIT_CACHE or ~/.cache/unlearnkit); shared by all workers")
    p.add_argument("--no-cache", action="store_true", help="never read or write the model cache")
    p.set_defaults(func=main)


def restrict(spec, args: argparse.Namespace):
    """The spec limited to some seeds / datasets / scenarios (cell keys do not change)."""
    from dataclasses import replace

    from ..errors import UnlearnkitError
    from .common import _csv, _seeds

    exps = spec.experiments
    if args.only_datasets:
        exps = [e for e in exps if e.dataset in _csv(args.only_datasets)]
    if args.only_scenarios:
        exps = [e for e in exps if e.scenario in _csv(args.only_scenarios)]
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
    from ..bench.spec import load_spec

    start = time.perf_counter()
    spec = load_spec(args.spec)  # validates names before anything runs
    say = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr))
    with ResultStore(store_path(args, spec.name)) as store:
        cache = cache_from_args(args)
        spec = load_spec_with_tuning(args.spec, store, cache=cache, tune=not args.no_tune, say=say)
        spec = restrict(spec, args)
        if args.dry_run:
            status = store.status_of(c.key for c in spec.cells())
            for c in spec.cells():
                if c.key not in status:
                    print(f"{c.group}\t{c.method}\tseed {c.seed}\t{c.params or ''}")
            return 0
        summary = run_bench(spec, store, cache=cache, workers=args.workers or default_workers(),
                            backend=args.backend, ray_address=args.ray_address, retry_failed=args.retry_failed,
                            progress=not args.quiet, threads=args.threads)
        if args.report:
            from ..bench.leaderboard import write_report

            keys = [c.key for c in spec.cells()]
            paths = write_report(store.result_rows(keys), store.runs(keys), args.report, title=f"unlearnkit bench: {spec.name}")
            say(f"report: {paths['markdown']}  {paths['html']}")
        print(f"{spec.name}: {summary.total} cells, {summary.already} already done, ran {summary.ran} "
              f"({summary.done} done, {summary.skipped} skipped, {summary.errors} errors) in "
              f"{time.perf_counter() - start:.1f} s; store {store.path}")
    return 1 if summary.errors else 0
