"""Continual deletion: one method serving a stream of deletion requests (``ScenarioData.requests``).

For request r = 1..R the method receives the model it returned for request r - 1 (the original for
r = 1), the task of request r (``Scenario.request_view``: that request's forget rows, retain = the
training set minus everything requested so far) and the ``RequestState`` of the stream. The result
is evaluated on every row requested so far (``Scenario.seen_view``) beside Retrain after request r,
which is trained from scratch without all of them (cached like every Retrain model). Original and
Retrain are evaluated the same way (Retrain after request r is its model for request r).

Row of request r, besides the usual metrics: ``request`` = r; ``forget_prev_acc``, the accuracy on
requests 1..r-1 (relapse; absent for r = 1); ``time_s``, this request's unlearning call;
``cum_time_s``; ``retrain_time_s``, one Retrain's training time measured in this run
(``Experiment.retrain_time``: every Retrain of the stream trains on nearly the same data, the training
set minus at most everything requested, so one measured time stands for each and speedups divide
times of the same run); ``cum_retrain_time_s`` = r x that, what serving requests 1..r by retraining
would have cost; ``noop`` as in a single request's row, for this request's call.

After every request, the rows so far, the model and the method's state are written atomically to one
checkpoint file per (method, seed) cell; a killed run resumes at the first request it had not
finished (an experiment's output folder holds these checkpoints, a benchmark's the model cache).
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional, Protocol

import torch
from torch import nn

from ...evaluation.metrics import accuracy
from ...methods import RequestState, get_method
from ...scenarios.base import requested_rows
from ...utils import Timer, to_jsonable

log = logging.getLogger(__name__)


class RequestCheckpoint:
    """The progress of one cell's stream of requests in ``path`` (None: not kept)."""

    def __init__(self, path: Optional[Path]) -> None:
        self.path = path

    def load(self, model: nn.Module) -> tuple[list[dict], Optional[nn.Module], RequestState]:
        """Rows of the finished requests, the model after the last of them (a copy of ``model``, the
        stream's start model, with the saved weights; None when nothing was finished) and the
        method's state."""
        if self.path is None or not self.path.exists():
            return [], None, RequestState()
        try:
            saved = torch.load(self.path, map_location="cpu", weights_only=True)
            resumed = copy.deepcopy(model)
            resumed.load_state_dict(saved["model"])
        except (OSError, RuntimeError, KeyError, ValueError) as exc:  # cut or stale: start the stream again
            log.warning("ignoring unreadable request checkpoint %s (%s); starting at request 1", self.path, exc)
            return [], None, RequestState()
        return list(saved["rows"]), resumed, RequestState.from_dict(saved["state"])

    def save(self, rows: list[dict], model: nn.Module, state: RequestState) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        payload = {"rows": to_jsonable(rows), "state": state.to_dict(),
                   "model": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
        torch.save(payload, tmp)
        os.replace(tmp, self.path)


class CellRunner(Protocol):
    """What a stream needs of the experiment running it (``experiment.Experiment``)."""

    config: Any
    device: torch.device

    def retrain_for(self, seed: int, original: nn.Module, data: Any) -> tuple[nn.Module, dict]: ...
    def retrain_time(self, ctx: Any) -> float: ...
    def start_model(self, seed: int, data: Any, original: nn.Module, method: Any) -> nn.Module: ...
    def evaluate(self, model: nn.Module, ctx: Any) -> dict[str, Any]: ...
    def row_head(self, ctx: Any, name: str) -> dict[str, Any]: ...
    def noop_field(self, method: Any) -> dict[str, bool]: ...


def run_requests(exp: CellRunner, ctx: Any, name: str, checkpoint: RequestCheckpoint) -> list[dict[str, Any]]:
    """The rows of method ``name`` over the requests of ``ctx`` (an ``experiment.SeedContext``; one
    row per request, resumed from ``checkpoint``)."""
    params = exp.config.method_params.get(name, {})
    fixed = name == "original" or (name == "retrain" and not params)
    method = None if fixed else get_method(name, **params)
    start = ctx.original if method is None else exp.start_model(ctx.seed, ctx.data, ctx.original, method)
    rows, model, state = checkpoint.load(start)
    if rows:
        log.info("%s seed %d: resuming at request %d", name, ctx.seed, len(rows) + 1)
    model = model if model is not None else start
    for r in range(len(rows) + 1, len(ctx.data.requests) + 1):
        seen = ctx.scenario.seen_view(ctx.data, r)
        retrain, retrain_meta = exp.retrain_for(ctx.seed, ctx.original, seen)
        one_retrain = exp.retrain_time(ctx)
        if method is None:
            model, seconds = (ctx.original, 0.0) if name == "original" else (retrain, one_retrain)
        else:
            task = ctx.scenario.request_view(ctx.data, r).task
            with Timer() as t:
                model = method.unlearn(model, task, seed=ctx.seed, device=exp.device, state=state)
            seconds = t.seconds
        view = replace(ctx, data=seen, retrain=retrain, retrain_meta=retrain_meta)
        row = {**exp.row_head(ctx, name), "request": r}
        row.update(exp.evaluate(model, view))
        if r > 1:
            row["forget_prev_acc"] = accuracy(model, ctx.data.task.forget.subset(requested_rows(ctx.data, r - 1)))
        previous = rows[-1] if rows else {"cum_time_s": 0.0, "cum_retrain_time_s": 0.0}
        row.update(time_s=seconds, time_source="measured", cum_time_s=previous["cum_time_s"] + seconds,
                   retrain_time_s=one_retrain, cum_retrain_time_s=previous["cum_retrain_time_s"] + one_retrain)
        row.update(exp.noop_field(method))  # this request's call, not the stream's
        rows.append(row)
        checkpoint.save(rows, model, state)
    return rows
