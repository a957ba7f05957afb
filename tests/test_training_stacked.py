"""Stacked training: every stacked model is the model serial training gives for its seed."""

from __future__ import annotations

import copy
import logging

import pytest
import torch
from torch import nn

from unlearnkit.data.split import Split
from unlearnkit.models import build_model
from unlearnkit.training import TrainRecipe, train_model
from unlearnkit.training_stacked import TrainingRun, stack_blocker, train_many
from unlearnkit.utils import seeded

ADAM = TrainRecipe("adam", lr=3e-3, momentum=0.0, weight_decay=1e-4, epochs=3, batch_size=32, schedule="constant")
SGD = TrainRecipe("sgd", lr=0.05, momentum=0.9, weight_decay=5e-4, epochs=3, batch_size=32, schedule="cosine")


def _data(n: int = 150, shape=(1, 12)) -> Split:
    g = torch.Generator().manual_seed(0)
    return Split(torch.randn(n, *shape, generator=g), torch.randint(0, 4, (n,), generator=g))


def _models(name: str, count: int, shape=(1, 12), **options) -> list[nn.Module]:
    out = []
    for seed in range(count):
        with seeded(seed):
            out.append(build_model(name, shape, 4, **options))
    return out


def _max_diff(a: nn.Module, b: nn.Module) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


def _serial(models, datasets, recipe):
    return [train_model(copy.deepcopy(m), d, recipe, seed=s) for s, (m, d) in enumerate(zip(models, datasets))]


def _stacked(models, datasets, recipe, **kw):
    runs = [TrainingRun(copy.deepcopy(m), d, torch.Generator().manual_seed(s))
            for s, (m, d) in enumerate(zip(models, datasets))]
    return train_many(runs, recipe, **kw)


@pytest.mark.parametrize("recipe", [ADAM, SGD], ids=["adam-constant", "sgd-cosine"])
@pytest.mark.parametrize("name", ["mlp", "cnn1d"])
def test_each_stacked_model_equals_its_serial_training(name, recipe):
    data = _data()
    # different sizes too (as LiRA shadows on random halves): shorter models skip the last steps
    datasets = [data, data, data.subset(range(120)), data.subset(range(97))]
    models = _models(name, 4)
    serial, stacked = _serial(models, datasets, recipe), _stacked(models, datasets, recipe)
    for m, s, t in zip(models, serial, stacked):
        assert _max_diff(m, s) > 1e-2  # training moved the weights
        assert _max_diff(s, t) < 1e-4  # float rounding of batched matmuls only
        assert not t.training


def test_models_of_different_shapes_are_stacked_per_shape():
    data = _data()
    models = _models("mlp", 2, hidden=(16,)) + _models("mlp", 2, hidden=(8, 8))
    serial, stacked = _serial(models, [data] * 4, ADAM), _stacked(models, [data] * 4, ADAM)
    assert all(_max_diff(s, t) < 1e-4 for s, t in zip(serial, stacked))


def test_vectorize_false_is_serial_training_exactly():
    data = _data()
    models = _models("mlp", 3)
    serial, other = _serial(models, [data] * 3, SGD), _stacked(models, [data] * 3, SGD, vectorize=False)
    assert all(_max_diff(s, t) == 0.0 for s, t in zip(serial, other))


def test_batchnorm_and_dropout_models_fall_back_to_serial(caplog):
    assert "buffers" in stack_blocker(nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)))
    assert "dropout" in stack_blocker(nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5)))
    assert stack_blocker(nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.0))) is None
    data = Split(torch.randn(60, 1, 8, 8), torch.randint(0, 4, (60,)))
    models = _models("cnn", 2, shape=(1, 8, 8), width=4)
    with caplog.at_level(logging.INFO, logger="unlearnkit.training_stacked"):
        stacked = _stacked(models, [data] * 2, ADAM)
    assert "one by one" in caplog.text and "BatchNorm" in caplog.text
    assert all(_max_diff(s, t) == 0.0 for s, t in zip(_serial(models, [data] * 2, ADAM), stacked))


