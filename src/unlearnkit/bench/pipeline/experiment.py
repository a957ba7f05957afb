"""``Experiment``: one dataset, model and scenario; the rows of its (method, seed) cells.

For each seed (``prepare``): build the scenario, get the original and the Retrain model from the
cache (training them on a miss). For each cell (``run_cell``): run the method on a copy of the
original, timing the unlearning call alone, and evaluate it through the metric registry; a scenario
with a stream of deletion requests gives one row per request (``continual``). Writing the rows
to an output folder and resuming is ``run.run_experiment``'s.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
from torch import nn

from ...data import DatasetBundle, load_dataset
from ...errors import NonFiniteError
from ...evaluation.registry import MetricInputs, compute_metrics
from ...methods import UnlearningMethod, get_method
from ...models import build_model
from ...scenarios import Scenario, ScenarioData, get_scenario
from ...training import train_model
from ...utils import Timer, resolve_device, seeded, stable_hash, warm_up_torch
from .cache import ModelCache
from .config import ExperimentConfig, cell_key
from .continual import RequestCheckpoint, run_requests
from .runtime import apply_threads, runtime_key

log = logging.getLogger(__name__)


@dataclass
class SeedContext:
    """What every method of one seed shares."""

    seed: int
    bundle: DatasetBundle
    scenario: Scenario
    data: ScenarioData
    original: nn.Module
    original_meta: dict
    retrain: nn.Module
    retrain_meta: dict
    retrain_seconds: Optional[float] = None  # Retrain's training time measured in this process
    extras: dict = field(default_factory=dict)  # what observers of the seed's cells keep (e.g. comparison references)


class Experiment:
    def __init__(self, config: ExperimentConfig, cache: Optional[ModelCache] = None,
                 progress: bool = True, warm_up: bool = True) -> None:
        self.config = config.validate()
        self.cache = cache or ModelCache()
        self.progress = progress
        self.device = resolve_device(config.device)
        apply_threads(config.threads)  # the threading policy: every process that trains goes through here
        self._bundle: Optional[DatasetBundle] = None
        self.checkpoint_root: Optional[Path] = None  # per-request progress of continual cells (None: the cache's)
        #: called as on_model(ctx, method, model) with each single-request cell's model (pipeline/comparison.py)
        self.on_model: Optional[Callable[[SeedContext, str, nn.Module], None]] = None
        if warm_up:  # so that no timed method pays torch's lazy imports (off where nothing is timed)
            warm_up_torch()

    # -- shared pieces --------------------------------------------------------------------
    def bundle(self) -> DatasetBundle:
        if self._bundle is None:
            self._bundle = load_dataset(self.config.dataset, **self.config.dataset_options)
        return self._bundle

    def new_model(self, seed: int) -> nn.Module:
        b = self.bundle()
        with seeded(seed):
            return build_model(self.config.model, b.input_shape, b.num_classes, **self.config.model_options)

    def model_key(self, seed: int, data: ScenarioData) -> dict[str, Any]:
        c = self.config
        return {"kind": "original", "dataset": c.dataset, "dataset_options": c.dataset_options,
                "model": c.model, "model_options": c.model_options,
                "recipe": c.training_recipe().to_dict(), "seed": seed, "train": data.train_key,
                "runtime": runtime_key(self.device, c.threads)}

    def prepare(self, seed: int) -> SeedContext:
        """Scenario data, the original model and the Retrain model for one seed (cached)."""
        c = self.config
        scenario = get_scenario(c.scenario, **c.scenario_options)
        data = scenario.build(self.bundle(), seed)
        recipe = c.training_recipe()
        data.task.recipe = recipe
        key = self.model_key(seed, data)

        def train_original():
            model = self.new_model(seed)
            with Timer() as t, seeded(seed):
                train_model(model, data.train, recipe, seed=seed, device=self.device,
                            progress=self.progress, desc=f"original seed {seed}")
            return model.cpu(), {"time_s": t.seconds}

        original, original_meta = self.cache.get_or_create(key, self.new_model(seed), train_original)
        original.eval()
        scenario.prepare_task(original, data)  # e.g. relabel targets that depend on the original

        retrain, retrain_meta = self.retrain_for(seed, original, data)
        ctx = SeedContext(seed, self.bundle(), scenario, data, original, original_meta, retrain, retrain_meta)
        if not retrain_meta["cached"]:
            ctx.retrain_seconds = float(retrain_meta["time_s"])
        return ctx

    def retrain_for(self, seed: int, original: nn.Module, data: ScenarioData) -> tuple[nn.Module, dict]:
        """Retrain trained from scratch without ``data.forget_indices`` (cached, eval mode)."""
        task = data.task
        key = {**self.model_key(seed, data), "kind": "retrain",
               "forget": stable_hash(np.sort(data.forget_indices).tolist()),
               "corrected": None if task.corrected is None else stable_hash(task.corrected.x.sum().item())}

        def train_retrain():
            model, seconds = get_method("retrain").timed_unlearn(original, task, seed=seed, device=self.device)
            return model, {"time_s": seconds}

        retrain, meta = self.cache.get_or_create(key, self.new_model(seed), train_retrain)
        return retrain.eval(), meta

    def retrain_time(self, ctx: SeedContext) -> float:
        """Retrain's training time, measured in this process (once per seed). A cached Retrain model
        is trained again for the clock: its stored time was measured by whichever run trained it,
        under that run's load and threads, and a speedup must divide two times of the same run."""
        if ctx.retrain_seconds is None:
            _, ctx.retrain_seconds = get_method("retrain").timed_unlearn(ctx.original, ctx.data.task, seed=ctx.seed,
                                                                         device=self.device)
        return ctx.retrain_seconds

    def start_model(self, seed: int, data: ScenarioData, original: nn.Module, method) -> nn.Module:
        """The model a method unlearns from: ``original``, or, for a method that changes the training
        stage (``trains_original``, e.g. SISA's shard ensemble), its own original (cached)."""
        if not getattr(method, "trains_original", False):
            return original
        key = {**self.model_key(seed, data), "kind": method.name, "params": method.params.to_dict()}

        def train():
            with Timer() as t:
                model = method.train_original(original, data.train, self.config.training_recipe(), seed=seed,
                                              device=self.device)
            return model, {"time_s": t.seconds}

        template = method.original_template(self.new_model(seed), len(data.train))
        return self.cache.get_or_create(key, template, train)[0].eval()

    def evaluate(self, model: nn.Module, ctx: SeedContext, names: Optional[list[str]] = None) -> dict[str, Any]:
        """The registered metrics of ``model`` (or ``names`` of them) and, for all, the scenario's extras."""
        row, _ = compute_metrics(model, MetricInputs(ctx.data.task, reference=ctx.retrain, seed=ctx.seed), names)
        if names is None:
            row.update(ctx.scenario.extra_metrics(model, ctx.data))
        return row

    def row_head(self, ctx: SeedContext, name: str) -> dict[str, Any]:
        """The identifying fields that start every result row."""
        c = self.config
        return {"method": name, "scenario": c.scenario, "dataset": c.dataset, "model": c.model, "seed": ctx.seed}

    @staticmethod
    def call_fields(method: Optional[UnlearningMethod]) -> dict[str, Any]:
        """The checks of one unlearning call, for its row: ``noop`` (True when it left the forget
        predictions and loss unchanged, ``method.noop``), ``overforget`` (True when it pushed the forget
        set past unseen data, ``method.overforget``; False also where that check does not apply),
        ``overforget_auc`` (the check's statistic, where it applies) and, for methods with the divergence
        guard, ``restarts`` (0 unless a run diverged and restarted with a smaller learning rate). Absent
        for the fixed references and methods meant to change nothing."""
        if method is None or not method.changes_model:
            return {}
        report = method.overforget
        fields: dict[str, Any] = {"noop": method.noop is not None, "overforget": bool(report and report.overforget)}
        if report is not None:
            fields["overforget_auc"] = report.auc
        if getattr(method, "restarts", None) is not None:
            fields["restarts"] = method.restarts
        return fields

    def run_method(self, ctx: SeedContext, name: str) -> dict[str, Any]:
        """Unlearn with ``name`` from the original model of ``ctx`` and return the result row."""
        params = self.config.method_params.get(name, {})
        method = None
        if name == "original":
            model, seconds = ctx.original, 0.0
        elif name == "retrain" and not params:
            model, seconds = ctx.retrain, self.retrain_time(ctx)
        else:
            method = get_method(name, **params)
            start = self.start_model(ctx.seed, ctx.data, ctx.original, method)
            model, seconds = method.timed_unlearn(start, ctx.data.task, seed=ctx.seed, device=self.device)
        if self.on_model is not None:
            self.on_model(ctx, name, model)
        row = self.row_head(ctx, name)
        row.update(self.evaluate(model, ctx))
        row["time_s"] = seconds
        row["time_source"] = "measured"
        row.update(self.call_fields(method))
        return row

    def run_cell(self, ctx: SeedContext, name: str) -> list[dict[str, Any]]:
        """The rows of one (method, seed) cell: one row, or one per request when the scenario makes
        sequential deletion requests (``ctx.data.requests``, see ``bench/pipeline/continual.py``)."""
        try:
            if not ctx.data.requests:
                return [self.run_method(ctx, name)]
            root = self.checkpoint_root or (self.cache.root / "requests" if self.cache.enabled else None)
            path = None if root is None else root / f"{cell_key(self.config, name, ctx.seed)}.pt"
            return run_requests(self, ctx, name, RequestCheckpoint(path))
        except NonFiniteError as exc:  # name the cell: a NaN model is an error, never a row
            c = self.config
            raise NonFiniteError(f"{c.dataset}/{c.model}/{c.scenario}: {exc}") from None
