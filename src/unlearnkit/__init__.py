"""unlearnkit: machine unlearning for deep classifiers.

    >>> import unlearnkit
    >>> unlearned = unlearnkit.unlearn(model, forget=(x_f, y_f), retain=(x_r, y_r), method="ft", lr=0.01)
    >>> unlearnkit.evaluate(unlearned, forget=(x_f, y_f), retain=(x_r, y_r), test=(x_t, y_t))
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._version import __version__
from .data import DATASETS, DatasetBundle, Split, as_split, load_dataset
from .errors import (DataError, DivergenceWarning, HyperparameterError, MissingSplitError, NoOpWarning,
                     OverForgetWarning, UnknownNameError, UnlearnkitError)
from .evaluation import evaluate
from .io import load_model, save_model
from .methods import METHODS, RequestState, get_method, list_methods, method_and_task
from .models import MODELS, build_model
from .ledger import UnlearningResult, unlearn_with_receipt, weights_sha256
from .ledger.receipt import check_needs
from .scenarios import SCENARIOS, get_scenario
from .task import UnlearningTask
from .training import TrainRecipe, train_model


def unlearn(
    model: nn.Module,
    forget: Any,
    retain: Any = None,
    *,
    method: str = "ft",
    test: Any = None,
    third_party: Any = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    inplace: bool = False,
    state: RequestState | None = None,
    **hyperparameters: Any,
) -> nn.Module:
    """Return a copy of ``model`` that has forgotten ``forget``.

    Data may be torch Datasets, DataLoaders or ``(x, y)`` pairs of tensors. ``hyperparameters``
    are the method's (see ``unlearnkit methods``); the input model is modified only if ``inplace``.
    For sequential deletion requests pass the previous call's output as ``model`` and one
    ``RequestState`` as ``state`` to every call (methods that carry nothing across requests ignore it).
    A ``NoOpWarning`` says when the call left the forget set's predictions and loss unchanged.
    Without ``retain`` (only the samples to forget, and perhaps ``third_party`` reference data the
    model never trained on) a method that needs retain data is refused, naming the methods that run.
    """
    algorithm, task = method_and_task(model, method, hyperparameters, forget=forget, retain=retain, test=test,
                                      third_party=third_party)
    check_needs(algorithm, task.available())
    return algorithm.unlearn(model, task, seed=seed, device=device, inplace=inplace, state=state)


def audit(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Per-example audit (LiRA, U-LiRA, challenge forgetting quality); see
    :func:`unlearnkit.bench.audit.audit`. Imported lazily: it pulls in the benchmark machinery."""
    from .bench.audit import audit as run

    return run(*args, **kwargs)


__all__ = [
    "DATASETS", "METHODS", "MODELS", "SCENARIOS", "DataError", "DatasetBundle", "DivergenceWarning",
    "HyperparameterError", "MissingSplitError", "NoOpWarning", "OverForgetWarning", "RequestState", "Split", "TrainRecipe", "UnknownNameError", "UnlearningTask", "UnlearnkitError",
    "__version__", "as_split", "audit", "build_model", "evaluate", "get_method", "get_scenario", "list_methods",
    "load_dataset", "load_model", "save_model", "train_model", "unlearn", "unlearn_with_receipt",
    "UnlearningResult", "weights_sha256",
]
