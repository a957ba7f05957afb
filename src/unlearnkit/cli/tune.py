"""``unlearnkit tune SPEC.yaml``: tune the spec's search spaces against Retrain (Optuna)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..bench.grid import ResultStore, load_spec, tune_spec
from ..bench.grid.tune import VALIDATION
from .bench import add_store_arg, store_path
from .common import _csv, cache_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune", help="tune method hyperparameters against Retrain on a validation split (Optuna)",
                       description="For every experiment of the spec and every method with a search space "
                                   "(spec key 'search'), run an Optuna study minimising the average gap to Retrain "
                                   f"on validation data ({VALIDATION}) with tuning seeds disjoint from the "
                                   "benchmark seeds. The best values are stored and reused by `unlearnkit bench`.")
    p.add_argument("spec", type=Path, help="benchmark spec (YAML) with a 'search' section")
    add_store_arg(p)
    p.add_argument("--trials", type=int, default=None, help="trial budget per (experiment, method) (default: spec tune.trials)")
    p.add_argument("--methods", type=_csv, default=None, help="only these methods")
    p.add_argument("--quiet", "-q", action="store_true")
    p.add_argument("--verbose", "-v", action="store_true")
    p.add_argument("--cache-dir", type=Path, default=None)
    p.add_argument("--no-cache", action="store_true")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    import yaml

    from ..errors import UnlearnkitError

    spec = load_spec(args.spec)
    if not spec.search:
        raise UnlearnkitError(f"spec {args.spec} has no 'search' section: nothing to tune")
    fixed = dict((yaml.safe_load(args.spec.read_text()) or {}).get("method_params") or {})
    say = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr))
    with ResultStore(store_path(args, spec.name)) as store:
        tuned = tune_spec(spec, store, fixed, cache=cache_from_args(args), trials=args.trials, methods=args.methods,
                          say=say, progress=not args.quiet)
    for (grp, method), params in sorted(tuned.items()):
        print(f"{grp}\t{method}\t{json.dumps(params)}")
    return 0
