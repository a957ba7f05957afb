"""SalUn: Fan, Liu, Zhang, Wong, Wei and Liu, "SalUn: Empowering Machine Unlearning via Gradient-based
Weight Saliency in Both Image Classification and Generation", ICLR 2024 (https://arxiv.org/abs/2310.12508).

    m = 1[ |sum_b grad_theta CE(f_theta(x_f^b), y_f^b)| in the global top ``fraction`` of all weights ]
    theta <- theta - lr * m * grad CE over D_forget(random labels) + D_retain

RL's training loop (``rl``) with every update restricted to the saliency mask: masked-out entries
keep their exact values (``IterativeMethod.set_update_mask``).

Defaults:
    fraction 0.5        the reference default mask ratio (paper Fig. A2)
    epochs 10           the reference scripts (CIFAR-10 / ResNet-18)
    lr 0.001            our tuning on digits/cnn (the reference 0.013 over-forgets), see the notes
    order mixed         ours: forget examples relabelled once with a wrong class, shuffled with retain;
                        ``forget_then_retain`` is the reference CIFAR-10 loop (``unlearn/RL.py``)
    optimizer sgd, momentum 0.9, weight_decay 5e-4    Jia et al. / SalUn / RUM ``arg_parser.py``
    batch_size 64       ours: the batch size of our original models' recipes (reference: 256)
    select all, select_fraction 0.05    SAPS parameter selection, off (intersected with the mask)
    retain_budget None  the whole retain set (our option: a random subset caps the cost)
    restarts 3, clip_grad_norm None   family options: a diverged run restarts clipped at 1, then with lr
                        halved, at most 3 times; no clipping otherwise (ours)

    >>> salun = get_method("salun", fraction=0.5)
    >>> unlearned = salun.unlearn(model, task)        # task needs forget and retain

Design notes: docs/methods/salun.md
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..data.split import Split
from .blocks.peers import ReferenceSGDParams, summed_batch_gradients
from .base import hp, register_method
from .rl import RandomLabel


def saliency_mask(model: nn.Module, forget: Split, fraction: float, batch_size: int = 64
                  ) -> dict[str, torch.Tensor]:
    """SalUn's weight-saliency mask: accumulate the gradient of the forget cross-entropy over the
    forget batches (eval mode), take its absolute value, keep the global top ``fraction`` of entries
    (exactly round(fraction * total) ones; ties broken by ``torch.topk``)."""
    acc, _ = summed_batch_gradients(model, forget, batch_size)
    scores = torch.cat([a.abs().flatten() for a in acc.values()])
    k = int(round(fraction * scores.numel()))
    flat = torch.zeros_like(scores)
    if k > 0:
        flat[torch.topk(scores, k, sorted=False).indices] = 1.0
    mask, start = {}, 0
    for n, a in acc.items():
        mask[n] = flat[start:start + a.numel()].view_as(a)
        start += a.numel()
    return mask


@dataclass
class SalUnParams(ReferenceSGDParams):
    epochs: int = hp(10, "epochs over forget(random labels) + retain", "SalUn reference scripts (CIFAR-10)")
    lr: float = hp(0.001, "SGD learning rate", "tuned on digits/cnn (reference 0.013), see docs/methods/tuning.md#tuning-of-method-defaults")
    order: str = hp("mixed", "mixed: forget (wrong labels drawn once) shuffled with retain; forget_then_retain: "
                    "the reference CIFAR-10 loop (all forget batches, labels redrawn per batch, then retain)",
                    "SalUn reference unlearn/RL.py (CIFAR-10 path: forget_then_retain)",
                    choices=("mixed", "forget_then_retain"))
    fraction: float = hp(0.5, "fraction of weights (global top by |forget gradient|) that may change",
                         "SalUn reference default (mask ratio 0.5)", gt=0, le=1)


@register_method
class SalUn(RandomLabel):
    """RL's training loop (``rl``) with every update restricted to the saliency mask."""

    name = "salun"
    summary = "random-label unlearning restricted to the salient weights (top |forget gradient|) (Fan et al.)"
    Params = SalUnParams
    requires = ("forget", "retain")

    def prepare(self, model, task):
        self.saliency = saliency_mask(model, task.forget, self.params.fraction, self.params.batch_size)
        self.set_update_mask(self.saliency)
        super().prepare(model, task)

    def run_epoch(self, epoch):
        if self.params.order == "mixed":
            return super().run_epoch(epoch)
        classes = self.num_classes(self.task)
        for x, _ in self.batches(self.task.forget):
            labels = torch.randint(0, classes, (len(x),), generator=self.generator).to(x.device)
            self.update(F.cross_entropy(self.model(x), labels))
        for x, y in self.batches(self.task.retain):
            self.update(F.cross_entropy(self.model(x), y))
