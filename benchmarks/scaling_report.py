"""Tables and plots of the scaling benchmark (benchmarks/scaling.yaml) from its results store.

    python benchmarks/scaling_report.py [--store bench-results/scaling.sqlite] [--out bench-report/scaling]

For each model and scenario: time, avg gap to Retrain and speedup over Retrain of every method at
each data-set size n (mean over the seeds in the store; gaps and speedups from the same n and run),
as markdown (printed) and as time-vs-n, gap-vs-n and speedup-vs-n plots (OUT/scaling_<model>_<scenario>.png).
Ends with every method measured at the smallest and the largest n: the change of its avg gap
between them (within 2 points either way = flat) and its speedup at the largest n, best first.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unlearnkit.bench.reports import summarize
from unlearnkit.bench.grid import ResultStore


def load_summary(store_path: Path) -> list[dict]:
    with ResultStore(store_path, readonly=True) as store:
        runs = store.runs(status="done")
    rows = []
    for run in runs:
        n = int(run["config"]["dataset_options"].get("n_samples", 5000))
        rows += [{**row, "n": n} for row in run["rows"] or []]
    return summarize(rows, group_keys=("model", "scenario", "n", "method"))


def _fmt(value, digits: int = 1, suffix: str = "") -> str:
    return "—" if value is None else f"{value:.{digits}f}{suffix}"


def tables(summary: list[dict]) -> tuple[str, list[dict]]:
    sizes = sorted({e["n"] for e in summary})
    by = {(e["model"], e["scenario"], e["n"], e["method"]): e for e in summary}
    lines, stable = [], []
    for model, scenario in sorted({(e["model"], e["scenario"]) for e in summary}):
        methods = sorted({e["method"] for e in summary if (e["model"], e["scenario"]) == (model, scenario)},
                         key=lambda m: (m != "retrain", m))
        seeds = max(e["n_seeds"] for e in summary if (e["model"], e["scenario"]) == (model, scenario))
        lines += [f"### mnist1d/{model}/{scenario} ({seeds} seed{'s' * (seeds > 1)})", ""]
        head = " | ".join([f"time s n={n}" for n in sizes] + [f"avg gap n={n}" for n in sizes]
                          + [f"speedup n={n}" for n in sizes])
        lines += [f"| method | {head} |", "|---" * (1 + 3 * len(sizes)) + "|"]
        for m in methods:
            cells = [by.get((model, scenario, n, m)) for n in sizes]
            time = [_fmt(c["mean"].get("time_s") if c else None, 2) for c in cells]
            gap = [_fmt(c["avg_gap"] * 100 if c and c["avg_gap"] is not None else None) for c in cells]
            speed = [_fmt(c["speedup"] if c else None, 1, "×") for c in cells]
            lines.append(f"| {m} | " + " | ".join(time + gap + speed) + " |")
            first, last = cells[0], cells[-1]
            if m not in ("original", "retrain") and first and last and first["avg_gap"] is not None \
                    and last["avg_gap"] is not None:
                stable.append({"model": model, "scenario": scenario, "method": m, "gap": 100 * last["avg_gap"],
                               "drift": 100 * (last["avg_gap"] - first["avg_gap"]), "speedup": last["speedup"]})
        lines.append("")
    stable.sort(key=lambda s: -(s["speedup"] or 0))
    lines += [f"Every method measured at n={sizes[0]} and n={sizes[-1]}: its avg gap at n={sizes[-1]}, the change "
              f"from its own gap at n={sizes[0]} (within ±2 points: 'flat'; lower by more: 'closer'; higher: "
              "'further') and its speedup, best speedup first:", "",
              f"| model/scenario | method | gap n={sizes[-1]} | change | | speedup |", "|---|---|---|---|---|---|"]
    for e in stable:
        trend = "flat" if abs(e["drift"]) <= 2.0 else "closer" if e["drift"] < 0 else "further"
        lines.append(f"| {e['model']}/{e['scenario']} | {e['method']} | {e['gap']:.1f} | {e['drift']:+.1f} | {trend} | "
                     f"{_fmt(e['speedup'], 1, '×')} |")
    return "\n".join(lines), stable


def plots(summary: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    for model, scenario in sorted({(e["model"], e["scenario"]) for e in summary}):
        entries = [e for e in summary if (e["model"], e["scenario"]) == (model, scenario)]
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
        methods = sorted({e["method"] for e in entries} - {"original"})
        colours = plt.get_cmap("tab20")
        for i, m in enumerate(methods):
            pts = sorted(((e["n"], e) for e in entries if e["method"] == m), key=lambda p: p[0])
            ns, style = [n for n, _ in pts], {"marker": "o", "color": colours(i % 20)}
            axes[0].plot(ns, [e["mean"].get("time_s") for _, e in pts], label=m, **style)
            if m != "retrain":
                axes[1].plot(ns, [None if e["avg_gap"] is None else 100 * e["avg_gap"] for _, e in pts], **style)
                axes[2].plot(ns, [e["speedup"] for _, e in pts], **style)
        sizes = sorted({e["n"] for e in entries})
        for ax, title in zip(axes, ("unlearning time (s)", "avg gap to Retrain (points)", "speedup over Retrain")):
            ax.set_xscale("log")
            ax.set_xticks(sizes, [f"{n:,}" for n in sizes])  # the measured sizes only, no log-scale minor labels
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            ax.set_xlabel("mnist1d samples n")
            ax.set_title(title)
        axes[0].set_yscale("log")
        axes[2].set_yscale("log")
        fig.legend(loc="center right", fontsize=8)
        fig.suptitle(f"mnist1d/{model}/{scenario}")
        fig.tight_layout(rect=(0, 0, 0.88, 1))
        fig.savefig(out / f"scaling_{model}_{scenario}.png", dpi=90)
        plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=Path("bench-results/scaling.sqlite"))
    parser.add_argument("--out", type=Path, default=Path("bench-report/scaling"))
    args = parser.parse_args()
    if not args.store.exists():
        raise SystemExit(f"no results store at {args.store}: run the scaling benchmark first (see its spec)")
    summary = load_summary(args.store)
    if not summary:
        raise SystemExit(f"{args.store} holds no finished scaling run: nothing to report")
    text, _ = tables(summary)
    print(text)
    plots(summary, args.out)


if __name__ == "__main__":
    main()
