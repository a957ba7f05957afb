"""When to retrain: each drift measure and threshold on hand-computed links, carried along a chain,
restarted by a retrain, turned off, inherited, and printed."""

from __future__ import annotations

import math

import pytest

from unlearnkit.errors import HyperparameterError, UnknownNameError
from unlearnkit.ledger.drift import RetrainThresholds, assess_drift, describe_drift, thresholds_for


def _link(request=1, method="rl", forget=10, test=200, before=(1.0, 0.80), after=(0.80, 0.79), training_rows=1000,
          audit=None, test_hash="t"):
    """A receipt with just what the drift reads; ``before`` / ``after``: (forget_acc, test_acc), None = no test."""
    def metrics(pair):
        return {"forget_acc": pair[0]} if pair[1] is None else {"forget_acc": pair[0], "test_acc": pair[1]}

    receipt = {"method": {"name": method}, "metrics": {"before": metrics(before), "after": metrics(after)},
               "counts": {"forget": forget, "test": test if after[1] is not None else 0},
               "chain": {"requests": request, "training_rows": training_rows},
               "hashes": {"input_weights_sha256": f"in{request}", "output_weights_sha256": f"out{request}",
                          "test_samples_sha256": test_hash if after[1] is not None else None}}
    if audit is not None:
        receipt["audit"] = {"ulira_acc": audit}
    return receipt


def _chain(*links, thresholds=None):
    """Each link's drift, the previous one's as input; returns the receipts."""
    out, previous = [], None
    for link in links:
        link["drift"] = assess_drift(link, previous, thresholds)
        out.append(link)
        previous = link
    return out


def test_test_accuracy_change_adds_up_over_the_chain_and_crosses_above_its_threshold():
    first, second, third = _chain(_link(1, before=(1, .800), after=(.8, .790)), _link(2, before=(1, .790), after=(.8, .780)),
                                  _link(3, before=(1, .780), after=(.8, .775)))
    assert first["drift"]["test_acc_change_points"] == pytest.approx(-1.0)
    assert second["drift"]["test_acc_change_points"] == pytest.approx(-2.0)  # exactly the threshold: not above
    assert "test_drop" not in second["drift"]["crossed"]
    assert third["drift"]["test_acc_change_points"] == pytest.approx(-2.5)
    assert third["drift"]["crossed"] == ["test_drop"] and third["drift"]["retrain_recommended"] is True
    assert third["drift"]["reasons"] == ["test accuracy fell 2.5 points since the chain's first model (threshold 2)"]
    assert third["drift"]["baseline"] == {"weights_sha256": "in1", "model": "the input model of request 1"}
    assert third["drift"]["requests_since_baseline"] == 3


def test_share_removed_by_approximate_methods_restarts_after_a_retrain():
    links = _chain(_link(1, forget=60), _link(2, forget=50), _link(3, method="retrain", forget=30), _link(4, forget=40))
    shares = [link["drift"]["approximate_share_removed"] for link in links]
    assert shares == [pytest.approx(0.06), pytest.approx(0.11), 0.0, pytest.approx(0.04)]
    assert [link["drift"]["crossed"] for link in links] == [[], ["removed_share"], [], []]
    assert links[1]["drift"]["reasons"] == ["11.0% of the training rows were removed by approximate methods since "
                                            "the last exact model (threshold 10%)"]
    restart = links[2]["drift"]
    assert restart["baseline"] == {"weights_sha256": "out3", "model": "the model retrained at request 3"}
    assert restart["retrain_recommended"] is False and restart["test_acc_change_points"] == 0.0
    assert links[3]["drift"]["baseline"] == restart["baseline"] and links[3]["drift"]["requests_since_baseline"] == 1
    assert links[3]["drift"]["test_acc_change_points"] == pytest.approx(-1.0)  # counted from the retrained model


