"""Scenario ``instance`` and method ``instance_adv`` (Cha et al., AAAI 2024), plus the continual loop."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from unlearnkit.bench.pipeline import ExperimentConfig, run_experiment
from unlearnkit.data import load_dataset
from unlearnkit.data.split import Split
from unlearnkit.errors import DataError, HyperparameterError, MissingSplitError
from unlearnkit.evaluation.metrics import predict_logits
from unlearnkit.methods import get_method
from unlearnkit.methods.blocks.instance.terms import targeted_l2_pgd
from unlearnkit.methods.instance_adv import InstanceAdv
from unlearnkit.methods.iterative import IterativeMethod
from unlearnkit.scenarios import get_scenario
from unlearnkit.scenarios.instance import most_likely_wrong_class
from unlearnkit.task import UnlearningTask
from conftest import make_toy


@pytest.fixture(scope="module")
def toy_instance():
    """Tiny 4-class MLP and an instance task of 8 training instances."""
    return make_toy("instance", forget_size=8)


def _prepared(method: InstanceAdv, model, task, seed=0):
    """Set up what ``unlearn`` sets up, to call the method's pieces directly."""
    import copy

    method.original = copy.deepcopy(model).eval()
    for p in method.original.parameters():
        p.requires_grad_(False)
    method.device, method.seed = torch.device("cpu"), seed
    method.generator = torch.Generator().manual_seed(seed)
    return method


# -- adversarial examples and importance ------------------------------------------------------------
def test_adversarial_examples_hit_their_target_within_eps(toy_instance):
    model, data = toy_instance
    forget = data.task.forget
    m = _prepared(get_method("instance_adv", num_adv=5, eps=5.0), model, data.task)
    x_adv, y_adv = m.adversarial_examples(forget.x, forget.y, 4)
    assert len(x_adv) >= 5 * len(forget) // 2
    with torch.no_grad():
        assert torch.equal(model.eval()(x_adv).argmax(1), y_adv)  # classified as the attack target
    # each example lies within eps of the instance it came from, and its target is not the true label
    src = m.adv_source
    assert float((x_adv - forget.x[src]).flatten(1).norm(dim=1).max()) <= 5.0 + 1e-4
    assert not bool((y_adv == forget.y[src]).any())


def test_attack_targets_cover_every_wrong_class():
    # the reference redraw always produced C//2; ours is uniform over the C-1 wrong classes
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 5)
    x, y = torch.randn(200, 3), torch.zeros(200, dtype=torch.long)
    m = _prepared(get_method("instance_adv", num_adv=1, eps=50.0, pgd_steps=30), model,
                  UnlearningTask(forget=Split(x, y)))
    _, targets = m.adversarial_examples(x, y, 5)
    assert set(targets.tolist()) == {1, 2, 3, 4}


def test_targeted_pgd_respects_eps_and_clip():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)).eval()
    x = torch.rand(10, 1, 4, 4)
    t = torch.full((10,), 2)
    adv = targeted_l2_pgd(model, x, t, eps=0.7, step=0.05, steps=40, clip=(0.0, 1.0),
                          generator=torch.Generator().manual_seed(0))
    assert float((adv - x).flatten(1).norm(dim=1).max()) <= 0.7 + 1e-5
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0


def test_importance_in_unit_interval_and_most_relevant_near_zero_weight():
    torch.manual_seed(0)
    # output = w . x with a forget set that only excites input 0: w[0] is the relevant weight
    model = torch.nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0.5, -0.5, 0.5], [-1.0, 0.5, 0.5, -0.5]]))
    x = torch.zeros(6, 4)
    x[:, 0] = torch.linspace(1.0, 2.0, 6)
    m = _prepared(get_method("instance_adv"), model, None)
    omega = m.mas_importance(model, x)["weight"]
    assert float(omega.min()) >= 0.0 and float(omega.max()) <= 1.0
    pull = 1.0 - omega
    assert float(pull[:, 0].max()) < 0.05  # the forget-relevant parameters move freely
    assert float(pull[:, 1:].min()) > 0.95  # irrelevant ones are held at their original values


