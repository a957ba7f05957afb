"""Leaderboards from the results store: one table per scenario (dataset/model/scenario group) as
Markdown, and a self-contained static HTML page with plots (PNG embedded as data URIs; no scripts
or files from the network).

Columns: forget / retain / test accuracy and MIA-efficacy (mean ± std over seeds, %), scenario
extras (ASR, ...), avg gap to Retrain (points, lower is better), unlearning time and speedup over
Retrain. Best per column (among methods other than the Original and Retrain references) is marked
in bold: closest to Retrain for forget acc, MIA-efficacy, ASR and JS; highest for retain and test
acc and speedup; lowest for avg gap and time.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Optional

from ...evaluation.registry import METRICS
from ...utils import atomic_write_text
from .summary import summarize

REFERENCES = ("original", "retrain")
#: summary columns that are not metrics of a row, with the direction that is better
DERIVED_BETTER = {"avg_gap": "lower", "speedup": "higher"}


def group_rows(rows: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["grp"], []).append(r)
    return dict(sorted(groups.items()))


def summaries(rows: list[dict]) -> dict[str, list[dict]]:
    """Group -> summarize() entries, references first, then by avg gap."""
    out = {}
    for grp, members in group_rows(rows).items():
        seq = any(r.get("request") is not None for r in members)
        if seq:  # sequential requests: the leaderboard shows the state after the last request
            last = max(r["request"] for r in members if r.get("request") is not None)
            members = [r for r in members if r.get("request") in (None, last)]
        s = summarize([{k: v for k, v in r.items() if k not in ("grp", "params", "request")} for r in members])
        ref = [e for e in s if e["method"] in REFERENCES]
        rest = sorted((e for e in s if e["method"] not in REFERENCES),
                      key=lambda e: (e.get("avg_gap") is None or math.isnan(e["avg_gap"]), e.get("avg_gap") or 0))
        out[grp] = sorted(ref, key=lambda e: REFERENCES.index(e["method"])) + rest
    return out


def _best(entries: list[dict], metric: str, retrain: Optional[dict]) -> Optional[str]:
    cands = [e for e in entries if e["method"] not in REFERENCES]
    def val(e):
        if metric == "avg_gap":
            return e.get("avg_gap")
        if metric == "speedup":
            return e.get("speedup")
        return e["mean"].get(metric)
    cands = [e for e in cands if val(e) is not None and not (isinstance(val(e), float) and math.isnan(val(e)))]
    if not cands:
        return None
    better = DERIVED_BETTER.get(metric) or METRICS.get(metric).better
    if better == "closest":
        if retrain is None or metric not in retrain["mean"]:
            return None
        ref = retrain["mean"][metric]
        return min(cands, key=lambda e: abs(val(e) - ref))["method"]
    if better == "higher":
        return max(cands, key=val)["method"]
    return min(cands, key=val)["method"]


def table_cells(entries: list[dict]) -> tuple[list[str], list[list[str]], list[list[bool]]]:
    """Header, rows of formatted cells and the 'best in column' flags."""
    retrain = next((e for e in entries if e["method"] == "retrain"), None)
    present = METRICS.table_metrics({k for e in entries for k in e["mean"]}, unit="%")
    timer = METRICS.get("time_s")
    cols = [m.name for m in present] + ["avg_gap", "time_s", "speedup"]
    head = ["Method", "Seeds"] + [m.label for m in present] + ["Avg gap ↓ (pts)", timer.label, "Speedup"]
    best = {c: _best(entries, c, retrain) for c in cols}
    rows, flags = [], []
    for e in entries:
        mean, std = e["mean"], e["std"]
        cells = [e["method"], str(e["n_seeds"])]
        cells += [m.format(mean.get(m.name), std.get(m.name, 0.0)) for m in present]
        gap = e.get("avg_gap")
        cells.append("—" if gap is None or math.isnan(gap) else f"{100 * gap:.2f}")
        cells.append(timer.format(mean.get("time_s")))
        sp = e.get("speedup")
        cells.append("—" if sp is None or e["method"] == "original" else f"{sp:.1f}×")
        rows.append(cells)
        flags.append([False, False] + [best[c] == e["method"] for c in cols])
    return head, rows, flags


def markdown_leaderboard(summ: dict[str, list[dict]], counts: Optional[dict[str, dict]] = None) -> str:
    parts = []
    for grp, entries in summ.items():
        head, rows, flags = table_cells(entries)
        parts.append(f"#### {grp}\n")
        parts.append("| " + " | ".join(head) + " |")
        parts.append("|" + "|".join(["---", "---:"] + ["---:"] * (len(head) - 2)) + "|")
        for cells, fl in zip(rows, flags):
            cells = [f"`{c}`" if i == 0 else (f"**{c}**" if fl[i] else c) for i, c in enumerate(cells)]
            parts.append("| " + " | ".join(cells) + " |")
        extra = (counts or {}).get(grp)
        if extra:
            parts.append("\n" + extra_note(extra))
        parts.append("")
    return "\n".join(parts) + "\n" if parts else "(no results)\n"


def extra_note(info: dict) -> str:
    bits = [f"{k}: {', '.join(sorted(v))}" for k, v in sorted(info.items()) if v]
    return "Not in the table — " + "; ".join(bits) + "." if bits else ""


LEGEND = ("Accuracies and MIA-efficacy in %, mean ± std over seeds. Avg gap = mean |metric − Retrain| over "
          "forget/retain/test accuracy and MIA-efficacy (plus ASR for backdoors), of the seed means, in points "
          "(lower is better). Time = the unlearning call only (Retrain: its training). Speedup = Retrain time / "
          "method time. **Bold** = best per column among the methods (closest to Retrain for forget acc, "
          "MIA-efficacy and ASR; highest retain/test acc and speedup; lowest avg gap and time).")


# -- plots ----------------------------------------------------------------------------------------
def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def plot_group(entries: list[dict], title: str) -> Optional[str]:
    """One figure (base64 PNG): forgetting vs utility, time vs gap, per-method avg-gap bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [e for e in entries if e.get("gaps") and "test_acc" in e["mean"]]
    if not pts:
        return None
    from .plots import method_styles, scatter_methods

    styles = method_styles(e["method"] for e in pts)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    ax.set_xlabel("forgetting gap: mean |Δ forget acc|, |Δ MIA| to Retrain (pts) ← better")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("forget quality vs utility")
    ax.grid(alpha=0.3)
    scatter_methods(ax, [(e["method"], 100 * (abs(e["gaps"].get("forget_acc", 0.0))
                                              + abs(e["gaps"].get("mia_efficacy", 0.0))) / 2,
                          100 * e["mean"]["test_acc"]) for e in pts], styles)
    ax = axes[1]
    ax.set_xscale("log")
    ax.set_xlabel("unlearning time (s, log)")
    ax.set_ylabel("avg gap to Retrain (pts)")
    ax.set_title("time vs gap")
    ax.grid(alpha=0.3)
    scatter_methods(ax, [(e["method"], e["mean"]["time_s"], 100 * e["avg_gap"]) for e in pts
                         if e["method"] != "original" and (e["mean"].get("time_s") or 0.0) > 0], styles)
    ax = axes[2]
    bars = [e for e in pts if e["method"] != "retrain"]
    ax.barh([e["method"] for e in bars][::-1], [100 * e["avg_gap"] for e in bars][::-1],
            xerr=None, color=["#999" if e["method"] in REFERENCES else "#3b75af" for e in bars][::-1])
    ax.set_xlabel("avg gap to Retrain (pts) ← better")
    ax.set_title("per method")
    ax.grid(alpha=0.3, axis="x")
    fig.suptitle(title)
    fig.tight_layout()
    data = _png(fig)
    plt.close(fig)
    return data


