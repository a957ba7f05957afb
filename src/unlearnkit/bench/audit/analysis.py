"""The audit's analysis: from the statistics of every model (``jobs.run_job``) to one row per
method (metrics, LiRA on the forget set, U-LiRA, the challenge score) and the audit summary (LiRA
against the Original, ROC curves, per-example distributions). Pure computation: no model is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ...evaluation.attacks import LiRA, challenge_score, ulira_leave_one_out
from ...evaluation.attacks.base import AttackResult
from .config import AuditConfig
from .jobs import PER_RUN_METRICS, SHADOW_SEED, UNLEARN_SEED, AuditJob, is_plain_retrain


@dataclass
class Analysis:
    """The statistics of one audit and what is derived from them, method by method."""

    cfg: AuditConfig
    pieces: dict              # the scenario data, LiRA keep matrix and training-set size
    results: dict             # job id -> statistics
    errors: dict              # job id -> error
    lira: Optional[LiRA] = None
    audit: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        data, keep, n_train = self.pieces["data"], self.pieces["keep"], self.pieces["n_train"]
        self.f_idx = data.forget_indices
        n_pool = keep.shape[1]
        self.member = np.zeros(n_pool, dtype=bool)
        self.member[:n_train] = True
        self.nonmember_idx = np.arange(n_train, n_pool)
        K, N = self.cfg.shadow_models, self.cfg.challenge_models
        self.audit = {"K": K, "N": N, "n_forget": int(len(self.f_idx)), "n_pool": int(n_pool),
                      "errors": {AuditJob(*k).name: v for k, v in self.errors.items()},
                      "per_example": {}, "roc": {}}
        self.retrained = [self.phi(("retrain", "", j, j)) for j in range(max(K, N))]

    def phi(self, key: tuple) -> Optional[np.ndarray]:
        r = self.results.get(key)
        return None if r is None else r["phi"]

    def unlearned_key(self, method: str, k: int, seed: int) -> tuple:
        if method == "original":
            return ("original", "", k, k)
        if is_plain_retrain(self.cfg, method):
            return ("unlearned", method, 0, seed)
        return ("unlearned", method, k, seed)

    # -- LiRA against the Original ------------------------------------------------------------
    def fit_lira(self) -> None:
        K = self.cfg.shadow_models
        shadow = [self.phi(("shadow", "", k, SHADOW_SEED + k)) for k in range(K)] if self.cfg.lira else []
        if not self.cfg.lira or any(s is None for s in shadow):
            return
        self.lira = LiRA.fit(np.stack(shadow), self.pieces["keep"], self.cfg.variance)
        target = self.phi(("original", "", 0, 0))
        if target is not None:
            res = self.lira.attack(target, self.member)
            self.audit["lira_original"] = {**res.summary((0.01, 0.001)), "variance": self.lira.variance, "K": K}
            self.audit["roc"]["original (members: train)"] = _thin_roc(*res.roc())

    # -- one method ---------------------------------------------------------------------------
    def method_row(self, m: str) -> dict[str, Any]:
        c = self.cfg.experiment
        row: dict[str, Any] = {"method": m, "scenario": c.scenario, "dataset": c.dataset, "model": c.model,
                               "seed": self.cfg.seed}
        main = self.results.get(self.unlearned_key(m, 0, UNLEARN_SEED))
        failed = [v for k, v in self.errors.items() if k[1] == m]
        if main is None or failed:
            row["error"] = failed[0] if failed else "no model"
            return row
        runs = main_and_runs(self, m, main)
        row.update(main["metrics"])
        row.update({n: float(np.mean([r["metrics"][n] for r in runs])) for n in PER_RUN_METRICS})
        row.update(main.get("extra", {}))
        row["time_s"] = float(np.mean([r["time_s"] for r in runs] if m != "original" else [0.0]))
        # a model loaded from the cache carries the time of the run that trained it: no speedup from it
        row["time_source"] = "cache" if m != "original" and any(r["cached"] for r in runs) else "measured"
        per_ex: dict[str, Any] = {}
        if self.lira is not None:
            self.lira_on_forget(row, m, main)
        self.ulira(row, per_ex, m)
        if self.cfg.challenge:
            self.challenge(row, per_ex, runs)
        self.audit["per_example"][m] = per_ex
        return row

    def lira_on_forget(self, row: dict, m: str, main: dict) -> None:
        """LiRA on the method's model, members = the forget set (0.5 AUC: they look unseen)."""
        f_idx, non = self.f_idx, self.nonmember_idx
        scores = self.lira.score(main["phi"][np.r_[f_idx, non]], np.r_[f_idx, non])
        res = AttackResult(scores, np.r_[np.ones(len(f_idx)), np.zeros(len(non))])
        s = res.summary((0.01,))
        row.update(lira_forget_auc=s["auc"], lira_forget_tpr_at_1pct_fpr=s["tpr_at_0.01_fpr"],
                   lira_k=self.cfg.shadow_models)
        self.audit["roc"][f"{m} (members: forget)"] = _thin_roc(*res.roc())
        lo = self.audit.get("lira_original")
        if m == "original" and lo:
            row.update({"lira_auc": lo["auc"], "lira_balanced_acc": lo["balanced_acc"],
                        "lira_tpr_at_1pct_fpr": lo["tpr_at_0.01_fpr"], "lira_tpr_at_0.1pct_fpr": lo["tpr_at_0.001_fpr"]})

    def _leave_one_out(self, unlearned: list, retrained: list):
        if any(x is None for x in unlearned) or any(x is None for x in retrained):
            return None
        f = self.f_idx
        return ulira_leave_one_out(np.stack(unlearned)[:, f], np.stack(retrained)[:, f], self.cfg.variance)

    def ulira(self, row: dict, per_ex: dict, m: str) -> None:
        """U-LiRA over K shadow (unlearned, retrained) pairs, or over the N challenge pairs (shared)."""
        cfg, K, N = self.cfg, self.cfg.shadow_models, self.cfg.challenge_models
        shared = None
        if cfg.challenge and cfg.ulira:
            shared = self._leave_one_out([self.phi(self.unlearned_key(m, 0, UNLEARN_SEED + j)) for j in range(N)],
                                         self.retrained[:N])
            if shared is not None:
                row["ulira_shared_acc"], row["ulira_shared_auc"] = shared.info["acc"], shared.info["auc"]
        if cfg.ulira and cfg.ulira_originals == "shadow":
            chosen, n = self._leave_one_out([self.phi(self.unlearned_key(m, k, UNLEARN_SEED + k)) for k in range(K)],
                                            self.retrained[:K]), K
        else:
            chosen, n = shared, N
        if chosen is not None:
            row.update(ulira_acc=chosen.info["acc"], ulira_auc=chosen.info["auc"], ulira_k=n,
                       ulira_originals="shadow" if chosen is not shared else "shared")
            per_ex["ulira_acc"] = chosen.per_example["acc"]

    def challenge(self, row: dict, per_ex: dict, runs: list[dict]) -> None:
        """The NeurIPS 2023 challenge's forgetting quality and score over the N (unlearned, retrained)."""
        N, f_idx = self.cfg.challenge_models, self.f_idx
        u = [r["phi"][f_idx] for r in runs]
        rr = [x[f_idx] for x in self.retrained[:N] if x is not None]
        rt = [self.results[("retrain", "", j, j)] for j in range(N) if ("retrain", "", j, j) in self.results]
        if len(u) < 3 or len(rr) < 3:
            return
        accs = [[r["metrics"][n] for r in group] for n in ("retain_acc", "test_acc") for group in (runs, rt)]
        cs = challenge_score(np.stack(u), np.stack(rr), *accs)
        cp = challenge_score(np.stack(u), np.stack(rr), *accs, rates="clopper_pearson")
        row.update(forgetting_quality=cs.forgetting_quality, challenge_score=cs.score,
                   forgetting_quality_cp=cp.forgetting_quality, challenge_score_cp=cp.score,
                   challenge_n=min(len(u), len(rr)), mean_epsilon=float(np.mean(cs.epsilons)))
        per_ex["epsilon"], per_ex["epsilon_cp"] = cs.epsilons, cp.epsilons


