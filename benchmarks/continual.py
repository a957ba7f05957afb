"""Per-request tables and curves of continual-deletion runs (rows with a ``request`` field).

Reads the rows of a results store (``unlearnkit bench benchmarks/continual.yaml``) or of
``results.json`` files (``unlearnkit run ... --requests R``), summarises them per (method, request)
with the report's own ``summarize`` (mean over seeds, avg gap to Retrain after the same request),
and writes a Markdown table and a PNG: test accuracy and avg gap vs request, every method, Retrain
as the reference.

    python benchmarks/continual.py --store bench-results/continual.sqlite --out docs/continual/mlp-random
    python benchmarks/continual.py --results runs/full/results.json --results runs/plain/results.json=plain \\
        --out docs/continual/cnn1d-instance

``--results PATH=LABEL`` renames the methods of that file (except original and retrain) to
"METHOD (LABEL)", so variants of one method sit side by side; original and retrain rows are taken
from the first source that has them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from unlearnkit.bench.reports import summarize

REFERENCES = ("original", "retrain")


def load_rows(stores: list[str], results: list[str]) -> list[dict]:
    rows: list[dict] = []
    for path in stores:
        from unlearnkit.bench.grid import ResultStore

        with ResultStore(path, readonly=True) as store:
            rows += store.result_rows()
    have_refs: set[str] = {r["method"] for r in rows if r["method"] in REFERENCES}
    for spec in results:
        path, _, label = spec.partition("=")
        found = json.loads(Path(path).read_text())["rows"]
        for r in found:
            if r["method"] in REFERENCES:
                if r["method"] in have_refs:
                    continue
            elif label:
                r = {**r, "method": f"{r['method']} ({label})"}
            rows.append(r)
        have_refs |= {r["method"] for r in found if r["method"] in REFERENCES}
    rows = [r for r in rows if r.get("request") is not None]
    if not rows:
        raise SystemExit("no rows with a 'request' field: these are not continual-deletion results")
    return rows


def curves(rows: list[dict]) -> tuple[list[str], list[int], dict[tuple[str, int], dict]]:
    summary = summarize(rows, group_keys=("method", "request"))
    by = {(e["method"], e["request"]): e for e in summary}
    methods = list(dict.fromkeys(r["method"] for r in rows))
    methods = [m for m in REFERENCES if m in methods] + [m for m in methods if m not in REFERENCES]
    requests = sorted({r["request"] for r in rows})
    return methods, requests, by


def _pct(value) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def markdown(rows: list[dict]) -> str:
    methods, requests, by = curves(rows)
    last = requests[-1]
    goal = any("goal_success" in r for r in rows)
    head = (["Method"] + [f"gap r{r}" for r in requests] + [f"test r{r}" for r in requests]
            + (["goal success, lowest over requests"] if goal else [])
            + [f"acc on earlier requests r{last}", "time per request (s)", "largest request / one Retrain",
               f"cum. time / cum. Retrain r{last}"])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for m in methods:
        entries = [by.get((m, r)) for r in requests]
        mean = lambda e, k: None if e is None else e["mean"].get(k)  # noqa: E731
        cells = [f"`{m}`"]
        cells += ["—" if e is None or e.get("avg_gap") is None else f"{100 * e['avg_gap']:.2f}" for e in entries]
        cells += [_pct(mean(e, "test_acc")) for e in entries]
        if goal:
            values = [mean(e, "goal_success") for e in entries if mean(e, "goal_success") is not None]
            cells.append(_pct(min(values)) if values else "—")
        cells.append(_pct(mean(entries[-1], "forget_prev_acc")))
        times = [mean(e, "time_s") for e in entries if mean(e, "time_s") is not None]
        cells.append(f"{sum(times) / len(times):.2f}" if times else "—")
        member_rows = [r for r in rows if r["method"] == m and r.get("retrain_time_s")]
        ratio = max((r["time_s"] / r["retrain_time_s"] for r in member_rows), default=None)
        cells.append("—" if ratio is None or m in REFERENCES else f"{100 * ratio:.1f}%")
        cum, cum_ref = mean(entries[-1], "cum_time_s"), mean(entries[-1], "cum_retrain_time_s")
        cells.append("—" if not cum or not cum_ref or m in REFERENCES else f"{100 * cum / cum_ref:.1f}%")
        lines.append("| " + " | ".join(cells) + " |")
    seeds = sorted({r["seed"] for r in rows})
    return ("\n".join(lines) + f"\n\nMean over seeds {', '.join(map(str, seeds))}. gap rN: avg gap to Retrain "
            "after request N (points, lower is better); test rN: test accuracy after request N (%).\n")


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from unlearnkit.bench.reports.plots import method_styles

    methods, requests, by = curves(rows)
    styles = method_styles(methods)
    fig, (ax_t, ax_g) = plt.subplots(1, 2, figsize=(10, 4))
    for m in methods:
        xs = [r for r in requests if (m, r) in by]
        test = [100 * by[(m, r)]["mean"]["test_acc"] for r in xs]
        ref = m == "retrain"
        style = {"color": "black", "linestyle": "--", "linewidth": 2} if ref else {**styles[m], "linewidth": 1}
        ax_t.plot(xs, test, label=m, markersize=4, **style)
        gaps = [(r, by[(m, r)].get("avg_gap")) for r in xs]
        gaps = [(r, 100 * g) for r, g in gaps if g is not None]
        if gaps:
            ax_g.plot([r for r, _ in gaps], [g for _, g in gaps], markersize=4, **style)
    ax_t.set(xlabel="request", ylabel="test accuracy (%)", title="test accuracy after each request")
    ax_g.set(xlabel="request", ylabel="avg gap to Retrain (pts)", title="avg gap after each request (lower = better)")
    for ax in (ax_t, ax_g):
        ax.set_xticks(requests)
        ax.grid(alpha=0.3)
    fig.legend(loc="center right", fontsize=7, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 0.82, 1))
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--store", action="append", default=[], help="results store (repeatable)")
    p.add_argument("--results", action="append", default=[], metavar="PATH[=LABEL]", help="results.json (repeatable)")
    p.add_argument("--out", required=True, help="output prefix: writes PREFIX.md and PREFIX.png")
    p.add_argument("--title", default="", help="plot title")
    args = p.parse_args()
    rows = load_rows(args.store, args.results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(markdown(rows))
    plot(rows, out.with_suffix(".png"), args.title or out.name)
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
