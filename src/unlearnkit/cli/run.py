"""``unlearnkit run``: one dataset/model/scenario, several methods and seeds -> results.json."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..bench.pipeline import run_experiment
from ..bench.reports import markdown_table
from .common import add_common_args, add_experiment_args, add_workers_arg, cache_from_args, config_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run methods on a scenario and compare them with Retrain",
                       description="Run unlearning methods on one dataset/model/scenario over seeds; "
                                   "writes DIR/results.json, DIR/report.md and plots. Re-running the "
                                   "same command resumes an interrupted run.")
    add_experiment_args(p, methods_default="original,retrain,ft,ga,neggrad_plus,rl,l1_sparse")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the results in --out when they belong to another experiment")
    add_workers_arg(p, default=1)
    add_common_args(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    results = run_experiment(config, args.out, cache=cache_from_args(args), progress=not args.quiet,
                             overwrite=args.overwrite, workers=args.workers)
    print(markdown_table(results["summary"]))
    print(f"results: {args.out / 'results.json'}   report: {args.out / 'report.md'}")
    return 0
