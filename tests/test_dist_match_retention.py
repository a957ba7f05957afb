"""dist_match's retention and its streams: the saturation temperature, the scale-free logit distance and
the coverage rule by hand, the retain-free anchors and their pacing, the repair, and what a stream of
requests carries (earlier forget samples, the first model's anchor outputs)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch.nn import functional as F

from unlearnkit.data import load_dataset
from unlearnkit.data.split import Split
from unlearnkit.methods import RequestState, get_method
from unlearnkit.methods.blocks.dist_match.stats import (covered, gaussian_mmd2, relative_logit_distance,
                                                        saturation_temperature)
from unlearnkit.methods.blocks.dist_match.stream import first_model_logits, with_earlier_requests
from unlearnkit.methods.blocks.forget_loss import logit_confidence
from unlearnkit.models import build_model
from unlearnkit.scenarios import get_scenario
from unlearnkit.task import UnlearningTask
from unlearnkit.training import TrainRecipe, train_model
from unlearnkit.utils import seeded
from conftest import make_toy

MEMORISE = TrainRecipe("adam", lr=3e-3, momentum=0.0, weight_decay=0.0, epochs=40, batch_size=32, schedule="constant")


def memorised(forget_size=0.2):
    """A 64-64 MLP that fits every training label of a hard synthetic problem, and its random-deletion task."""
    bundle = load_dataset("synthetic", n_samples=600, n_features=20, n_classes=4, separation=0.6)
    task = get_scenario("random", forget_size=forget_size).build(bundle, seed=0).task
    with seeded(0):
        model = build_model("mlp", bundle.input_shape, bundle.num_classes, hidden=(64, 64))
    train_model(model, Split.concat(task.forget, task.retain), MEMORISE, seed=0)
    return model, task


# -- the statistics by hand ------------------------------------------------------------------------------
def test_saturation_temperature_hand_computed():
    # top-2 gaps 10, 3 and 30: median 10
    logits = torch.tensor([[10.0, 0.0, 0.0], [4.0, 1.0, 0.0], [0.0, 0.0, 30.0]])
    assert saturation_temperature(logits, margin=2.0) == pytest.approx(5.0)
    assert saturation_temperature(logits, margin=10.0) == pytest.approx(1.0)
    assert saturation_temperature(logits, margin=100.0) == 1.0  # never below 1: unsaturated outputs stay as they are


def test_tempered_softmax_keeps_a_gradient_where_the_plain_one_saturates():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(16, 4, generator=g)
    z[:, 0] += 80.0  # every row saturated on class 0, as a memorised backdoor
    target = F.softmax(torch.randn(16, 4, generator=g) * 3, 1)
    grads = []
    for t in (1.0, saturation_temperature(z, 10.0)):
        zz = z.clone().requires_grad_(True)
        gaussian_mmd2(F.softmax(zz / t, 1), target).backward()
        grads.append(float(zz.grad.abs().max()))
    assert grads[0] < 1e-20 and grads[1] > 1e-6


def test_relative_logit_distance_hand_computed_and_shift_free():
    logits, ref = torch.tensor([[1.0, 2.0, 3.0]]), torch.zeros(1, 3)
    # centred: (-1, 0, 1) vs (0, 0, 0): squared distance 2, in units of 2
    assert float(relative_logit_distance(logits, ref, scale=2.0)) == pytest.approx(1.0)
    assert float(relative_logit_distance(logits + 7.0, ref - 3.0, scale=2.0)) == pytest.approx(1.0)


def test_coverage_rule_hand_computed():
    points = torch.tensor([[0.0], [1.0], [10.0]])
    # 0 and 1 are each other's nearest neighbour; 10 lies 0.5 from the forget sample 9.5
    assert covered(points, torch.tensor([[9.5]])).tolist() == [False, False, True]
    assert covered(points, torch.zeros(0, 1)).tolist() == [False, False, False]


# -- the anchors -------------------------------------------------------------------------------------------
def test_retain_free_concept_anchor_drops_only_the_unseen_samples_the_forget_set_covers():
    model, data = make_toy("subclass", forget_class=0)
    m = get_method("dist_match_noretain", concept_epochs=1)
    m.unlearn(model, data.task, seed=0)
    tp, forget = data.task.third_party, data.task.forget
    assert m.mode == "concept"
    own = torch.nonzero(tp.y == 0).squeeze(1)
    dropped = int(covered(tp.x[own], forget.x).sum())
    assert 0 < dropped < len(own)  # a sub-population covers part of its label's unseen samples
    assert len(m.anchor_set) == len(tp) - dropped and m.whole_labels == []
    assert int((m.anchor_set.y != 0).sum()) == int((tp.y != 0).sum())  # every other label is anchored
    assert m.anchor_columns.tolist() == [0, 1, 2, 3]  # the label stays: its logit is held too
    with_retain = get_method("dist_match", concept_epochs=1)
    with_retain.unlearn(model, data.task, seed=0)
    assert with_retain.anchor_set is with_retain.target_set  # with retain data: the matching's own rows


def test_whole_label_rule_hand_computed():
    m = get_method("dist_match_noretain")  # whole_label_coverage 0.8
    unseen = torch.tensor([[0.0], [1.0], [10.0], [11.0]])
    # forget {0.4, 10.4}: each unseen sample's nearest neighbour is a forget sample except 1 and 11 (0.6 vs 1):
    # 0 -> 0.4 (0.4 < 1) covered, 1 -> 0.4 (0.6 < 1) covered, 10, 11 likewise: all covered; uniform rate 2 / 5
    whole, hit = m.whole_label_test(unseen, torch.tensor([[0.4], [10.4]]))
    assert whole and hit.tolist() == [True, True, True, True]
    # forget {10.4}: covers 10 and 11 only, a rate 0.5 >= 0.8 * 1 / 4: whole
    assert m.whole_label_test(unseen, torch.tensor([[10.4]]))[0]
    # forget {10.4} beside a fifth unseen sample at 30: covers 2 of 5 = 0.4 >= 0.8 * 1 / 5: whole; with
    # 8 more forget samples at 10.4 the uniform rate is 9 / 13 and 0.4 < 0.8 * 9 / 13: a part of the label
    more = torch.cat([unseen, torch.tensor([[30.0]])])
    assert m.whole_label_test(more, torch.tensor([[10.4]]))[0]
    assert not m.whole_label_test(more, torch.full((9, 1), 10.4))[0]


def test_a_whole_label_removed_without_retain_data_is_neither_anchored_nor_held_in_the_logits():
    model, data = make_toy("class", forget_class=0)
    m = get_method("dist_match_noretain", concept_epochs=1)
    m.unlearn(model, data.task, seed=0)
    assert m.whole_labels == [0] and not bool((m.anchor_set.y == 0).any())
    assert m.anchor_columns.tolist() == [1, 2, 3]


@pytest.mark.parametrize("retain, corrected, relative", [(False, False, True), (True, False, False),
                                                         (False, True, False)])
def test_the_scale_free_anchor_serves_retain_free_deletions_only(retain, corrected, relative):
    model, data = make_toy("random", forget_size=0.1)
    task = data.task if retain else replace(data.task, retain=None)
    if corrected:
        task = replace(task, corrected=task.forget.with_labels((task.forget.y + 1) % 4))
    m = get_method("dist_match", epochs=1, alone_epochs=1)
    m.unlearn(model, task, seed=0)
    assert m.relative_anchor is relative


@pytest.mark.parametrize("history, factor", [([0.80, 0.79], 0.7), ([0.80, 0.70], 1.0)])
def test_the_anchor_shrinks_after_an_epoch_behind_pace(history, factor):
    m = get_method("dist_match_noretain")  # alone_anchor_decay 0.7, stop_tol 0.01
    m.mode, m.relative_anchor, m.history, m.epochs_run, m.anchor_factor = "subset", True, history, 2, 1.0
    m.epoch_count, m.batch_share = (lambda: 20), (lambda: 1.0)
    # pace: (|0.80 - 0.5| - 0.01) / (18 left + 1) = 0.0153 per epoch; 0.01 is behind, 0.10 is not
    m.pace_anchor()
    assert m.anchor_factor == pytest.approx(factor)


def test_the_anchor_paces_a_small_forget_set_by_nominal_epochs():
    m = get_method("dist_match_noretain")
    m.mode, m.relative_anchor, m.history, m.anchor_factor = "subset", True, [0.80, 0.79, 0.78, 0.77, 0.70], 1.0
    m.epoch_count, m.batch_share = (lambda: 80), (lambda: 0.25)  # 16 of 64: a nominal epoch is 4 one-step epochs
    m.epochs_run = 3
    m.pace_anchor()  # not at a nominal epoch's end: unchanged
    assert m.anchor_factor == 1.0
    m.epochs_run = 4
    m.pace_anchor()  # |0.80 - 0.5| - |0.70 - 0.5| = 0.10 over 4 epochs >= 0.29 * 4 / 80: on pace
    assert m.anchor_factor == 1.0


def test_retain_free_deletion_keeps_the_retain_set_better_than_an_unanchored_match():
    model, task = memorised()
    alone = replace(task, retain=None)
    anchored = get_method("dist_match_noretain").unlearn(model, alone, seed=0)
    bare = get_method("dist_match_noretain", alone_anchor_weight=0.0).unlearn(model, alone, seed=0)

    def retain_score(m):
        with torch.no_grad():
            return float(logit_confidence(m(task.retain.x), task.retain.y).mean())

    assert retain_score(anchored) > retain_score(bare) + 0.5


# -- the repair --------------------------------------------------------------------------------------------
def _deficit(model, original, retain, level=3.5, tol=0.5):
    with torch.no_grad():
        target = logit_confidence(original(retain.x), retain.y).clamp(max=level)
        now = logit_confidence(model(retain.x), retain.y)
    return float((target - tol - now).clamp_min(0).sum())


def test_repair_lifts_fallen_retain_scores_and_holds_the_forget_scores():
    model, task = memorised()
    plain = get_method("dist_match", repair_steps=0)
    before = plain.unlearn(model, task, seed=0)
    repaired = get_method("dist_match").unlearn(model, task, seed=0)
    assert _deficit(before, model, task.retain) > 0  # the match pushed some retain scores down
    assert _deficit(repaired, model, task.retain) < 0.5 * _deficit(before, model, task.retain)
    with torch.no_grad():
        s_before = logit_confidence(before(task.forget.x), task.forget.y)
        s_after = logit_confidence(repaired(task.forget.x), task.forget.y)
    assert float((s_after - s_before).mean()) < 1.0  # the forget scores stay near where the match left them


def test_no_repair_without_retain_data_or_on_small_forget_sets():
    model, data = make_toy("instance", forget_size=16)
    small = get_method("dist_match", epochs=1)
    small.unlearn(model, data.task, seed=0)
    assert not small.repairs()  # 16 < batch_size 64
    model, task = memorised()
    alone = get_method("dist_match_noretain", alone_epochs=1)
    alone.unlearn(model, replace(task, retain=None), seed=0)
    assert not alone.repairs()


# -- streams -----------------------------------------------------------------------------------------------
def _request(x, y):
    return UnlearningTask(forget=Split(x, y))


def test_earlier_forget_samples_join_the_next_request():
    state = RequestState()
    first = with_earlier_requests(_request(torch.zeros(2, 3), torch.tensor([0, 1])), state, carry=True)
    assert len(first.forget) == 2
    second = with_earlier_requests(_request(torch.ones(3, 3), torch.tensor([2, 2, 2])), state, carry=True)
    assert second.forget.y.tolist() == [0, 1, 2, 2, 2] and torch.equal(second.forget.x[2:], torch.ones(3, 3))
    assert len(state.data["forget_y"]) == 5
    off = with_earlier_requests(_request(torch.ones(1, 3), torch.tensor([3])), RequestState(), carry=False)
    assert len(off.forget) == 1


def test_the_first_models_anchor_outputs_serve_later_requests_on_the_same_inputs():
    state, x = RequestState(), torch.arange(6.0).reshape(3, 2)
    first, later = torch.zeros(3, 4), torch.ones(3, 4)
    assert torch.equal(first_model_logits(x, first, state, carry=True), first)
    assert torch.equal(first_model_logits(x, later, state, carry=True), first)  # the first model's, kept
    other = x + 1  # other inputs: this request's own outputs, stored in their place
    assert torch.equal(first_model_logits(other, later, state, carry=True), later)
    assert torch.equal(first_model_logits(x, later, RequestState(), carry=False), later)


def test_a_stream_matches_every_subset_request_so_far_and_a_concept_request_carries_nothing():
    model, data = make_toy("random", forget_size=0.1)
    task, state = data.task, RequestState()
    halves = [task.forget.subset(range(0, 20)), task.forget.subset(range(20, len(task.forget)))]
    for i, half in enumerate(halves):
        m = get_method("dist_match", epochs=1)
        model = m.unlearn(model, replace(task, forget=half), seed=0, state=state)
        assert len(m.task.forget) == sum(len(h) for h in halves[: i + 1])
    concept = get_method("dist_match", concept_epochs=1, mode="concept")
    concept.unlearn(model, replace(task, forget=halves[0]), seed=0, state=state)
    assert len(concept.task.forget) == len(halves[0]) and len(state.data["forget_y"]) == len(task.forget)
