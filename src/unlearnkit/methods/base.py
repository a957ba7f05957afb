"""Base classes of unlearning methods.

``UnlearningMethod`` is a template method: ``unlearn()`` owns the chores (validate the task,
copy the input model, device, seed, restore train/eval modes, check the state_dict keys) and calls
the subclass's ``_unlearn(model, task)``, which holds only the algorithm.

Two families sit below it:

* ``IterativeMethod``: gradient-based methods. An epoch runs a *max phase* over forget batches
  (``max_step``) and a *min phase* over retain batches (``min_step``); ``max_phase_active(epoch)``
  and ``min_phase_active(epoch)`` schedule them, and ``run_epoch`` can be overridden for methods
  that pair batches or take one step per round (``epoch_count`` / ``should_stop`` bound the loop).
  ``update(loss)`` does the optimiser step and honours an update mask, so "change only these
  weights" (SalUn, SAPS) is a property of the family, not of each method.
* ``ClosedFormMethod``: methods that compute a weight update directly (SSD, Fisher, first/second
  order updates); ``_unlearn`` edits the weights without an optimisation loop.

Continual deletion (a stream of requests, each ``unlearn`` call taking the previous call's output) is
the caller's loop; what a method carries from one request to the next travels in an explicit
``RequestState`` passed to every call of the stream (see ``methods/blocks/state.py``). Stateless methods
ignore it and simply chain.
"""

from __future__ import annotations

import copy
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Iterator, Optional

import torch
from torch import nn

from ..data.split import Split
from ..checks import nonfinite_parameters
from ..errors import HyperparameterError, MissingSplitError, NonFiniteError
from ..params import Hyperparameters, hp
from ..task import UnlearningTask
from ..training import TrainRecipe
from ..training_stacked import TrainingRun
from ..utils import Timer, resolve_device, seeded
from .blocks.registry import METHODS, RETAIN_FREE_SUFFIX, describe_data, register_method  # noqa: F401 (re-exported)
from .blocks.noop import OVERFORGET_HINT, check_overforget, detect_noop, warn_noop, warn_overforget
from .blocks.selection import SCORES, select_params, selection_data
from .blocks.state import RequestState

log = logging.getLogger(__name__)


