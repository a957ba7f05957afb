"""``unlearnkit report``: leaderboards (Markdown) and a static HTML page with plots from a store."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..bench.reports import write_report
from ..bench.grid import open_store
from ..errors import UnlearnkitError
from .common import check_out_folder


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="leaderboard per scenario (Markdown + static HTML with plots) from a store",
                       description="Render one leaderboard per dataset/model/scenario (mean ± std over seeds, avg gap "
                                   "to Retrain, speedup, best per column in bold) to DIR/leaderboard.md and a "
                                   "self-contained DIR/index.html with plots (forget quality vs utility, time vs gap, "
                                   "per-method bars).")
    p.add_argument("store", type=Path, help="SQLite results store, or its text dump (*.jsonl)")
    p.add_argument("--spec", type=Path, default=None, help="only the cells of this spec")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--title", default=None)
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    check_out_folder(args.out)
    keys, title = None, args.title or f"unlearnkit benchmark ({args.store.name})"
    with open_store(args.store) as store:
        if args.spec:
            from ..bench.grid import load_spec_with_tuning

            spec = load_spec_with_tuning(args.spec, store, tune=False)
            keys = [c.key for c in spec.cells()]
            title = args.title or f"unlearnkit benchmark: {spec.name}"
        rows = store.result_rows(keys)
        if not rows:
            raise UnlearnkitError(f"no finished cells in {args.store}" + (f" for spec {args.spec}" if args.spec else ""))
        paths = write_report(rows, store.runs(keys), args.out, title=title, plots=not args.no_plots)
    print(f"leaderboard: {paths['markdown']}\nhtml: {paths['html']}")
    return 0
