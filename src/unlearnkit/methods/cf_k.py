"""CF-k (catastrophically forget k): Goel, Prabhu, Sanyal, Lim, Torr and Kumaraguru, "Towards
Adversarial Evaluations for Inexact Machine Unlearning", arXiv 2201.06640 (2022/2023)
(https://arxiv.org/abs/2201.06640; code https://github.com/shash42/Evaluating-Inexact-Unlearning).

    freeze every layer but the last k;  theta_{last k} <- argmin CE(f_theta(x_r), y_r) over D_retain,
    starting from the original weights

Fine-tuning only the top of the network relies on catastrophic forgetting of the forget set in the
layers nearest the output; the lower layers keep exactly their original weights.

Defaults (see ``methods/blocks/last_layers.py`` for what counts as a layer):
    k 1                the smallest value of the reference sweep k in {1, 3, 5, 7} (scripts/unlearn.sh)
    epochs, lr, batch size, optimizer, momentum, weight decay, schedule: the original model's
                       training recipe (reference: ``args_ftF`` copies the original's arguments)

Differences from the reference: frozen layers run in eval mode (frozen BatchNorm statistics stay
fixed; the reference's drift), and the best epoch is not picked on a validation set.

    >>> cfk = get_method("cf_k", k=2)
    >>> unlearned = cfk.unlearn(model, task)        # task needs forget and retain
"""

from __future__ import annotations

from .blocks.last_layers import LastLayersMethod
from .base import register_method


@register_method
class CatastrophicForgetK(LastLayersMethod):
    name = "cf_k"
    summary = "fine-tune only the last k layers on the retain set (Goel et al.)"
