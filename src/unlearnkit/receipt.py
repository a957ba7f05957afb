"""Deletion receipts: a record of one unlearning request that can be kept and checked later.

A receipt says what was deleted (hashes of the forget set: its sorted indices and its samples), from
which model (hash of the input weights), how (method, fully resolved hyperparameters, seed, device,
software versions), with what result (hash of the output weights, wall time) and with what evidence
(forget / retain / test accuracy and MIA-efficacy before and after, and whether the request changed
the forget predictions at all). It is a plain JSON-ready dict.

    >>> result = unlearn_with_receipt(model, forget=(x_f, y_f), retain=(x_r, y_r), test=(x_t, y_t),
    ...                               method="rl", forget_indices=idx, epochs=3)
    >>> result.model        # the unlearned nn.Module (same state_dict keys)
    >>> result.receipt      # the dict; json.dump(result.receipt, f) keeps it

``weights_sha256`` hashes the tensors of a state_dict, not a file's bytes, so the same weights saved
by any tool (or on any device) hash the same; ``match_weights`` tells which side of a receipt a set
of weights is. Every hash is SHA-256 in hex; ``HASH_SCHEME`` (copied into each receipt) says exactly
what bytes each one covers, so a third party can recompute them without unlearnkit.
"""

from __future__ import annotations

import datetime
import hashlib
import platform
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ._version import __version__
from .data.split import Split
from .errors import DataError
from .evaluation import evaluate, predict_logits
from .evaluation.metrics import mean_loss
from .io import tensor_digest
from .methods import method_and_task
from .methods.blocks.noop import NOOP_REL_TOL, is_noop
from .task import UnlearningTask
from .training import TrainRecipe
from .utils import Timer, resolve_device, to_jsonable, warm_up_torch

RECEIPT_VERSION = 1

HASH_SCHEME = {
    "weights": "for each state_dict entry in sorted name order, the UTF-8 text 'name|dtype|shape|' (dtype "
               "as torch prints it, e.g. torch.float32; shape as a Python tuple, e.g. (64, 20)) followed by "
               "the tensor's raw bytes in C order (little-endian)",
    "forget_indices": "the sorted forget indices as little-endian int64",
    "forget_samples": "the weights scheme applied to two tensors: 'x', the forget samples as the model sees "
                      "them, and 'y', their labels as int64, both in sorted-index order",
}


@dataclass(frozen=True)
class UnlearningResult:
    """What ``unlearn_with_receipt`` returns: the unlearned model and its receipt (a JSON-ready dict)."""

    model: nn.Module
    receipt: dict[str, Any]


