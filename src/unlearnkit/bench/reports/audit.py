"""Outputs of ``unlearnkit audit``: results.json, report.md, per-example distributions, LiRA ROC."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from ...utils import atomic_write_text, to_jsonable
from .summary import markdown_table

log = logging.getLogger(__name__)


def _f(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:.{digits}f}"


def audit_table(rows: list[dict]) -> str:
    head = ["Method", "Forget acc", "Retain acc", "Test acc", "U-LiRA acc ↓", "U-LiRA AUC ↓", "FQ (challenge) ↑",
            "FQ (CP) ↑", "Challenge score ↑", "mean ε ↓", "LiRA AUC forget ↓", "Time (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| `{r['method']}` | failed: {r['error'][:80]} |" + " |" * (len(head) - 2))
            continue
        pct = lambda k: "—" if k not in r else f"{100 * r[k]:.1f}"  # noqa: E731
        lines.append("| " + " | ".join([
            f"`{r['method']}`", pct("forget_acc"), pct("retain_acc"), pct("test_acc"),
            _f(r.get("ulira_acc")), _f(r.get("ulira_auc")), _f(r.get("forgetting_quality")),
            _f(r.get("forgetting_quality_cp")), _f(r.get("challenge_score")), _f(r.get("mean_epsilon"), 2),
            _f(r.get("lira_forget_auc")), _f(r.get("time_s"), 2)]) + " |")
    return "\n".join(lines) + "\n"


def _ceiling_sentence(rows: list[dict]) -> str:
    """What the plug-in FQ of Retrain itself is in this audit (its ceiling), read from the rows."""
    retrain = next((r for r in rows if r.get("method") == "retrain" and r.get("forgetting_quality") is not None), None)
    if retrain is None:
        return ("the challenge's plug-in estimator is biased low: identically distributed models score well "
                "below 1 (no Retrain row here to show its ceiling);")
    return (f"the challenge's plug-in estimator is biased low: Retrain against independent Retrain models scores "
            f"{retrain['forgetting_quality']:.3f} here, the ceiling any method can reach in this audit;")


def separable_fq(n: int, rates: str) -> float:
    """The forgetting quality a *perfectly exposed* method gets with ``n`` models per side: its
    statistics never overlap Retrain's. If this is high, the audit cannot tell methods apart."""
    from ...evaluation.attacks.challenge import forgetting_quality

    exposed, retrained = np.arange(n, dtype=float)[:, None], 1000.0 + np.arange(n, dtype=float)[:, None]
    return forgetting_quality(exposed, retrained, rates=rates)


def resolution_warning(n: int, rows: list[dict]) -> str:
    """A warning when N is too small for FQ (CP) to separate any method from Retrain, naming the
    methods that tie with Retrain and the smallest N that would resolve a fully exposed method."""
    if n < 3:
        return ""
    worst = separable_fq(n, "clopper_pearson")
    if worst < 0.5:
        return ""
    enough = next((m for m in range(n + 1, 257) if separable_fq(m, "clopper_pearson") < 0.5), None)
    retrain = next((r.get("forgetting_quality_cp") for r in rows if r.get("method") == "retrain"), None)
    ties = [r["method"] for r in rows if r.get("method") not in ("retrain", None) and retrain is not None
            and r.get("forgetting_quality_cp") is not None and abs(r["forgetting_quality_cp"] - retrain) < 1e-9]
    text = (f"with N = {n} models per side, even a method whose models are perfectly separable from Retrain's "
            f"gets FQ (CP) {worst:.2f}, so FQ (CP) cannot separate methods from Retrain in this audit")
    if ties:
        verb = "ties" if len(ties) == 1 else "tie"
        text += f" ({', '.join(f'`{m}`' for m in ties)} {verb} with Retrain's {retrain:.3f})"
    return text + (f"; use N >= {enough}." if enough else ".")


