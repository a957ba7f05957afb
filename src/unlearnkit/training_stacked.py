"""Train many same-shape models at once: one batched forward/backward over stacked parameters.

An audit trains dozens of small models of one architecture (shadow originals, Retrain models,
fine-tuned copies), each on its own data with its own batch order. ``train_many`` stacks their
parameters along a new leading dimension (``torch.func.stack_module_state``), evaluates all models
on a ``(models, batch, ...)`` tensor with ``vmap(functional_call)``, and gives each model its own
optimiser step (the fused kernel ``train_model``'s optimiser runs, applied to that model's slice,
with that model's own step count). So each stacked model follows exactly the recipe, data and batch
order ``train_model`` would use for it; the only difference is float rounding (a batched matmul
sums in another order), which grows over a long training run to the size of seed-to-seed noise
for the attack statistics but not beyond (tests/test_training_stacked.py checks both).

Models whose forward is not a pure function of weights and input fall back to ``train_model`` one
at a time: any module with buffers (BatchNorm running statistics are updated in place) or dropout
(vmap cannot reproduce each model's own random stream), or anything vmap rejects.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import nn
from torch.func import functional_call, grad, stack_module_state, vmap
from torch.nn import functional as F
from torch.optim.adam import adam as adam_step
from torch.optim.sgd import sgd as sgd_step

from .data.split import Split
from .training import TrainRecipe, epoch_learning_rates, fused_supported, train_model
from .utils import Timer

log = logging.getLogger(__name__)


@dataclass
class TrainingRun:
    """One model to train: its initial weights (trained in place), data and batch-order generator
    (``torch.Generator().manual_seed(seed)`` gives ``train_model(..., seed=seed)``'s order)."""

    model: nn.Module
    data: Split
    generator: torch.Generator


def stack_blocker(model: nn.Module) -> Optional[str]:
    """Why ``model`` cannot be trained stacked with others, or None when it can."""
    if next(iter(model.buffers()), None) is not None:
        return "it has buffers (e.g. BatchNorm running statistics, updated in place per model)"
    if any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in model.modules()):
        return "it uses dropout (each model would need its own random stream)"
    return None


def _signature(model: nn.Module) -> tuple:
    return tuple((n, tuple(p.shape), p.dtype) for n, p in model.named_parameters())


def train_many(runs: Sequence[TrainingRun], recipe: TrainRecipe, *, device: Optional[torch.device] = None,
               vectorize: bool = True, max_stack: int = 8) -> list[nn.Module]:
    """Train every run's model in place with ``recipe`` (as ``train_model`` does) and return the
    models in eval mode. Same-shape models are trained in stacks of at most ``max_stack``; with
    ``vectorize=False``, or for models that cannot be stacked (see ``stack_blocker``), one by one."""
    runs = list(runs)
    if not runs:
        return []
    device = device or next(runs[0].model.parameters()).device
    groups: dict[tuple, list[int]] = {}
    for i, run in enumerate(runs):
        groups.setdefault(_signature(run.model), []).append(i)
    for members in groups.values():
        blocker = "vectorize=False" if not vectorize else stack_blocker(runs[members[0]].model)
        if blocker is None and len(members) > 1:
            for start in range(0, len(members), max_stack):
                chunk = [runs[i] for i in members[start:start + max_stack]]
                if _train_stacked(chunk, recipe, device):
                    continue
                _train_serial(chunk, recipe, device)
            continue
        if vectorize and len(members) > 1:
            log.info("training %d models one by one: %s", len(members), blocker)
        _train_serial([runs[i] for i in members], recipe, device)
    return [run.model.eval() for run in runs]


def _train_serial(runs: Sequence[TrainingRun], recipe: TrainRecipe, device: torch.device) -> None:
    for run in runs:
        train_model(run.model, run.data, recipe, generator=run.generator, device=device)


