"""Markdown tables from result rows, with the package's report code (``unlearnkit.bench.reports``):
one experiment's leaderboard, avg gaps and ranks across experiments, a stream of requests, the
scaling benchmark and the audit. Every function is deterministic in its rows."""

from __future__ import annotations

import math
from typing import Any, Optional

from unlearnkit.bench.reports import audit_table, markdown_leaderboard, summaries, summarize

REFERENCES = ("original", "retrain")


def _strip(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "params"} for r in rows]


def leaderboard(rows: list[dict]) -> str:
    """The leaderboard of one experiment (the table ``unlearnkit report`` writes), without its heading."""
    text = markdown_leaderboard(summaries(_strip(rows)))
    return "\n".join(line for line in text.splitlines() if not line.startswith("#### ")).strip() + "\n"


def entry(rows: list[dict], method: str) -> dict[str, Any]:
    """One method's summary over seeds (as in the leaderboard: the last request of a stream)."""
    group = next(iter(summaries(_strip(rows)).values()))
    found = next((e for e in group if e["method"] == method), None)
    if found is None:
        raise ValueError(f"no rows of method {method!r} (methods: {', '.join(e['method'] for e in group)})")
    return found


def value(rows: list[dict], method: str, field: str, digits: int = 1) -> str:
    """A number for prose: ``avg_gap`` (points), ``speedup`` (×), ``n_seeds`` or a metric's mean
    (rates in %)."""
    e = entry(rows, method)
    if field == "avg_gap":
        v = e.get("avg_gap")
        return "—" if v is None or math.isnan(v) else f"{100 * v:.{digits}f}"
    if field == "speedup":
        return "—" if e.get("speedup") is None else f"{e['speedup']:.{digits}f}×"
    if field == "n_seeds":
        return str(e["n_seeds"])
    if field not in e["mean"]:
        raise ValueError(f"method {method!r} has no metric {field!r}")
    v = e["mean"][field]
    from unlearnkit.evaluation import METRICS

    return f"{100 * v:.{digits}f}" if field in METRICS and METRICS.get(field).unit == "%" else f"{v:.{digits}f}"


