"""When to retrain: how far a chain of approximate deletions has moved the model, against thresholds.

Each receipt's ``drift`` section measures, since the chain's first model (or since the last request
served by ``retrain``, which restarts the count: that model never saw any removed row):

* ``test_acc_change_points``: the sum of every request's test accuracy change (after - before on that
  request's test data), in points. With the same test data on every request this is exactly the
  current model's test accuracy minus the first model's. Unknown once a request had no test data.
* ``approximate_share_removed``: rows removed by methods other than ``retrain`` since then, as a share
  of the rows the chain's first model was trained on (unknown when that number is).
* ``forget_gap_points``: this request's |forget accuracy - test accuracy| after unlearning. Rows a
  model never trained on score like test rows, so a large gap says the forgotten rows still stand out
  (still remembered, or pushed below chance). It counts only when it is also more than twice its
  standard error (two-proportion z-test, pooled), so a handful of forget rows cannot cross it by chance.
* ``ulira_acc``: the per-example audit's verdict, when ``--audit`` ran (0.5: the method's results
  look like retraining; 1.0: every forget row exposed).

``retrain_recommended`` is true when any of them crosses its threshold (``RetrainThresholds``; each
can be changed or turned off with None), with one reason per threshold crossed. A chain keeps the
thresholds of its previous link unless a request changes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from ..errors import HyperparameterError
from ..params import Hyperparameters, convert_fields, hp

#: a forget gap counts only when above this many standard errors
GAP_Z = 2.0


@dataclass
class RetrainThresholds(Hyperparameters):
    """When a chain's drift calls for a real retrain; None turns a check off."""

    test_drop: Optional[float] = hp(2.0, "test accuracy lost since the chain's first model, in points",
                                    "our choice: a loss a deployed classifier's owner would notice", ge=0)
    removed_share: Optional[float] = hp(0.10, "share of the first model's training rows removed by approximate "
                                        "methods since the last exact model", "our choice: the largest single "
                                        "request the benchmarks measure; over streams of 2% requests the gap to "
                                        "Retrain compounds (the continual-deletion benchmark)", gt=0, le=1)
    forget_gap: Optional[float] = hp(10.0, "|forget - test accuracy| after unlearning, in points (and more than "
                                     "twice its standard error)", "our choice", ge=0)
    ulira_acc: Optional[float] = hp(0.70, "U-LiRA accuracy of the audit above which the method's results are told "
                                    "apart from retraining", "our choice: Retrain scores about 0.5, a method that "
                                    "changes nothing above 0.7", ge=0.5, le=1)


def thresholds_for(previous: Optional[Mapping[str, Any]], given: Any = None,
                   owner: str = "retrain_thresholds") -> RetrainThresholds:
    """The previous link's thresholds (the defaults for a first link) updated with ``given`` (a dict or a
    ``RetrainThresholds``)."""
    if isinstance(given, RetrainThresholds):
        return given
    if given is not None and not isinstance(given, Mapping):
        raise TypeError(f"{owner} must be a dict or RetrainThresholds, got {type(given).__name__}")
    values = dict(previous["drift"]["thresholds"]) if previous is not None else {}
    try:
        values.update(convert_fields(RetrainThresholds, dict(given or {}), owner))
        limits = RetrainThresholds(**values)
        limits.validate(owner)
    except HyperparameterError as exc:  # "owner test_drop=-1.0 must be >= 0", as the user wrote it
        raise HyperparameterError(str(exc).replace(f"{owner}.", f"{owner} ", 1)) from None
    return limits


def assess_drift(receipt: Mapping[str, Any], previous: Optional[Mapping[str, Any]] = None,
                 thresholds: Any = None) -> dict[str, Any]:
    """The ``drift`` section of ``receipt`` (which needs its method, metrics, counts, chain and hashes),
    continuing the previous link's."""
    limits = thresholds_for(previous, thresholds)
    request = receipt["chain"]["requests"]
    if receipt["method"]["name"] == "retrain":
        return _restart(receipt, request, limits)
    prev = previous["drift"] if previous is not None else None
    values, not_checked, notes = {}, {}, []
    values["test_drop"] = _test_change(receipt, previous, not_checked, notes)
    rows = (prev["approximate_rows_removed"] if prev else 0) + receipt["counts"]["forget"]
    total = receipt["chain"]["training_rows"]
    values["removed_share"] = round(rows / total, 9) if total else None
    if total is None:
        not_checked["removed_share"] = "the number of rows the first model was trained on is unknown"
    values["forget_gap"], gap_se = _forget_gap(receipt, not_checked)
    audit = receipt.get("audit")
    values["ulira_acc"] = audit["ulira_acc"] if isinstance(audit, Mapping) else None
    if values["ulira_acc"] is None:
        not_checked["ulira_acc"] = "no per-example audit (--audit K)"
    reasons = _reasons(values, gap_se, limits, not_checked)
    baseline = prev["baseline"] if prev else {"weights_sha256": receipt["hashes"]["input_weights_sha256"],
                                              "model": f"the input model of request {request}"}
    return {"baseline": baseline, "requests_since_baseline": (prev["requests_since_baseline"] if prev else 0) + 1,
            "test_acc_change_points": values["test_drop"], "approximate_rows_removed": rows,
            "approximate_share_removed": values["removed_share"], "forget_gap_points": values["forget_gap"],
            "forget_gap_se_points": gap_se, "ulira_acc": values["ulira_acc"], "thresholds": limits.to_dict(),
            "retrain_recommended": bool(reasons), "crossed": list(reasons), "reasons": list(reasons.values()),
            "not_checked": not_checked, "notes": notes}


