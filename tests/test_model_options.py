"""Typed model options (an mlp's widths, depth, BatchNorm and dropout) and the synthetic dataset's label
noise: what they build, how bad values fail, and that the defaults build and hash as before."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from unlearnkit.bench.grid.spec import BenchSpec
from unlearnkit.bench.pipeline import ExperimentConfig
from unlearnkit.bench.pipeline.config import cell_key
from unlearnkit.data import load_dataset
from unlearnkit.errors import DataError, HyperparameterError, UnlearnkitError
from unlearnkit.models import build_model, typed_model_options
from unlearnkit.training_stacked import stack_blocker
from unlearnkit.utils import seeded


def test_options_are_converted_to_the_declared_types():
    assert typed_model_options("mlp", {"hidden": "64,32", "batchnorm": "yes", "dropout": "0.25"}) == {
        "hidden": [64, 32], "batchnorm": True, "dropout": 0.25}
    assert typed_model_options("mlp", {"hidden": 128}) == {"hidden": [128]}
    assert typed_model_options("mlp", {"hidden": (16, 8)}) == {"hidden": [16, 8]}
    assert typed_model_options("cnn1d", {"width": "64"}) == {"width": 64}


@pytest.mark.parametrize("name,options,message", [
    ("mlp", {"depth": 3}, r"model 'mlp' has no option\(s\) \['depth'\]; valid: \['hidden', 'batchnorm', 'dropout'\]"),
    ("mlp", {"hidden": "64,wide"}, r"model option mlp.hidden must be of type int, got 'wide'"),
    ("mlp", {"hidden": [64, 0]}, r"model option mlp.hidden must be positive integers"),
    ("mlp", {"batchnorm": "maybe"}, r"model option mlp.batchnorm must be of type bool"),
    ("mlp", {"dropout": 1.0}, r"mlp.dropout must be in \[0, 1\)"),
])
def test_bad_options_fail_naming_the_option(name, options, message):
    with pytest.raises(UnlearnkitError, match=message):
        build_model(name, (1, 40), 10, **options)


def test_the_default_mlp_is_unchanged_and_the_options_add_their_layers():
    with seeded(0):
        default = build_model("mlp", (1, 40), 10)
    with seeded(0):
        explicit = build_model("mlp", (1, 40), 10, hidden=[256, 256], batchnorm=False, dropout=0.0)
    assert [type(m).__name__ for m in default] == ["Flatten", "Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert all(torch.equal(a, b) for a, b in zip(default.state_dict().values(), explicit.state_dict().values()))
    deep = build_model("mlp", (1, 40), 10, hidden=[64, 32, 16], batchnorm=True, dropout=0.2)
    kinds = [type(m).__name__ for m in deep]
    assert kinds.count("Linear") == 4 and kinds.count("BatchNorm1d") == 3 and kinds.count("Dropout") == 3
    assert [m.out_features for m in deep if isinstance(m, nn.Linear)] == [64, 32, 16, 10]
    assert "buffers" in stack_blocker(build_model("mlp", (1, 40), 10, batchnorm=True))  # the audit trains them serially
    assert "dropout" in stack_blocker(build_model("mlp", (1, 40), 10, dropout=0.1))


def test_configs_keep_their_keys_and_label_model_options():
    plain = ExperimentConfig(dataset="synthetic", model="mlp", scenario="random", methods=["ft"], seeds=[0])
    assert plain.validate().model_options == {}
    listed = ExperimentConfig(dataset="synthetic", model="mlp", scenario="random", methods=["ft"], seeds=[0],
                              model_options={"hidden": [32]})
    text = ExperimentConfig(dataset="synthetic", model="mlp", scenario="random", methods=["ft"], seeds=[0],
                            model_options={"hidden": "32"})
    assert cell_key(listed, "ft", 0) == cell_key(text, "ft", 0) != cell_key(plain, "ft", 0)
    assert listed.validate().model_options == {"hidden": [32]}  # stored as before: a plain list
    assert BenchSpec.group_of(plain) == "synthetic/mlp/random"
    wide = ExperimentConfig(dataset="synthetic", model="mlp", scenario="random", methods=["ft"], seeds=[0],
                            model_options={"hidden": [64, 64], "batchnorm": True}).validate()
    assert BenchSpec.group_of(wide) == "synthetic/mlp(batchnorm=True,hidden=64-64)/random"
    with pytest.raises(UnlearnkitError, match="has no option"):
        ExperimentConfig(dataset="synthetic", model="mlp", model_options={"widht": 3}).validate()


def test_label_noise_flips_that_fraction_to_other_classes_and_keeps_the_inputs():
    clean = load_dataset("synthetic", n_samples=2000, n_features=10, n_classes=4)
    noisy = load_dataset("synthetic", n_samples=2000, n_features=10, n_classes=4, label_noise=0.25)
    same_default = load_dataset("synthetic", n_samples=2000, n_features=10, n_classes=4, label_noise=0.0)
    assert torch.equal(clean.train.y, same_default.train.y) and torch.equal(clean.train.x, same_default.train.x)
    # the split is stratified on the labels, so compare every example by its index in the generated set
    def by_index(bundle):
        splits = (bundle.train, bundle.test, bundle.third_party)
        order = np.argsort(np.concatenate([s.indices for s in splits]))
        return (torch.cat([s.x for s in splits])[order], torch.cat([s.y for s in splits])[order])
    (xc, yc), (xn, yn) = by_index(clean), by_index(noisy)
    assert torch.equal(xc, xn)
    flipped = (yc != yn).float().mean().item()
    assert 0.22 < flipped < 0.28 and int(yn.max()) == 3  # a flip always lands on another class
    with pytest.raises(DataError, match="label_noise=1.0"):
        load_dataset("synthetic", label_noise=1.0)
    with pytest.raises(HyperparameterError):
        load_dataset("synthetic", label_noise="lots")