CSS = """body{font-family:system-ui,sans-serif;margin:2rem;max-width:1500px;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}th,td{border:1px solid #ccc;padding:.25rem .5rem;
text-align:right}th:first-child,td:first-child{text-align:left}thead{background:#f3f3f3}td.best{font-weight:bold;
background:#e7f4e4}tr.ref td{color:#555;font-style:italic}img{max-width:100%}code{background:#f5f5f5}"""

#: the page checks itself: every image decoded, no script error -> <body data-status="ok">
CHECK_JS = """window.__errors=[];window.addEventListener('error',function(e){window.__errors.push(String(e.message))});
window.addEventListener('load',function(){var bad=[].slice.call(document.images).filter(function(i){
return !(i.complete&&i.naturalWidth>0)});document.body.setAttribute('data-status',
(bad.length||window.__errors.length)?('error: '+bad.length+' images, '+window.__errors.join('; ')):'ok');});"""


def html_page(summ: dict[str, list[dict]], title: str, intro: str = "", counts: Optional[dict[str, dict]] = None,
              plots: bool = True) -> str:
    out = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
           f"<title>{html.escape(title)}</title><style>{CSS}</style><script>{CHECK_JS}</script></head><body>",
           f"<h1>{html.escape(title)}</h1>"]
    if intro:
        out.append(f"<p>{html.escape(intro)}</p>")
    out.append(f"<p>{html.escape(LEGEND.replace('**', ''))}</p>")
    out.append("<ul>" + "".join(f"<li><a href='#g{i}'>{html.escape(g)}</a></li>" for i, g in enumerate(summ)) + "</ul>")
    for i, (grp, entries) in enumerate(summ.items()):
        head, rows, flags = table_cells(entries)
        out.append(f"<h2 id='g{i}'>{html.escape(grp)}</h2><table><thead><tr>"
                   + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr></thead><tbody>")
        for cells, fl, e in zip(rows, flags, entries):
            cls = " class='ref'" if e["method"] in REFERENCES else ""
            out.append(f"<tr{cls}>" + "".join(f"<td{' class=best' if f else ''}>{html.escape(c)}</td>"
                                              for c, f in zip(cells, fl)) + "</tr>")
        out.append("</tbody></table>")
        note = extra_note((counts or {}).get(grp, {}))
        if note:
            out.append(f"<p><small>{html.escape(note)}</small></p>")
        if plots:
            png = plot_group(entries, grp)
            if png:
                out.append(f"<img alt='plots for {html.escape(grp)}' src='data:image/png;base64,{png}'>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_report(rows: list[dict], runs: list[dict], out_dir: str | Path, title: str = "unlearnkit benchmark",
                 intro: str = "", plots: bool = True) -> dict[str, Path]:
    """Write leaderboard.md and index.html for the done rows; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summ = summaries(rows)
    counts: dict[str, dict[str, set]] = {}
    for r in runs:
        if r["status"] != "done":
            counts.setdefault(r["grp"], {}).setdefault(r["status"], set()).add(r["method"])
    md = f"# {title}\n\n" + (f"{intro}\n\n" if intro else "") + f"{LEGEND}\n\n" + markdown_leaderboard(summ, counts)
    atomic_write_text(out / "leaderboard.md", md)
    atomic_write_text(out / "index.html", html_page(summ, title, intro, counts, plots))
    return {"markdown": out / "leaderboard.md", "html": out / "index.html"}
