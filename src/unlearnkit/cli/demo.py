"""``unlearnkit demo``: the embedded default benchmark in a few minutes on a laptop CPU."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..bench.pipeline import ExperimentConfig, run_experiment
from ..bench.reports import markdown_table
from .common import _seeds, add_common_args, add_workers_arg, cache_from_args

DEMO_METHODS = ["original", "retrain", "ft", "ga", "neggrad_plus", "rl", "l1_sparse"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="digits / small CNN, random 10%% forgetting, 3 seeds, the baselines",
                       description="Train a small CNN on scikit-learn's digits, forget a random 10% of "
                                   "the training set with each baseline method over 3 seeds, compare "
                                   "with Retrain, print the table and write results to --out.")
    p.add_argument("--out", type=Path, default=Path("unlearnkit-demo"), help="output folder (default ./unlearnkit-demo)")
    p.add_argument("--seeds", type=_seeds, default=[0, 1, 2], help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the results in --out when they belong to another experiment")
    add_workers_arg(p, default=0)
    add_common_args(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    config = ExperimentConfig(dataset="digits", model="cnn", scenario="random",
                              scenario_options={"forget_size": 0.1}, methods=DEMO_METHODS,
                              seeds=args.seeds, device=args.device or "auto",
                              threads=args.threads or 1)
    start = time.perf_counter()
    results = run_experiment(config, args.out, cache=cache_from_args(args), progress=not args.quiet,
                             overwrite=args.overwrite, workers=args.workers)
    print("\nunlearnkit demo: digits / cnn / random 10% forgetting, mean ± std over seeds "
          f"{','.join(map(str, args.seeds))} (accuracies and MIA-efficacy in %, avg gap in points)\n")
    print(markdown_table(results["summary"]))
    print(f"wrote {args.out}/results.json, {args.out}/report.md, {args.out}/tradeoff.png "
          f"({time.perf_counter() - start:.0f} s)")
    return 0
