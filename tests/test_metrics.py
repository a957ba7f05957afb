"""Metric formulas on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unlearnkit.bench.reports import markdown_table, summarize
from unlearnkit.data import Split
from unlearnkit.evaluation import accuracy, avg_gap, evaluate, js_divergence, mia_efficacy, signed_gaps
from unlearnkit.evaluation.metrics import mean_std
from conftest import ConfidenceModel


def conf_split(values):
    return Split(torch.tensor(values, dtype=torch.float32).view(-1, 1), torch.zeros(len(values), dtype=torch.long))


def test_accuracy_hand_computed():
    model = ConfidenceModel()
    split = Split(torch.tensor([[0.9], [0.2], [0.7], [0.4]]), torch.tensor([0, 0, 1, 1]))
    assert accuracy(model, split) == pytest.approx(0.5)  # predicts 0, 1, 0, 1
    assert math.isnan(accuracy(model, None))


def test_mia_efficacy_counts_forget_samples_that_look_like_non_members():
    model = ConfidenceModel()
    rng = np.random.default_rng(0)
    retain = conf_split(list(rng.uniform(0.95, 0.999, 60)))      # members: confident
    test = conf_split(list(rng.uniform(0.3, 0.6, 40)))            # non-members: unsure
    forget_remembered = conf_split([0.98, 0.97, 0.99, 0.96])
    forget_forgotten = conf_split([0.4, 0.5, 0.45, 0.35])
    mixed = conf_split([0.98, 0.4, 0.99, 0.5])
    assert mia_efficacy(model, retain, test, forget_remembered) == 0.0
    assert mia_efficacy(model, retain, test, forget_forgotten) == 1.0
    assert mia_efficacy(model, retain, test, mixed) == 0.5


def test_js_divergence_hand_computed():
    p = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.3, 0.7]])
    q = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.3, 0.7]])
    js = js_divergence(p, q)
    assert js[0].item() == pytest.approx(math.log(2), rel=1e-6)
    expected = 0.5 * (0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)) + 0.5 * math.log(1 / 0.75)
    assert js[1].item() == pytest.approx(expected, rel=1e-6)
    assert js[2].item() == pytest.approx(0.0, abs=1e-12)


def test_gaps_hand_computed():
    method = {"forget_acc": 0.9, "retain_acc": 1.0, "test_acc": 0.8, "mia_efficacy": 0.3}
    retrain = {"forget_acc": 0.8, "retain_acc": 1.0, "test_acc": 0.85, "mia_efficacy": 0.5}
    gaps = signed_gaps(method, retrain)
    assert gaps == pytest.approx({"forget_acc": 0.1, "retain_acc": 0.0, "test_acc": -0.05, "mia_efficacy": -0.2})
    assert avg_gap(method, retrain) == pytest.approx(0.0875)


def test_summarize_averages_seeds_first_and_computes_speedup():
    rows = []
    for seed, (fa, t) in enumerate([(0.8, 10.0), (0.6, 14.0)]):
        rows.append({"method": "retrain", "seed": seed, "forget_acc": fa, "retain_acc": 1.0,
                     "test_acc": 0.9, "mia_efficacy": 0.5, "time_s": t})
    for seed, (fa, t) in enumerate([(1.0, 1.0), (0.8, 3.0)]):
        rows.append({"method": "ft", "seed": seed, "forget_acc": fa, "retain_acc": 1.0,
                     "test_acc": 0.9, "mia_efficacy": 0.3, "time_s": t})
    summary = {e["method"]: e for e in summarize(rows)}
    ft = summary["ft"]
    assert ft["n_seeds"] == 2
    assert ft["mean"]["forget_acc"] == pytest.approx(0.9)
    assert ft["std"]["forget_acc"] == pytest.approx(np.std([1.0, 0.8], ddof=1))
    # gap of the seed means: |0.9 - 0.7| = 0.2 and |0.3 - 0.5| = 0.2 -> mean over 4 metrics 0.1
    assert ft["avg_gap"] == pytest.approx(0.1)
    assert ft["speedup"] == pytest.approx(12.0 / 2.0)
    assert summary["retrain"]["avg_gap"] == 0.0
    table = markdown_table(list(summary.values()))
    assert "| `ft` | 90.0 ± 14.1 |" in table and "6.0×" in table


def test_mean_std_of_one_value_and_nans():
    assert mean_std([0.5]) == (0.5, 0.0)
    assert mean_std([1.0, float("nan"), 3.0]) == (2.0, pytest.approx(math.sqrt(2)))


def test_evaluate_reports_skipped_metrics():
    model = ConfidenceModel()
    out = evaluate(model, forget=(torch.tensor([[0.9]]), torch.tensor([0])))
    assert out["forget_acc"] == 1.0
    assert out["skipped"]["mia_efficacy"].startswith("skipped: needs retain and test")


def test_a_diverged_model_is_scored_not_crashed():
    class NaNModel(ConfidenceModel):
        def forward(self, x):
            return super().forward(x) * float("nan")

    split = conf_split([0.9, 0.8, 0.7, 0.95])
    assert mia_efficacy(NaNModel(), split, conf_split([0.5, 0.4, 0.3, 0.45]), split) in (0.0, 1.0)
