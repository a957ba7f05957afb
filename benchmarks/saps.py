"""SAPS benchmark: which parameters should an unlearning update change?

For one dataset / model / scenario and several seeds, runs each method X with the update restricted
to: all parameters, the last layer, a random subset of the last layer's size, and for each fraction
a random subset and the top-Hessian subset (plus the Fisher and gradient scores at one fraction),
and writes a table of avg gap to Retrain, test accuracy and time.

The step hyperparameter of each (method, selection) variant (first_order: tau, second_order: damping,
ga / ft: lr) is tuned on the first seed from a small grid by the smallest avg gap to Retrain, then
used for every seed (the first seed's row is that of the tuning run). Times are wall seconds of the
unlearning call plus the selection scores (the mask is computed once per seed and selection - exactly
as the method computes it - and injected, so tuning does not recompute it), on one thread (the
threading policy of every command, bench/runtime.py).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/saps.py --dataset digits --model cnn --scenario label \\
        --methods first_order,second_order --seeds 0,1,2 --out /tmp/saps/digits-label \\
        --cache-dir /tmp/cache-saps
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from unlearnkit.bench.pipeline import ModelCache
from unlearnkit.bench.pipeline import Experiment, ExperimentConfig
from unlearnkit.bench.reports import summarize
from unlearnkit.bench.pipeline.runtime import runtime_record
from unlearnkit.evaluation import CORE_METRICS
from unlearnkit.methods import get_method
from unlearnkit.methods.blocks.selection import last_layer_mask, mask_fraction, select_params, selection_data
from unlearnkit.utils import Timer, atomic_write_text, to_jsonable

GRIDS = {
    "first_order": ("tau", [2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2]),
    "second_order": ("damping", [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0]),
    "ga": ("lr", [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2]),
    "ft": ("lr", [0.01, 0.03, 0.1]),
}
EXTRA = ["corrected_acc", "pattern_flip", "canary_exposure"]


def variants(fractions: list[float], ll_fraction: float, extra_scores_at: float) -> list[tuple[str, str, float]]:
    out = [("all", "all", 1.0), ("last_layer", "last_layer", ll_fraction),
           (f"random@last-layer size ({100 * ll_fraction:.1f}%)", "random", ll_fraction)]
    for f in fractions:
        out += [(f"random@{100 * f:g}%", "random", f), (f"hessian@{100 * f:g}%", "hessian", f)]
        if f == extra_scores_at:
            out += [(f"fisher@{100 * f:g}%", "fisher", f), (f"grad@{100 * f:g}%", "grad", f)]
    return out


_MASKS: dict = {}


def selection(ctx, score: str, frac: float, seed: int, device) -> tuple:
    """(mask, seconds) exactly as the methods compute it (same data, same generator seed), cached per
    (seed, score, fraction) so tuning does not repeat it; its time is added to every row that uses it."""
    if score == "all":
        return None, 0.0
    key = (seed, score, frac)
    if key not in _MASKS:
        model = copy.deepcopy(ctx.original).to(device)
        task = ctx.data.task.to(device)
        with Timer() as t:
            mask = select_params(model, selection_data(task), min(frac, 1.0), score=score,
                                 generator=torch.Generator().manual_seed(seed + 7919))
        _MASKS[key] = (mask, t.seconds)
    return _MASKS[key]


def gap(row: dict, ref: dict) -> float:
    return float(np.mean([abs(row[m] - ref[m]) for m in CORE_METRICS]))


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--model", default="cnn")
    ap.add_argument("--scenario", default="label")
    ap.add_argument("--scenario-opt", action="append", default=[], help="KEY=VALUE")
    ap.add_argument("--methods", default="first_order,second_order")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--fractions", default="0.01,0.05,0.2")
    ap.add_argument("--extra-scores-at", type=float, default=0.05)
    ap.add_argument("--set", action="append", default=[], help="METHOD.KEY=VALUE fixed hyperparameters")
    ap.add_argument("--out", required=True)
    ap.add_argument("--cache-dir", default=None)
    return ap.parse_args()


def run_seed(exp: Experiment, args: argparse.Namespace, seed: int, fixed: dict, tuned: dict) -> list[dict]:
    """The rows of one seed: original, retrain, and every (method, selection) variant, each tuned on
    the first seed that runs it (``tuned`` records the chosen step value)."""
    ctx = exp.prepare(seed)
    ref = exp.run_method(ctx, "retrain")
    rows = [dict(exp.run_method(ctx, "original"), variant="original", select="-"),
            dict(ref, variant="retrain", select="-")]
    ll = mask_fraction(last_layer_mask(ctx.original))
    fractions = [float(f) for f in args.fractions.split(",")]
    for name in args.methods.split(","):
        knob, grid = GRIDS[name]
        for label, score, frac in variants(fractions, ll, args.extra_scores_at):
            vkey = f"{name}/{label}"
            params = {**fixed.get(name, {}), "select": score, "select_fraction": min(frac, 1.0)}
            mask, sel_s = selection(ctx, score, frac, seed, exp.device)

            def run(value):
                method = get_method(name, **params, **{knob: value})
                if mask is not None:  # the mask the method would compute, computed once per seed
                    method.selection_mask = lambda m, t: mask
                with Timer() as t:
                    model = method.unlearn(ctx.original, ctx.data.task, seed=seed, device=exp.device)
                row = exp.evaluate(model, ctx)
                row.update(method=vkey, variant=vkey, base=name, select=score, select_fraction=frac,
                           knob=knob, knob_value=value, scenario=args.scenario, dataset=args.dataset,
                           model=args.model, seed=seed, time_s=t.seconds + sel_s, select_s=sel_s,
                           time_source="measured")
                return row

            if vkey not in tuned:
                trials = [run(v) for v in grid]
                row = min(trials, key=lambda r: gap(r, ref) if not math.isnan(gap(r, ref)) else 9.0)
                tuned[vkey] = row["knob_value"]
                print(f"[tune seed {seed}] {vkey:45s} " + " ".join(
                    f"{v:g}:{gap(r, ref) * 100:.1f}" for v, r in zip(grid, trials)), flush=True)
            else:
                row = run(tuned[vkey])
            rows.append(row)
            print(f"seed {seed} {vkey:45s} {knob}={tuned[vkey]:g} gap {100 * gap(row, ref):5.2f} "
                  f"test {100 * row['test_acc']:.1f} time {row['time_s']:.2f}s", flush=True)
    return rows


def main() -> None:
    args = parse_args()
    fixed: dict[str, dict] = {}
    for item in args.set:
        key, value = item.split("=", 1)
        m, k = key.split(".", 1)
        fixed.setdefault(m, {})[k] = value
    sopts = dict(kv.split("=", 1) for kv in args.scenario_opt)
    cfg = ExperimentConfig(dataset=args.dataset, model=args.model, scenario=args.scenario,
                           methods=["original", "retrain"], seeds=[int(s) for s in args.seeds.split(",")],
                           scenario_options=sopts)
    exp = Experiment(cfg, cache=ModelCache(args.cache_dir) if args.cache_dir else None, progress=False)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    tuned: dict[str, float] = {}
    start = time.perf_counter()
    for seed in cfg.seeds:
        rows += run_seed(exp, args, seed, fixed, tuned)
    wall = time.perf_counter() - start
    summary = summarize(rows, ("method",))
    results = {"args": vars(args), "tuned": tuned, "wall_s": wall, "rows": rows, "summary": summary,
               "runtime": runtime_record(exp.device, cfg.threads, workers=1)}
    atomic_write_text(out / "results.json", json.dumps(to_jsonable(results), indent=2))
    atomic_write_text(out / "table.md", render(results))
    print(render(results))
    print(f"wall {wall:.0f}s")


def render(results: dict) -> str:
    a = results["args"]
    summary = results["summary"]
    extras = [m for m in EXTRA if any(m in e["mean"] for e in summary)]
    head = ["Variant", "tuned", "Avg gap ↓ (pts)", "Forget acc", "Test acc"] + extras + ["Time (s)"]
    lines = [f"### {a['dataset']} / {a['model']} / {a['scenario']} (seeds {a['seeds']})", "",
             "| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for e in summary:
        m, s = e["mean"], e["std"]
        name = e["method"]
        knob = results["tuned"].get(name)
        cells = [f"`{name}`", "—" if knob is None else f"{knob:g}",
                 "—" if e.get("avg_gap") is None else f"{100 * e['avg_gap']:.2f}",
                 f"{100 * m['forget_acc']:.1f} ± {100 * s['forget_acc']:.1f}",
                 f"{100 * m['test_acc']:.1f} ± {100 * s['test_acc']:.1f}"]
        cells += [f"{100 * m[x]:.1f}" if x in m and x != "canary_exposure" else (f"{m[x]:.2f}" if x in m else "—")
                  for x in extras]
        cells.append(f"{m['time_s']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    # paired comparison: hessian vs random at each fraction, per method
    lines += ["", "Top-Hessian vs random subset of the same size (avg gap to Retrain in points, per-seed gap "
              "of each variant then averaged; negative diff = Hessian better):", "",
              "| Method | Fraction | random | hessian | diff | seeds Hessian better |", "|---|---:|---:|---:|---:|---:|"]
    rows = results["rows"]
    refs = {r["seed"]: r for r in rows if r["variant"] == "retrain"}
    bases = sorted({r["base"] for r in rows if "base" in r})
    fracs = sorted({r["select_fraction"] for r in rows if r.get("select") == "hessian"})
    for b in bases:
        for f in fracs:
            def per_seed(score):
                return {r["seed"]: gap(r, refs[r["seed"]]) for r in rows
                        if r.get("base") == b and r.get("select") == score and r.get("select_fraction") == f
                        and "last-layer" not in r["variant"]}
            rnd, hes = per_seed("random"), per_seed("hessian")
            common = sorted(set(rnd) & set(hes))
            if not common:
                continue
            r_m = np.mean([rnd[k] for k in common]); h_m = np.mean([hes[k] for k in common])
            wins = sum(hes[k] < rnd[k] for k in common)
            lines.append(f"| {b} | {100 * f:g}% | {100 * r_m:.2f} | {100 * h_m:.2f} | {100 * (h_m - r_m):+.2f} | "
                         f"{wins}/{len(common)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