# -- hashes ------------------------------------------------------------------------------------
def weights_sha256(weights: nn.Module | Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of a model's state_dict (or of a state dict) as described in ``HASH_SCHEME``: the
    checksum ``save_model`` stores in every file it writes."""
    return tensor_digest(dict(weights.state_dict() if isinstance(weights, nn.Module) else weights))


def indices_sha256(indices: Sequence[int] | np.ndarray) -> str:
    """SHA-256 of the sorted indices as little-endian int64."""
    ordered = np.sort(np.asarray(indices, dtype=np.int64)).astype("<i8")
    return hashlib.sha256(ordered.tobytes()).hexdigest()


def samples_sha256(forget: Split, indices: Optional[Sequence[int] | np.ndarray] = None) -> str:
    """SHA-256 of the forget samples, put in sorted-index order when their indices are given."""
    x, y = forget.x, forget.y
    if indices is not None:
        order = torch.as_tensor(np.argsort(np.asarray(indices, dtype=np.int64), kind="stable"))
        x, y = x[order.to(x.device)], y[order.to(y.device)]
    return tensor_digest({"x": x, "y": y.long()})


def match_weights(receipt: Mapping[str, Any], weights: nn.Module | Mapping[str, torch.Tensor]) -> Optional[str]:
    """``"output"`` if ``weights`` are the unlearned weights the receipt describes, ``"input"`` if they
    are the weights before unlearning, None if neither."""
    hashes = receipt.get("hashes") if isinstance(receipt, Mapping) else None
    if not isinstance(hashes, Mapping) or "output_weights_sha256" not in hashes:
        raise DataError("this is not an unlearnkit deletion receipt: it has no hashes.output_weights_sha256")
    digest = weights_sha256(weights)
    if digest == hashes["output_weights_sha256"]:
        return "output"
    if digest == hashes.get("input_weights_sha256"):
        return "input"
    return None


# -- evidence ----------------------------------------------------------------------------------
def forget_change(before: nn.Module, after: nn.Module, forget: Split) -> dict[str, Any]:
    """How much the request changed the model on the forget set, and whether that is nothing at all
    (``no_op``: the criterion every unlearning call is checked with, ``methods.blocks.noop.is_noop``)."""
    changed = int((predict_logits(before, forget).argmax(1) != predict_logits(after, forget).argmax(1)).sum())
    loss_before, loss_after = mean_loss(before, forget), mean_loss(after, forget)
    return {"no_op": is_noop(changed, loss_before, loss_after), "forget_predictions_changed": changed,
            "forget_loss_before": loss_before, "forget_loss_after": loss_after,
            "tolerance": {"rtol": NOOP_REL_TOL}}


def software_versions() -> dict[str, str]:
    return {"unlearnkit": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


# -- the API -------------------------------------------------------------------------------------
def unlearn_with_receipt(
    model: nn.Module,
    forget: Any,
    retain: Any = None,
    *,
    method: str = "ft",
    test: Any = None,
    third_party: Any = None,
    forget_indices: Optional[Sequence[int] | np.ndarray] = None,
    recipe: Optional[TrainRecipe] = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    **hyperparameters: Any,
) -> UnlearningResult:
    """``unlearnkit.unlearn`` plus its deletion receipt.

    Same arguments as ``unlearnkit.unlearn`` (the input model is never modified), plus
    ``forget_indices``: the positions of the forget samples in the training data, hashed into the
    receipt and used to order the samples' hash (without them the indices hash is null and the
    samples are hashed in the order given), and ``recipe``: how ``model`` was trained, which the
    ``retrain`` method repeats on the retain set. Returns an ``UnlearningResult`` (``.model``, ``.receipt``).
    """
    algorithm, task = method_and_task(model, method, hyperparameters, forget=forget, retain=retain, test=test,
                                      third_party=third_party, recipe=recipe)
    if forget_indices is not None:
        _check_indices(forget_indices, len(task.forget))
    input_hash = weights_sha256(model)
    warm_up_torch()  # torch's one-off lazy imports are not part of the method's time
    with Timer() as timer:
        unlearned = algorithm.unlearn(model, task, seed=seed, device=device)
    receipt = {
        "receipt_version": RECEIPT_VERSION,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "software": software_versions(),
        "method": {"name": algorithm.name, "hyperparameters": algorithm.params.to_dict(),
                   "train_recipe": None if recipe is None else recipe.to_dict()},
        "seed": int(seed),
        "device": str(resolve_device(device)),
        "threads": torch.get_num_threads(),  # CPU results depend on it (float reduction order)
        "hashes": {"input_weights_sha256": input_hash, "output_weights_sha256": weights_sha256(unlearned),
                   "forget_indices_sha256": None if forget_indices is None else indices_sha256(forget_indices),
                   "forget_samples_sha256": samples_sha256(task.forget, forget_indices),
                   "scheme": HASH_SCHEME},
        "counts": {**{name: len(getattr(task, name)) if getattr(task, name) is not None else 0
                      for name in ("forget", "retain", "test", "third_party")},
                   "parameters": sum(p.numel() for p in model.parameters())},
        "wall_time_s": {"unlearn": timer.seconds},
    }
    receipt.update(_evidence(model, unlearned, task, seed, receipt["wall_time_s"]))
    return UnlearningResult(unlearned, to_jsonable(receipt))


def _check_indices(indices: Sequence[int] | np.ndarray, n_forget: int) -> None:
    if len(indices) != n_forget:
        raise DataError(f"forget_indices has {len(indices)} entries but the forget set has {n_forget} samples")
    values, counts = np.unique(np.asarray(indices, dtype=np.int64), return_counts=True)
    if (counts > 1).any():
        raise DataError(f"forget_indices repeats index {values[counts > 1][0]}: each forget sample needs its own index")


def _evidence(model: nn.Module, unlearned: nn.Module, task: UnlearningTask, seed: int,
              wall_time: dict[str, float]) -> dict[str, Any]:
    """Metrics before and after (the library's ``evaluate``; what the data do not allow is listed
    under ``skipped``) and the forget-set change with its no-op flag; adds the time to ``wall_time``."""
    with Timer() as timer:
        before, after = evaluate(model, task, seed=seed), evaluate(unlearned, task, seed=seed)
        change = forget_change(model, unlearned, task.forget)
    skipped = {**before.pop("skipped", {}), **after.pop("skipped", {})}
    metrics: dict[str, Any] = {"before": before, "after": after}
    if skipped:
        metrics["skipped"] = skipped
    wall_time["evaluation"] = timer.seconds
    return {"metrics": metrics, "no_op": change.pop("no_op"), "forget_change": change}
