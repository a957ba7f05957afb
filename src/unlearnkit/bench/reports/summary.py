"""Summaries over seeds, the Markdown table a person reads, and plots."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Iterable, Optional

from ...evaluation.metrics import mean_std
from ...evaluation.registry import METRICS, avg_gap, gap_metrics_of, signed_gaps
from ...utils import atomic_write_text, to_jsonable

log = logging.getLogger(__name__)

NON_METRIC_KEYS = {"method", "scenario", "dataset", "model", "seed", "request"}


def _metric_names(rows: list[dict]) -> list[str]:
    """Registered metrics in display order, then any other number the rows carry."""
    names = [m.name for m in METRICS.ordered()]
    for row in rows:
        for k, v in row.items():
            if k not in names and k not in NON_METRIC_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool):
                names.append(k)
    return names


def summarize(rows: list[dict], group_keys: Iterable[str] = ("method",)) -> list[dict[str, Any]]:
    """Per method: mean and std over seeds of every metric, signed and average gaps to Retrain
    (gap of the seed-means, docs/metrics.md) and speedup = Retrain time / method time."""
    group_keys = tuple(group_keys)
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(k) for k in group_keys), []).append(row)
    names = _metric_names(rows)
    summary = []
    for key, members in groups.items():
        entry: dict[str, Any] = dict(zip(group_keys, key))
        entry["n_seeds"] = len({r["seed"] for r in members})
        # "cache": some time was read from a cached model's metadata (another run's clock): no speedup
        entry["time_source"] = "cache" if any(r.get("time_source") == "cache" for r in members) else "measured"
        entry["mean"], entry["std"] = {}, {}
        for m in names:
            values = [r[m] for r in members if isinstance(r.get(m), (int, float))]
            if values:
                entry["mean"][m], entry["std"][m] = mean_std(values)
        summary.append(entry)
    by_key = {tuple(e[k] for k in group_keys): e for e in summary}
    for entry in summary:
        ref_key = tuple("retrain" if k == "method" else entry[k] for k in group_keys)
        ref = by_key.get(ref_key)
        if ref is None:
            entry["avg_gap"], entry["gaps"], entry["speedup"] = None, {}, None
            continue
        metrics = gap_metrics_of(entry["mean"])
        entry["gaps"] = signed_gaps(entry["mean"], ref["mean"], metrics)
        entry["avg_gap"] = avg_gap(entry["mean"], ref["mean"], metrics)
        t, t_ref = entry["mean"].get("time_s"), ref["mean"].get("time_s")
        same_run = entry["time_source"] == ref["time_source"] == "measured"
        entry["speedup"] = (t_ref / t) if same_run and t and t_ref and t > 0 else None
    return summary


def markdown_table(summary: list[dict], title: str = "") -> str:
    """One row per method: the registered table metrics present (percentages and seconds as
    mean ± std), avg gap (points), time and speedup."""
    if not summary:
        return "(no results)\n"
    present = [m for m in METRICS.table_metrics({k for e in summary for k in e["mean"]}) if m.name != "time_s"]
    timer = METRICS.get("time_s")
    head = ["Method"] + [m.label for m in present] + ["Avg gap ↓", timer.label, "Speedup"]
    lines = [f"### {title}\n" if title else "", "| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for e in summary:
        mean, std = e["mean"], e["std"]
        label = f"`{e['method']}`" + (f" (request {e['request']})" if e.get("request") is not None else "")
        cells = [label] + [m.format(mean.get(m.name), std.get(m.name) if m.unit in ("%", "s") else None)
                           for m in present]
        gap = e.get("avg_gap")
        cells.append("—" if gap is None or math.isnan(gap) else f"{100 * gap:.2f}")
        cells.append(timer.format(mean.get("time_s"), std.get("time_s", 0.0)))
        sp = e.get("speedup")
        cells.append("—" if sp is None else f"{sp:.1f}×")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(line for line in lines if line) + "\n"


def render_report(results: dict[str, Any]) -> str:
    c = results["config"]
    opts = ", ".join(f"{k}={v}" for k, v in c.get("scenario_options", {}).items())
    title = f"{c['dataset']} / {c['model']} / {c['scenario']}" + (f" ({opts})" if opts else "")
    seeds = ", ".join(str(s) for s in c["seeds"])
    parts = [f"# unlearnkit results: {title}\n",
             f"Seeds: {seeds}. Accuracies and MIA-efficacy in %, mean ± std over seeds. "
             "Avg gap = mean |metric − Retrain's| over forget/retain/test acc and MIA-efficacy, in points "
             "(lower is better). Speedup = Retrain time / method time (unlearning call only).\n",
             markdown_table(results["summary"])]
    gaps = [e for e in results["summary"] if e.get("gaps")]
    if gaps:
        parts.append("\nSigned gaps to Retrain in points (negative forget acc / positive MIA = more "
                     "forgetting than Retrain):\n")
        names = list(gaps[0]["gaps"])
        parts.append("| Method | " + " | ".join(names) + " |\n|---|" + "---:|" * len(names))
        for e in gaps:
            parts.append(f"| `{e['method']}` | " + " | ".join(f"{100 * e['gaps'].get(n, float('nan')):+.1f}"
                                                             for n in names) + " |")
    return "\n".join(parts) + "\n"


def plot_tradeoff(summary: list[dict], path: Path, title: str = "") -> Optional[Path]:
    """Scatter: forgetting (|forget acc gap| and MIA gap to Retrain) vs utility (test acc)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [e for e in summary if "test_acc" in e["mean"] and e.get("gaps")]
    if not pts:
        log.info("plot skipped: no method has a gap to Retrain")
        return None
    from .plots import method_styles, scatter_methods

    styles = method_styles(e["method"] for e in pts)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in ((axes[0], "forget_acc"), (axes[1], "mia_efficacy")):
        label = f"|{METRICS.get(metric).label} − Retrain| (pts)"
        ax.set_xlabel(label + "  ← closer to Retrain")
        ax.set_ylabel(f"{METRICS.get('test_acc').label} (%)")
        ax.grid(alpha=0.3)
        scatter_methods(ax, [(e["method"], 100 * abs(e["gaps"].get(metric, float("nan"))),
                              100 * e["mean"]["test_acc"]) for e in pts], styles)
    fig.suptitle(title or "forgetting quality vs utility")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_outputs(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.json", json.dumps(to_jsonable(results), indent=2))
    atomic_write_text(out / "report.md", render_report(results))
    c = results["config"]
    plot_tradeoff(results["summary"], out / "tradeoff.png", f"{c['dataset']}/{c['model']}/{c['scenario']}")
