"""dist_match: MMD / median heuristic / quantile targets / stratified AUC by hand, the stopping rule
against a linear probe, the mode rule, the method without retain data, and the backdoor scenario
(trigger placement, poison rate, ASR formula)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from dataclasses import replace

from unlearnkit.data import load_dataset
from unlearnkit.data.split import Split
from unlearnkit.errors import NoOpWarning
from unlearnkit.evaluation import accuracy
from unlearnkit.methods import METHODS, get_method
from unlearnkit.models import build_model
from unlearnkit.methods.blocks.dist_match.stats import (auc_stop, gaussian_mmd2, median_bandwidth, mirror_correction,
                                                  quantile_targets, stratified_auc, two_sample_auc)
from unlearnkit.methods.dist_match import lira_confidence
from unlearnkit.scenarios import get_scenario
from unlearnkit.scenarios.backdoor import apply_trigger, attack_success_rate, trigger_region
from unlearnkit.task import UnlearningTask
from unlearnkit.training import TrainRecipe, train_model
from unlearnkit.utils import seeded
from conftest import forget_loss, make_toy

# trains the toy model on to (near) zero loss: every training sample memorised
TOY_MEMORISE = TrainRecipe("adam", lr=3e-3, momentum=0.0, weight_decay=0.0, epochs=40, batch_size=32,
                           schedule="constant")


# -- MMD and the median heuristic ----------------------------------------------------------------
def test_mmd_zero_for_identical_samples():
    x = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
    assert float(gaussian_mmd2(x, x.clone())) == pytest.approx(0.0, abs=1e-7)


def test_mmd_hand_computed_two_points():
    # x = {0}, y = {1} in 1-D, sigma = 1: MMD^2 = k(0,0) + k(1,1) - 2 k(0,1) = 2 - 2 exp(-1/2)
    x, y = torch.zeros(1, 1), torch.ones(1, 1)
    assert float(gaussian_mmd2(x, y, sigma=1.0)) == pytest.approx(2 - 2 * math.exp(-0.5), rel=1e-6)


def test_mmd_grows_with_shift():
    g = torch.Generator().manual_seed(1)
    x, noise = torch.randn(50, 2, generator=g), torch.randn(50, 2, generator=g)
    values = [float(gaussian_mmd2(x, noise + shift, sigma=1.0)) for shift in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert values == sorted(values) and values[-1] > 10 * values[0]


def test_median_bandwidth():
    # pooled points 0, 1, 3 (1-D): distinct pairwise distances 1, 3, 2 (each twice) -> median 2
    x, y = torch.tensor([[0.0], [1.0]]), torch.tensor([[3.0]])
    assert float(median_bandwidth(x, y)) == pytest.approx(2.0)
    # all points equal: falls back to 1 instead of a zero bandwidth
    assert float(median_bandwidth(torch.zeros(3, 2), torch.zeros(2, 2))) == 1.0


def test_lira_confidence_matches_definition():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    p = torch.softmax(logits, 1)[0]
    expected = math.log(p[0]) - math.log(p[1] + p[2])
    assert float(lira_confidence(logits, torch.tensor([0]))) == pytest.approx(expected, rel=1e-5)


# -- per-class quantile targets and the stratified two-sample AUC ------------------------------------
def test_quantile_targets_hand_computed():
    # class 0: forget scores 3, 1, 2 get the 5/6, 1/6, 1/2 quantiles of {0, 10} (linear interpolation)
    # class 1 has no reference scores: the pooled reference {0, 10, 4} is used (its median is 4)
    scores, labels = torch.tensor([3.0, 1.0, 2.0, 7.0]), torch.tensor([0, 0, 0, 1])
    ref, ref_labels = torch.tensor([0.0, 10.0, 4.0]), torch.tensor([0, 0, 2])
    t = quantile_targets(scores, labels, ref, ref_labels)
    assert t.tolist() == pytest.approx([25 / 3, 5 / 3, 5.0, 4.0], rel=1e-5)


def test_quantile_targets_with_offsets_hand_computed():
    # class 0 (reference {0, 10}): offsets 0.8 and 0.2 are sorted (0.2, 0.8) and handed out by rank:
    # the lower score (1) gets level (0 + 0.2) / 2 = 0.1 -> 1, the higher (3) (1 + 0.8) / 2 = 0.9 -> 9
    scores, labels = torch.tensor([3.0, 1.0, 5.0]), torch.tensor([0, 0, 1])
    ref, ref_labels = torch.tensor([0.0, 10.0, 2.0, 6.0]), torch.tensor([0, 0, 1, 1])
    t = quantile_targets(scores, labels, ref, ref_labels, offsets=torch.tensor([0.8, 0.2, 0.25]))
    assert t.tolist() == pytest.approx([9.0, 1.0, 3.0], rel=1e-5)  # class 1 alone: level 0.25 of {2, 6}


def test_jittered_levels_make_a_lone_example_a_draw_of_the_reference_not_its_median():
    """A class with one forget example: the midpoint level always gives the median of the reference
    scores; jittered levels (offsets uniform in [0, 1)) give a draw from the reference distribution,
    so over many draws the targets spread over it and fall below the median half of the time."""
    ref = torch.arange(101, dtype=torch.float32)  # median 50
    one, zero = torch.tensor([7.0]), torch.tensor([0])
    assert float(quantile_targets(one, zero, ref, torch.zeros(101, dtype=torch.long))) == pytest.approx(50.0)
    offsets = torch.rand(2000, generator=torch.Generator().manual_seed(0))
    draws = torch.stack([quantile_targets(one, zero, ref, torch.zeros(101, dtype=torch.long), o.view(1))
                         for o in offsets]).squeeze(1)
    assert abs(float((draws < 50).float().mean()) - 0.5) < 0.05
    assert float(draws.min()) < 5 and float(draws.max()) > 95


def test_statistics_equal_a_per_class_loop_on_random_data():
    """The all-classes-at-once statistics against the definition, class by class (torch.quantile and
    pairwise comparisons), on random scores with a class missing from the reference."""
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        a, b = torch.randn(40, generator=g), torch.randn(90, generator=g).round(decimals=1)
        a_lab, b_lab = torch.randint(0, 4, (40,), generator=g), torch.randint(0, 3, (90,), generator=g)
        offsets = torch.rand(40, generator=g)
        targets = quantile_targets(a, a_lab, b, b_lab, offsets)
        pairs, weight = 0.0, 0
        for k in torch.unique(a_lab):
            rows, ref = a_lab == k, b[b_lab == k]
            levels = (torch.arange(int(rows.sum())) + offsets[rows].sort().values) / int(rows.sum())
            expected = torch.quantile(ref if len(ref) else b, levels)
            assert torch.allclose(targets[rows][a[rows].argsort()], expected, atol=1e-5)
            if len(ref):
                diff = a[rows].unsqueeze(1) - ref.unsqueeze(0)
                pairs += float(((diff > 0).double() + 0.5 * (diff == 0).double()).mean(1).sum())
                weight += int(rows.sum())
        assert stratified_auc(a, a_lab, b, b_lab) == pytest.approx(pairs / weight, abs=1e-12)


def test_only_classes_with_few_forget_samples_get_jittered_levels():
    model, data = make_toy("random", forget_size=0.1)
    counts = torch.bincount(data.task.forget.y)[data.task.forget.y]
    threshold = int(counts.max())  # the largest class keeps midpoints, every smaller one is jittered
    m = get_method("dist_match", epochs=1, jitter_below=threshold)
    m.unlearn(model, data.task, seed=0)
    large = counts >= threshold
    assert bool(large.any()) and bool((~large).any())
    assert torch.all(m.offsets[large] == 0.5) and not torch.any(m.offsets[~large] == 0.5)
    none = get_method("dist_match", epochs=1, jitter_below=0)
    none.unlearn(model, data.task, seed=0)
    assert none.offsets is None  # midpoints everywhere: nothing drawn


def test_stratified_auc_hand_computed():
    # class 0: every forget score above every reference score (1); class 1: below (0); weights 2 and 1
    a, a_lab = torch.tensor([3.0, 4.0, 0.0]), torch.tensor([0, 0, 1])
    b, b_lab = torch.tensor([1.0, 2.0, 1.0, 2.0]), torch.tensor([0, 0, 1, 1])
    assert stratified_auc(a, a_lab, b, b_lab) == pytest.approx(2 / 3)
    one, zero = torch.tensor([1.0]), torch.tensor([0])
    assert stratified_auc(one, zero, one, zero) == 0.5  # a tie
    # class 0 only, with ties: a = [1, 2], b = [1, 1, 3]: (0 + 2 * 0.5) + (2 + 0) = 3 of 6 pairs
    assert stratified_auc(torch.tensor([1.0, 2.0]), torch.zeros(2, dtype=torch.long), torch.tensor([1.0, 1.0, 3.0]),
                          torch.zeros(3, dtype=torch.long)) == pytest.approx(0.5)
    assert stratified_auc(a, a_lab, b, torch.full((4,), 5)) == 0.5  # no class in common


def test_auc_separable_and_indistinguishable():
    rng = np.random.default_rng(0)
    same_a, same_b = rng.normal(size=(200, 3)), rng.normal(size=(200, 3))
    far = rng.normal(size=(200, 3)) + 5
    auc_same, auc_far = two_sample_auc(same_a, same_b), two_sample_auc(far, same_b)
    assert abs(auc_same - 0.5) < 0.1 and auc_stop(auc_same, 0.1)
    assert auc_far > 0.99 and not auc_stop(auc_far, 0.05)
    assert auc_stop(0.3, 0.05)  # below chance = nothing that generalises: stop


def _logits_for(y: torch.Tensor, p_y: torch.Tensor, k: int) -> torch.Tensor:
    """Logits with probability p_y on label y and the rest spread evenly over the other classes."""
    logits = torch.zeros(len(y), k)
    logits[torch.arange(len(y)), y] = torch.log(p_y * (k - 1) / (1 - p_y))
    return logits


def test_stopping_rule_sees_memorisation_a_linear_probe_cannot():
    """A memorised forget set (p_y ~ 0.99 on its labels) against unseen data of the same classes
    (p_y ~ 0.6), classes balanced: a logistic regression on softmax + one-hot label cannot tell them
    apart ("p_y high for the given y" is not linear in those features), the rule's statistic can."""
    k, n = 3, 300
    g = torch.Generator().manual_seed(0)
    y_f, y_t = torch.arange(n) % k, torch.arange(n) % k
    x_f = _logits_for(y_f, 0.97 + 0.025 * torch.rand(n, generator=g), k)
    x_t = _logits_for(y_t, 0.4 + 0.4 * torch.rand(n, generator=g), k)

    def probe(x, y):
        return torch.cat([torch.softmax(x, 1), nn.functional.one_hot(y, k).float()], 1).numpy()

    assert abs(two_sample_auc(probe(x_f, y_f), probe(x_t, y_t)) - 0.5) < 0.1
    model = nn.Linear(k, k)  # the identity: the inputs are the logits
    with torch.no_grad():
        model.weight.copy_(torch.eye(k))
        model.bias.zero_()
    task = UnlearningTask(forget=Split(x_f, y_f), third_party=Split(x_t, y_t), num_classes=k)
    m = get_method("dist_match", epochs=1, mode="subset")
    m.unlearn(model, task, seed=0)
    assert m.history[0] > 0.95 and not auc_stop(m.history[0], m.params.stop_tol)


