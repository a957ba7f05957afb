"""SISA (sharded, isolated, sliced, aggregated training): Bourtoule, Chandrasekaran, Choquette-Choo,
Jia, Travers, Zhang, Lie and Papernot, "Machine Unlearning", IEEE S&P 2021
(https://arxiv.org/abs/1912.03817; code https://github.com/cleverhans-lab/machine-unlearning).

    train:    split D into S disjoint shards; shard s trains its own model slice by slice (R slices,
              a checkpoint after each); predict: the mean over shards of the softmax
    unlearn:  for every shard holding a forgotten example, restore the checkpoint taken before its
              first affected slice and redo the later slices without the forgotten examples

Exact unlearning, at the price of S models that each see 1/S of the data. SISA changes the training
stage: ``train_original`` builds a ``SISAEnsemble`` (an ``nn.Module``), which the benchmark pipeline
trains and caches for ``sisa``. A plain model is treated as one shard with one slice (a retrain).

Defaults:
    shards 4            a middle value of the paper's sweep (S up to 20)
    slices 1            slicing is optional in the paper; R > 1 stores R - 1 checkpoints per shard
    stage epochs, lr, optimiser, batch size, schedule: the original model's recipe (with R > 1 each
                        slice stage runs round(2E / (R + 1)) epochs, the paper's slicing rule)

    >>> ensemble = get_method("sisa", shards=8).train_original(model, train_split, recipe, seed=0)
    >>> unlearned = get_method("sisa", shards=8).unlearn(ensemble, task)   # forget with source indices

Design notes: docs/methods/sisa.md
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import nn

from ..data.split import Split
from ..errors import DataError
from ..models import reinitialize
from ..training import TrainRecipe, train_model
from ..utils import resolve_device, seeded
from .base import Hyperparameters, UnlearningMethod, hp, register_method


class SISAEnsemble(nn.Module):
    """S shard models of one architecture; ``forward`` = log of the mean shard softmax.

    Buffers: ``source`` (source index of each training position), ``shard`` and ``slice`` (its shard
    and slice; shard -1 once forgotten) and, for R > 1, ``checkpoints`` (S, R - 1, P): every shard's
    flattened state after each but the last slice stage."""

    def __init__(self, template: nn.Module, shards: int, slices: int, n_train: int) -> None:
        super().__init__()
        self.shards = nn.ModuleList(copy.deepcopy(template) for _ in range(shards))
        self.n_slices = slices
        for name in ("source", "shard", "slice"):
            self.register_buffer(name, torch.zeros(n_train, dtype=torch.long))
        if slices > 1:
            size = sum(v.numel() for v in template.state_dict().values())
            self.register_buffer("checkpoints", torch.zeros(shards, slices - 1, size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([torch.softmax(m(x), dim=1) for m in self.shards]).mean(0)
        return torch.log(probs.clamp_min(1e-12))

    def save_checkpoint(self, s: int, r: int) -> None:
        flat = torch.cat([v.detach().float().flatten().cpu() for v in self.shards[s].state_dict().values()])
        self.checkpoints[s, r] = flat.to(self.checkpoints.device)

    def load_checkpoint(self, s: int, r: int) -> None:
        state, start = self.shards[s].state_dict(), 0
        flat = self.checkpoints[s, r]
        for v in state.values():
            v.copy_(flat[start:start + v.numel()].view_as(v).to(v.dtype))
            start += v.numel()


@dataclass
class SISAParams(Hyperparameters):
    shards: int = hp(4, "number of disjoint shards S (one model each)", "Bourtoule et al. sweep S up to 20; see docs/methods/tuning.md#sisa",
                     ge=1)
    slices: int = hp(1, "slices R per shard (R - 1 checkpoints each)", "Bourtoule et al.: slicing is optional", ge=1)


def stage_epochs(epochs: int, slices: int) -> int:
    """Epochs of each slice stage: E for one slice, else round(2E / (R + 1)) (at least 1)."""
    return epochs if slices == 1 else max(1, round(2 * epochs / (slices + 1)))


@register_method
class SISA(UnlearningMethod):
    name = "sisa"
    summary = "exact unlearning: retrain only the shards (from the last clean slice checkpoint) that held forget data (Bourtoule et al.)"
    family = "other"
    Params = SISAParams
    requires = ("forget", "retain")
    trains_original = True

    # -- training stage ---------------------------------------------------------------------
    def original_template(self, model: nn.Module, n_train: int) -> SISAEnsemble:
        return SISAEnsemble(model, self.params.shards, self.params.slices, n_train)

    def train_original(self, model: nn.Module, train: Split, recipe: Optional[TrainRecipe] = None, *,
                       seed: int = 0, device: str | torch.device = "auto") -> SISAEnsemble:
        """Build and train the ensemble on ``train``: positions are dealt to shards by a seeded
        permutation, and each shard's positions into R consecutive slices."""
        p, n = self.params, len(train)
        if n < p.shards * p.slices:
            raise DataError(f"sisa needs at least shards x slices = {p.shards * p.slices} training examples, got {n}")
        ens = self.original_template(model, n)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        ens.source.copy_(torch.as_tensor(train.indices if train.indices is not None else np.arange(n)))
        ens.shard[order] = torch.arange(n) % p.shards
        for s in range(p.shards):
            members = order[ens.shard[order] == s]
            for r, chunk in enumerate(np.array_split(members.numpy(), p.slices)):
                ens.slice[torch.as_tensor(chunk, dtype=torch.long)] = r
        self.device, self.seed = resolve_device(device), int(seed)
        ens.to(self.device)
        for s in range(p.shards):
            self._train_shard(ens, s, train, recipe or TrainRecipe(), first=0)
        return ens.cpu().eval()

    def _train_shard(self, ens: SISAEnsemble, s: int, data: Split, recipe: TrainRecipe, first: int) -> None:
        """(Re)train shard ``s`` from slice stage ``first`` on: start from the checkpoint of stage
        ``first - 1`` (or a fresh seeded initialisation) and run the later stages on the positions
        of ``data`` still assigned to the shard (``data`` rows are looked up by source index)."""
        model = ens.shards[s]
        if first == 0:
            with seeded(self.seed * 1009 + s):
                reinitialize(model)
        else:
            ens.load_checkpoint(s, first - 1)
        rows = _rows_by_source(data)
        stage = TrainRecipe(**{**recipe.to_dict(), "epochs": stage_epochs(recipe.epochs, ens.n_slices)})
        for r in range(first, ens.n_slices):
            positions = torch.nonzero((ens.shard == s) & (ens.slice <= r)).flatten().cpu()
            split = data.subset(np.array([rows[int(i)] for i in ens.source[positions].tolist()], dtype=np.int64))
            stage_seed = (self.seed * 1009 + s) * 101 + r
            if len(split):
                with seeded(stage_seed):
                    train_model(model, split.to(self.device), stage, seed=stage_seed, device=self.device)
            if r < ens.n_slices - 1:
                ens.save_checkpoint(s, r)
        model.eval()

    # -- unlearning -------------------------------------------------------------------------
    def _unlearn(self, model, task):
        if not isinstance(model, SISAEnsemble):  # a plain model is one shard with one slice
            reinitialize(model)
            return train_model(model, task.retain, task.recipe or TrainRecipe(), seed=self.seed, device=self.device)
        if task.forget.indices is None or task.retain.indices is None:
            raise DataError("sisa finds forgotten examples by source index: the task's forget and retain "
                            "splits need `indices` (as the scenarios provide)")
        forgotten = torch.isin(model.source, torch.as_tensor(task.forget.indices, device=model.source.device))
        hit = forgotten & (model.shard >= 0)
        self.retrained = {}
        for s in sorted(set(model.shard[hit].tolist())):
            first = int(model.slice[hit & (model.shard == s)].min())
            model.shard[forgotten & (model.shard == s)] = -1
            self._train_shard(model, s, task.retain, task.recipe or TrainRecipe(), first)
            self.retrained[s] = first
        model.shard[forgotten] = -1
        return model


def _rows_by_source(data: Split) -> dict[int, int]:
    src = data.indices if data.indices is not None else np.arange(len(data))
    return {int(v): i for i, v in enumerate(src)}
