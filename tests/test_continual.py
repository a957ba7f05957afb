"""Continual deletion: request sets of every scenario, per-request Retrain, resume, method state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unlearnkit.bench.pipeline import ModelCache
from unlearnkit.bench.pipeline import ExperimentConfig, run_experiment
from unlearnkit.data import load_dataset
from unlearnkit.errors import DataError
from unlearnkit.methods import RequestState, UnlearningMethod, get_method
from unlearnkit.methods.retrain import Retrain
from unlearnkit.scenarios import get_scenario
from conftest import make_toy

BUNDLE_ARGS = {"n_samples": 600, "n_features": 10, "n_classes": 4}
STREAMS = [("random", {"forget_size": 7, "requests": 3}),
           ("instance", {"forget_size": 5, "requests": 4}),
           ("subclass", {"forget_class": 1, "n_clusters": 2, "requests": 3}),
           ("backdoor", {"poison_rate": 30, "target": 0, "patch_size": 2, "requests": 3}),
           ("class", {"forget_class": "1,3", "requests": 2})]


@pytest.fixture(scope="module")
def bundle():
    return load_dataset("synthetic", **BUNDLE_ARGS)


@pytest.mark.parametrize("name,options", STREAMS)
def test_requests_disjoint_deterministic_and_cover_the_forget_set(bundle, name, options):
    a = get_scenario(name, **options).build(bundle, seed=3)
    b = get_scenario(name, **options).build(bundle, seed=3)
    assert len(a.requests) == options["requests"]
    assert all(np.array_equal(x, y) for x, y in zip(a.requests, b.requests))  # same seed, same requests
    assert np.array_equal(a.forget_indices, b.forget_indices)
    rows = np.concatenate(a.requests)
    assert sorted(rows.tolist()) == list(range(len(a.task.forget)))  # disjoint, and together the forget set
    groups = [set(a.forget_indices[r].tolist()) for r in a.requests]
    assert all(g and not (g & h) for i, g in enumerate(groups) for h in groups[i + 1:])
    if name != "class":  # a class stream is fixed by its classes; every other draw depends on the seed
        c = get_scenario(name, **options).build(bundle, seed=4)
        assert any(not np.array_equal(a.forget_indices[x], c.forget_indices[y]) for x, y in zip(a.requests, c.requests))


@pytest.mark.parametrize("name,options", STREAMS)
def test_request_view_removes_everything_requested_so_far(bundle, name, options):
    scenario = get_scenario(name, **options)
    data = scenario.build(bundle, seed=0)
    train_ids = np.asarray(data.train.indices)  # dataset ids of the training rows
    for r in range(1, len(data.requests) + 1):
        asked = set(data.forget_indices[np.concatenate(data.requests[:r])].tolist())
        view = scenario.request_view(data, r)
        assert set(view.forget_indices.tolist()) == set(data.forget_indices[data.requests[r - 1]].tolist())
        retain = set(view.task.retain.indices.tolist())
        asked_ids = set(train_ids[sorted(asked)].tolist())
        assert not retain & asked_ids and retain | asked_ids == set(train_ids.tolist())  # later requests stay
        seen = scenario.seen_view(data, r)
        assert set(seen.forget_indices.tolist()) == asked
        assert set(seen.task.retain.indices.tolist()) == retain
    with pytest.raises(DataError, match="request 9 does not exist"):
        scenario.seen_view(data, 9)


def test_one_request_is_the_single_shot_scenario(bundle):
    for name, options in STREAMS:
        options = {k: v for k, v in options.items() if k != "requests"}
        if name == "class":
            options["forget_class"] = 1
        assert get_scenario(name, **options).build(bundle, seed=0).requests == []
    # one request draws exactly what the scenario drew before requests existed
    single = get_scenario("random", forget_size=7).build(bundle, seed=5).forget_indices
    assert np.array_equal(single, np.sort(np.random.default_rng(5).choice(len(bundle.train), 7, replace=False)))


def test_class_stream_one_class_per_request_and_bad_input(bundle):
    scenario = get_scenario("class", forget_class="3,1", requests=2)
    data = scenario.build(bundle, seed=0)
    assert [set(data.task.forget.y[r].tolist()) for r in data.requests] == [{3}, {1}]
    assert set(data.task.test.y.tolist()) == {0, 2}  # test_acc: the classes no request names
    first = scenario.seen_view(data, 1)
    assert first.task.metadata["forget_class"] == 3
    assert scenario.seen_view(data, 2).task.metadata["forget_class"] == [1, 3]
    together = get_scenario("class", forget_class="3,1").build(bundle, seed=0)
    assert together.requests == [] and together.task.metadata["forget_class"] == [3, 1]
    for options, match in [({"forget_class": "1,2,3", "requests": 2}, "cannot be split"),
                           ({"forget_class": "1,1"}, "twice"), ({"forget_class": "1,9"}, "does not exist"),
                           ({"forget_class": "0,1,2,3"}, "all 4 classes"), ({"forget_class": "2", "requests": 0}, ">= 1")]:
        with pytest.raises(DataError, match=match):
            get_scenario("class", **options).build(bundle, seed=0)


def test_backdoor_batches_share_one_poisoned_training_set(bundle):
    one = get_scenario("backdoor", poison_rate=30, patch_size=2).build(bundle, seed=1)
    three = get_scenario("backdoor", poison_rate=30, patch_size=2, requests=3).build(bundle, seed=1)
    assert one.train_key == three.train_key  # the same original model serves both
    assert torch.equal(one.train.x, three.train.x)
    assert sorted(three.forget_indices.tolist()) == one.forget_indices.tolist()
    scenario = get_scenario("backdoor", poison_rate=30, patch_size=2, requests=3)
    view = scenario.request_view(three, 2)
    assert view.task.metadata["true_labels"] == bundle.train.y[view.forget_indices].tolist()
    assert torch.equal(view.eval_splits["forget_clean"].y, bundle.train.y[view.forget_indices])


def test_too_many_requests_fail_clearly(bundle):
    n = len(bundle.train)
    with pytest.raises(DataError, match="requests=3"):
        get_scenario("random", forget_size=n // 3, requests=3).build(bundle, 0)
    with pytest.raises(DataError, match="cannot be split"):
        get_scenario("random", forget_indices="1,2,3", requests=2).build(bundle, 0)
    with pytest.raises(DataError, match="at least one"):
        get_scenario("subclass", forget_class=1, n_clusters=2, requests=10_000).build(bundle, 0)


# -- the method state hook ----------------------------------------------------------------------------
class _Counting(UnlearningMethod):
    """Not registered: records what it saw of the stream in its state."""

    name = "counting"
    summary = "test double"

    def _unlearn(self, model, task):
        seen = self.state.data.get("forgotten", 0)
        self.state.data["forgotten"] = seen + len(task.forget)
        self.state.data["calls"] = self.state.data.get("calls", []) + [self.state.done]


def test_state_is_passed_from_request_to_request():
    model, data = make_toy("random", forget_size=6, requests=3)
    scenario = get_scenario("random", forget_size=6, requests=3)
    method, state = _Counting(), RequestState()
    for r in range(1, 4):
        model = method.unlearn(model, scenario.request_view(data, r).task, state=state)
    assert state.done == 3 and state.data == {"forgotten": 18, "calls": [0, 1, 2]}
    method.unlearn(model, data.task)  # no state given: a fresh one for this call, nothing kept on the method
    assert not hasattr(method, "state") and state.done == 3
    with pytest.raises(TypeError, match="RequestState"):
        method.unlearn(model, data.task, state={"done": 0})


def test_state_round_trips_and_rejects_what_cannot_be_saved():
    state = RequestState(2, {"x": torch.ones(2), "nested": {"k": [1, 2.5, "a", None]}})
    back = RequestState.from_dict(state.to_dict())
    assert back.done == 2 and torch.equal(back.data["x"], torch.ones(2)) and back.data["nested"]["k"][1] == 2.5
    with pytest.raises(DataError, match=r"state.data\['model'\] holds a Linear"):
        RequestState(0, {"model": torch.nn.Linear(2, 2)}).to_dict()


def test_instance_adv_keeps_earlier_requests_forgotten_from_one_reference():
    model, data = make_toy("instance", forget_size=4, requests=3)
    scenario = get_scenario("instance", forget_size=4, requests=3)
    # with the retain term, retain-free with the anchor term (both: importance off by default), and
    # retain-free with the paper's importance alone
    for name, switches in (("instance_adv", {}), ("instance_adv_noretain", {}),
                           ("instance_adv_noretain", {"adv": False, "anchor_weight": 0.0})):
        method, state, current = get_method(name, num_adv=3, max_steps=1000, **switches), RequestState(), model
        for r in range(1, 4):
            current = method.unlearn(current, scenario.request_view(data, r).task, seed=0, state=state)
            assert scenario.extra_metrics(current, scenario.seen_view(data, r))["goal_success"] == 1.0  # all so far
        assert len(state.data["forget_x"]) == 12
        if method.anchors is not None:  # the anchors hold the adversarial examples of every request so far
            assert len(method.anchors[0]) == len(state.data["adv_x"]) + len(data.task.third_party)
        reference = state.data["reference"]
        assert all(torch.equal(reference[k], v) for k, v in model.state_dict().items())  # the first input model
    assert state.data["mas_count"] == 12  # importance summed over the instances of every request
    off = get_method("instance_adv", num_adv=3, max_steps=400, carry_state=False)
    fresh = RequestState()
    off.unlearn(model, scenario.request_view(data, 1).task, state=fresh)
    assert fresh.data == {} and fresh.done == 1


# -- the pipeline: per-request Retrain, rows and resume -----------------------------------------------
def _config(methods, **scenario):
    return ExperimentConfig(dataset="synthetic", model="mlp", scenario="random", methods=methods, seeds=[0],
                            dataset_options={"n_samples": 300}, model_options={"hidden": [16]},
                            scenario_options={"forget_size": 5, "requests": 3, **scenario},
                            recipe={"epochs": 3}, device="cpu")


def test_retrain_after_request_r_never_saw_requests_1_to_r(tmp_path, monkeypatch):
    trained_without: list[set] = []
    real = Retrain._unlearn

    def spy(self, model, task):
        trained_without.append(set(task.retain.indices.tolist()))
        return real(self, model, task)

    monkeypatch.setattr(Retrain, "_unlearn", spy)
    config = _config(["original", "retrain"])
    cache_dir = tmp_path / "cache"

    res = run_experiment(config, tmp_path / "a", cache=ModelCache(cache_dir), progress=False)
    data = get_scenario("random", forget_size=5, requests=3).build(load_dataset("synthetic", n_samples=300), 0)
    ids = np.asarray(data.train.indices)
    expected = [set(ids.tolist()) - set(ids[data.forget_indices[np.concatenate(data.requests[:r])]].tolist())
                for r in (3, 1, 2)]
    assert trained_without == expected  # all requests (prepare), then after request 1 and 2
    rows = [r for r in res["rows"] if r["method"] == "retrain"]
    assert [r["request"] for r in rows] == [1, 2, 3]
    assert all(r["js_to_retrain"] == pytest.approx(0.0, abs=1e-9) for r in rows)  # its own reference
    cum = np.cumsum([r["retrain_time_s"] for r in rows])
    assert [r["cum_retrain_time_s"] for r in rows] == pytest.approx(cum.tolist())
    run_experiment(config, tmp_path / "b", cache=ModelCache(cache_dir), progress=False)
    # a second run takes every Retrain model from the cache; it trains one again only for the clock
    assert trained_without[3:] == [expected[0]]


class _Interrupt(RuntimeError):
    pass


def test_killed_stream_resumes_at_the_first_unfinished_request(tmp_path, monkeypatch):
    config = _config(["original", "ga"])
    from unlearnkit.methods.ga import GradientAscent as GA

    calls: list[int] = []
    real = GA.unlearn

    def counted(self, model, task, **kw):
        calls.append(kw["state"].done + 1)  # the request being served
        if len(calls) == 3 and fail["on"]:
            raise _Interrupt("killed")
        return real(self, model, task, **kw)

    fail = {"on": True}
    monkeypatch.setattr(GA, "unlearn", counted)
    with pytest.raises(_Interrupt):
        run_experiment(config, tmp_path / "run", progress=False)
    assert calls == [1, 2, 3]
    fail["on"], calls[:] = False, []
    res = run_experiment(config, tmp_path / "run", progress=False)
    assert calls == [3]  # requests 1 and 2 came from the checkpoint
    calls[:] = []
    clean = run_experiment(config, tmp_path / "clean", progress=False)
    assert calls == [1, 2, 3]
    strip = lambda rows: [{k: v for k, v in r.items() if "time_s" not in k} for r in rows]  # noqa: E731
    assert strip(res["rows"]) == strip(clean["rows"])  # resuming changes no result
    ga = [r for r in res["rows"] if r["method"] == "ga"]
    assert [r["request"] for r in ga] == [1, 2, 3] and "forget_prev_acc" in ga[1]
    assert ga[2]["cum_time_s"] == pytest.approx(sum(r["time_s"] for r in ga))


def test_every_request_row_flags_its_own_noop(tmp_path, monkeypatch):
    """The no-op check runs on each request's call: request 2's call is made to change nothing while
    requests 1 and 3 unlearn, and only request 2's row says so."""
    from unlearnkit.errors import NoOpWarning
    from unlearnkit.methods.ga import GradientAscent as GA

    real = GA._unlearn

    def skip_second(self, model, task):
        return None if self.state.done == 1 else real(self, model, task)

    monkeypatch.setattr(GA, "_unlearn", skip_second)
    with pytest.warns(NoOpWarning):
        res = run_experiment(_config(["original", "ga"]), tmp_path, progress=False)
    ga = [r for r in res["rows"] if r["method"] == "ga"]
    assert [r["noop"] for r in ga] == [False, True, False]
    assert not any("noop" in r for r in res["rows"] if r["method"] == "original")