def time_stacking(model: nn.Module, data: Split, recipe: TrainRecipe, models: int, *, device: torch.device,
                  steps: int = 6, repeats: int = 2) -> dict[str, float]:
    """Seconds per ``steps`` training steps of ``recipe`` on ``data`` for ``models`` copies of ``model``,
    trained one by one (``serial_s``) and as one stack (``stacked_s``, inf where vmap cannot batch the
    model). Each is the marginal cost of a second epoch of ``steps`` steps (the time of two epochs less
    that of one), so that the set-up of a run, paid once per model in a real training of many epochs,
    does not count; each timing is the best of ``repeats`` after a warm-up run (first calls pay one-off
    costs; the best of several is the least disturbed by other work on the machine)."""
    rows = data.subset(list(range(min(len(data), steps * recipe.batch_size))))

    def best(train, epochs: int) -> float:
        run_recipe = TrainRecipe(**{**recipe.to_dict(), "epochs": epochs})
        times = []
        for _ in range(repeats + 1):
            runs = [TrainingRun(copy.deepcopy(model), rows, torch.Generator().manual_seed(i)) for i in range(models)]
            with Timer() as t:  # synchronises a GPU, so that its queued work is counted
                finished = train(runs, run_recipe)
            if finished is False:
                return math.inf
            times.append(t.seconds)
        return min(times[1:])

    def marginal(train) -> float:
        return max(best(train, 2) - best(train, 1), 1e-9)

    return {"serial_s": marginal(lambda runs, r: _train_serial(runs, r, device)),
            "stacked_s": marginal(lambda runs, r: _train_stacked(runs, r, device)),
            "models": models, "steps": -(-len(rows) // recipe.batch_size)}


class _Batches:
    """Each model's shuffled batches as one ``(models, batch)`` index matrix per epoch, padded with
    zero-weight rows where a model has fewer examples than the largest."""

    def __init__(self, runs: Sequence[TrainingRun], batch_size: int, device: torch.device) -> None:
        unique: dict[int, int] = {}  # id(split) -> offset in the concatenated data
        parts: list[Split] = []
        offset = 0
        for run in runs:
            if id(run.data) not in unique:
                unique[id(run.data)] = offset
                parts.append(run.data)
                offset += len(run.data)
        data = Split.concat(*parts) if len(parts) > 1 else parts[0]
        self.x, self.y = data.x.to(device), data.y.to(device)
        self.offsets = [unique[id(run.data)] for run in runs]
        self.sizes = [len(run.data) for run in runs]
        self.generators = [run.generator for run in runs]
        self.batch_size = batch_size
        self.steps = [-(-n // batch_size) for n in self.sizes]  # ceil
        self.device = device

    def epoch(self, generator: Optional[torch.Generator] = None):
        """Yield (x, y, weight, active) per step; ``active`` is None when every model takes the step.
        ``generator`` replaces every model's own (for a trial step that must not advance them)."""
        b, width = self.batch_size, max(self.steps) * self.batch_size
        index = torch.zeros(len(self.sizes), width, dtype=torch.long)
        weight = torch.zeros(len(self.sizes), width)
        for m, (n, off, gen) in enumerate(zip(self.sizes, self.offsets, self.generators)):
            index[m, :n] = torch.randperm(n, generator=generator or gen) + off
            weight[m, :n] = 1.0
        index, weight = index.to(self.device), weight.to(self.device)
        for s in range(max(self.steps)):
            active = None if min(self.steps) > s else [m for m, k in enumerate(self.steps) if k > s]
            idx = index[:, s * b:(s + 1) * b]
            yield self.x[idx], self.y[idx], weight[:, s * b:(s + 1) * b], active


class _StackedOptimizer:
    """Each model's own SGD/Adam step on its slice of the stacked parameters (fused kernel where
    torch has one, as ``make_optimizer`` uses for serial training). The views of parameters and
    optimiser state are built once; only the fresh gradients are sliced per step."""

    def __init__(self, params: list[torch.Tensor], recipe: TrainRecipe) -> None:
        self.recipe = recipe
        self.fused = fused_supported(params[0].device)
        tensors = [params, [torch.zeros_like(p) for p in params]]
        if recipe.optimizer == "adam":
            tensors.append([torch.zeros_like(p) for p in params])
            tensors.append([torch.zeros(p.shape[0], device=p.device) for p in params])
        # per model: its views of parameters, first moment (momentum), second moment, step counts
        self.views = [[[t[m] for t in group] for group in tensors] for m in range(params[0].shape[0])]

    def step(self, grads: list[torch.Tensor], lr: float, active: Optional[list[int]] = None) -> None:
        models = range(len(self.views)) if active is None else active
        lists = [[t for m in models for t in self.views[m][g]] for g in range(len(self.views[0]))]
        lists.insert(1, [g[m] for m in models for g in grads])
        r = self.recipe
        if r.optimizer == "adam":
            params, grads_, first, second, steps = lists
            adam_step(params, grads_, first, second, [], steps, fused=self.fused, foreach=False, amsgrad=False,
                      beta1=0.9, beta2=0.999, lr=lr, weight_decay=r.weight_decay, eps=1e-8, maximize=False)
        else:
            params, grads_, momentum = lists
            sgd_step(params, grads_, momentum, fused=self.fused, foreach=False, weight_decay=r.weight_decay,
                     momentum=r.momentum, lr=lr, dampening=0.0, nesterov=False, maximize=False)


def _train_stacked(runs: Sequence[TrainingRun], recipe: TrainRecipe, device: torch.device) -> bool:
    """Train ``runs`` as one stack; False (nothing changed) when vmap rejects the model."""
    models = [run.model.to(device).train() for run in runs]
    base = copy.deepcopy(models[0])
    stacked, _ = stack_module_state(models)
    names, params = list(stacked), [p.detach() for p in stacked.values()]

    def loss(p: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        # the model's mean loss over its own rows (w = 0 marks padding)
        losses = F.cross_entropy(functional_call(base, dict(zip(names, p)), (x,)), y, reduction="none")
        return (losses * w).sum() / w.sum().clamp_min(1.0)

    gradients = vmap(grad(loss))  # one batched forward/backward: every model's own gradient
    batches = _Batches(runs, recipe.batch_size, device)
    try:
        xb, yb, wb, _ = next(batches.epoch(torch.Generator().manual_seed(0)))
        gradients(params, xb[:, :2], yb[:, :2], wb[:, :2])
    except RuntimeError as exc:
        log.info("training %d models one by one: vmap cannot batch this model (%s)", len(models), exc)
        return False
    optimizer = _StackedOptimizer(params, recipe)
    for lr in epoch_learning_rates(recipe):
        for xb, yb, wb, active in batches.epoch():
            optimizer.step(gradients(params, xb, yb, wb), lr, active)
    with torch.no_grad():
        for m, model in enumerate(models):
            for name, p in model.named_parameters():
                p.copy_(stacked[name][m])
    return True