def test_stopping_rule_stops_early_when_already_matched():
    """With the forget set drawn from the third-party data itself the rule fires before any update:
    the model is returned unchanged and only one AUC was computed."""
    model, data = make_toy("random", forget_size=0.1)
    task = data.task
    task.forget = task.third_party.subset(np.arange(40))  # forget = unseen data: already indistinguishable
    m = get_method("dist_match", epochs=3, stop_tol=0.1)
    with pytest.warns(NoOpWarning):  # nothing to do is reported as such
        out = m.unlearn(model, task, seed=0)
    assert len(m.history) == 1 and abs(m.history[0] - 0.5) <= 0.1
    assert all(torch.equal(a, b) for a, b in zip(out.state_dict().values(), model.state_dict().values()))


def test_mirror_correction_plants_unfamiliar_values_where_the_inputs_changed():
    """A feature correction: the forget inputs carry a mark (value 9) in the last two positions. The
    unseen samples get fresh values in the range of the request's inputs there, nothing elsewhere."""
    corrected_x = torch.tensor([[0.0, 1.0, 2.0, 3.0], [1.0, 0.0, 1.0, 2.0]])
    forget_x = corrected_x.clone()
    forget_x[:, 2:] = 9.0
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    x = torch.full((6, 4), 5.0)
    g = torch.Generator().manual_seed(0)
    mx, my = mirror_correction(x, y, forget_x, torch.zeros(2, dtype=torch.long), corrected_x,
                               torch.zeros(2, dtype=torch.long), g)
    assert torch.equal(my, y) and torch.equal(mx[:, :2], x[:, :2])  # labels and unchanged positions kept
    planted = mx[:, 2:]
    assert float(planted.min()) >= 0.0 and float(planted.max()) <= 9.0  # the inputs' range, 0 to 9
    assert len(torch.unique(planted)) == planted.numel()  # drawn per sample and position: no copy of the mark
    assert torch.equal(x, torch.full((6, 4), 5.0))  # the caller's tensor is untouched


