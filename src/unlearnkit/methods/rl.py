"""RL: random labels on the forget set, fine-tuning on forget + retain.

Baseline of Golatkar et al. (CVPR 2020), as run in Fan et al., "SalUn: Empowering Machine
Unlearning via Gradient-based Weight Saliency in Both Image Classification and Generation",
ICLR 2024 (https://arxiv.org/abs/2310.12508).

    relabel each forget example once with a uniformly random *wrong* class (from the method's seed),
    then minimise CE over D_forget(random labels) + D_retain, shuffled together

Defaults:
    epochs 10           SalUn reference scripts (CIFAR-10)
    lr 0.003            our tuning (the reference 0.01 over-unlearns our models), see the notes
    optimizer sgd, momentum 0.9, weight_decay 5e-4    Jia et al. / SalUn / RUM ``arg_parser.py``
    batch_size 64       ours: the batch size of our original models' recipes (reference: 256)
    select all, select_fraction 0.05    SAPS parameter selection, off: the method as published
    retain_budget None  the whole retain set (our option: a random subset caps the cost)
    restarts 3, clip_grad_norm None   family options: a diverged run restarts clipped at 1, then with lr
                        halved, at most 3 times; no clipping otherwise (ours)

    >>> rl = get_method("rl", lr=0.01)                # the reference step size
    >>> unlearned = rl.unlearn(model, task)           # task needs forget and retain

Design notes: docs/methods/rl.md
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..data.split import Split
from .blocks.peers import ReferenceSGDParams
from .base import hp, register_method
from .iterative import IterativeMethod


def random_wrong_labels(y: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform random labels different from ``y`` (shift by 1..C-1 modulo C)."""
    shift = torch.randint(1, num_classes, y.shape, generator=generator).to(y.device)
    return (y + shift) % num_classes


@dataclass
class RLParams(ReferenceSGDParams):
    epochs: int = hp(10, "epochs over forget(random labels) + retain", "Fan et al. 2024 scripts")
    lr: float = hp(0.003, "SGD learning rate", "tuned (reference 0.01), see docs/methods/tuning.md#tuning-of-method-defaults")


@register_method
class RandomLabel(IterativeMethod):
    name = "rl"
    summary = "relabel forget samples randomly and fine-tune on them plus retain"
    Params = RLParams
    requires = ("forget", "retain")

    def prepare(self, model, task):
        wrong = random_wrong_labels(task.forget.y.cpu(), self.num_classes(task), self.generator)
        self.train_set = Split.concat(task.forget.with_labels(wrong.to(task.forget.y.device)), task.retain)

    def run_epoch(self, epoch):
        for x, y in self.batches(self.train_set):
            self.update(F.cross_entropy(self.model(x), y))

    def _training_plan(self, model, task):
        if self.params.select != "all":
            return None
        self.prepare(model, task)
        return self.train_set, self.plain_recipe()
