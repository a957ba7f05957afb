"""SISA: exact unlearning by retraining only the affected shards from their last clean checkpoint."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from unlearnkit.errors import HyperparameterError
from unlearnkit.methods import get_method
from unlearnkit.methods.sisa import SISAEnsemble, stage_epochs
from unlearnkit.training import TrainRecipe
from conftest import state_equal

RECIPE = TrainRecipe("adam", lr=3e-3, momentum=0.0, weight_decay=0.0, epochs=3, batch_size=32, schedule="constant")


@pytest.fixture(scope="module")
def trained(toy_random):
    model, data = toy_random
    method = get_method("sisa", shards=3, slices=2)
    ensemble = method.train_original(model, data.train, data.task.recipe, seed=4, device="cpu")
    return model, data, ensemble


def _task_forgetting(data, ensemble, picks):
    """A task whose forget set is the training rows ``picks`` (positions of the ensemble)."""
    task = copy.copy(data.task)
    keep = np.setdiff1d(np.arange(len(data.train)), picks)
    task.forget, task.retain = data.train.subset(picks), data.train.subset(keep)
    return task


def test_ensemble_is_a_model_averaging_shard_probabilities(trained):
    _, data, ens = trained
    x = data.task.test.x[:5]
    probs = torch.stack([torch.softmax(m(x), 1) for m in ens.shards]).mean(0)
    assert torch.allclose(ens(x).exp(), probs, atol=1e-6)
    assert sorted(set(ens.shard.tolist())) == [0, 1, 2] and sorted(set(ens.slice.tolist())) == [0, 1]
    counts = torch.bincount(ens.shard)
    assert counts.max() - counts.min() <= 1  # balanced shards


def test_unlearning_retrains_exactly_the_affected_shards(trained):
    model, data, ens = trained
    # one example from slice 1 of shard 0 (resumes from the slice-0 checkpoint), one from slice 0 of shard 1
    p0 = int(torch.nonzero((ens.shard == 0) & (ens.slice == 1))[0])
    p1 = int(torch.nonzero((ens.shard == 1) & (ens.slice == 0))[0])
    task = _task_forgetting(data, ens, np.array(sorted([p0, p1])))
    method = get_method("sisa", shards=3, slices=2)
    out = method.unlearn(ens, task, seed=4, device="cpu")
    assert method.retrained == {0: 1, 1: 0}
    assert state_equal(out.shards[2], ens.shards[2])  # untouched shard: untouched
    assert (out.shard[[p0, p1]] == -1).all() and state_equal(ens, trained[2])

    # the reference: each affected shard trained from scratch without the forgotten examples
    scratch = copy.deepcopy(ens)
    scratch.shard[[p0, p1]] = -1
    ref = get_method("sisa", shards=3, slices=2)
    ref.seed, ref.device = 4, torch.device("cpu")
    for s in (0, 1):
        ref._train_shard(scratch, s, task.retain, task.recipe, first=0)
        assert state_equal(out.shards[s], scratch.shards[s]), f"shard {s} differs from its retrain from scratch"
        assert not state_equal(out.shards[s], ens.shards[s])


def test_plain_model_is_one_shard_retrained_from_scratch(toy_random):
    model, data = toy_random
    out = get_method("sisa").unlearn(model, data.task, seed=0, device="cpu")
    ref = get_method("retrain").unlearn(model, data.task, seed=0, device="cpu")
    assert state_equal(out, ref)


def test_sisa_rejects_bad_settings_and_tiny_data(toy_random):
    model, data = toy_random
    with pytest.raises(HyperparameterError, match="shards=0"):
        get_method("sisa", shards=0)
    with pytest.raises(ValueError, match="at least shards x slices"):
        get_method("sisa", shards=100, slices=5).train_original(model, data.train.subset(np.arange(10)), RECIPE)
    assert stage_epochs(30, 1) == 30 and stage_epochs(30, 5) == 10 and stage_epochs(1, 9) == 1
    assert isinstance(get_method("sisa").original_template(model, 7), SISAEnsemble)


def test_pipeline_trains_caches_and_unlearns_the_ensemble(tmp_path):
    from unlearnkit.bench.pipeline import ModelCache
    from unlearnkit.bench.pipeline import Experiment, ExperimentConfig
    from unlearnkit.methods import get_method as method_named

    config = ExperimentConfig(dataset="synthetic", model="mlp", scenario="random", methods=["original", "sisa"],
                              seeds=[0], dataset_options={"n_samples": 300, "n_features": 10, "n_classes": 4},
                              scenario_options={"forget_size": 3}, method_params={"sisa": {"shards": 2}},
                              recipe={"epochs": 2})
    exp = Experiment(config, cache=ModelCache(tmp_path), progress=False)
    ctx = exp.prepare(0)
    sisa = method_named("sisa", shards=2)
    first = exp.start_model(0, ctx.data, ctx.original, sisa)
    again = exp.start_model(0, ctx.data, ctx.original, sisa)  # from the cache
    assert isinstance(first, SISAEnsemble) and state_equal(first, again)
    row = exp.run_method(ctx, "sisa")
    assert 0.0 <= row["test_acc"] <= 1.0 and row["time_s"] > 0
