"""The audit's comparison page: views of its main models, with the audit's per-example evidence.

A worker computes the comparison record of each main model it builds (the Original and Retrain of
seed 0, each method's main run: ``job_comparison``), against the Original and Retrain it loads from
the model cache. The coordinator (``write_audit_comparison``) saves the records beside the results,
replaces each method's loss-based ranking of its most exposed forget examples by the audit's
evidence (the challenge's per-example epsilon, else U-LiRA's per-example accuracy) and writes
``compare.html``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
from torch import nn

from ...evaluation.comparison import exposed_examples
from ..pipeline.comparison import cell_record, save_record, shared_record
from ..reports.compare import load_comparison, write_compare_page

#: per-example evidence of the audit, in order of preference: (key, label)
EVIDENCE = (("epsilon", "per-example ε of the challenge score (higher = easier to tell from Retrain)"),
            ("ulira_acc", "U-LiRA accuracy per example (0.5 = indistinguishable from Retrain)"))


def job_comparison(st: dict[str, Any], kind: str, method: str, model: nn.Module,
                   original: nn.Module, retrain: nn.Module) -> Optional[dict[str, Any]]:
    """The comparison record of a main model (None for a method named ``retrain``: the page's Retrain
    is the reference). ``st`` is the worker's state: the references are computed once per worker."""
    name = method or kind
    if kind == "unlearned" and method in ("original", "retrain"):
        return None

    def build():
        b = st["exp"].bundle()
        return shared_record(st["data"].task, b.num_classes, b.input_shape, original, retrain,
                             st["exp"].config.seeds[0])

    record = cell_record(st, build, name, model, name if kind in ("original", "retrain") else None, name)
    return None if record is None else {**record, "seconds": 0.0}


def write_audit_comparison(results: dict[str, Any], records: list[dict], forget: Any, out: Path) -> Optional[Path]:
    """Save ``records``, add the audit's evidence to each method's view and write ``out/compare.html``."""
    if not records:
        return None
    per_example = results["audit"].get("per_example", {})
    for record in records:
        evidence = next(((key, text) for key, text in EVIDENCE if key in per_example.get(record["method"], {})), None)
        if evidence is not None and len(per_example[record["method"]][evidence[0]]) == len(forget):
            values = np.asarray(per_example[record["method"]][evidence[0]], dtype=float)
            record["view"]["evidence"] = {"label": evidence[1], "values": [round(float(v), 4) for v in values]}
            record["view"]["exposed"] = exposed_examples(forget, values, None)
        save_record(out, record)
    c = results["config"]
    seed = records[0]["seed"]
    data = load_comparison(out, seed, c["methods"])
    if data is None:
        return None
    data["title"] = f"{c['dataset']} / {c['model']} / {c['scenario']} (audit)"
    data["context"] = {"dataset": c["dataset"], "model": c["model"], "scenario": c["scenario"],
                       "scenario_options": c.get("scenario_options", {})}
    return write_compare_page(data, out / "compare.html")
