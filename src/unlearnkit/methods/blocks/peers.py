"""Small helpers shared by the peer methods (SalUn, SSD, SCRUB, Bad Teacher, UNSIR, Boundary
Shrink, Fisher)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

from ...data.split import Split
from ...errors import DataError
from ...utils import eval_mode  # noqa: F401  (re-exported for the peer methods)
from .gradients import gradient_sum
from ..base import hp
from ..iterative import IterativeParams

_ARGS = "Jia et al. / SalUn / RUM reference arg_parser.py"


@dataclass
class ReferenceSGDParams(IterativeParams):
    """Optimiser settings shared by the methods of the Jia et al. code lineage (FT, GA, l1-sparse,
    NegGrad+, RL, SalUn): SGD with momentum 0.9 and weight decay 5e-4; the batch size is ours."""

    optimizer: str = hp("sgd", "optimiser", _ARGS, choices=("sgd", "adam"))
    momentum: float = hp(0.9, "SGD momentum", _ARGS)
    weight_decay: float = hp(5e-4, "weight decay", _ARGS)
    batch_size: int = hp(64, "mini-batch size", "ours: the batch size of the original models' recipes "
                         "(the reference arg_parser.py uses 256 for CIFAR-10)")


def kl_teacher_student(student_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float = 1.0
                       ) -> torch.Tensor:
    """KL(teacher || student) at temperature T, summed over classes, averaged over the batch and
    scaled by T^2 (Hinton et al.'s distillation loss, as in the SCRUB / RepDistiller code)."""
    log_s = F.log_softmax(student_logits / temperature, dim=1)
    return F.kl_div(log_s, teacher_probs, reduction="batchmean") * temperature**2


def summed_batch_gradients(model: nn.Module, split: Split, batch_size: int, square: bool = False
                           ) -> tuple[dict[str, torch.Tensor], int]:
    """Sum over the mini-batches of ``split`` (eval mode, in order) of the gradient of each batch's
    mean cross-entropy, or of its square; returns the sums per parameter name and the batch count."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    batches = list(split.batches(batch_size, shuffle=False))
    with eval_mode(model):
        sums = gradient_sum(lambda x, y: F.cross_entropy(model(x), y), batches, [p for _, p in named],
                            torch.square if square else None)
    return {n: s for (n, _), s in zip(named, sums)}, len(batches)


def batch_grad_squares(model: nn.Module, split: Split, batch_size: int) -> dict[str, torch.Tensor]:
    """SSD-style diagonal importance: the mean over mini-batches of the squared gradient of the
    mean cross-entropy of each batch (eval mode, batches in order). Returned per parameter name."""
    acc, count = summed_batch_gradients(model, split, batch_size, square=True)
    return {n: a / max(count, 1) for n, a in acc.items()}


def forgotten_classes(task, explicit: Optional[int], method: str) -> list[int]:
    """The class(es) a class-level method forgets: ``explicit`` if given, else the scenario's
    ``task.metadata["forget_class"]``, else the single label of the forget set. Raises a clear error
    when the forget set spans several classes and none is named."""
    if explicit is not None and explicit >= 0:
        return [int(explicit)]
    meta = task.metadata.get("forget_class") if task.metadata else None
    if meta is not None:
        return [int(c) for c in (meta if isinstance(meta, (list, tuple)) else [meta])]
    labels = sorted({int(v) for v in task.forget.y.unique().tolist()})
    if len(labels) == 1:
        return labels
    raise DataError(
        f"{method} forgets a whole class, but the forget set holds labels {labels[:10]}"
        f"{'...' if len(labels) > 10 else ''} and no forgotten class is given: use the 'class' scenario, "
        f"set task.metadata['forget_class'], or pass {method}.forget_class=K"
    )