class UnlearningMethod(ABC):
    """Template for all methods. Subclasses set ``name``, ``summary``, ``Params`` and ``requires``
    and implement ``_unlearn``; they are registered with ``@register_method``.

    During ``_unlearn`` these attributes are available: ``self.params``, ``self.device``,
    ``self.seed``, ``self.generator`` (seeded, for batch order), ``self.original`` (a frozen
    eval-mode copy of the input model, the natural teacher/anchor) and ``self.state`` (the
    ``RequestState`` of the stream of deletion requests this call belongs to; a fresh one for a
    single request).
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    family: ClassVar[str] = "other"
    Params: ClassVar[type[Hyperparameters]] = Hyperparameters
    #: splits of the task this method cannot run without
    requires: ClassVar[tuple[str, ...]] = ("forget",)
    #: splits it reads when the task has them and runs without otherwise
    optional: ClassVar[tuple[str, ...]] = ()
    #: splits removed from the task before the method sees it (retain-free variants)
    withheld: ClassVar[tuple[str, ...]] = ()
    #: False for references that are meant to leave the model as it is (no no-op check)
    changes_model: ClassVar[bool] = True
    #: what to try when a call leaves the forget set unchanged (the no-op warning's advice)
    noop_hint: ClassVar[str] = "a larger lr or more epochs"
    #: what to try when a call pushes the forget set past unseen data (the over-forgetting warning's advice)
    overforget_hint: ClassVar[str] = OVERFORGET_HINT

    def __init__(self, params: Optional[Hyperparameters] = None, **overrides: Any) -> None:
        if params is not None and not isinstance(params, self.Params):
            raise HyperparameterError(f"{self.name} expects {self.Params.__name__}, got {type(params).__name__}")
        base = params.to_dict() if params is not None else {}
        base.update(overrides)
        self.params = self.Params.from_dict(base, owner=self.name or type(self).__name__)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params})"

    # -- the template ---------------------------------------------------------------------
    def unlearn(
        self,
        model: nn.Module,
        task: UnlearningTask,
        *,
        seed: int = 0,
        device: str | torch.device = "auto",
        inplace: bool = False,
        state: Optional[RequestState] = None,
    ) -> nn.Module:
        """Return a model that has forgotten ``task.forget``; the input model is left untouched
        unless ``inplace``. The result has the input's state_dict keys, device and train/eval modes.

        ``state``: for sequential deletion requests, one ``RequestState`` passed to every call of the
        stream (the model returned by request r is the input of request r + 1); the method reads and
        updates it, and ``state.done`` counts the requests completed.
        ``self.noop`` is then a ``NoOpReport`` (and a ``NoOpWarning`` raised) if nothing changed, and
        ``self.overforget`` the ``OverforgetReport`` of the result (None where the check does not apply;
        an ``OverForgetWarning`` when it fires, see ``methods/blocks/noop.py``); ``self.check_seconds``
        is the time that check took, which ``timed_unlearn`` leaves out of a method's time."""
        task = self._validated(model, task, state)
        params = list(model.parameters())
        home = params[0].device if params else torch.device("cpu")
        modes = {name: m.training for name, m in model.named_modules()}
        keys = list(model.state_dict().keys())

        work = model if inplace else copy.deepcopy(model)
        self.device = resolve_device(device)
        self.seed = int(seed)
        work.to(self.device)
        task = task.to(self.device)
        self.original = copy.deepcopy(work).eval()
        for p in self.original.parameters():
            p.requires_grad_(False)
        self.state = state if state is not None else RequestState()
        self.state.move(self.device)
        try:
            with seeded(self.seed):
                self.generator = torch.Generator().manual_seed(self.seed)
                result = self._unlearn(work, task)
            result = work if result is None else result
            self.noop = detect_noop(self.original, result, task.forget) if self.changes_model else None
            with Timer() as check:  # an evaluation, not unlearning work: timed_unlearn leaves it out
                self.overforget = check_overforget(result, task) if self.changes_model else None
            self.check_seconds = check.seconds
            self.state.done += 1
        finally:
            self.state.move(torch.device("cpu"))
            del self.original, self.state
        self._hand_back(result, home, modes, keys)
        return result

    def _hand_back(self, result: nn.Module, home: torch.device, modes: dict[str, bool], keys: list[str]) -> None:
        """``result`` back on the input's device and modes, its state_dict keys and weights checked, and
        the no-op and over-forgetting warnings raised."""
        if self.noop is not None:
            warn_noop(self.name, self.noop, self.noop_hint)
        result.to(home)
        for name, m in result.named_modules():
            if name in modes:
                m.train(modes[name])
        if list(result.state_dict().keys()) != keys:
            raise RuntimeError(f"method {self.name!r} changed the model's state_dict keys (a bug in the method)")
        diverged = nonfinite_parameters(result)
        if diverged:
            raise NonFiniteError(f"method {self.name!r} produced NaN or infinite weights ({', '.join(diverged[:3])}) "
                                 f"with seed {self.seed}; lower its learning rate or number of epochs")
        if self.overforget is not None and self.overforget.overforget:
            warn_overforget(self.name, self.overforget, self.overforget_hint)

    def timed_unlearn(self, model: nn.Module, task: UnlearningTask, **kwargs: Any) -> tuple[nn.Module, float]:
        """``unlearn(model, task, **kwargs)`` and its wall seconds less those of the over-forgetting check
        it ends with (an evaluation of the result, not unlearning work): how every command times a method."""
        with Timer() as t:
            result = self.unlearn(model, task, **kwargs)
        return result, t.seconds - self.check_seconds

    def _validated(self, model: nn.Module, task: UnlearningTask, state: Optional[RequestState]) -> UnlearningTask:
        """Type checks, the withheld splits removed, the required ones present."""
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(task, UnlearningTask):
            raise TypeError(f"task must be an UnlearningTask, got {type(task).__name__}")
        if state is not None and not isinstance(state, RequestState):
            raise TypeError(f"state must be a RequestState (one per stream of requests), got {type(state).__name__}")
        if self.withheld:
            task = replace(task, **{name: None for name in self.withheld})
        missing = [s for s in self.requires if getattr(task, s) is None]
        if missing:
            raise MissingSplitError(
                f"method {self.name!r} needs the {', '.join(missing)} data but the task has none; "
                f"pass {', '.join(f'{m}=...' for m in missing)} or choose a method that does not need it"
            )
        return task

    @abstractmethod
    def _unlearn(self, model: nn.Module, task: UnlearningTask) -> Optional[nn.Module]:
        """The algorithm: modify ``model`` (already a copy, on ``self.device``) in place."""

    def training_run(self, model: nn.Module, task: UnlearningTask, *, seed: int = 0,
                     device: str | torch.device = "auto") -> Optional[tuple[TrainingRun, TrainRecipe]]:
        """When this method, with these hyperparameters, is plain cross-entropy training of one model
        on one data set (Retrain, FT, RL), that training as a run for ``training_stacked.train_many``
        (so that many runs train as one stack) and its recipe; None for every other method. Training the
        run gives what ``unlearn(model, task, seed=seed, device=device)`` returns, up to float rounding."""
        if "_training_plan" not in type(self).__dict__:
            return None  # a subclass of a plain-training method changes the loop unless it says otherwise
        if getattr(self.params, "clip_grad_norm", None) is not None:
            return None  # gradient clipping is no part of a training recipe
        if any(getattr(task, s) is None for s in self.requires):
            return None  # unlearn() reports the missing data
        self.device, self.seed = resolve_device(device), int(seed)
        work = copy.deepcopy(model).to(self.device)
        task = self.budgeted(task.to(self.device))
        with seeded(self.seed):
            self.generator = torch.Generator().manual_seed(self.seed)
            plan = self._training_plan(work, task)
        return None if plan is None else (TrainingRun(work, plan[0], self.generator), plan[1])

    def _training_plan(self, model: nn.Module, task: UnlearningTask) -> Optional[tuple[Split, TrainRecipe]]:
        """Override in methods that are plain training (see ``training_run``): prepare ``model`` (a copy)
        and return the data and recipe ``_unlearn`` would train it with."""
        return None

    # -- helpers for subclasses --------------------------------------------------------------
    def batches(self, split: Split, batch_size: Optional[int] = None, shuffle: bool = True
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        bs = batch_size or getattr(self.params, "batch_size", 64)
        return split.batches(bs, shuffle=shuffle, generator=self.generator)

    def selection_mask(self, model: nn.Module, task: UnlearningTask) -> Optional[dict[str, torch.Tensor]]:
        """The ``select`` / ``select_fraction`` mask of methods whose params have them (None for
        ``select="all"`` or no such param: no extra cost). Scores are computed on the forget set (plus
        ``task.corrected`` when present) at the input weights; random draws use their own seeded
        generator so batch order is unchanged."""
        choice = getattr(self.params, "select", "all")
        if choice == "all":
            return None
        return select_params(model, selection_data(task), self.params.select_fraction, score=choice,
                             generator=torch.Generator().manual_seed(self.seed + 7919))

    def budgeted(self, task: UnlearningTask) -> UnlearningTask:
        """``task`` with its retain set cut to ``retain_budget`` random examples, for methods whose
        params have one (drawn with their own seeded generator, so batch order is unchanged); the task
        itself when there is no budget or it covers the retain set."""
        budget = getattr(self.params, "retain_budget", None)
        if budget is None or task.retain is None or budget >= len(task.retain):
            return task
        keep = torch.randperm(len(task.retain), generator=torch.Generator().manual_seed(self.seed + 104729))
        return replace(task, retain=task.retain.subset(keep[:budget].sort().values.numpy()))

    def num_classes(self, task: UnlearningTask) -> int:
        if task.num_classes is not None:
            return task.num_classes
        with torch.no_grad():
            return int(self.original(task.forget.x[:1]).shape[1])


@dataclass
class SelectionParams(Hyperparameters):
    """``select`` / ``select_fraction``: the parameter selection every iterative method and the
    first/second-order updates accept (read by ``UnlearningMethod.selection_mask``)."""

    select: str = hp("all", "update only these parameters (SAPS, arXiv 2504.06398; see methods/blocks/selection.py); "
                     "all = no restriction", "off by default: the method as published", choices=SCORES)
    select_fraction: float = hp(0.05, "fraction of parameter entries kept by select (hessian/fisher/grad/random)",
                                "SAPS paper uses a few percent", gt=0, le=1)


class ClosedFormMethod(UnlearningMethod):
    """Methods that compute the unlearned weights directly (no optimisation loop)."""

    family = "closed_form"