def test_forget_gap_counts_only_above_its_threshold_and_twice_its_standard_error():
    # 10 forget rows at 100% vs 200 test rows at 85%: gap 15 points, pooled p = (10 + 170) / 210
    small = _chain(_link(forget=10, before=(1, .85), after=(1.0, .85)))[0]["drift"]
    p = 180 / 210
    se = 100 * math.sqrt(p * (1 - p) * (1 / 10 + 1 / 200))
    assert small["forget_gap_points"] == pytest.approx(15.0) and small["forget_gap_se_points"] == pytest.approx(se, abs=1e-4)
    assert se > 7.5 and "forget_gap" not in small["crossed"]  # 15 < 2 standard errors: chance with 10 rows
    large = _chain(_link(forget=100, before=(1, .85), after=(1.0, .85)))[0]["drift"]
    assert large["forget_gap_se_points"] < 7.5 and large["crossed"] == ["forget_gap"]
    assert "the forgotten rows do not behave like unseen data" in large["reasons"][0]
    below = _chain(_link(forget=100, before=(1, .85), after=(.76, .85)))[0]["drift"]  # 9 points: under 10
    assert below["forget_gap_points"] == pytest.approx(9.0) and below["crossed"] == []
    over_forgot = _chain(_link(forget=100, before=(1, .85), after=(.0, .85)))[0]["drift"]
    assert over_forgot["crossed"] == ["forget_gap"]  # pushed below chance stands out as well


def test_the_audit_verdict_and_what_could_not_be_checked():
    audited = _chain(_link(audit=0.71))[0]["drift"]
    assert audited["crossed"] == ["ulira_acc"] and "U-LiRA accuracy 0.71, threshold 0.7" in audited["reasons"][0]
    assert _chain(_link(audit=0.70))[0]["drift"]["crossed"] == []
    plain = _chain(_link(training_rows=None, after=(.8, None), before=(1, None)))[0]["drift"]
    assert plain["not_checked"] == {"test_drop": "request 1 had no test data",
                                    "removed_share": "the number of rows the first model was trained on is unknown",
                                    "forget_gap": "no test data", "ulira_acc": "no per-example audit (--audit K)"}
    assert plain["retrain_recommended"] is False
    # a request without test data leaves the accumulated change unknown for the rest of the chain
    links = _chain(_link(1), _link(2, after=(.8, None), before=(1, None)), _link(3))
    assert links[2]["drift"]["test_acc_change_points"] is None
    assert links[2]["drift"]["not_checked"]["test_drop"] == "request 2 had no test data"
    changed = _chain(_link(1), _link(2, test_hash="other"))[1]["drift"]
    assert "the test data differ from the previous request's" in changed["notes"][0]


def test_thresholds_turn_off_are_inherited_and_checked():
    off = _chain(_link(forget=200), thresholds={"removed_share": None})[0]["drift"]
    assert off["approximate_share_removed"] == pytest.approx(0.2) and off["crossed"] == []
    assert off["not_checked"]["removed_share"] == "turned off" and off["thresholds"]["removed_share"] is None
    first, second = _chain(_link(1, forget=30), _link(2, forget=30), thresholds={"removed_share": "0.05"})
    assert first["drift"]["crossed"] == [] and second["drift"]["crossed"] == ["removed_share"]
    inherited = assess_drift(_link(3, forget=1), second)  # no thresholds given: the chain's stay
    assert inherited["thresholds"]["removed_share"] == 0.05
    assert assess_drift(_link(3, forget=1), second, {"test_drop": 1})["thresholds"] == {
        **RetrainThresholds().to_dict(), "removed_share": 0.05, "test_drop": 1.0}
    assert RetrainThresholds().to_dict() == {"test_drop": 2.0, "removed_share": 0.1, "forget_gap": 10.0, "ulira_acc": 0.7}
    with pytest.raises(UnknownNameError, match=r"--retrain-threshold has no key\(s\) \['tests_drop'\]"):
        thresholds_for(None, {"tests_drop": 1}, "--retrain-threshold")
    with pytest.raises(HyperparameterError, match="^retrain_thresholds removed_share=1.5 must be in \\(0, 1\\]"):
        thresholds_for(None, {"removed_share": 1.5})
    with pytest.raises(HyperparameterError, match="^--retrain-threshold test_drop must be of type float, got 'x'"):
        thresholds_for(None, {"test_drop": "x"}, "--retrain-threshold")
    with pytest.raises(HyperparameterError, match="ulira_acc=0.3 must be in \\[0.5, 1\\]"):
        thresholds_for(None, {"ulira_acc": 0.3})


def test_the_printed_lines_mark_what_crossed():
    drift = _chain(_link(1, forget=120, before=(1, .8), after=(.8, .79)))[0]["drift"]
    lines = describe_drift(drift)
    assert lines[0] == "retrain recommended: YES (1 threshold crossed); drift since the input model of request 1:"
    assert lines[1].split() == ["test", "accuracy", "change", "-1.0", "points", "threshold", "-2", "points"]
    assert lines[2].endswith("12.0%         threshold 10%   CROSSED")
    assert lines[4].endswith("not checked: no per-example audit (--audit K)")