def _restart(receipt: Mapping[str, Any], request: int, limits: RetrainThresholds) -> dict[str, Any]:
    """A ``retrain`` request: the retrained model is the new baseline and nothing has drifted yet."""
    known = receipt["chain"]["training_rows"] is not None
    return {"baseline": {"weights_sha256": receipt["hashes"]["output_weights_sha256"],
                         "model": f"the model retrained at request {request}"},
            "requests_since_baseline": 0, "test_acc_change_points": 0.0, "approximate_rows_removed": 0,
            "approximate_share_removed": 0.0 if known else None, "forget_gap_points": None,
            "forget_gap_se_points": None, "ulira_acc": None, "thresholds": limits.to_dict(),
            "retrain_recommended": False, "crossed": [], "reasons": [], "not_checked": {},
            "notes": ["this request retrained the model from scratch without every removed row: drift counts "
                      "restart from its output"]}


def _test_change(receipt: Mapping[str, Any], previous: Optional[Mapping[str, Any]], not_checked: dict,
                 notes: list) -> Optional[float]:
    before, after = receipt["metrics"]["before"].get("test_acc"), receipt["metrics"]["after"].get("test_acc")
    prev = previous["drift"] if previous is not None else None
    prior = prev["test_acc_change_points"] if prev else 0.0
    if prior is None:
        not_checked["test_drop"] = prev["not_checked"].get("test_drop", "an earlier request had no test data")
        return None
    if before is None or after is None:
        not_checked["test_drop"] = f"request {receipt['chain']['requests']} had no test data"
        return None
    own, earlier = receipt["hashes"].get("test_samples_sha256"), previous and previous["hashes"].get("test_samples_sha256")
    if earlier and own != earlier:
        notes.append("the test data differ from the previous request's: the test accuracy change adds up "
                     "measurements on different test sets")
    return _points(prior + 100.0 * (after - before))


def _forget_gap(receipt: Mapping[str, Any], not_checked: dict) -> tuple[Optional[float], Optional[float]]:
    """|forget - test accuracy| after unlearning and its standard error under "same accuracy", in points."""
    after, counts = receipt["metrics"]["after"], receipt["counts"]
    if after.get("test_acc") is None:
        not_checked["forget_gap"] = "no test data"
        return None, None
    fa, ta, nf, nt = after["forget_acc"], after["test_acc"], counts["forget"], counts["test"]
    pooled = (nf * fa + nt * ta) / (nf + nt)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / nf + 1.0 / nt))
    return _points(100.0 * abs(fa - ta)), _points(100.0 * se)


def _points(value: float) -> float:
    """Rounded to 1e-4 points, finer than any accuracy step of up to a million samples: float noise
    (0.79 - 0.80 = -0.010000000000000009; accuracies computed in float32) must not decide a
    comparison with a threshold."""
    return round(value, 4)


def _reasons(values: dict[str, Optional[float]], gap_se: Optional[float], limits: RetrainThresholds,
             not_checked: dict) -> dict[str, str]:
    """The thresholds crossed, each with its reason."""
    reasons = {}
    for name, value in values.items():
        limit = getattr(limits, name)
        if limit is None:
            not_checked.setdefault(name, "turned off")
        if limit is None or value is None:
            continue
        if name == "test_drop" and -value > limit:
            reasons[name] = (f"test accuracy fell {-value:.1f} points since the chain's first model "
                           f"(threshold {limit:g})")
        elif name == "removed_share" and value > limit:
            reasons[name] = (f"{100 * value:.1f}% of the training rows were removed by approximate methods "
                           f"since the last exact model (threshold {100 * limit:g}%)")
        elif name == "forget_gap" and value > limit and value > GAP_Z * gap_se:
            reasons[name] = (f"the forget set's accuracy is {value:.1f} points from the test accuracy "
                           f"(threshold {limit:g}, standard error {gap_se:.1f}): the forgotten rows do not "
                           "behave like unseen data")
        elif name == "ulira_acc" and value > limit:
            reasons[name] = (f"the audit tells this method's results apart from retraining (U-LiRA accuracy "
                           f"{value:.2f}, threshold {limit:g})")
    return reasons


def describe_drift(drift: Mapping[str, Any]) -> list[str]:
    """Lines for a person: the verdict, then each measure against its threshold."""
    limits, crossed = drift["thresholds"], drift["crossed"]
    lines = [f"retrain recommended: {'YES' if drift['retrain_recommended'] else 'no'}"
             + (f" ({len(crossed)} threshold{'s' if len(crossed) > 1 else ''} crossed)" if crossed else "")
             + f"; drift since {drift['baseline']['model']}:"]
    se = drift["forget_gap_se_points"]
    gap_limit = f" and 2 standard errors ({2 * se:.1f})" if se is not None else ""
    shown = {
        "test_drop": ("test accuracy change", drift["test_acc_change_points"],
                      lambda v: f"{v:+.1f} points", lambda t: f"-{t:g} points"),
        "removed_share": ("rows removed by approximate methods", drift["approximate_share_removed"],
                          lambda v: f"{100 * v:.1f}%", lambda t: f"{100 * t:g}%"),
        "forget_gap": ("forget/test accuracy gap", drift["forget_gap_points"],
                       lambda v: f"{v:.1f} points", lambda t: f"{t:g} points{gap_limit}"),
        "ulira_acc": ("audit U-LiRA accuracy", drift["ulira_acc"], lambda v: f"{v:.2f}", lambda t: f"{t:g}"),
    }
    for name, (label, value, show, show_limit) in shown.items():
        why = drift["not_checked"].get(name)
        if why is not None:
            lines.append(f"  {label:<36} not checked: {why}")
        elif value is not None:
            mark = "   CROSSED" if name in crossed else ""
            lines.append(f"  {label:<36} {show(value):<13} threshold {show_limit(limits[name])}{mark}")
    return lines + [f"  note: {note}" for note in drift["notes"]]