def test_mirror_correction_flips_labels_at_the_request_rate_class_by_class():
    """Corrected class 0 -> forget label 2 for one of two examples, class 1 -> 2 for both; unseen
    samples of class 0 take label 2 about half the time, of class 1 always; class 3 (never
    corrected) is dropped; inputs are not changed."""
    forget_y, corrected_y = torch.tensor([2, 0, 2, 2]), torch.tensor([0, 0, 1, 1])
    xs = torch.zeros(4, 1)
    y = torch.tensor([0] * 2000 + [1] * 500 + [3] * 100)
    x = torch.arange(len(y), dtype=torch.float32).unsqueeze(1)
    mx, my = mirror_correction(x, y, xs, forget_y, xs, corrected_y, torch.Generator().manual_seed(0))
    assert len(my) == 2500 and torch.equal(mx.squeeze(1), torch.arange(2500, dtype=torch.float32))
    assert bool((my[2000:] == 2).all())
    assert set(my[:2000].tolist()) == {0, 2} and abs(float((my[:2000] == 2).float().mean()) - 0.5) < 0.05
    # fewer than two unseen samples of a corrected class: the labels stay as they are
    _, kept = mirror_correction(x[-3:], y[-3:], xs, forget_y, xs, corrected_y, torch.Generator().manual_seed(0))
    assert torch.equal(kept, y[-3:])


