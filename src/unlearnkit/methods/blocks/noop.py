"""No-op detection: did an unlearning call change anything on the forget set?

A method that follows the gradient of the forget loss does nothing on a model trained to zero loss
(the gradient vanishes as p_y -> 1); a user must not mistake that for success. After every
``unlearn`` call the template compares the input and the output model on the forget set: the call is
a no-op when every top-1 prediction is the same and the mean cross-entropy moved by at most
``NOOP_REL_TOL`` of its value. The method records it and a ``NoOpWarning`` names the likely cause.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

from ...data.split import Split
from ...errors import NoOpWarning

#: relative change of the mean forget loss below which a call counts as a no-op (with identical predictions)
NOOP_REL_TOL = 0.1
#: mean p_y on the forget set above which its loss is called saturated
SATURATED_CONFIDENCE = 0.99


@dataclass
class NoOpReport:
    loss_before: float
    loss_after: float
    mean_confidence: float  # mean p_y of the input model on the forget set

    @property
    def saturated(self) -> bool:
        return self.mean_confidence >= SATURATED_CONFIDENCE


@torch.no_grad()
def _forget_stats(model: nn.Module, forget: Split) -> tuple[torch.Tensor, float, float]:
    was = model.training
    model.eval()
    try:
        logits = torch.cat([model(x) for x, _ in forget.batches(512)])
    finally:
        model.train(was)
    y = forget.y.to(logits.device)
    log_p_y = F.log_softmax(logits, 1).gather(1, y[:, None])  # mean cross-entropy = -mean log p_y
    return logits.argmax(1), float(-log_p_y.mean()), float(log_p_y.exp().mean())


def is_noop(predictions_changed: int, loss_before: float, loss_after: float) -> bool:
    """The no-op criterion: no forget prediction changed and the mean forget loss moved by at most
    ``NOOP_REL_TOL`` of its value."""
    return predictions_changed == 0 and abs(loss_after - loss_before) <= NOOP_REL_TOL * abs(loss_before) + 1e-12


def detect_noop(before: nn.Module, after: nn.Module, forget: Split) -> Optional[NoOpReport]:
    """A report when ``after`` leaves the forget set as ``before`` had it (``is_noop``); None when the
    call changed something."""
    pred_b, loss_b, conf_b = _forget_stats(before, forget)
    pred_a, loss_a, _ = _forget_stats(after, forget)
    return NoOpReport(loss_b, loss_a, conf_b) if is_noop(int((pred_a != pred_b).sum()), loss_b, loss_a) else None


def warn_noop(method: str, report: NoOpReport, hint: str) -> None:
    """Warn (``NoOpWarning``) that ``method`` left the forget set as it was, with cause and remedy."""
    if report.saturated:
        cause = (f"the input model is saturated on the forget set (mean p_y = {report.mean_confidence:.4f}): "
                 "gradients of the forget loss vanish, and updates on other data barely move outputs this sure")
    else:
        cause = "its updates were too small to move the forget outputs (vanishing gradient, lr or epochs too low)"
    warnings.warn(
        f"{method} left the forget set unchanged: every prediction is the same and the forget loss moved "
        f"{report.loss_before:.3g} -> {report.loss_after:.3g}. Likely cause: {cause}. Try: {hint}",
        NoOpWarning, stacklevel=4)  # the caller of unlearn()
