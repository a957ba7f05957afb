"""Datasets, conversion of user data, scenarios and their bad-input errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from unlearnkit.data import Split, as_split, load_dataset
from unlearnkit.errors import DataError, UnknownNameError
from unlearnkit.scenarios import SCENARIOS, get_scenario
from unlearnkit.task import UnlearningTask


def test_digits_split_is_60_20_20_and_disjoint():
    b = load_dataset("digits")
    assert b.input_shape == (1, 8, 8) and b.num_classes == 10
    n = len(b.train) + len(b.test) + len(b.third_party)
    assert n == 1797 and abs(len(b.train) / n - 0.6) < 0.01
    all_idx = np.concatenate([b.train.indices, b.test.indices, b.third_party.indices])
    assert len(np.unique(all_idx)) == n
    assert float(b.train.x.max()) <= 1.0 and float(b.train.x.min()) >= 0.0


def test_mnist1d_is_generated_offline_with_the_requested_size():
    b = load_dataset("mnist1d", n_samples=500)
    assert b.input_shape == (1, 40)
    assert len(b.train) + len(b.test) + len(b.third_party) == 500
    again = load_dataset("mnist1d", n_samples=500)
    assert torch.equal(b.train.x, again.train.x)


def test_mnist1d_is_cached_on_disk_per_size(tmp_path, monkeypatch):
    import mnist1d.data

    monkeypatch.setenv("UNLEARNKIT_CACHE", str(tmp_path))
    calls = []
    generate = mnist1d.data.make_dataset
    monkeypatch.setattr(mnist1d.data, "make_dataset", lambda args: calls.append(args.num_samples) or generate(args))
    first = load_dataset("mnist1d", n_samples=300)
    again = load_dataset("mnist1d", n_samples=300)
    assert calls == [300] and torch.equal(first.train.x, again.train.x)
    assert len(load_dataset("mnist1d", n_samples=200).train) == 120 and calls == [300, 200]
    cached = sorted((tmp_path / "datasets").glob("mnist1d-*.npz"))
    assert len(cached) == 2
    for path in cached:
        path.write_bytes(b"not an npz")  # a damaged cache entry is regenerated, not trusted
    assert torch.equal(load_dataset("mnist1d", n_samples=300).train.x, first.train.x) and calls[-1] == 300
    with pytest.raises(DataError, match="integer >= 100"):
        load_dataset("mnist1d", n_samples=50)


def test_unknown_dataset_and_option():
    with pytest.raises(UnknownNameError, match="valid names: .*digits"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="has no option"):
        load_dataset("digits", n_samples=10)


def test_torchvision_dataset_needs_torchvision_or_a_local_root(tmp_path):
    try:
        import torchvision  # noqa: F401
    except Exception:
        with pytest.raises(ValueError, match="needs torchvision"):
            load_dataset("cifar10", root=str(tmp_path))
        return
    with pytest.raises(DataError, match="not found under root"):
        load_dataset("cifar10", root=str(tmp_path))


@pytest.mark.parametrize("kind", ["tuple", "dataset", "loader", "numpy"])
def test_as_split_accepts_user_data(kind):
    x, y = torch.randn(10, 3), torch.arange(10) % 2
    data = {"tuple": (x, y), "dataset": TensorDataset(x, y),
            "loader": DataLoader(TensorDataset(x, y), batch_size=4), "numpy": (x.numpy(), y.numpy())}[kind]
    s = as_split(data)
    assert torch.equal(s.x, x) and torch.equal(s.y, y) and s.y.dtype == torch.long


def test_as_split_errors():
    with pytest.raises(DataError, match="forget set is empty"):
        as_split((torch.empty(0, 3), torch.empty(0, dtype=torch.long)), "forget")
    with pytest.raises(DataError, match="x has 3 examples but y has 2 labels"):
        as_split((torch.randn(3, 2), torch.tensor([0, 1])))
    with pytest.raises(DataError, match="not supported"):
        as_split("data.csv")
    with pytest.raises(DataError, match="non-integer"):
        as_split((torch.randn(2, 2), torch.tensor([0.5, 1.0])))


def test_task_validation_against_the_model():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4))
    good = (torch.randn(5, 3), torch.tensor([0, 1, 2, 3, 0]))
    with pytest.raises(DataError, match=r"labels must be in \[0, 3\].*found label 7"):
        UnlearningTask.from_data(model, (torch.randn(2, 3), torch.tensor([0, 7])))
    with pytest.raises(DataError, match="different input shapes"):
        UnlearningTask.from_data(model, good, retain=(torch.randn(4, 5), torch.zeros(4, dtype=torch.long)))
    with pytest.raises(DataError, match="cannot process inputs of shape \\(6,\\)"):
        UnlearningTask.from_data(model, (torch.randn(2, 6), torch.tensor([0, 1])))
    task = UnlearningTask.from_data(model, good)
    assert task.num_classes == 4 and task.available() == {"forget"}


def test_random_scenario_is_deterministic_under_the_seed():
    b = load_dataset("synthetic", n_samples=200)
    s = get_scenario("random", forget_size=0.1)
    a, a2, other = s.build(b, 0), s.build(b, 0), s.build(b, 1)
    assert np.array_equal(a.forget_indices, a2.forget_indices)
    assert not np.array_equal(a.forget_indices, other.forget_indices)
    assert len(a.forget_indices) == round(0.1 * len(b.train))
    assert len(a.task.forget) + len(a.task.retain) == len(b.train)
    assert not set(a.task.forget.indices) & set(a.task.retain.indices)
    assert len(get_scenario("random", forget_size=7).build(b, 0).forget_indices) == 7


@pytest.mark.parametrize("options, message", [
    ({"forget_size": 0}, "must be > 0"),
    ({"forget_size": 1.0 * 10_000}, "selects all"),
    ({"forget_size": 2.5}, "whole number"),
    ({"forget_indices": "1,2,2"}, "index 2 appears more than once"),
    ({"forget_indices": "1,99999"}, "index 99999 is out of range"),
    ({"forget_indices": "a,b"}, "comma-separated integers"),
])
def test_random_scenario_bad_input(options, message):
    b = load_dataset("synthetic", n_samples=200)
    with pytest.raises(DataError, match=message):
        get_scenario("random", **options).build(b, 0)


def test_forget_set_equal_to_the_whole_training_set_is_refused():
    b = load_dataset("synthetic", n_samples=200)
    everything = ",".join(str(i) for i in range(len(b.train)))
    with pytest.raises(DataError, match="covers all"):
        get_scenario("random", forget_indices=everything).build(b, 0)


def test_class_scenario_separates_the_forgotten_class():
    b = load_dataset("synthetic", n_samples=200, n_classes=4)
    d = get_scenario("class", forget_class=2).build(b, 0)
    assert set(d.task.forget.y.tolist()) == {2}
    assert 2 not in set(d.task.retain.y.tolist()) and 2 not in set(d.task.test.y.tolist())
    assert set(d.eval_splits["test_forget"].y.tolist()) == {2}
    with pytest.raises(DataError, match="forget_class=9 does not exist"):
        get_scenario("class", forget_class=9).build(b, 0)


def test_unknown_scenario_and_option():
    with pytest.raises(UnknownNameError, match="valid names"):
        get_scenario("everything")
    with pytest.raises(UnknownNameError, match="no hyperparameter"):
        get_scenario("class", forget_size=0.1)
    assert {"random", "class"} <= set(SCENARIOS.names())


def test_split_batches_cover_every_example_once():
    s = Split(torch.arange(10).float().view(-1, 1), torch.arange(10))
    seen = torch.cat([y for _, y in s.batches(3, shuffle=True, generator=torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == list(range(10))
