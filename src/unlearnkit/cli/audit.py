"""``unlearnkit audit``: per-example attacks with many models (LiRA, U-LiRA, challenge score)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..bench.audit import AuditConfig, run_audit
from ..bench.reports import audit_table
from .common import add_common_args, add_experiment_args, cache_from_args, check_out_folder, config_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "audit", help="strong per-example evidence of forgetting: LiRA, U-LiRA, NeurIPS'23 challenge score",
        description="Train K shadow models and N unlearned/retrained models (cached, in a process pool) and "
                    "run LiRA against the original model, U-LiRA and the NeurIPS 2023 unlearning challenge's "
                    "forgetting quality for each method. The first seed of --seeds draws the forget set. "
                    "Writes DIR/results.json, DIR/report.md, DIR/per_example.png and DIR/lira_roc.png; "
                    "re-running resumes from the model cache.")
    add_experiment_args(p, methods_default="original,retrain,ft,ga")
    p.add_argument("--shadow-models", "-K", type=int, default=16,
                   help="K: LiRA shadow models and U-LiRA shadow pairs (even, default 16)")
    p.add_argument("--challenge-models", "-N", type=int, default=32,
                   help="N: unlearned and retrained models for the challenge score (default 32; the "
                        "competition used 512)")
    p.add_argument("--variance", default="auto", choices=("auto", "global", "per_example"),
                   help="Gaussian variance: auto = global below 64 models (LiRA reference), else per example")
    p.add_argument("--augment", default="none", choices=("none", "flip"),
                   help="average phi over horizontal flips (only for image models trained with flips)")
    p.add_argument("--ulira-originals", default="shadow", choices=("shadow", "shared"),
                   help="U-LiRA shadows: shadow = K originals of their own, the method run on each (Hayes et al.); "
                        "shared = reuse the N challenge runs from the one original (no extra models)")
    p.add_argument("--workers", type=int, default=0,
                   help="processes training models in parallel (0 = one per CPU core, at most 8; 1 = serial)")
    p.add_argument("--no-vectorize", action="store_true",
                   help="train every model one by one (default: same-shape models without BatchNorm/dropout "
                        "train in stacks, one batched forward/backward per step)")
    p.add_argument("--backend", default="local", help="where the models are built: local (process pool, "
                   "default) or ray (pip install 'unlearnkit[ray]'; the model cache must be shared)")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--no-lira", action="store_true", help="skip LiRA against the original")
    p.add_argument("--no-ulira", action="store_true", help="skip U-LiRA")
    p.add_argument("--no-challenge", action="store_true", help="skip the challenge score")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    add_common_args(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    check_out_folder(args.out)
    experiment = config_from_args(args)
    config = AuditConfig(experiment=experiment, shadow_models=args.shadow_models,
                         challenge_models=args.challenge_models, variance=args.variance, augment=args.augment,
                         workers=args.workers, ulira_originals=args.ulira_originals, lira=not args.no_lira,
                         ulira=not args.no_ulira, challenge=not args.no_challenge,
                         vectorize=not args.no_vectorize, backend=args.backend, address=args.ray_address)
    start = time.perf_counter()
    results = run_audit(config, args.out, cache=cache_from_args(args), progress=not args.quiet)
    lo = results["audit"].get("lira_original")
    if lo:
        print(f"LiRA vs original (K={lo['K']}): AUC {lo['auc']:.3f}, TPR@1%FPR {100 * lo['tpr_at_0.01_fpr']:.1f}%, "
              f"TPR@0.1%FPR {100 * lo['tpr_at_0.001_fpr']:.1f}%")
    print(audit_table(results["rows"]))
    print(f"results: {args.out / 'results.json'}   report: {args.out / 'report.md'}   "
          f"({time.perf_counter() - start:.0f} s)")
    return 0
