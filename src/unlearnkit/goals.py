"""What "forgotten" means for a single instance (the ``goal`` of instance-wise unlearning).

Shared by the ``instance`` scenario, which measures the goal, and the ``instance_adv`` method, which
pursues it; it sits below both so that neither imports the other.

* ``misclassify``: the model no longer predicts the instance's true label;
* ``relabel``: the model predicts the instance's target label (by default the most likely class
  other than the true one under the original model).
"""

from __future__ import annotations

from typing import Optional

import torch

from .errors import DataError

GOALS = ("misclassify", "relabel")


def goal_met(logits: torch.Tensor, y: torch.Tensor, goal: str,
             targets: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Boolean per instance: does the prediction (argmax of ``logits``) meet the goal?"""
    pred = logits.argmax(1)
    if goal == "misclassify":
        return pred != y.to(pred.device)
    if goal == "relabel":
        if targets is None:
            raise DataError("goal 'relabel' needs target labels")
        return pred == targets.to(pred.device)
    raise DataError(f"unknown goal {goal!r}: use one of {list(GOALS)}")


def highest_wrong_class(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per example, the class with the highest logit other than its label ``y`` (the default relabel
    target: the second most likely class whenever the model classifies the example correctly)."""
    masked = logits.detach().clone()
    masked[torch.arange(len(y)), y.to(masked.device)] = float("-inf")
    return masked.argmax(1)
