"""The iterative family: gradient-based methods with a max phase over forget batches and a min
phase over retain batches (see ``methods/base.py`` for the template both families share).

``update(loss)`` does the optimiser step and honours an update mask, so "change only these weights"
(SalUn, SAPS) is a property of the family, not of each method.

Divergence guard: ``update`` checks that every loss is finite and the run checks the weights and the
outputs on forget and retain data after its last epoch. When any is NaN or infinite, or the weights'
norm grew more than ``GROWTH_LIMIT``-fold, the run starts again from the input model (weights,
buffers, random streams and request state as they were) with the gradient norm clipped at
``GUARD_CLIP``, and from the second restart on also every learning rate halved, at most ``restarts``
times; the result is then exactly what the method gives with ``clip_grad_norm`` and that ``lr``
(``self.clip_norm``, ``self.lr_scale`` and ``self.restarts`` say which, a ``DivergenceWarning``
names them). A run that still diverges raises ``NonFiniteError`` naming the
method, the seed and the setting to lower. A run that never diverges is untouched (same steps, same
result). See docs/architecture.md#divergence-guard.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

import torch
from torch import nn

from ..checks import nonfinite_parameters
from ..errors import DivergenceWarning, NonFiniteError, UnknownNameError
from ..params import hp
from ..task import UnlearningTask
from ..training import TrainRecipe, make_optimizer
from ..utils import eval_mode, reseed
from .base import SelectionParams, UnlearningMethod

#: the gradient-norm bound of every restart of the divergence guard
GUARD_CLIP = 1.0
#: each restart of the divergence guard after the first multiplies every learning rate by this
BACKOFF = 0.5
#: the default number of restarts (``restarts``); runs with it keep their cache and cell keys
DEFAULT_RESTARTS = 3
#: forget rows, and retain rows, whose outputs the guard checks after a run
CHECK_ROWS = 256
#: a run whose weights' L2 norm ends more than this many times the input model's has diverged. Measured
#: at the defaults (docs/architecture.md#divergence-guard): runs that did not diverge ended within
#: 0.5-2.9x, diverged ones that stayed finite at 10^3-10^23x
GROWTH_LIMIT = 100.0


@dataclass
class IterativeParams(SelectionParams):
    epochs: int = hp(5, "passes over the phase data")
    lr: float = hp(0.01, "learning rate")
    batch_size: int = hp(64, "mini-batch size")
    optimizer: str = hp("sgd", "optimiser", choices=("sgd", "adam"))
    momentum: float = hp(0.9, "SGD momentum", ge=0)
    weight_decay: float = hp(5e-4, "weight decay", ge=0)
    retain_budget: Optional[int] = hp(None, "retain examples the run may read: a random subset of this size, "
                                      "drawn once from the seed, replaces the retain set (cost stops growing "
                                      "with the data set); None = the whole retain set",
                                      "our option (the cost of a run stops growing with the data set)", ge=1)
    restarts: int = hp(DEFAULT_RESTARTS, "divergence guard: when a run diverges, restart it from the input model "
                       "with the gradient norm clipped at 1, then also every learning rate halved, at most this many "
                       "times (0 = fail at once)", "our choice, see docs/architecture.md#divergence-guard", ge=0)
    clip_grad_norm: Optional[float] = hp(None, "clip the gradient norm of every step to this; None = no clipping (the "
                                         "divergence guard's restarts clip at 1)",
                                         "off: the methods as published; see docs/architecture.md#divergence-guard", gt=0)

    def to_dict(self) -> dict[str, Any]:
        values = super().to_dict()
        if values.get("retain_budget") is None:  # runs without a budget keep their cache and cell keys
            values.pop("retain_budget", None)
        if values.get("restarts") == DEFAULT_RESTARTS:  # so do runs with the default guard
            values.pop("restarts", None)
        if values.get("clip_grad_norm") is None:  # and runs without clipping
            values.pop("clip_grad_norm", None)
        return values


class Diverged(Exception):
    """Raised inside a run when a loss or the weights stop being finite (caught by the guard)."""


@torch.no_grad()
def _norm(model: nn.Module) -> float:
    """The L2 norm of all the parameters of ``model`` together (in float64)."""
    return float(torch.sqrt(sum((p.detach().double() ** 2).sum() for p in model.parameters())))


def _containers(value: Any) -> Any:
    """A copy of the dicts and lists of request-state data that shares their tensors (enough to undo a
    run: methods replace state entries, they do not write into the stored tensors)."""
    if isinstance(value, dict):
        return {k: _containers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_containers(v) for v in value]
    return value


class IterativeMethod(UnlearningMethod):
    """Gradient-based methods with a max phase (forget data) and a min phase (retain data)."""

    family = "iterative"
    Params = IterativeParams
    #: ``select`` scores read the corrected forget examples of a correction request (``selection_data``)
    optional: ClassVar[tuple[str, ...]] = ("corrected",)
    #: set by subclasses that implement the phases
    has_max_phase: ClassVar[bool] = False
    has_min_phase: ClassVar[bool] = False

    def _unlearn(self, model: nn.Module, task: UnlearningTask) -> None:
        """The run under the divergence guard (module docstring): restarts with a smaller step until
        a run ends with finite weights, or ``restarts`` are spent."""
        task = self.budgeted(task)
        saved_state = _containers(self.state.data)
        self.restarts, self.lr_scale = 0, 1.0
        self.clip_norm: Optional[float] = getattr(self.params, "clip_grad_norm", None)
        while True:
            try:
                return self._run(model, task)
            except Diverged as exc:
                if self.restarts >= self.allowed_restarts():
                    raise NonFiniteError(self._divergence_message(exc)) from None
                self.restarts += 1
                self.clip_norm, self.lr_scale = self.restart_setting(self.restarts)
                warnings.warn(f"{self.name} diverged with seed {self.seed} ({exc}); restarting from the input "
                              f"model with {self._setting()}", DivergenceWarning, stacklevel=3)
                model.load_state_dict(self.original.state_dict())
                self.state.data = _containers(saved_state)
                reseed(self.seed)
                self.generator = torch.Generator().manual_seed(self.seed)

    def restart_setting(self, restart: int) -> tuple[Optional[float], float]:
        """(gradient-norm bound, learning-rate factor) of restart number ``restart`` (1, 2, ...): clipped at
        ``GUARD_CLIP`` (or the method's own smaller ``clip_grad_norm``), and from the second restart on
        every learning rate times ``BACKOFF ** (restart - 1)``."""
        own = getattr(self.params, "clip_grad_norm", None)
        return (GUARD_CLIP if own is None else min(own, GUARD_CLIP)), BACKOFF ** (restart - 1)

    def allowed_restarts(self) -> int:
        """The ``restarts`` hyperparameter; ``DEFAULT_RESTARTS`` for a method whose Params do not derive
        from ``IterativeParams``."""
        return getattr(self.params, "restarts", DEFAULT_RESTARTS)

    def _setting(self) -> str:
        """The step of the current run, in words: its gradient-norm bound and learning rate."""
        lr = getattr(self.params, "lr", None)
        clip = "no gradient clipping" if self.clip_norm is None else f"the gradient norm clipped at {self.clip_norm:g}"
        return clip + (f" and every learning rate x{self.lr_scale:g}" if self.lr_scale != 1 else "") + (
            "" if lr is None else f" (lr {lr * self.lr_scale:.3g})")

    def _divergence_message(self, exc: Diverged) -> str:
        tried = f"after {self.restarts} restart(s), the last with {self._setting()}" if self.restarts else (
            f"no restart allowed, {self._setting()}")
        return (f"method {self.name!r} diverged ({exc}) with seed {self.seed} ({tried}); lower its learning rate "
                f"(--set {self.name}.lr=...) or number of epochs, or allow more restarts ({self.name}.restarts)")

    def _run(self, model: nn.Module, task: UnlearningTask) -> None:
        """One run of the loop at ``self.lr_scale`` times the method's learning rates."""
        self.model, self.task, self.epoch = model, task, 0
        self.update_mask: Optional[dict[str, torch.Tensor]] = None
        selection = self.selection_mask(model, task)  # at the learned parameters, before prepare
        model.train()
        self.prepare(model, task)
        if selection is not None:  # intersect with any mask the method set itself (e.g. SalUn)
            own = self.update_mask
            self.set_update_mask(selection if own is None else {n: m * own[n] for n, m in selection.items()})
        self.optimizer = self.make_optimizer(model)
        if self.lr_scale != 1.0:
            for group in self.optimizer.param_groups:
                group["lr"] *= self.lr_scale
        self.scheduler = self.make_scheduler(self.optimizer)
        for epoch in range(self.epoch_count()):
            self.epoch = epoch
            self.run_epoch(epoch)
            if self.scheduler is not None:
                self.scheduler.step()
            if self.should_stop(epoch):
                break
        self.check_diverged(model, task)
        self.finish(model, task)

    def check_diverged(self, model: nn.Module, task: UnlearningTask) -> None:
        """Raise ``Diverged`` when the weights, or the eval-mode outputs on (up to ``CHECK_ROWS`` of each
        of) the forget set and the retain set (where the method reads it), hold NaN or infinite values,
        or when the weights' norm grew more than ``GROWTH_LIMIT``-fold over the input model's: weights
        that grew until the outputs overflow, or until the network collapsed, are as diverged as NaN
        weights, though every one of them is finite."""
        bad = nonfinite_parameters(model)
        if bad:
            raise Diverged(f"non-finite {', '.join(bad[:3])} after the last epoch")
        reads = set(self.requires) | set(self.optional)
        for name in ("forget", "retain"):
            split = getattr(task, name)
            if split is None or name not in reads:
                continue
            with eval_mode(model), torch.no_grad():
                outputs = model(split.x[:CHECK_ROWS])
            if not bool(torch.isfinite(outputs).all()):
                raise Diverged(f"non-finite outputs on the {name} set after the last epoch (the weights grew until "
                               "the outputs overflow)")
        growth = _norm(model) / max(_norm(self.original), 1e-12)
        if growth > GROWTH_LIMIT:
            raise Diverged(f"the weights' norm grew {growth:.3g}-fold, over the limit of {GROWTH_LIMIT:g}")

    # -- hooks ------------------------------------------------------------------------------
    def prepare(self, model: nn.Module, task: UnlearningTask) -> None:
        """Called once before the first epoch (compute masks, teachers, noise...)."""

    def finish(self, model: nn.Module, task: UnlearningTask) -> None:
        """Called once after the last epoch."""

    def should_stop(self, epoch: int) -> bool:
        return False

    def epoch_count(self) -> int:
        """Rounds of ``run_epoch`` (at most; ``should_stop`` may end earlier). A method whose round
        is a single optimisation step returns its step cap here."""
        return self.params.epochs

    def after_backward(self) -> None:
        """Called by ``update`` between the backward pass and the optimiser step (e.g. clipping)."""

    def max_phase_active(self, epoch: int) -> bool:
        return self.has_max_phase

    def min_phase_active(self, epoch: int) -> bool:
        return self.has_min_phase

    def max_step(self, x: torch.Tensor, y: torch.Tensor, epoch: int) -> torch.Tensor:
        """Loss to *minimise* on a forget batch (e.g. negative cross-entropy)."""
        raise NotImplementedError

    def min_step(self, x: torch.Tensor, y: torch.Tensor, epoch: int) -> torch.Tensor:
        """Loss to minimise on a retain batch."""
        raise NotImplementedError

    def run_epoch(self, epoch: int) -> None:
        if self.max_phase_active(epoch):
            for x, y in self.batches(self.task.forget):
                self.update(self.max_step(x, y, epoch))
        if self.min_phase_active(epoch):
            for x, y in self.batches(self.task.retain):
                self.update(self.min_step(x, y, epoch))

    def optimizer_name(self) -> str:
        """``sgd`` or ``adam``: the ``optimizer`` hyperparameter (a method may resolve an ``auto`` value)."""
        return self.params.optimizer

    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        p = self.params
        return make_optimizer([q for q in model.parameters() if q.requires_grad], self.optimizer_name(), p.lr,
                              p.momentum, p.weight_decay)

    def make_scheduler(self, optimizer: torch.optim.Optimizer):
        return None

    def plain_recipe(self) -> TrainRecipe:
        """The training recipe equal to this method's loop when it only minimises cross-entropy on one
        data set with a constant learning rate (FT, RL: their ``_training_plan``)."""
        p = self.params
        return TrainRecipe(p.optimizer, lr=p.lr, momentum=p.momentum, weight_decay=p.weight_decay, epochs=p.epochs,
                           batch_size=p.batch_size, schedule="constant")

    @staticmethod
    def forward_together(model: nn.Module, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """The model's outputs on each input batch, from one forward pass over all of them where no
        layer depends on the batch (no BatchNorm in train mode: one larger pass is cheaper on a CPU
        than several small ones), else one pass per batch."""
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training for m in model.modules()):
            return [model(x) for x in inputs]
        return list(model(torch.cat(inputs)).split([len(x) for x in inputs]))

    # -- the optimiser step -------------------------------------------------------------------
    def set_update_mask(self, mask: Optional[dict[str, torch.Tensor]]) -> None:
        """Restrict every later update to entries where ``mask[name]`` is 1 (by parameter name).
        Parameters absent from the mask are frozen. ``None`` lifts the restriction."""
        if mask is not None:
            names = dict(self.model.named_parameters())
            unknown = set(mask) - set(names)
            if unknown:
                raise UnknownNameError(f"update mask names unknown parameters {sorted(unknown)}")
            mask = {n: mask[n].to(p.device, p.dtype) if n in mask else torch.zeros_like(p)
                    for n, p in names.items()}
        self.update_mask = mask

    def update(self, loss: torch.Tensor) -> None:
        """zero_grad, backward, optimiser step; with an update mask, masked-out entries keep their
        values exactly (gradients are masked and weight decay/momentum effects are undone). A loss that
        is not finite stops the run (``Diverged``, for the divergence guard) before it reaches the weights."""
        if not bool(torch.isfinite(loss.detach())):
            raise Diverged(f"{'NaN' if bool(loss.isnan()) else 'infinite'} loss at epoch {self.epoch + 1}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.update_mask is None:
            self.after_backward()
            self._clip()
            self.optimizer.step()
            return
        named = dict(self.model.named_parameters())
        before = {n: p.detach().clone() for n, p in named.items()}
        for n, p in named.items():
            if p.grad is not None:
                p.grad.mul_(self.update_mask[n])
        self.after_backward()
        self._clip()
        self.optimizer.step()
        with torch.no_grad():
            for n, p in named.items():
                m = self.update_mask[n]
                p.copy_(m * p + (1 - m) * before[n])

    def _clip(self) -> None:
        """The gradient-norm bound of this run (``clip_grad_norm``, or the divergence guard's on a restart)."""
        if self.clip_norm is not None:
            nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.grad is not None], self.clip_norm)