def ranks(experiments: list[tuple[str, list[dict]]], methods: Optional[list[str]] = None) -> str:
    """Avg gap to Retrain and rank (1 = closest among the methods, references aside) of every method
    in each experiment, and its mean rank over the experiments where it ran, best first."""
    labels = [label for label, _ in experiments]
    if len(set(labels)) < len(labels):
        raise ValueError(f"two experiments share a column label: {labels}")
    table: dict[str, dict[str, tuple[float, int]]] = {}
    for label, rows in experiments:
        group = next(iter(summaries(_strip(rows)).values()))
        scored = [e for e in group if e["method"] not in REFERENCES and e.get("avg_gap") is not None
                  and not math.isnan(e["avg_gap"]) and (methods is None or e["method"] in methods)]
        for rank, e in enumerate(sorted(scored, key=lambda e: (e["avg_gap"], e["method"])), start=1):
            table.setdefault(e["method"], {})[label] = (100 * e["avg_gap"], rank)
    mean_rank = {m: sum(r for _, r in cells.values()) / len(cells) for m, cells in table.items()}
    head = ["Method", "Mean rank"] + labels
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for m in sorted(table, key=lambda m: (mean_rank[m], m)):
        cells = [f"{table[m][lb][0]:.2f} ({table[m][lb][1]})" if lb in table[m] else "—" for lb in labels]
        lines.append(f"| `{m}` | {mean_rank[m]:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def mean_ranks(experiments: list[tuple[str, list[dict]]]) -> dict[str, tuple[float, float, int]]:
    """Method -> (mean rank, mean avg gap in points, number of experiments) over ``experiments``."""
    found: dict[str, list[tuple[int, float]]] = {}
    for _, rows in experiments:
        group = next(iter(summaries(_strip(rows)).values()))
        scored = [e for e in group if e["method"] not in REFERENCES and e.get("avg_gap") is not None
                  and not math.isnan(e["avg_gap"])]
        for rank, e in enumerate(sorted(scored, key=lambda e: (e["avg_gap"], e["method"])), start=1):
            found.setdefault(e["method"], []).append((rank, 100 * e["avg_gap"]))
    return {m: (sum(r for r, _ in v) / len(v), sum(g for _, g in v) / len(v), len(v)) for m, v in found.items()}


def headline(rank_sets: list[tuple[str, list[tuple[str, list[dict]]]]], flagship: Optional[list[dict]],
             audit_rows: Optional[list[dict]], stream: Optional[list[dict]]) -> str:
    """One row per method across the benchmarks: mean rank and mean avg gap over each set of
    experiments, the flagship experiment's gap and speedup, U-LiRA accuracy in the audit and the gap
    after the last request of a stream. Sorted by the mean of the mean ranks."""
    columns = [(label, mean_ranks(exps), len(exps)) for label, exps in rank_sets]
    flag = {e["method"]: e for e in next(iter(summaries(_strip(flagship)).values()))} if flagship else {}
    ulira = {r["method"]: r.get("ulira_acc") for r in audit_rows or [] if "error" not in r}
    last = max((r["request"] for r in stream or []), default=None)
    streamed = {e["method"]: e for e in summaries(_strip([r for r in stream or [] if r["request"] == last])).get(
        stream[0]["grp"], [])} if stream else {}
    methods = sorted({m for _, ranks_, _ in columns for m in ranks_} | set(flag) - set(REFERENCES))
    score = {m: [c[1][m][0] for c in columns if m in c[1]] for m in methods}
    methods.sort(key=lambda m: (sum(score[m]) / len(score[m]) if score[m] else math.inf, m))
    head = ["Method"] + [f"{label}: mean rank (mean gap) of {n}" for label, _, n in columns]
    head += (["flagship: gap", "flagship: speedup"] if flag else []) + (["U-LiRA acc ↓"] if ulira else [])
    head += [f"stream: gap after request {last}"] if streamed else []
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for ref in REFERENCES:
        if ref in ulira:
            cells = ["—"] * len(columns) + (["—", "—"] if flag else []) + [f"{ulira[ref]:.3f}"]
            lines.append(f"| `{ref}` | " + " | ".join(cells + (["—"] if streamed else [])) + " |")
    for m in methods:
        cells = [f"{c[1][m][0]:.1f} ({c[1][m][1]:.1f})" if m in c[1] else "—" for c in columns]
        if flag:
            e = flag.get(m)
            cells += ["—" if e is None or e.get("avg_gap") is None else f"{100 * e['avg_gap']:.2f}",
                      "—" if e is None or e.get("speedup") is None else f"{e['speedup']:.1f}×"]
        if ulira:
            cells.append("—" if ulira.get(m) is None else f"{ulira[m]:.3f}")
        if streamed:
            e = streamed.get(m)
            cells.append("—" if e is None or e.get("avg_gap") is None else f"{100 * e['avg_gap']:.2f}")
        lines.append(f"| `{m}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _pct(value) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def request_curves(rows: list[dict]) -> tuple[list[str], list[int], dict[tuple[str, int], dict]]:
    """Methods (references first), request numbers and (method, request) -> summary entry."""
    summary = summarize(_strip(rows), group_keys=("method", "request"))
    by = {(e["method"], e["request"]): e for e in summary}
    found = list(dict.fromkeys(r["method"] for r in rows))
    methods = [m for m in REFERENCES if m in found] + [m for m in found if m not in REFERENCES]
    return methods, sorted({r["request"] for r in rows}), by


def requests(rows: list[dict]) -> str:
    """A stream of requests: avg gap and test accuracy after each request, relapse on earlier
    requests, the cost per request against one Retrain."""
    methods, reqs, by = request_curves(rows)
    last = reqs[-1]
    goal = any("goal_success" in r for r in rows)
    head = (["Method"] + [f"gap r{r}" for r in reqs] + [f"test r{r}" for r in reqs]
            + (["goal met, lowest over requests"] if goal else [])
            + [f"acc on earlier requests r{last}", "time per request (s)", "largest request / one Retrain",
               f"cum. time / cum. Retrain r{last}"])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for m in methods:
        entries = [by.get((m, r)) for r in reqs]

        def mean(e, k):
            return None if e is None else e["mean"].get(k)

        cells = [f"`{m}`"]
        cells += ["—" if e is None or e.get("avg_gap") is None else f"{100 * e['avg_gap']:.2f}" for e in entries]
        cells += [_pct(mean(e, "test_acc")) for e in entries]
        if goal:
            values = [mean(e, "goal_success") for e in entries if mean(e, "goal_success") is not None]
            cells.append(_pct(min(values)) if values else "—")
        cells.append(_pct(mean(entries[-1], "forget_prev_acc")))
        times = [mean(e, "time_s") for e in entries if mean(e, "time_s") is not None]
        cells.append(f"{sum(times) / len(times):.2f}" if times else "—")
        ratios = [r["time_s"] / r["retrain_time_s"] for r in rows if r["method"] == m and r.get("retrain_time_s")]
        cells.append("—" if not ratios or m in REFERENCES else f"{100 * max(ratios):.1f}%")
        cum, cum_ref = mean(entries[-1], "cum_time_s"), mean(entries[-1], "cum_retrain_time_s")
        cells.append("—" if not cum or not cum_ref or m in REFERENCES else f"{100 * cum / cum_ref:.1f}%")
        lines.append("| " + " | ".join(cells) + " |")
    seeds = sorted({r["seed"] for r in rows})
    return ("\n".join(lines) + f"\n\nMean over seeds {', '.join(map(str, seeds))}. gap rN: avg gap to Retrain "
            "after request N (points, lower is better); test rN: test accuracy after request N (%).\n")


def scaling_summary(runs: list[dict]) -> list[dict]:
    """Per (model, scenario, n, method): the summary over seeds; n = the mnist1d sample count."""
    rows = []
    for run in runs:
        if run["status"] == "done":
            n = int(run["config"]["dataset_options"].get("n_samples", 5000))
            rows += [{**row, "n": n} for row in run["rows"] or []]
    return summarize(rows, group_keys=("model", "scenario", "n", "method"))


def _fmt(value, digits: int = 1, suffix: str = "") -> str:
    return "—" if value is None else f"{value:.{digits}f}{suffix}"


def scaling(summary: list[dict], model: str, scenario: str) -> str:
    """Time, avg gap and speedup of every method at each data-set size of one model and scenario."""
    entries = [e for e in summary if (e["model"], e["scenario"]) == (model, scenario)]
    sizes = sorted({e["n"] for e in entries})
    by = {(e["n"], e["method"]): e for e in entries}
    methods = sorted({e["method"] for e in entries}, key=lambda m: (m != "retrain", m))
    head = ([f"time s n={n:,}" for n in sizes] + [f"avg gap n={n:,}" for n in sizes]
            + [f"speedup n={n:,}" for n in sizes])
    lines = ["| method | " + " | ".join(head) + " |", "|---" * (1 + len(head)) + "|"]
    for m in methods:
        cells = [by.get((n, m)) for n in sizes]
        time = [_fmt(c["mean"].get("time_s") if c else None, 2) for c in cells]
        gap = [_fmt(100 * c["avg_gap"] if c and c["avg_gap"] is not None else None) for c in cells]
        speed = [_fmt(c["speedup"] if c else None, 1, "×") for c in cells]
        lines.append(f"| `{m}` | " + " | ".join(time + gap + speed) + " |")
    return "\n".join(lines) + "\n"


def audit(rows: list[dict]) -> str:
    return audit_table(rows)


def failures(runs: list[dict]) -> str:
    """The cells that ended in an error, one line each (none: a sentence saying so)."""
    failed = [r for r in runs if r["status"] == "error"]
    if not failed:
        return "No cell ended in an error.\n"
    lines = [f"{len(failed)} cell(s) ended in an error (recorded, never a row):", ""]
    for r in failed:
        reason = (r.get("error") or "").strip().splitlines()
        lines.append(f"- {r['grp']} seed {r['seed']} `{r['method']}`: {reason[-1] if reason else 'error'}")
    return "\n".join(lines) + "\n"


def guarded(rows: list[dict]) -> str:
    """Per experiment and method, the runs the divergence guard restarted and the rows the
    over-forgetting check flagged (none: a sentence saying so)."""
    def tally(key) -> dict[tuple[str, str], list[int]]:
        out: dict[tuple[str, str], list[int]] = {}
        for r in rows:
            if r.get(key):
                out.setdefault((r["grp"], r["method"]), []).append(int(r[key]))
        return out

    restarted, flagged = tally("restarts"), tally("overforget")
    lines = []
    if restarted:
        lines += ["The divergence guard restarted these runs (their rows are the restarted runs' results; "
                  "experiment, method: seeds restarted, restarts in all):", ""]
        lines += [f"- {grp} `{method}`: {len(n)}, {sum(n)}" for (grp, method), n in sorted(restarted.items())]
    else:
        lines.append("The divergence guard restarted no run.")
    lines.append("")
    if flagged:
        lines += ["The over-forgetting check flagged these rows (experiment, method: seeds flagged):", ""]
        lines += [f"- {grp} `{method}`: {len(n)}" for (grp, method), n in sorted(flagged.items())]
    else:
        lines.append("The over-forgetting check flagged no row.")
    return "\n".join(lines) + "\n"
