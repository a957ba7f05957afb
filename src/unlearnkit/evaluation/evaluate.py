"""``evaluate``: the metric dict of one model on one unlearning task."""

from __future__ import annotations

from typing import Any, Optional

from torch import nn

from ..task import UnlearningTask
from .registry import MetricInputs, compute_metrics


def evaluate(
    model: nn.Module,
    task: Optional[UnlearningTask] = None,
    *,
    forget: Any = None,
    retain: Any = None,
    test: Any = None,
    retrain_model: Optional[nn.Module] = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Every registered metric the data allows: accuracies on each split, MIA-efficacy (needs
    retain and test), forget loss and, given a Retrain model, ``js_to_retrain``. Pass a task or the
    splits as Datasets / DataLoaders / (x, y) pairs. A metric that cannot be computed is reported in
    ``skipped`` with the reason."""
    if task is None:
        if forget is None:
            raise TypeError("evaluate() needs a task or forget=... data")
        task = UnlearningTask.from_data(model, forget, retain=retain, test=test)
    out: dict[str, Any]
    out, skipped = compute_metrics(model, MetricInputs(task, reference=retrain_model, seed=seed))
    skipped.pop("js_to_retrain", None)  # asked for only by passing retrain_model
    if skipped:
        out["skipped"] = skipped
    return out