# -- the method -------------------------------------------------------------------------------------
def test_early_stop_at_goal(toy_instance, caplog):
    model, data = toy_instance
    m = get_method("instance_adv", num_adv=4, max_steps=2000)
    out = m.unlearn(model, data.task, seed=0, device="cpu")
    assert 0 < m.steps < 2000
    pred = predict_logits(out, data.task.forget).argmax(1)
    assert bool((pred != data.task.forget.y).all())
    # one step fewer would not have met the goal: it stopped at the first step that did
    m2 = get_method("instance_adv", num_adv=4, max_steps=m.steps - 1)
    with caplog.at_level("WARNING", logger="unlearnkit.methods.instance_adv"):
        out2 = m2.unlearn(model, data.task, seed=0, device="cpu")
    assert bool((predict_logits(out2, data.task.forget).argmax(1) == data.task.forget.y).any())
    assert "do not meet the goal 'misclassify'" in caplog.text and "lower retain_weight" in caplog.text


def test_distillation_terms_keep_test_accuracy_and_replace_the_importance_term(toy_instance):
    """Given retain data, each step also distils the input model's outputs on a retain batch; without
    it, on the anchors (adversarial examples and third_party inputs). The goal is still met in each
    case, with far less collateral damage than the paper's retain-free regularisers
    (``anchor_weight=0``: importance term, SGD); beside a distillation term the weight-importance term
    (which would hold the instances in place) is off unless forced, and the optimiser is Adam."""
    model, data = toy_instance
    test = data.task.test

    def test_acc(m):
        return float((predict_logits(m, test).argmax(1) == test.y).float().mean())

    results = {}
    for label, name, switches in (("retain", "instance_adv", {}), ("anchors", "instance_adv_noretain", {}),
                                  ("paper", "instance_adv_noretain", {"anchor_weight": 0.0})):
        m = get_method(name, num_adv=4, max_steps=3000, **switches)
        out = m.unlearn(model, data.task, seed=0, device="cpu")
        assert bool((predict_logits(out, data.task.forget).argmax(1) != data.task.forget.y).all()), label
        results[label] = (test_acc(out), m.use_importance, type(m.optimizer).__name__, m.adv_batches is None)
    assert min(results["retain"][0], results["anchors"][0]) > results["paper"][0] + 0.1
    assert results["retain"][1:] == (False, "Adam", False)  # the adversarial CE term stays beside the retain term
    assert results["anchors"][1:] == (False, "Adam", True)  # the adversarial examples are anchors instead
    assert results["paper"][1:] == (True, "SGD", False)
    forced = get_method("instance_adv", num_adv=2, max_steps=1, importance=True)
    forced.unlearn(model, data.task, seed=0, device="cpu")
    assert forced.use_importance and forced.retain is not None


# -- the anchor term (retain-free) -------------------------------------------------------------------
def test_anchor_term_is_the_temperature_scaled_kl_from_the_reference():
    """T^2 KL(softmax(z0 / T) || softmax(z / T)): at T = 2, teacher logits (2 ln 3, 0) give
    probabilities (3/4, 1/4), student logits (0, 0) give (1/2, 1/2); KL = 3/4 ln(3/2) + 1/4 ln(1/2)."""
    m = get_method("instance_adv_noretain", anchor_temperature=2.0)
    teacher = torch.tensor([[2 * np.log(3.0), 0.0]])
    expected = 4 * (0.75 * np.log(1.5) + 0.25 * np.log(0.5))
    assert float(m.anchor_term(torch.zeros(1, 2), teacher)) == pytest.approx(expected, rel=1e-5)
    assert float(m.anchor_term(teacher.clone(), teacher)) == pytest.approx(0.0, abs=1e-7)  # same outputs: no loss


def test_anchor_pool_is_the_adversarial_examples_and_third_party_inputs_with_reference_logits(toy_instance):
    model, data = toy_instance
    task = data.task
    m = get_method("instance_adv_noretain", num_adv=3, eps=5.0, max_steps=1)
    m.unlearn(model, task, seed=0, device="cpu")
    x, logits = m.anchors
    assert len(m.adv_x) > 0
    assert torch.equal(x, torch.cat([m.adv_x, task.third_party.x]))
    with torch.no_grad():
        assert torch.allclose(logits, model.eval()(x), atol=1e-5)  # the input model's logits, fixed
    own = get_method("instance_adv_noretain", num_adv=3, eps=5.0, max_steps=1, anchor_third_party=False)
    own.unlearn(model, task, seed=0, device="cpu")
    assert torch.equal(own.anchors[0], m.adv_x)
    # nothing to anchor on: the paper's regularisers (importance term, SGD, adversarial CE term) again
    bare = get_method("instance_adv_noretain", adv=False, max_steps=1)
    bare.unlearn(model, replace(task, third_party=None), seed=0, device="cpu")
    assert bare.anchors is None and bare.use_importance and type(bare.optimizer).__name__ == "SGD"
    paper = get_method("instance_adv_noretain", num_adv=3, eps=5.0, max_steps=1, anchor_weight=0.0)
    paper.unlearn(model, task, seed=0, device="cpu")
    assert paper.anchors is None and paper.use_importance and paper.adv_batches is not None