def test_corrections_match_mirrored_reference_data_and_run_the_epoch_cap():
    """A label correction: the reference labels are the third-party labels flipped as the request
    flipped them, and the run goes to the epoch cap however the rule's AUC moves."""
    model, data = make_toy("label", fraction=0.2)
    task = data.task
    assert task.corrected is not None and bool((task.corrected.y != task.forget.y).any())
    m = get_method("dist_match", epochs=3, stop_tol=0.5, small_set_scaling=False)  # a tolerance any AUC meets
    m.unlearn(model, task, seed=0)
    assert m.mode == "subset" and m.epochs_run == 3 and len(m.history) == 3
    tp, ref = task.third_party, m.reference_set
    source = (ref.x[:, None] == tp.x[None]).all(-1).float().argmax(1)  # each reference row's third-party row
    assert torch.equal(ref.x, tp.x[source])  # a label correction leaves the inputs alone
    assert bool((ref.y != tp.y[source]).all())  # every forget label is a wrong one, so is every reference label
    deletion = get_method("dist_match", epochs=3, stop_tol=0.5)
    deletion.unlearn(model, replace(task, corrected=None), seed=0)
    assert deletion.epochs_run == 0  # the same tolerance stops a deletion before its first step


# -- the method -------------------------------------------------------------------------------------------
def test_subset_mode_unlearns_a_memorised_random_subset():
    """On a model that memorised its training set (train acc 1, test ~0.6) the subset mode moves
    the forget scores towards the third-party ones (the stratified AUC falls) and forgets."""
    bundle = load_dataset("synthetic", n_samples=600, n_features=20, n_classes=4, separation=0.6)
    task = get_scenario("random", forget_size=0.2).build(bundle, seed=0).task
    with seeded(0):
        model = build_model("mlp", bundle.input_shape, bundle.num_classes, hidden=(64, 64))
    train_model(model, Split.concat(task.forget, task.retain), TOY_MEMORISE, seed=0)
    assert accuracy(model, task.forget) == 1.0
    m = get_method("dist_match")
    out = m.unlearn(model, task, seed=0)
    assert m.mode == "subset" and m.history[0] > 0.7
    assert m.history[-1] < m.history[0] - 0.1
    assert forget_loss(out, task) > 2 * forget_loss(model, task)
    assert accuracy(out, task.forget) < 0.9 and accuracy(out, task.retain) > 0.8


