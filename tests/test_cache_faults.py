"""Fault injection on the model cache: a damaged entry is detected, moved aside and retrained, and
the results are the same as from a healthy cache."""

from __future__ import annotations

import logging

import pytest
import torch

from unlearnkit.bench.pipeline import ModelCache
from unlearnkit.bench.pipeline import ExperimentConfig, run_experiment
from unlearnkit.errors import CheckpointError
from unlearnkit.io import load_model, save_model

CONFIG = dict(dataset="synthetic", model="mlp", methods=["original", "retrain", "ft"], seeds=[0],
              dataset_options={"n_samples": 300}, recipe={"epochs": 3}, method_params={"ft": {"epochs": 1}})
METRICS = ("forget_acc", "retain_acc", "test_acc", "mia_efficacy", "js_to_retrain", "forget_loss")


def _numbers(results):
    return [(r["method"], *(r[m] for m in METRICS)) for r in results["rows"]]


def _truncate(path, other):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _empty(path, other):
    path.write_bytes(b"")


def _scramble(path, other):
    """Reverse a run of bytes inside the tensor data: the header stays valid, the weights change."""
    data = bytearray(path.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little") + 16
    data[start:start + 64] = data[start:start + 64][::-1]
    path.write_bytes(bytes(data))


def _other_model(path, other):
    path.write_bytes(other.read_bytes())


@pytest.mark.parametrize("damage", [_truncate, _empty, _scramble, _other_model], ids=lambda f: f.__name__[1:])
def test_damaged_cache_entries_are_detected_and_retrained(tmp_path, damage, caplog):
    cache = ModelCache(tmp_path / "cache")
    reference = run_experiment(ExperimentConfig(**CONFIG), tmp_path / "a", cache=cache, progress=False)
    entries = sorted((tmp_path / "cache" / "models").glob("*.safetensors"))
    assert len(entries) == 2  # the original and Retrain
    for victim, other in (entries, entries[::-1]):
        damage(victim, other)
        with caplog.at_level(logging.WARNING, logger="unlearnkit.bench.pipeline.cache"):
            again = run_experiment(ExperimentConfig(**CONFIG), tmp_path / f"b{victim.stem}", cache=cache,
                                   progress=False)
        assert _numbers(again) == _numbers(reference)
        assert victim.with_name(victim.name + ".bad").exists()
        assert any(str(victim) in rec.getMessage() for rec in caplog.records)
        caplog.clear()
    # after the retrain the entries are healthy again: a third run reads them without a warning
    with caplog.at_level(logging.WARNING, logger="unlearnkit.bench.pipeline.cache"):
        run_experiment(ExperimentConfig(**CONFIG), tmp_path / "c", cache=cache, progress=False)
    assert not caplog.records


def test_load_model_reports_damage_as_checkpoint_error(tmp_path):
    model = torch.nn.Linear(4, 3)
    path = save_model(model, tmp_path / "m.safetensors")
    _scramble(path, None)
    with pytest.raises(CheckpointError, match="checksum"):
        load_model(torch.nn.Linear(4, 3), path)
    _truncate(path, None)
    with pytest.raises(CheckpointError, match="unreadable"):
        load_model(torch.nn.Linear(4, 3), path)
    save_model(model, path)
    with pytest.raises(CheckpointError, match="does not match the model"):
        load_model(torch.nn.Linear(4, 2), path)