def test_goal_rechecked_on_pending_instances_and_a_rotating_window_of_the_others():
    """After a step the instances short of the goal are re-checked, and ``recheck_batch`` of the others
    in turn, so one that relapsed rejoins the pending pool while others are still pending; once none is
    pending every instance is checked before the request stops."""
    model = torch.nn.Linear(1, 2)
    with torch.no_grad():  # predicts class 1 everywhere: misclassify is met exactly for the label-0 rows
        model.weight.zero_()
        model.bias.copy_(torch.tensor([0.0, 1.0]))
    forget = Split(torch.zeros(5, 1), torch.tensor([0, 1, 1, 0, 1]))
    m = get_method("instance_adv_noretain", recheck_batch=2)
    m.goal, m.targets, m.everyone, m.recheck_at = "misclassify", None, torch.arange(5), 0
    # row 4 pending; rows 0-3 settled, but the stale True of rows 1 and 2 hides their relapse
    m.met = torch.tensor([True, True, True, True, False])
    assert m.refreshed_goal(model, forget).tolist() == [True, False, True, True, False]  # window: rows 0, 1
    assert m.recheck_at == 2
    m.met = torch.tensor([True, True, True, True, False])
    assert m.refreshed_goal(model, forget).tolist() == [True, True, False, True, False]  # window: rows 2, 3
    everyone = get_method("instance_adv_noretain", recheck_batch=0)  # no window: all checked once none is pending
    everyone.goal, everyone.targets, everyone.everyone, everyone.recheck_at = "misclassify", None, torch.arange(5), 0
    everyone.met = torch.tensor([False, True, True, True, True])
    assert everyone.refreshed_goal(model, forget).tolist() == [True, False, False, True, False]


def test_one_forward_pass_per_step_only_where_no_layer_depends_on_the_batch():
    """A step's batches (instance_adv: forget, adversarial and retain; dist_match: forget + third-party
    and retain) go through one pass when the outputs of a row do not depend on the other rows (same outputs as separate passes); a BatchNorm layer in train mode
    makes them depend, so each batch then gets its own pass (its own batch statistics)."""
    torch.manual_seed(0)
    batches = [torch.randn(3, 4), torch.randn(5, 4), torch.randn(2, 4)]
    plain = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    together = IterativeMethod.forward_together(plain, batches)
    assert all(torch.allclose(o, plain(x), atol=1e-6) for o, x in zip(together, batches))
    with_bn = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 3)).train()
    outputs = IterativeMethod.forward_together(with_bn, batches)
    assert all(torch.allclose(o, with_bn(x), atol=1e-6) for o, x in zip(outputs, batches))
    pooled = with_bn(torch.cat(batches)).split([3, 5, 2])[0]
    assert not torch.allclose(outputs[0], pooled, atol=1e-3)  # what a joint pass would have given instead


def test_runs_with_only_the_forget_instances(toy_instance):
    model, data = toy_instance
    forget = data.task.forget
    task = UnlearningTask.from_data(model, forget=(forget.x, forget.y))  # no retain, test or training data
    assert task.available() == {"forget"}
    for goal in ("misclassify", "relabel"):
        m = get_method("instance_adv", goal=goal, num_adv=4)
        out = m.unlearn(model, task, seed=1, device="cpu")
        pred = predict_logits(out, forget).argmax(1)
        if goal == "misclassify":
            assert bool((pred != forget.y).all())
        else:
            assert torch.equal(pred, most_likely_wrong_class(model, forget))
    with pytest.raises(MissingSplitError):  # a method that needs retain data says so on the same task
        get_method("neggrad_plus").unlearn(model, task)


