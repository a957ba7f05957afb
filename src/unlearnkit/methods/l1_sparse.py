"""l1-sparse: fine-tune on retain with a decaying L1 penalty on the weights.

Jia et al., "Model Sparsity Can Simplify Machine Unlearning", NeurIPS 2023
(https://arxiv.org/abs/2304.04934), method "l1-sparse MU".

    L_t = CE(retain batch) + alpha_t * ||theta||_1,   alpha_t = alpha * (1 - t / T)   (epoch t of T)

Defaults: alpha 1e-4 (reference scripts, CIFAR-10 random forgetting), 10 epochs, SGD lr 0.01.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from .base import IterativeMethod, IterativeParams, hp, register_method


@dataclass
class L1SparseParams(IterativeParams):
    epochs: int = hp(10, "fine-tuning epochs on retain", "Jia et al. 2023 scripts")
    lr: float = hp(0.01, "SGD learning rate", "Jia et al. 2023 scripts")
    alpha: float = hp(1e-4, "initial L1 weight, decayed linearly to 0", "Jia et al. 2023 scripts")


def l1_norm(model: torch.nn.Module) -> torch.Tensor:
    return sum(p.abs().sum() for p in model.parameters())


@register_method
class L1Sparse(IterativeMethod):
    name = "l1_sparse"
    summary = "fine-tune on retain with a linearly decaying L1 weight penalty"
    Params = L1SparseParams
    requires = ("forget", "retain")
    has_min_phase = True

    def alpha_at(self, epoch: int) -> float:
        return self.params.alpha * (1 - epoch / self.params.epochs)

    def min_step(self, x, y, epoch):
        return F.cross_entropy(self.model(x), y) + self.alpha_at(epoch) * l1_norm(self.model)
