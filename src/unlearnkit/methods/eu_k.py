"""EU-k (exact unlearning of the last k layers): Goel, Prabhu, Sanyal, Lim, Torr and Kumaraguru,
"Towards Adversarial Evaluations for Inexact Machine Unlearning", arXiv 2201.06640
(https://arxiv.org/abs/2201.06640; code https://github.com/shash42/Evaluating-Inexact-Unlearning).

    freeze every layer but the last k;  re-initialise the last k;
    theta_{last k} <- argmin CE(f_theta(x_r), y_r) over D_retain (trained from that fresh start)

A layer is a convolution or a linear module, counted from the output (``blocks/last_layers.py``);
the re-initialised layers use their own ``reset_parameters`` (as ``retrain`` does).

Defaults:
    k 1                 the smallest value of the reference sweep k in {1, 3, 5, 7} (``scripts/unlearn.sh``)
    epochs, lr, batch_size, optimizer, momentum, weight_decay None: the original model's recipe
                        (the reference's ``args_rf`` copies the original's arguments), schedule too
    select all, select_fraction 0.05    SAPS parameter selection, off: the method as published
    retain_budget None  the whole retain set (our option: a random subset caps the cost)

    >>> euk = get_method("eu_k", k=2)
    >>> unlearned = euk.unlearn(model, task)          # task needs forget and retain

Design notes: docs/methods/eu_k.md
"""

from __future__ import annotations

from .blocks.last_layers import LastLayersMethod
from .base import register_method


@register_method
class ExactUnlearnK(LastLayersMethod):
    name = "eu_k"
    summary = "re-initialise the last k layers and retrain them on the retain set (Goel et al.)"
    reinitialise = True