def test_relabel_targets_from_metadata_and_errors(toy_instance):
    model, data = toy_instance
    forget = data.task.forget
    targets = ((forget.y + 2) % 4).tolist()
    task = UnlearningTask(forget=forget, metadata={"goal": "relabel", "target_labels": targets})
    out = get_method("instance_adv", num_adv=4).unlearn(model, task, seed=0, device="cpu")
    assert predict_logits(out, forget).argmax(1).tolist() == targets
    bad = UnlearningTask(forget=forget, metadata={"goal": "relabel", "target_labels": forget.y.tolist()})
    with pytest.raises(DataError, match="true label"):
        get_method("instance_adv").unlearn(model, bad)
    with pytest.raises(HyperparameterError):
        get_method("instance_adv", goal="forget")


# -- the scenario -----------------------------------------------------------------------------------
def test_scenario_deterministic_and_requests_disjoint():
    bundle = load_dataset("synthetic", n_samples=400, n_features=10, n_classes=4)
    a = get_scenario("instance", forget_size=5, requests=3).build(bundle, seed=3)
    b = get_scenario("instance", forget_size=5, requests=3).build(bundle, seed=3)
    c = get_scenario("instance", forget_size=5, requests=3).build(bundle, seed=4)
    assert np.array_equal(a.forget_indices, b.forget_indices)
    assert not np.array_equal(a.forget_indices, c.forget_indices)
    assert len(a.requests) == 3 and all(len(r) == 5 for r in a.requests)
    assert len(set(a.forget_indices.tolist())) == 15
    assert len(a.task.retain) == len(bundle.train) - 15
    one = get_scenario("instance", forget_size=5).build(bundle, seed=3)
    assert one.requests == [] and len(one.task.forget) == 5


