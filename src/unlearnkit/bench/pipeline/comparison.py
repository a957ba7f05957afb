"""The comparison page's numbers, computed while an experiment's models exist.

``ComparisonCollector`` is set as ``Experiment.on_model``: for every cell of one seed (the
experiment's first) it takes the cell's model, right after unlearning, and computes its
``evaluation.comparison.model_view`` against the seed's Original and Retrain on bounded subsets of
the data (``Probe``); the references are computed once per seed context. Cells of a stream of
deletion requests are not compared (their rows go through ``continual``, not this hook).

``save_record`` writes each record into the output folder (``compare/``), so that the page
(``reports.compare``) can be rebuilt from the folder alone, resumed runs included.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Callable, Optional

from torch import nn

from ...evaluation.comparison import Probe, References, model_view, reference_views
from ...evaluation.metrics import predict_logits
from ...errors import UnlearnkitError
from ...utils import atomic_write_text, to_jsonable
from ..reports.compare import COMPARE_DIR

log = logging.getLogger(__name__)


class ComparisonCollector:
    """Collects the comparison record of each cell of seed ``seed`` (``take`` hands it over)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.records: dict[str, dict[str, Any]] = {}

    def __call__(self, ctx: Any, name: str, model: nn.Module) -> None:
        if ctx.seed != self.seed:
            return
        start = time.perf_counter()
        fixed = "original" if model is ctx.original else "retrain" if model is ctx.retrain else None
        record = cell_record(ctx.extras, lambda: seed_record(ctx), name, model, fixed, f"seed {ctx.seed} {name}")
        if record is not None:
            self.records[name] = {**record, "seconds": time.perf_counter() - start}

    def take(self, name: str) -> Optional[dict[str, Any]]:
        return self.records.pop(name, None)


def cell_record(cache: dict[str, Any], build: Callable[[], tuple[dict[str, Any], References]], name: str,
                model: nn.Module, fixed: Optional[str], where: str) -> Optional[dict[str, Any]]:
    """The comparison record of ``model`` (shown as ``name``): the shared part and the references come from
    ``cache["comparison"]``, built once with ``build``; ``fixed`` names a reference model ("original",
    "retrain") whose view is already there. None, with a warning naming ``where``, when the task cannot be
    compared (e.g. a forget set too small): the cell's row still counts."""
    try:
        if "comparison" not in cache:
            cache["comparison"] = build()
        shared, refs = cache["comparison"]
        view = shared["views"][fixed] if fixed else model_view(model, refs)
    except UnlearnkitError as exc:
        log.warning("%s: no comparison views (%s)", where, exc)
        return None
    return {"method": name, "seed": shared["seed"], "view": view, "shared": shared}


def seed_record(ctx: Any) -> tuple[dict[str, Any], References]:
    """What every cell of a seed shares, and the references (``shared_record`` of the seed context)."""
    return shared_record(ctx.data.task, ctx.bundle.num_classes, ctx.bundle.input_shape, ctx.original,
                         ctx.retrain, ctx.seed)


def shared_record(task: Any, num_classes: int, input_shape: tuple, original: nn.Module,
                  retrain: Optional[nn.Module], seed: int) -> tuple[dict[str, Any], References]:
    """What every model compared on ``task``'s data shares (the probe's layout, the layers, the
    Original's and Retrain's views), and the references themselves."""
    start = time.perf_counter()
    probe = Probe.from_task(task, num_classes, seed=seed)
    refs = References.build(original, retrain, probe)
    modules = dict(original.named_modules())
    record = {"seed": seed, "num_classes": probe.num_classes, "input_shape": list(input_shape),
              "layers": [f"{i + 1}: {type(modules[n]).__name__} {n}" for i, n in enumerate(refs.layers)],
              "layout": probe.layout(), "views": reference_views(refs, original, retrain)}
    record["seconds"] = time.perf_counter() - start
    return record, refs


def _path(out: Path, name: str) -> Path:
    return out / COMPARE_DIR / name


def save_record(out: Path, record: Optional[dict[str, Any]]) -> None:
    """Write a cell's record (``compare/METHOD.seedS.json``) and its seed's shared part
    (``compare/seedS.json``, the same for every cell of the seed)."""
    if record is None:
        return
    (out / COMPARE_DIR).mkdir(parents=True, exist_ok=True)
    seed = record["seed"]
    shared = record["shared"]
    atomic_write_text(_path(out, f"seed{seed}.json"), json.dumps(to_jsonable(shared)))
    cell = {k: v for k, v in record.items() if k != "shared"}
    atomic_write_text(_path(out, f"{record['method']}.seed{seed}.json"), json.dumps(to_jsonable(cell)))
    log.debug("comparison of %s seed %d: %.2f s", record["method"], seed, record["seconds"])


def write_model_comparison(out: str | Path, original: nn.Module, unlearned: nn.Module, task: Any, *,
                           method: str = "unlearned", retrain: Optional[nn.Module] = None, seed: int = 0,
                           title: str = "your model") -> Optional[Path]:
    """``out/compare.html`` for one unlearning call on a user's model: ``unlearned`` (shown as
    ``method``) against ``original`` and, when given, a ``retrain`` model, on ``task``'s forget, retain
    and test data. The records go to ``out/compare/`` as for ``run``. None (and a logged warning) when
    the task cannot be compared (e.g. fewer than 4 forget examples)."""
    from ..reports.compare import load_comparison, write_compare_page

    out = Path(out)
    num_classes = task.num_classes or int(predict_logits(original, task.forget.subset([0])).shape[1])
    try:
        shared, refs = shared_record(task, num_classes, tuple(task.forget.x.shape[1:]), original, retrain, seed)
        view = model_view(unlearned, refs)
    except UnlearnkitError as exc:
        log.warning("no comparison page: %s", exc)
        return None
    save_record(out, {"method": method, "seed": seed, "view": view, "shared": shared, "seconds": shared["seconds"]})
    data = load_comparison(out, seed, [method])
    data["title"] = title
    data["context"] = {"scenario_options": {}}
    return write_compare_page(data, out / "compare.html")
