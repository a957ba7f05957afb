"""``evaluate``: the metric dict of one model on one unlearning task."""

from __future__ import annotations

import logging
from typing import Any, Optional

from torch import nn

from ..data.split import as_split
from ..task import UnlearningTask
from .metrics import accuracy, js_to_model, mia_efficacy

log = logging.getLogger(__name__)


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
    """Accuracies on each split, MIA-efficacy (needs retain and test) and, given a Retrain model,
    ``js_to_retrain``. Pass a task or the splits as Datasets / DataLoaders / (x, y) pairs.
    A metric that cannot be computed is reported in ``skipped`` with the reason."""
    if task is None:
        if forget is None:
            raise TypeError("evaluate() needs a task or forget=... data")
        task = UnlearningTask.from_data(model, forget, retain=retain, test=test)
    out: dict[str, Any] = {
        "forget_acc": accuracy(model, task.forget),
        "retain_acc": accuracy(model, task.retain),
        "test_acc": accuracy(model, task.test),
    }
    skipped: dict[str, str] = {}
    if task.retain is not None and task.test is not None:
        out["mia_efficacy"] = mia_efficacy(model, task.retain, task.test, task.forget, seed=seed)
    else:
        skipped["mia_efficacy"] = "skipped: needs retain and test data"
    if retrain_model is not None:
        out["js_to_retrain"] = js_to_model(model, retrain_model, task.forget)
    for name in ("retain_acc", "test_acc"):
        if getattr(task, name.split("_")[0]) is None:
            out.pop(name)
            skipped[name] = f"skipped: no {name.split('_')[0]} data"
    if skipped:
        out["skipped"] = skipped
    return out