def render_audit_report(results: dict[str, Any]) -> str:
    c, a, ac = results["config"], results["audit"], results["audit_config"]
    opts = ", ".join(f"{k}={v}" for k, v in c.get("scenario_options", {}).items())
    title = f"{c['dataset']} / {c['model']} / {c['scenario']}" + (f" ({opts})" if opts else "")
    parts = [f"# unlearnkit audit: {title}\n",
             f"Forget set drawn with seed {c['seeds'][0]} ({a['n_forget']} examples). K = {a['K']} shadow models "
             f"(LiRA) and (unlearned, retrained) pairs (U-LiRA, leave-one-out); N = {a['N']} unlearned and N "
             f"retrained models for the challenge score (epsilon buckets up to ceil(ln(N-1))). Variance: "
             f"{ac['variance']}. {a['n_models']} models ({a['n_trained']} trained now, the rest from the cache), "
             f"{a['workers']} worker(s), wall time {a['wall_s']:.0f} s.\n"]
    lo = a.get("lira_original")
    if lo:
        parts.append(f"**LiRA against Original** (members: the {lo['n_pos']} training examples; non-members: "
                     f"{lo['n_neg']} test and third-party examples; K = {lo['K']}, {lo['variance']} variance): "
                     f"AUC {lo['auc']:.3f}, balanced accuracy {lo['balanced_acc']:.3f}, TPR at 1% FPR "
                     f"{100 * lo['tpr_at_0.01_fpr']:.1f}%, TPR at 0.1% FPR {100 * lo['tpr_at_0.001_fpr']:.1f}%.\n")
    parts.append("Per method (accuracies: mean over the N challenge models; U-LiRA: 0.5 = indistinguishable from "
                 "Retrain, 1 = exposed; FQ: forgetting quality in [0, 1], 1 = as good as retraining; "
                 f"{_ceiling_sentence(results['rows'])} FQ (CP) uses Clopper-Pearson bounds on the rates, so "
                 "identically distributed models get about 1; challenge score = FQ x retain-acc ratio x "
                 "test-acc ratio; LiRA AUC forget: the method's model, forget examples vs non-members, 0.5 = "
                 "they look unseen):\n")
    parts.append(audit_table(results["rows"]))
    warning = resolution_warning(int(a["N"]), results["rows"])
    if warning:
        parts.append(f"\n**Warning:** {warning}\n")
    ok = [e for e in results["summary"] if e.get("mean")]
    if ok:
        parts.append("\nStandard metrics (first challenge model for MIA-efficacy and JS):\n")
        parts.append(markdown_table(ok))
    if a.get("data_read"):
        parts.append("\nData each method read: " + "; ".join(f"`{m}` {d}" for m, d in a["data_read"].items()) + "\n")
    if a.get("skipped_methods"):
        parts.append("\nSkipped: " + "; ".join(f"`{m}` ({why})" for m, why in a["skipped_methods"].items()) + "\n")
    if a.get("errors"):
        parts.append("\nFailed models: " + "; ".join(f"{k}: {v}" for k, v in list(a["errors"].items())[:10]) + "\n")
    return "\n".join(parts)


def plot_per_example(results: dict[str, Any], path: Path) -> Path | None:
    """Per method: distribution of per-example epsilons (challenge) and U-LiRA per-example accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per = {m: v for m, v in results["audit"]["per_example"].items() if v}
    if not per:
        return None
    methods = list(per)
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 1.2 * len(methods) + 4), 4.5))
    for ax, key, label in ((axes[0], "epsilon", "per-example ε (challenge, plug-in)"),
                           (axes[1], "ulira_acc", "per-example U-LiRA accuracy (0.5 = Retrain)")):
        data = [np.asarray(per[m].get(key, []), dtype=float) for m in methods]
        keep = [i for i, d in enumerate(data) if d.size]
        if not keep:
            ax.set_visible(False)
            continue
        ax.violinplot([data[i] for i in keep], showmedians=True)
        ax.set_xticks(range(1, len(keep) + 1), [methods[i] for i in keep], rotation=30, ha="right")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    c = results["config"]
    fig.suptitle(f"{c['dataset']}/{c['model']}/{c['scenario']}: per-example exposure of the forget set")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_roc(results: dict[str, Any], path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rocs = results["audit"].get("roc", {})
    if not rocs:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, r in rocs.items():
        fpr, tpr = np.asarray(r["fpr"]), np.asarray(r["tpr"])
        ax.plot(np.maximum(fpr, 1e-4), np.maximum(tpr, 1e-4), label=name,
                lw=2 if name.startswith("original (members: train") else 1)
    ax.plot([1e-4, 1], [1e-4, 1], "k--", lw=0.8, label="chance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1e-3, 1)
    ax.set_ylim(1e-3, 1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"LiRA ROC (K = {results['audit']['K']})")
    ax.legend(fontsize=6, loc="lower right")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_audit_outputs(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.json", json.dumps(to_jsonable(results), indent=1))
    atomic_write_text(out / "report.md", render_audit_report(results))
    for fn, name in ((plot_per_example, "per_example.png"), (plot_roc, "lira_roc.png")):
        try:
            fn(results, out / name)
        except Exception as exc:  # a plot must never lose the results
            log.warning("plot %s failed: %s", name, exc)
