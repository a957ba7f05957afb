"""Overhead of unlearnkit's training loops against a bare PyTorch loop on the same work.

    OMP_NUM_THREADS=1 python benchmarks/overhead.py [--repeats 3] [--epochs 5]

Three pairs on mnist1d (5,000 samples) / mlp, each timed in this process, alternating so that a
change in machine load hits both sides of a pair alike (median over repeats, CPU and wall time):

* ``train_model`` (the loop every original, Retrain and shadow model is trained with) vs a bare
  loop: ``torch.optim.Adam``, a ``randperm`` per epoch and tensor-indexed batches;
* ``ft`` (``get_method("ft").unlearn``: the template's copies, seeding and the iterative family's
  epoch/step hooks) vs the same bare loop with SGD on the retain set;
* 16 models with ``train_many`` (stacked) vs the same 16 with ``train_model`` one by one.

Prints a markdown table; BENCHMARKS.md#training-loop-overhead quotes its output.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch.nn import functional as F

from unlearnkit.data import load_dataset
from unlearnkit.methods import get_method
from unlearnkit.models import build_model
from unlearnkit.scenarios import get_scenario
from unlearnkit.training import TrainRecipe, train_model
from unlearnkit.training_stacked import TrainingRun, train_many
from unlearnkit.utils import seeded, warm_up_torch


def bare_loop(model, x, y, optimizer, epochs: int, batch_size: int, seed: int) -> None:
    """What a user writes by hand: no hooks, no checks."""
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=gen)
        for start in range(0, len(y), batch_size):
            idx = order[start:start + batch_size]
            optimizer.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            optimizer.step()


def timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--stack", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warm_up_torch()
    bundle = load_dataset("mnist1d", n_samples=5000)
    data = get_scenario("random", forget_size=0.1).build(bundle, seed=0)
    train, retain = data.train, data.task.retain
    with seeded(0):
        model = build_model("mlp", bundle.input_shape, bundle.num_classes)
    recipe = TrainRecipe("adam", lr=1e-3, momentum=0.0, weight_decay=0.0, epochs=args.epochs, batch_size=64,
                         schedule="constant")
    ft = get_method("ft", epochs=args.epochs)
    p = ft.params
    pairs = {
        "train_model vs bare loop (Adam, train set)": (
            lambda: train_model(copy.deepcopy(model), train, recipe, seed=0),
            lambda: _bare(model, train, lambda ps: torch.optim.Adam(ps, lr=1e-3), args.epochs)),
        "ft vs bare loop (SGD, retain set)": (
            lambda: ft.unlearn(model, data.task, seed=0, device="cpu"),
            lambda: _bare(model, retain, lambda ps: torch.optim.SGD(ps, lr=p.lr, momentum=p.momentum,
                                                                   weight_decay=p.weight_decay), args.epochs)),
        f"train_many stacked vs train_model one by one ({args.stack} models)": (
            lambda: train_many([TrainingRun(copy.deepcopy(model), train, torch.Generator().manual_seed(s))
                                for s in range(args.stack)], recipe),
            lambda: [train_model(copy.deepcopy(model), train, recipe, seed=s) for s in range(args.stack)]),
    }
    print(f"mnist1d/mlp, {len(train)} train / {len(retain)} retain examples, {args.epochs} epochs, batch 64, "
          f"1 thread, median of {args.repeats}\n")
    print("| comparison | ours wall s | reference wall s | ours CPU s | reference CPU s | ratio (CPU) |")
    print("|---|---|---|---|---|---|")
    for name, (ours, reference) in pairs.items():
        times = {"ours": [], "ref": []}
        for _ in range(args.repeats):
            times["ours"].append(timed(ours))
            times["ref"].append(timed(reference))
        ow, oc = (statistics.median(t[i] for t in times["ours"]) for i in (0, 1))
        rw, rc = (statistics.median(t[i] for t in times["ref"]) for i in (0, 1))
        print(f"| {name} | {ow:.2f} | {rw:.2f} | {oc:.2f} | {rc:.2f} | {oc / rc:.2f} |")


def _bare(model, split, make_optimizer, epochs: int) -> None:
    work = copy.deepcopy(model)
    bare_loop(work, split.x, split.y, make_optimizer(work.parameters()), epochs, 64, seed=0)


if __name__ == "__main__":
    main()
