"""Forget objectives that act on saturated models.

Methods that ascend the cross-entropy of the forget set (GA, NegGrad+, SCRUB's max-steps) follow a
gradient that vanishes as p_y -> 1: on a model trained to zero loss, d CE / d z_y = p_y - 1 ~ 0 and
they change nothing. The ``confidence`` objective descends instead the logit-scaled confidence

    s(x, y) = log p_y - log(1 - p_y) = z_y - logsumexp_{j != y} z_j

(the statistic of LiRA, Carlini et al., S&P 2022), clipped at 0: d s / d z_y = 1 however sure the
model is, and an example stops pulling once p_y <= 1/2 (it is no longer confidently predicted), so
the ascent is bounded where cross-entropy ascent diverges.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

#: choices of the ``forget_loss`` hyperparameter of the ascent methods
FORGET_LOSSES = ("ce", "confidence")
FORGET_LOSS_HELP = ("objective pushed up on forget data: ce = cross-entropy (reference; vanishes on a saturated "
                    "model), confidence = max(0, log p_y - log(1 - p_y)) descended (does not vanish as p_y -> 1)")
#: the no-op warning's advice for the ascent methods
SATURATION_HINT = "forget_loss=confidence (a forget objective whose gradient does not vanish as p_y -> 1)"
#: the over-forgetting warning's advice for the ascent methods
OVERSHOOT_HINT = ("forget_loss=confidence (its ascent stops once an example is no longer confidently predicted), "
                  "a smaller lr or fewer epochs")


def logit_confidence(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """s = log p_y - log(sum_{j != y} p_j) per row, computed stably from logits."""
    ly = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.scatter(1, y[:, None], float("-inf"))
    return ly - torch.logsumexp(others, dim=1)


def forget_ascent_loss(logits: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    """The loss an ascent method *minimises* on a forget batch: -CE (``ce``) or mean max(0, s)
    (``confidence``)."""
    if kind == "ce":
        return -F.cross_entropy(logits, y)
    return logit_confidence(logits, y).clamp_min(0).mean()