def main_and_runs(analysis: Analysis, m: str, main: dict) -> list[dict]:
    """The challenge runs of method ``m`` (from Original 0, N seeds) that exist, or the main run alone."""
    if not analysis.cfg.challenge:
        return [main]
    runs = [analysis.results.get(analysis.unlearned_key(m, 0, UNLEARN_SEED + j))
            for j in range(analysis.cfg.challenge_models)]
    return [r for r in runs if r is not None] or [main]


def analyse(cfg: AuditConfig, methods: list[str], pieces: dict, results: dict, errors: dict) -> dict[str, Any]:
    """The audit summary with ``rows`` (one per method) from the statistics of every job."""
    analysis = Analysis(cfg, pieces, results, errors)
    analysis.fit_lira()
    analysis.audit["rows"] = [analysis.method_row(m) for m in methods]
    analysis.audit["forget_indices"] = analysis.f_idx.tolist()
    return analysis.audit


def _thin_roc(fpr: np.ndarray, tpr: np.ndarray, max_points: int = 400) -> dict[str, list[float]]:
    if len(fpr) > max_points:
        idx = np.unique(np.r_[np.geomspace(1, len(fpr) - 1, max_points).astype(int), 0, len(fpr) - 1])
        fpr, tpr = fpr[idx], tpr[idx]
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