def test_targets_are_per_class_quantiles_of_the_current_third_party_scores():
    model, data = make_toy("random", forget_size=0.1)
    m = get_method("dist_match", epochs=1, small_set_scaling=False)
    m.unlearn(model, data.task, seed=0)  # one epoch: the only check (and targets) is before the first step
    tgt = data.task.third_party
    for c in torch.unique(data.task.forget.y):
        t = m.targets[data.task.forget.y == c]
        # every target lies within the range of the checked model's third-party scores of its class
        scores = lira_confidence(model(tgt.x[tgt.y == c]), tgt.y[tgt.y == c]).detach()
        assert float(t.min()) >= float(scores.min()) - 1e-4 and float(t.max()) <= float(scores.max()) + 1e-4


@pytest.mark.parametrize("scaling, forget_size, lr_factor, epoch_cap", [
    (True, 16, 0.5, 12),      # kappa = 16 / 64: lr * sqrt(kappa), steps (= epochs here) / kappa
    (False, 16, 1.0, 3),      # the rule switched off
    (True, 64, 1.0, 3),       # a forget set of at least one batch: unchanged
])
def test_small_forget_sets_follow_the_square_root_scaling_rule(scaling, forget_size, lr_factor, epoch_cap):
    model, data = make_toy("instance", forget_size=forget_size)
    m = get_method("dist_match", epochs=3, lr=1e-3, batch_size=64, small_set_scaling=scaling)
    m.unlearn(model, data.task, seed=0)
    assert m.mode == "subset" and m.epoch_count() == epoch_cap and m.epochs_run <= epoch_cap
    assert m.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * lr_factor)


def test_subset_checks_read_at_most_reference_size_third_party_samples():
    model, data = make_toy("random", forget_size=0.1)
    seen: list[int] = []
    m = get_method("dist_match", epochs=2, reference_size=10)
    checked = m.outputs
    m.outputs = lambda x: (seen.append(len(x)), checked(x))[1]
    m.unlearn(model, data.task, seed=0)
    assert seen[:2] == [len(data.task.forget), 10]  # the forget set, then the drawn third-party rows
    rows = m.check_rows(len(data.task.third_party), 10)
    assert len(set(rows.tolist())) == 10 and torch.equal(rows, m.check_rows(len(data.task.third_party), 10))


def test_small_set_scaling_leaves_concept_mode_alone():
    model, data = make_toy("class", forget_class=0)
    few = replace(data.task, retain=None, forget=data.task.forget.subset(np.arange(20)))  # concept: >= concept_min
    m = get_method("dist_match", concept_epochs=2, lr=1e-3, batch_size=64)
    m.unlearn(model, few, seed=0)
    assert m.mode == "concept" and m.epoch_count() == 2 and m.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)


@pytest.mark.parametrize("scenario, options, expected", [
    ("class", {"forget_class": 0}, "concept"),      # a whole label
    ("random", {"forget_size": 0.1}, "subset"),     # several labels
    ("instance", {"forget_size": 1}, "subset"),     # one label, a tiny share of its class
])
def test_auto_mode_rule(scenario, options, expected):
    model, data = make_toy(scenario, **options)
    m = get_method("dist_match", epochs=1)
    m.unlearn(model, data.task, seed=0)
    assert m.mode == expected


def test_auto_mode_corrections_and_no_retain():
    model, data = make_toy("class", forget_class=0)
    task = data.task
    m = get_method("dist_match")
    assert m.choose_mode(replace(task, corrected=task.forget)) == "subset"  # a correction keeps the class
    assert m.choose_mode(replace(task, retain=None)) == "concept"  # single label, >= concept_min samples
    few = replace(task, retain=None, forget=task.forget.subset(np.arange(5)))
    assert m.choose_mode(few) == "subset"


@pytest.mark.parametrize("name", ["dist_match", "dist_match_noretain"])
def test_runs_without_retain_and_forgets_a_class(name):
    model, data = make_toy("class", forget_class=0)
    task = data.task
    m = get_method(name, epochs=5, lr=3e-3)
    out = m.unlearn(model, task if name == "dist_match_noretain" else replace(task, retain=None), seed=0)
    before = (model(task.forget.x).argmax(1) == task.forget.y).float().mean()
    after = (out(task.forget.x).argmax(1) == task.forget.y).float().mean()
    assert after < before - 0.3
    assert m.mode == "concept" and m.retain_set is None  # the variant never sees the task's retain split
    assert not torch.isin(m.target_set.y, torch.tensor([0])).any()  # forgotten class withheld


