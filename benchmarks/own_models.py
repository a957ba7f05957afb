"""Models outside the zoo, unlearned through the Python API as a user would, with and without retain data.

    OMP_NUM_THREADS=1 python benchmarks/own_models.py [--seeds 0,1,2] [--methods dist_match,dist_match_noretain] \
        [--out DIR]

Noisy synthetic tabular data (scikit-learn's ``make_classification``: 20 features, 4 classes, 15% of the
labels flipped), split 60/20/20 into training, test and third-party (never trained on) data. Three
architectures built here, none of them in ``unlearnkit.models``: a BatchNorm MLP (2 x 128), a wide MLP
(1 x 512) and a deep narrow one (4 x 64). Each is trained with Adam until it fits every training label
(the flipped ones included: zero training loss, as in the memorising benchmark), then 10% of the
training set, drawn at random, is deleted:

* Retrain: the same architecture and recipe, from the same initialisation, on the other 90%;
* each method through ``unlearnkit.unlearn(model, forget=..., retain=..., third_party=..., method=...)``;
  a ``*_noretain`` method gets no retain data at all (``retain=None``).

Prints one markdown table per model: forget / retain / test accuracy and MIA-efficacy (``unlearnkit.evaluate``),
mean over seeds, the average gap to Retrain of the seed means, and the unlearning time. With ``--out``, also
writes every row to ``DIR/results.json`` (one experiment per model, ``grp`` naming it) for ``make tables``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

import unlearnkit
from unlearnkit.data import Split
from unlearnkit.evaluation.registry import avg_gap
from unlearnkit.training import TrainRecipe, train_model

METRICS = ("forget_acc", "retain_acc", "test_acc", "mia_efficacy")
RECIPE = TrainRecipe("adam", lr=1e-3, momentum=0.0, weight_decay=0.0, epochs=150, batch_size=64, schedule="constant")


def mlp(widths: tuple[int, ...], batchnorm: bool, d_in: int = 20, classes: int = 4) -> nn.Module:
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Linear(d_in, w)] + ([nn.BatchNorm1d(w)] if batchnorm else []) + [nn.ReLU()]
        d_in = w
    return nn.Sequential(*layers, nn.Linear(d_in, classes))


MODELS = {
    "bn_mlp_2x128": lambda: mlp((128, 128), batchnorm=True),
    "wide_mlp_1x512": lambda: mlp((512,), batchnorm=False),
    "deep_mlp_4x64": lambda: mlp((64, 64, 64, 64), batchnorm=False),
}


def tabular_data(seed: int = 0) -> tuple[Split, Split, Split]:
    """(train, test, third_party): 3,000 noisy samples, standardised with the training statistics."""
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=3000, n_features=20, n_informative=10, n_redundant=4, n_classes=4,
                               n_clusters_per_class=2, flip_y=0.15, class_sep=1.0, random_state=seed)
    order = np.random.default_rng(seed).permutation(len(y))
    x, y = x[order].astype(np.float32), y[order].astype(np.int64)
    cut = [int(0.6 * len(y)), int(0.8 * len(y))]
    mean, std = x[: cut[0]].mean(0), x[: cut[0]].std(0) + 1e-6
    x = (x - mean) / std
    parts = np.split(np.arange(len(y)), cut)
    return tuple(Split(torch.as_tensor(x[i]), torch.as_tensor(y[i])) for i in parts)  # type: ignore[return-value]


def trained(build, data: Split, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = build()
    return train_model(model, data, RECIPE, seed=seed).eval()


def one_seed(name: str, seed: int, methods: list[str]) -> dict[str, dict[str, float]]:
    train, test, third_party = tabular_data()
    forget_rows = np.sort(np.random.default_rng(seed).choice(len(train), len(train) // 10, replace=False))
    keep = np.setdiff1d(np.arange(len(train)), forget_rows)
    forget, retain = train.subset(forget_rows), train.subset(keep)
    original = trained(MODELS[name], train, seed)
    splits = dict(forget=(forget.x, forget.y), retain=(retain.x, retain.y), test=(test.x, test.y))
    rows: dict[str, dict[str, float]] = {}
    start = time.perf_counter()
    rows["retrain"] = {**unlearnkit.evaluate(trained(MODELS[name], retain, seed), **splits, seed=seed),
                       "time_s": time.perf_counter() - start}
    rows["original"] = {**unlearnkit.evaluate(original, **splits, seed=seed), "time_s": 0.0}
    for method in methods:
        given = None if method.endswith("_noretain") else (retain.x, retain.y)
        start = time.perf_counter()
        model = unlearnkit.unlearn(original, (forget.x, forget.y), given, method=method,
                                   third_party=(third_party.x, third_party.y), seed=seed)
        rows[method] = {**unlearnkit.evaluate(model, **splits, seed=seed), "time_s": time.perf_counter() - start}
    return rows


def table(name: str, per_seed: list[dict[str, dict[str, float]]]) -> str:
    names = list(per_seed[0])
    means = {m: {k: float(np.mean([s[m][k] for s in per_seed])) for k in METRICS + ("time_s",)} for m in names}
    lines = [f"#### {name} ({len(per_seed)} seeds)", "",
             "| Method | Forget acc | Retain acc | Test acc | MIA-eff. | Avg gap (pts) | Time (s) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for m in names:
        v = means[m]
        gap = 100 * avg_gap(v, means["retrain"], METRICS)
        cells = " | ".join(f"{100 * v[k]:.1f}" for k in METRICS)
        lines.append(f"| `{m}` | {cells} | {gap:.2f} | {v['time_s']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--methods", default="dist_match,dist_match_noretain")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--out", type=Path, help="also write the rows to OUT/results.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=unlearnkit.NoOpWarning)
    logging.basicConfig(level=logging.WARNING)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for name in args.models.split(","):
        per_seed = [one_seed(name, s, args.methods.split(",")) for s in seeds]
        logging.getLogger(__name__).warning("%s done", name)
        print(table(name, per_seed), "\n", flush=True)
        rows += [{"grp": f"tabular/{name}/random(forget_size=0.1)", "method": method, "seed": seed, **values}
                 for seed, by_method in zip(seeds, per_seed) for method, values in by_method.items()]
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        config = {"script": "benchmarks/own_models.py", "seeds": seeds, "methods": args.methods.split(","),
                  "models": args.models.split(",")}
        (args.out / "results.json").write_text(json.dumps({"config": config, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
