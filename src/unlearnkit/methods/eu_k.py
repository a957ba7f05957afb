"""EU-k (exact unlearning of the last k layers): Goel, Prabhu, Sanyal, Lim, Torr and Kumaraguru,
"Towards Adversarial Evaluations for Inexact Machine Unlearning", arXiv 2201.06640 (2022/2023)
(https://arxiv.org/abs/2201.06640; code https://github.com/shash42/Evaluating-Inexact-Unlearning).

    freeze every layer but the last k;  re-initialise the last k;
    theta_{last k} <- argmin CE(f_theta(x_r), y_r) over D_retain (trained from that fresh start)

If the lower layers learned nothing specific to the forget set, the result equals a model whose top
was trained without it; what the lower layers memorised stays.

Defaults (see ``methods/blocks/last_layers.py`` for what counts as a layer):
    k 1                the smallest value of the reference sweep k in {1, 3, 5, 7} (scripts/unlearn.sh)
    epochs, lr, batch size, optimizer, momentum, weight decay, schedule: the original model's
                       training recipe (reference: ``args_rf`` copies the original's arguments and
                       ``--epochs-rf`` equals the original's epochs)

Differences from the reference: layers are re-initialised with their own ``reset_parameters``
(PyTorch's default initialisation, as Retrain uses) instead of Kaiming-normal weights and zero
biases; frozen layers run in eval mode (frozen BatchNorm statistics stay fixed); the best epoch is
not picked on a validation set.

    >>> euk = get_method("eu_k", k=2)
    >>> unlearned = euk.unlearn(model, task)        # task needs forget and retain
"""

from __future__ import annotations

from .blocks.last_layers import LastLayersMethod
from .base import register_method


@register_method
class ExactUnlearnK(LastLayersMethod):
    name = "eu_k"
    summary = "re-initialise the last k layers and retrain them on the retain set (Goel et al.)"
    reinitialise = True