def test_declared_splits():
    cls, variant = METHODS.get("dist_match"), METHODS.get("dist_match_noretain")
    assert cls.requires == ("forget", "third_party") and set(cls.optional) == {"retain", "corrected"}
    assert variant.requires == cls.requires and "retain" not in variant.optional and variant.withheld == ("retain",)


# -- the backdoor scenario ------------------------------------------------------------------------------
def test_backdoor_trigger_and_poison_rate():
    bundle = load_dataset("digits")
    sc = get_scenario("backdoor", poison_rate=0.1, target=3)
    d = sc.build(bundle, seed=0)
    n = len(bundle.train)
    assert len(d.forget_indices) == round(0.1 * n) and d.train_key
    assert (d.task.forget.y == 3).all() and (bundle.train.y[d.forget_indices] != 3).all()
    hi = float(bundle.train.x.max())
    # 2x2 patch of the maximum value in the bottom-right corner, nothing else changed
    assert torch.all(d.task.forget.x[:, :, 6:, 6:] == hi)
    diff = (d.train.x != bundle.train.x).flatten(1).any(1).numpy()
    assert set(np.flatnonzero(diff)) <= set(d.forget_indices.tolist())
    rest = np.setdiff1d(np.arange(n), d.forget_indices)
    assert torch.equal(d.train.y[rest], bundle.train.y[rest])
    assert len(d.task.retain) == n - len(d.forget_indices)
    # a different seed poisons different samples and keys a different original
    assert sc.build(bundle, seed=1).train_key != d.train_key


def test_trigger_region_scales_and_1d():
    assert trigger_region((1, 8, 8)) == (slice(None), slice(6, 8), slice(6, 8))
    assert trigger_region((3, 32, 32)) == (slice(None), slice(28, 32), slice(28, 32))
    assert trigger_region((1, 40)) == (slice(None), slice(35, 40))


class _Detector(nn.Module):
    """Predicts class 2 when the bottom-right pixel is 1, else class 0 (a perfect backdoor)."""

    def forward(self, x):
        trig = (x[:, 0, -1, -1] == 1.0).float()
        return torch.stack([1 - trig, torch.zeros_like(trig), trig], 1) * 5.0


def test_asr_formula_on_a_hand_made_model():
    x = torch.zeros(6, 1, 4, 4)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    region = trigger_region((1, 4, 4), 1)
    triggered = Split(apply_trigger(x, torch.ones(1, 1, 1), region), y)
    # every non-target sample is flipped to the target: ASR = 1 (target-class samples are excluded)
    assert attack_success_rate(_Detector(), triggered, target=2) == 1.0
    # trigger absent: nothing goes to the target
    assert attack_success_rate(_Detector(), Split(x, y), target=2) == 0.0
    # half the non-target samples triggered: ASR = 2 / 4
    half = x.clone()
    half[[0, 2]] = triggered.x[[0, 2]]
    assert attack_success_rate(_Detector(), Split(half, y), target=2) == 0.5


@pytest.mark.parametrize("scenario, options, retain, expected", [
    # subset with retain: forget + as many third-party samples + the retain batch, in one pass (no BatchNorm)
    ("random", {"forget_size": 0.1}, True, lambda n: [2 * n + 256]),
    # subset without retain: the anchor alone, on a larger third-party batch
    ("random", {"forget_size": 0.1}, False, lambda n: [n + 256]),
    # concept: its own (smaller) retain batch
    ("class", {"forget_class": 0}, True, lambda n: [2 * n + 128]),
    # a correction without retain: the anchor's batch, and a forget-size batch of corrected data
    ("label", {"fraction": 0.2}, False, lambda n: [2 * n + 256]),
])
def test_each_mode_feeds_its_own_retention_batches(scenario, options, retain, expected):
    model, data = make_toy(scenario, **options)
    task = data.task if retain else replace(data.task, retain=None)
    sizes: list[int] = []
    m = get_method("dist_match", epochs=1, concept_epochs=1, batch_size=8)
    original_forward = type(model).forward

    def spy(module, x):  # records the batch of every training-mode forward pass (eval passes are the rule's)
        if module.training:
            sizes.append(len(x))
        return original_forward(module, x)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(model), "forward", spy)
        m.unlearn(model, task, seed=0)
    assert sizes[:len(expected(8))] == expected(8)