def test_scenario_bad_input():
    bundle = load_dataset("synthetic", n_samples=400, n_features=10, n_classes=4)
    n = len(bundle.train)
    with pytest.raises(DataError):
        get_scenario("instance", forget_size=n + 5).build(bundle, 0)
    with pytest.raises(DataError, match="requests"):
        get_scenario("instance", forget_size=n // 2, requests=3).build(bundle, 0)
    with pytest.raises(HyperparameterError):
        get_scenario("instance", goal="erase")
    with pytest.raises(DataError):
        get_scenario("instance", forget_indices="1,2,3", requests=2).build(bundle, 0)
    with pytest.raises(DataError, match="out of range"):
        get_scenario("instance", forget_indices=f"1,{n}").build(bundle, 0)
    with pytest.raises(DataError):
        get_scenario("instance", goal="relabel", forget_indices="0,1", targets="1,2,3").build(bundle, 0)
    y0 = int(bundle.train.y[0])
    with pytest.raises(DataError, match="true label"):
        get_scenario("instance", goal="relabel", forget_indices="0", targets=str(y0)).build(bundle, 0)


def test_explicit_targets_follow_the_given_forget_indices_whatever_their_order():
    """The forget rows are sorted by training index (within each request); the targets given one per
    instance in the order of ``forget_indices`` must still reach their own instance."""
    bundle = load_dataset("synthetic", n_samples=400, n_features=10, n_classes=4)
    given = [30, 5, 17, 2]  # neither sorted nor sorted within the two requests
    wanted = {i: (int(bundle.train.y[i]) + 1 + k % 2) % 4 for k, i in enumerate(given)}
    options = dict(goal="relabel", forget_indices=",".join(map(str, given)),
                   targets=",".join(str(wanted[i]) for i in given))
    for requests in (1, 2):
        scenario = get_scenario("instance", requests=requests, **options)
        data = scenario.build(bundle, seed=0)
        assert data.forget_indices.tolist() != given  # the rows really are in another order
        paired = dict(zip(data.forget_indices.tolist(), data.task.metadata["target_labels"]))
        assert paired == wanted
        for r in range(1, len(data.requests) + 1):  # no request views for a single request
            view = scenario.request_view(data, r)
            assert dict(zip(view.forget_indices.tolist(), view.task.metadata["target_labels"])) == \
                {i: wanted[i] for i in view.forget_indices.tolist()}
    y5 = int(bundle.train.y[5])
    with pytest.raises(DataError, match="equals the true label of training instance 5"):
        get_scenario("instance", goal="relabel", forget_indices="30,5", targets=f"{wanted[30]},{y5}").build(bundle, 0)


def test_scenario_relabel_targets_prepared_from_original(toy_instance):
    model, _ = toy_instance
    bundle = load_dataset("synthetic", n_samples=400, n_features=10, n_classes=4)
    scenario = get_scenario("instance", forget_size=6, goal="relabel", requests=2)
    data = scenario.build(bundle, seed=0)
    assert "target_labels" not in data.task.metadata
    scenario.prepare_task(model, data)
    targets = data.task.metadata["target_labels"]
    assert targets == most_likely_wrong_class(model, data.task.forget).tolist()
    sub = scenario.forget_subset(data, data.requests[1])
    assert sub.task.metadata["target_labels"] == [targets[i] for i in data.requests[1]]
    assert np.array_equal(sub.forget_indices, data.forget_indices[data.requests[1]])
    assert scenario.extra_metrics(model, data)["goal_success"] == 0.0


# -- the continual loop in the runner ---------------------------------------------------------------
def test_continual_requests_rows_and_resume(tmp_path):
    config = ExperimentConfig(dataset="synthetic", model="mlp", scenario="instance",
                              methods=["original", "instance_adv"], seeds=[0],
                              dataset_options={"n_samples": 300}, model_options={"hidden": [16]},
                              scenario_options={"forget_size": 3, "requests": 3},
                              method_params={"instance_adv": {"num_adv": 3}},
                              recipe={"epochs": 10}, device="cpu")
    out = tmp_path / "run"
    res = run_experiment(config, out, progress=False)
    rows = [r for r in res["rows"] if r["method"] == "instance_adv"]
    assert [r["request"] for r in rows] == [1, 2, 3]
    assert all(0.0 <= r["goal_success"] <= 1.0 for r in rows)
    assert all(r["goal_success"] == pytest.approx(1 - r["forget_acc"]) for r in res["rows"])  # misclassify
    assert "forget_prev_acc" not in rows[0] and "forget_prev_acc" in rows[1]
    assert {(e["method"], e["request"]) for e in res["summary"]} >= {("instance_adv", 3), ("original", 1)}
    lines = (out / "rows.jsonl").read_text().splitlines()
    assert len(lines) == 2 and "rows" in json.loads(lines[1])
    again = run_experiment(config, out, progress=False)  # resumes: nothing recomputed
    assert again["rows"] == res["rows"]
    assert len((out / "rows.jsonl").read_text().splitlines()) == 2
    assert "request 3" in (out / "report.md").read_text()


def test_term_weights_follow_batch_sizes_nominal_or_pending():
    """The forget term keeps the reference weight min(batch_size, k) / (that + b_a) while instances
    drop out of the pending batch, unless nominal_weight=False."""
    nominal = get_method("instance_adv", batch_size=32, adv_batch_size=32)
    assert nominal.term_weights(3, 32, 64) == (0.5, 0.5)
    assert nominal.term_weights(1, 32, 16) == (16 / 48, 32 / 48)
    pending = get_method("instance_adv", batch_size=32, nominal_weight=False)
    assert pending.term_weights(3, 32, 64) == (3 / 35, 32 / 35)


@pytest.mark.parametrize("select", ["last_layer", "random"])
def test_selection_restricts_every_step_and_the_goal_is_still_met(toy_instance, select):
    """instance_adv steps through the iterative family's update: entries outside the selection keep
    their exact values, while the forget instances are still misclassified at the end (retain-free: the
    retain term or the anchor term would hold a last layer alone in place on this well-separated toy
    problem, so the paper's regularisers: anchor_weight=0)."""
    model, data = toy_instance
    m = get_method("instance_adv_noretain", num_adv=4, select=select, select_fraction=0.3, anchor_weight=0.0)
    out = m.unlearn(model, data.task, seed=0, device="cpu")
    mask = m.update_mask
    assert mask is not None and 0 < sum(float(v.sum()) for v in mask.values()) < sum(v.numel() for v in mask.values())
    before = dict(model.named_parameters())
    moved = 0
    for n, q in out.named_parameters():
        frozen = mask[n] == 0
        assert torch.equal(q[frozen], before[n][frozen]), f"{n} changed outside the selection"
        moved += int((q != before[n])[~frozen].sum())
    assert moved > 0
    pred = predict_logits(out, data.task.forget).argmax(1)
    assert bool((pred != data.task.forget.y).all()) and 0 < m.steps < m.params.max_steps
