"""``unlearnkit demo``: a setting where methods separate, in well under a minute on a laptop CPU.

MNIST-1D with an MLP that memorises its training set (train accuracy 100%, test about 60%): Retrain
misclassifies about 40% of a random 10% forget set, so a method has to change the model to come
close, and methods separate. unlearnkit's ``dist_match`` runs beside the strongest peers of the
memorising benchmark (``rl``, ``neggrad_plus``, ``l1_sparse``) and Retrain."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..bench.pipeline import ExperimentConfig, run_experiment
from ..bench.reports import markdown_table
from .common import _seeds, add_common_args, add_workers_arg, cache_from_args

DEMO_METHODS = ["original", "retrain", "dist_match", "rl", "neggrad_plus", "l1_sparse"]
DEMO_DATA = {"dataset": "mnist1d", "dataset_options": {"n_samples": 5000}, "model": "mlp", "scenario": "random",
             "scenario_options": {"forget_size": 0.1}}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="mnist1d / MLP, random 10%% forgetting, 3 seeds: dist_match, the strongest "
                                    "peers and Retrain",
                       description="Train an MLP that memorises MNIST-1D, forget a random 10% of the training "
                                   "set with unlearnkit's dist_match and the strongest peer methods over 3 seeds, "
                                   "compare with Retrain, print the table and write the results and the "
                                   "interactive comparison page (compare.html) to --out.")
    p.add_argument("--out", type=Path, default=Path("unlearnkit-demo"), help="output folder (default ./unlearnkit-demo)")
    p.add_argument("--seeds", type=_seeds, default=[0, 1, 2], help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the results in --out when they belong to another experiment")
    add_workers_arg(p, default=0)
    add_common_args(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    config = ExperimentConfig(**DEMO_DATA, methods=DEMO_METHODS, seeds=args.seeds, device=args.device or "auto",
                              threads=args.threads or 1)
    start = time.perf_counter()
    results = run_experiment(config, args.out, cache=cache_from_args(args), progress=not args.quiet,
                             overwrite=args.overwrite, workers=args.workers)
    print("\nunlearnkit demo: mnist1d / mlp / random 10% forgetting, mean ± std over seeds "
          f"{','.join(map(str, args.seeds))} (accuracies and MIA-efficacy in %, avg gap in points)\n")
    print(markdown_table(results["summary"]))
    page = args.out / "compare.html"
    print(f"wrote {args.out}/results.json, {args.out}/report.md, {args.out}/tradeoff.png"
          + (f" and {page} (open it in a browser)" if page.exists() else "")
          + f" ({time.perf_counter() - start:.0f} s)")
    return 0