def test_model_vmap_rejects_is_trained_serially(caplog):
    class DataDependent(nn.Module):  # a Python branch on a tensor's value cannot be vmapped
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(12, 4)

        def forward(self, x):
            out = self.fc(x.flatten(1))
            return out if out.sum() > -1e9 else -out

    data = _data()
    models = []
    for seed in range(2):
        with seeded(seed):
            models.append(DataDependent())
    with caplog.at_level(logging.INFO, logger="unlearnkit.training_stacked"):
        stacked = _stacked(models, [data] * 2, ADAM)
    assert "vmap cannot batch" in caplog.text
    assert all(_max_diff(s, t) == 0.0 for s, t in zip(_serial(models, [data] * 2, ADAM), stacked))


def test_generator_argument_gives_the_seeded_batch_order():
    data = _data()
    (model,) = _models("mlp", 1)
    a = train_model(copy.deepcopy(model), data, SGD, seed=5)
    b = train_model(copy.deepcopy(model), data, SGD, generator=torch.Generator().manual_seed(5))
    assert _max_diff(a, b) == 0.0
    assert train_many([], SGD) == []


@pytest.mark.parametrize("method,params", [("ft", {"epochs": 2}), ("rl", {"epochs": 2}), ("retrain", {"epochs": 2})])
def test_plain_training_methods_stacked_equal_their_unlearn(method, params):
    from conftest import make_toy

    from unlearnkit.methods import get_method

    model, data = make_toy("random", forget_size=0.1)
    algorithm = get_method(method, **params)
    runs = [algorithm.training_run(model, data.task, seed=s, device="cpu") for s in (3, 4, 5)]
    assert all(r is not None for r in runs)
    stacked = train_many([run for run, _ in runs], runs[0][1])
    for seed, trained in zip((3, 4, 5), stacked):
        reference = get_method(method, **params).unlearn(model, data.task, seed=seed, device="cpu")
        assert _max_diff(reference, model) > 1e-3
        assert _max_diff(reference, trained) < 1e-4


def test_methods_that_are_not_plain_training_have_no_training_run():
    from conftest import make_toy

    from unlearnkit.methods import get_method

    model, data = make_toy("random", forget_size=0.1)
    assert get_method("ga").training_run(model, data.task) is None
    assert get_method("ft", select="random").training_run(model, data.task) is None


def test_audit_stacked_and_serial_agree(tmp_path):
    from unlearnkit.bench.audit import AuditConfig, run_audit
    from unlearnkit.bench.pipeline import ModelCache
    from unlearnkit.bench.pipeline import ExperimentConfig

    exp = ExperimentConfig(dataset="synthetic", model="mlp", scenario="random",
                           methods=["original", "retrain", "ft", "rl", "ga"], seeds=[0],
                           dataset_options={"n_samples": 240}, scenario_options={"forget_size": 0.1},
                           model_options={"hidden": [32]}, recipe={"epochs": 4},
                           method_params={"ft": {"epochs": 2}, "rl": {"epochs": 2}, "ga": {"epochs": 1}})
    out = {}
    for vectorize in (True, False):
        cfg = AuditConfig(experiment=exp, shadow_models=4, challenge_models=3, workers=1, vectorize=vectorize)
        out[vectorize] = run_audit(cfg, None, cache=ModelCache(tmp_path / str(vectorize)), progress=False)
    stacked, serial = out[True]["audit"], out[False]["audit"]
    # 4 originals, 4 Retrain, 4 shadows, 4 Retrain as a method (seeds 1000-1003), 6 each of ft and rl
    # (3 challenge runs from original 0 and 4 U-LiRA runs, one shared); ga trains one by one
    assert stacked["stacked_training"]["stacked_models"] == 28
    assert serial["stacked_training"] == {"skipped": "vectorize=False"}
    rows = {v: {r["method"]: r for r in out[v]["rows"]} for v in out}
    for method in ("original", "retrain", "ft", "rl", "ga"):
        for key in ("forget_acc", "retain_acc", "test_acc", "ulira_acc", "forgetting_quality"):
            assert rows[True][method][key] == pytest.approx(rows[False][method][key], abs=0.02), (method, key)
