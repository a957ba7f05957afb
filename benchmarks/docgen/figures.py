"""SVG plots for the benchmark documents, byte for byte the same from the same rows: fixed element
ids (``svg.hashsalt``), text kept as text, no creation date (``SOURCE_DATE_EPOCH``)."""

from __future__ import annotations

import os
from pathlib import Path

from unlearnkit.bench.reports.plots import method_styles
from unlearnkit.bench.reports.summary import plot_tradeoff, summarize

from .tables import request_curves


def _pyplot():
    os.environ["SOURCE_DATE_EPOCH"] = "0"  # matplotlib writes this date into the SVG metadata
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update({"svg.hashsalt": "unlearnkit", "svg.fonttype": "none", "font.family": "DejaVu Sans"})
    import matplotlib.pyplot as plt

    return matplotlib, plt


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="svg", metadata={"Date": None})


def tradeoff(rows: list[dict], path: Path, title: str) -> None:
    """Forgetting (gap to Retrain) against utility (test accuracy), one point per method."""
    _pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = summarize([{k: v for k, v in r.items() if k not in ("grp", "params")} for r in rows])
    plot_tradeoff(summary, path, title)


def requests(rows: list[dict], path: Path, title: str) -> None:
    """Test accuracy and avg gap to Retrain after each request of a stream, every method."""
    _, plt = _pyplot()
    methods, reqs, by = request_curves(rows)
    styles = method_styles(methods)
    fig, (ax_t, ax_g) = plt.subplots(1, 2, figsize=(10, 4))
    for m in methods:
        xs = [r for r in reqs if (m, r) in by]
        ref = m == "retrain"
        style = {"color": "black", "linestyle": "--", "linewidth": 2} if ref else {**styles[m], "linewidth": 1}
        ax_t.plot(xs, [100 * by[(m, r)]["mean"]["test_acc"] for r in xs], label=m, markersize=4, **style)
        gaps = [(r, 100 * by[(m, r)]["avg_gap"]) for r in xs if by[(m, r)].get("avg_gap") is not None]
        if gaps:
            ax_g.plot([r for r, _ in gaps], [g for _, g in gaps], markersize=4, **style)
    ax_t.set(xlabel="request", ylabel="test accuracy (%)", title="test accuracy after each request")
    ax_g.set(xlabel="request", ylabel="avg gap to Retrain (pts)", title="avg gap after each request (lower = better)")
    for ax in (ax_t, ax_g):
        ax.set_xticks(reqs)
        ax.grid(alpha=0.3)
    fig.legend(loc="center right", fontsize=7, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 0.82, 1))
    _save(fig, path)
    plt.close(fig)


def scaling(summary: list[dict], model: str, scenario: str, path: Path) -> None:
    """Time, avg gap and speedup against the data-set size, every method but the Original."""
    matplotlib, plt = _pyplot()
    entries = [e for e in summary if (e["model"], e["scenario"]) == (model, scenario)]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    methods = sorted({e["method"] for e in entries} - {"original"})
    styles = method_styles(methods)
    for m in methods:
        pts = sorted(((e["n"], e) for e in entries if e["method"] == m), key=lambda p: p[0])
        ns = [n for n, _ in pts]
        axes[0].plot(ns, [e["mean"].get("time_s") for _, e in pts], label=m, **styles[m])
        if m != "retrain":
            axes[1].plot(ns, [None if e["avg_gap"] is None else 100 * e["avg_gap"] for _, e in pts], **styles[m])
            axes[2].plot(ns, [e["speedup"] for _, e in pts], **styles[m])
    sizes = sorted({e["n"] for e in entries})
    for ax, title in zip(axes, ("unlearning time (s)", "avg gap to Retrain (points)", "speedup over Retrain")):
        ax.set_xscale("log")
        ax.set_xticks(sizes, [f"{n:,}" for n in sizes])  # the measured sizes only
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("mnist1d samples n")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    axes[2].set_yscale("log")
    fig.legend(loc="center right", fontsize=8, frameon=False)
    fig.suptitle(f"mnist1d/{model}/{scenario}")
    fig.tight_layout(rect=(0, 0, 0.88, 1))
    _save(fig, path)
    plt.close(fig)
