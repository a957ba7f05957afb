"""Per-example attacks: the LiRA statistic, LiRA, U-LiRA, the NeurIPS'23 challenge epsilon and score."""

from __future__ import annotations

import json
import math
from decimal import Decimal, getcontext

import numpy as np
import pytest
import torch

from unlearnkit.errors import DataError, UnlearnkitError
from unlearnkit.evaluation.attacks import (LiRA, attack_epsilon, auc, balanced_keep_matrix, bucket_index,
                                           challenge_score, epsilon_points, forgetting_quality, lira_statistic,
                                           max_epsilon, model_statistic, per_example_epsilons, tpr_at_fpr,
                                           ulira_leave_one_out)
from unlearnkit.evaluation.attacks.challenge import example_epsilon

DELTA = 1e-5


# -- the LiRA statistic ------------------------------------------------------------------------
def _phi_high_precision(logits, y):
    getcontext().prec = 60
    z = [Decimal(float(v)) for v in logits]
    exps = [v.exp() for v in z]
    total = sum(exps)
    p = [e / total for e in exps]
    return float(p[y].ln() - sum(p[j] for j in range(len(p)) if j != y).ln())


@pytest.mark.parametrize("logits,y", [([40.0, 0.0, 0.0], 0), ([0.0, 80.0, -3.0, 5.0], 1), ([1.0, 2.0, 3.0], 2),
                                      ([745.0, 0.0], 0), ([-30.0, 10.0, 10.0], 0), ([0.0, 0.0], 1)])
def test_lira_statistic_matches_high_precision_value(logits, y):
    phi = lira_statistic(torch.tensor([logits], dtype=torch.float32), torch.tensor([y]))
    assert phi.dtype == np.float64 and np.isfinite(phi).all()
    assert phi[0] == pytest.approx(_phi_high_precision(logits, y), rel=1e-9, abs=1e-9)


def test_lira_statistic_is_stable_where_the_naive_formula_breaks():
    logits = torch.tensor([[60.0, 0.0, 0.0, 0.0]])
    p = torch.softmax(logits, 1)
    naive = torch.log(p[0, 0]) - torch.log(1 - p[0, 0])  # p_y rounds to 1: inf
    assert not torch.isfinite(naive)
    phi = lira_statistic(logits, torch.tensor([0]))
    assert phi[0] == pytest.approx(60.0 - math.log(3.0), abs=1e-9)


def test_lira_statistic_rejects_bad_labels_and_shapes():
    with pytest.raises(DataError, match="labels"):
        lira_statistic(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(DataError, match="shape"):
        lira_statistic(torch.zeros(2, 3), torch.tensor([0]))


def test_model_statistic_flip_averages_views():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    x = torch.arange(8.0).view(2, 1, 2, 2)
    y = torch.tensor([0, 1])
    plain = model_statistic(model, (x, y))
    flipped = model_statistic(model, (torch.flip(x, dims=[3]), y))
    both = model_statistic(model, (x, y), augment="flip")
    assert np.allclose(both, (plain + flipped) / 2)
    with pytest.raises(DataError, match="flip"):
        model_statistic(model, (x.view(2, 4), y), augment="flip")


# -- the challenge's epsilon -----------------------------------------------------------------------
@pytest.mark.parametrize("fpr,fnr,expected", [
    (0.1, 0.1, math.log(0.9 - DELTA) - math.log(0.1)),
    (0.2, 0.5, math.log(0.5 - DELTA) - math.log(0.2)),  # the second term is the larger
    (0.5, 0.2, math.log(0.5 - DELTA) - math.log(0.2)),  # symmetric in FPR <-> FNR
    (0.6, 0.6, 0.0),                                    # negative -> clipped at 0
    (0.5, 0.5, 0.0),
    (1.0, 0.5, 0.0),                                    # log(1 - delta - 1) = log(<0): -inf term
    (0.25, 0.05, math.log(0.75 - DELTA) - math.log(0.05)),
])
def test_attack_epsilon_hand_computed(fpr, fnr, expected):
    assert float(attack_epsilon(fpr, fnr)) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_attack_epsilon_zero_rates():
    eps = attack_epsilon([0.0, 0.0, 0.3, 0.0], [0.0, 0.3, 0.0, 1.0])
    assert eps[0] == np.inf          # perfect separation
    assert np.isnan(eps[1:]).all()   # one zero rate: discarded (sampling artefact)
    with pytest.raises(DataError):
        attack_epsilon(1.5, 0.1)


def test_example_epsilon_takes_max_discards_and_caps():
    n = 32
    assert example_epsilon(np.array([0.0, 0.1]), np.array([0.5, 0.1]), n) == pytest.approx(
        math.log(0.9 - DELTA) - math.log(0.1))
    assert example_epsilon(np.array([0.0, 0.2]), np.array([0.4, 0.0]), n) == 0.0  # all discarded
    assert example_epsilon(np.array([0.0, 0.5]), np.array([0.0, 0.5]), n) == max_epsilon(n)  # perfect: capped


def test_max_epsilon_and_buckets():
    assert max_epsilon(32) == 4 and max_epsilon(512) == 7 and max_epsilon(3) == 1
    with pytest.raises(DataError, match="at least 3"):
        max_epsilon(2)
    eps = np.array([0.0, 0.49, 0.5, 1.2, 3.99, 4.0, 9.0])
    assert bucket_index(eps, 32).tolist() == [1, 1, 2, 3, 8, 0, 0]
    assert epsilon_points(eps, 32).tolist() == [1.0, 1.0, 0.5, 0.25, 2 / 2 ** 8, 0.0, 0.0]
    # N = 512: buckets up to 7, so 6.9 still earns points
    assert epsilon_points(np.array([6.9, 7.0]), 512).tolist() == [2 / 2 ** 14, 0.0]


def test_challenge_perfect_separation_and_identical_models():
    n = 16
    u = np.full((n, 3), 5.0)
    r = np.random.default_rng(0).normal(size=(n, 3))
    eps = per_example_epsilons(u, r)
    assert (eps == max_epsilon(n)).all()
    assert forgetting_quality(u, r) == 0.0
    same = np.random.default_rng(1).normal(size=(n, 3))
    assert (per_example_epsilons(same, same) == 0).all()  # every attack has FPR = 1 - FNR
    assert forgetting_quality(same, same) == 1.0


def test_challenge_score_null_and_exposed():
    rng = np.random.default_rng(0)
    n = 32
    u0, r0 = rng.normal(size=(n, 40)), rng.normal(size=(n, 40))
    fq_plugin = forgetting_quality(u0, r0)
    fq_cp = forgetting_quality(u0, r0, rates="clopper_pearson")
    assert 0.05 < fq_plugin < 0.35          # the plug-in estimator's known ceiling
    assert fq_cp > 0.9                       # identically distributed: about 1
    exposed = forgetting_quality(u0 + 4, r0, rates="clopper_pearson")
    assert exposed < 0.15
    cs = challenge_score(u0, r0, [0.9] * n, [1.0] * n, [0.8] * n, [0.8] * n, rates="clopper_pearson")
    assert cs.score == pytest.approx(cs.forgetting_quality * 0.9)
    assert cs.to_dict()["challenge_n"] == n and cs.max_epsilon == 4


# -- LiRA ---------------------------------------------------------------------------------------------
def test_balanced_keep_matrix():
    keep = balanced_keep_matrix(8, 50, seed=3)
    assert keep.shape == (8, 50) and (keep.sum(0) == 4).all()
    assert len({tuple(r) for r in keep}) == 8
    with pytest.raises(DataError):
        balanced_keep_matrix(5, 10)


def _memorising_stats(k=16, n=400, gap=4.0, seed=0):
    """Statistics of a memorising model: IN examples have phi higher by ``gap`` (example-dependent base)."""
    rng = np.random.default_rng(seed)
    keep = balanced_keep_matrix(k, n, seed)
    base = rng.normal(0, 2, size=n)
    stats = base + gap * keep + rng.normal(0, 1, size=(k, n))
    member = rng.random(n) < 0.5
    target = base + gap * member + rng.normal(0, 1, size=n)
    return stats, keep, target, member


def test_lira_separates_members_of_a_memorising_model():
    stats, keep, target, member = _memorising_stats(gap=4.0)
    res = LiRA.fit(stats, keep).attack(target, member)
    s = res.summary()
    assert s["auc"] > 0.95 and s["tpr_at_0.01_fpr"] > 0.3
    # no memorisation: chance
    stats, keep, target, member = _memorising_stats(gap=0.0)
    assert abs(LiRA.fit(stats, keep).attack(target, member).summary()["auc"] - 0.5) < 0.1


def test_lira_variance_options_and_errors():
    stats, keep, target, member = _memorising_stats(k=8, n=50, gap=3.0)
    g = LiRA.fit(stats, keep, "global")
    p = LiRA.fit(stats, keep, "per_example")
    assert np.unique(g.std_in).size == 1 and np.unique(p.std_in).size > 1
    assert LiRA.fit(stats, keep, "auto").variance == "global"
    with pytest.raises(DataError):
        LiRA.fit(stats[:, :10], keep)


def test_roc_helpers():
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    labels = np.array([1, 1, 0, 0])
    assert auc(scores, labels) == 1.0
    assert tpr_at_fpr(scores, labels, 0.0) == 1.0
    assert auc(-scores, labels) == 0.0


# -- U-LiRA -------------------------------------------------------------------------------------------
def test_ulira_retrain_vs_retrain_is_chance_and_exposed_is_caught():
    rng = np.random.default_rng(0)
    k, n = 16, 200
    base = rng.normal(0, 2, size=n)
    retrained = base + rng.normal(0, 1, size=(k, n))
    also_retrained = base + rng.normal(0, 1, size=(k, n))
    null = ulira_leave_one_out(also_retrained, retrained)
    assert abs(null.info["acc"] - 0.5) < 0.06 and abs(null.info["auc"] - 0.5) < 0.06
    exposed = ulira_leave_one_out(base + 3 + rng.normal(0, 1, size=(k, n)), retrained)
    assert exposed.info["acc"] > 0.9 and exposed.info["auc"] > 0.95
    assert exposed.per_example["acc"].shape == (n,)
    with pytest.raises(DataError):
        ulira_leave_one_out(retrained[:2], retrained[:2])


# -- the audit end to end (tiny) ------------------------------------------------------------------
def test_audit_end_to_end_on_synthetic(tmp_path):
    from unlearnkit.bench.audit import AuditConfig, run_audit
    from unlearnkit.bench.pipeline import ModelCache
    from unlearnkit.bench.pipeline import ExperimentConfig

    exp = ExperimentConfig(dataset="synthetic", model="mlp", scenario="random", methods=["original", "retrain", "ga"],
                           seeds=[0], dataset_options={"n_samples": 240}, scenario_options={"forget_size": 0.1},
                           model_options={"hidden": [32]}, recipe={"epochs": 4})
    cfg = AuditConfig(experiment=exp, shadow_models=4, challenge_models=3, workers=1)
    cache = ModelCache(tmp_path / "cache")
    res = run_audit(cfg, tmp_path / "out", cache=cache, progress=False)
    rows = {r["method"]: r for r in res["rows"]}
    assert set(rows) == {"original", "retrain", "ga"}
    for r in rows.values():
        for key in ("ulira_acc", "ulira_auc", "challenge_score", "forgetting_quality", "challenge_n", "ulira_k"):
            assert key in r, (r["method"], key)
        assert r["challenge_n"] == 3 and r["ulira_k"] == 4
    assert rows["retrain"]["forgetting_quality_cp"] == 1.0
    assert 0.0 <= res["audit"]["lira_original"]["auc"] <= 1.0
    assert "lira_auc" in rows["original"]
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["rows"] and (tmp_path / "out" / "report.md").exists()
    assert (tmp_path / "out" / "lira_roc.png").exists() and (tmp_path / "out" / "per_example.png").exists()
    # a second run trains nothing new
    again = run_audit(cfg, None, cache=cache, progress=False)
    assert again["audit"]["n_trained"] == 0


def test_audit_config_errors():
    from unlearnkit.bench.audit import AuditConfig
    from unlearnkit.bench.pipeline import ExperimentConfig

    with pytest.raises(UnlearnkitError, match="even"):
        AuditConfig(ExperimentConfig(seeds=[0]), shadow_models=5).validate()
    with pytest.raises(UnlearnkitError, match=">= 3"):
        AuditConfig(ExperimentConfig(seeds=[0]), challenge_models=2).validate()


def test_audit_cli_registered():
    from unlearnkit.cli import build_parser

    args = build_parser().parse_args(["audit", "--dataset", "synthetic", "--model", "mlp", "--methods", "ft,ga",
                                      "-K", "4", "-N", "3", "--out", "x"])
    assert args.shadow_models == 4 and args.challenge_models == 3 and args.methods == ["ft", "ga"]


def test_audit_cli_bad_input_exits_2(tmp_path, capsys):
    from unlearnkit.cli import main

    code = main(["audit", "--dataset", "synthetic", "--model", "mlp", "--methods", "ga", "-K", "5", "-N", "3",
                 "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c"), "-q"])
    assert code == 2
    assert "even number" in capsys.readouterr().err


def test_top_level_audit_names_an_unknown_option():
    import unlearnkit

    with pytest.raises(unlearnkit.UnlearnkitError, match="shadows"):
        unlearnkit.audit("synthetic", "mlp", "random", ["original"], shadows=4)
