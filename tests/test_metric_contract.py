"""The contract every registered metric honours (run over the whole registry).

A metric computed from a model gives a finite number of its unit's range on a tiny model and its
hand-computed value on a case small enough to work out by hand; every metric, computed or reported
by a scenario or the audit, has a direction and is documented in docs/metrics.md with that
direction and unit; every metric a scenario adds to a row is registered.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from unlearnkit.data import Split, load_dataset
from unlearnkit.evaluation.registry import DIRECTIONS, METRICS, MetricInputs, compute_metrics
from unlearnkit.scenarios import SCENARIOS, get_scenario
from unlearnkit.task import UnlearningTask
from conftest import ConfidenceModel

DOC = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"


def _split(conf, labels=None) -> Split:
    y = torch.zeros(len(conf), dtype=torch.long) if labels is None else torch.tensor(labels)
    return Split(torch.tensor(conf, dtype=torch.float32).view(-1, 1), y)


def _hand_task() -> UnlearningTask:
    rng = np.random.default_rng(0)
    return UnlearningTask(
        forget=_split([0.9, 0.2, 0.7, 0.4], [0, 0, 1, 1]),
        retain=_split(list(rng.uniform(0.95, 0.999, 60))),         # members: confident
        test=_split(list(rng.uniform(0.3, 0.6, 40)), [0] * 30 + [1] * 10),
        num_classes=2)


class Uniform(nn.Module):
    """Predicts (1/2, 1/2) everywhere: the reference of the JS case."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.zeros(len(x), 2) + 0 * self.dummy


def _js(p: float) -> float:
    q, m = 0.5, (p + 0.5) / 2
    kl_pm = p * math.log(p / m) + (1 - p) * math.log((1 - p) / (1 - m))
    kl_qm = q * math.log(q / m) + (1 - q) * math.log((1 - q) / (1 - m))
    return 0.5 * kl_pm + 0.5 * kl_qm


def _hand_test_acc() -> float:
    t = _hand_task().test
    pred = (t.x[:, 0] < 0.5).long()  # class 1 when p(class 0) < 1/2
    return float((pred == t.y).float().mean())


#: the value each computed metric takes on the hand task (forget confidences 0.9, 0.2, 0.7, 0.4 for
#: labels 0, 0, 1, 1: predictions 0, 1, 0, 1)
HAND = {
    "forget_acc": 0.5,
    "retain_acc": 1.0,
    "test_acc": _hand_test_acc(),
    "mia_efficacy": 0.75,  # p_y = 0.9 looks like a confident member; 0.2, 0.3 and 0.6 do not
    "js_to_retrain": float(np.mean([_js(p) for p in (0.9, 0.2, 0.7, 0.4)])),
    "forget_loss": -float(np.mean(np.log([0.9, 0.2, 0.3, 0.6]))),  # -log p_y
}


def test_every_computed_metric_has_a_hand_computed_case():
    assert {m.name for m in METRICS.computed()} <= HAND.keys(), "add the new metric's hand-computed value to HAND"


@pytest.mark.parametrize("name", sorted(HAND))
def test_hand_computed_value(name):
    values, skipped = compute_metrics(ConfidenceModel(), MetricInputs(_hand_task(), reference=Uniform()), [name])
    assert not skipped
    assert values[name] == pytest.approx(HAND[name], rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("name", [m.name for m in METRICS.computed()])
def test_finite_and_in_range_on_a_tiny_model(name, toy_random):
    model, data = toy_random
    values, skipped = compute_metrics(model, MetricInputs(data.task, reference=model, seed=0), [name])
    assert not skipped, skipped
    value, unit = values[name], METRICS.get(name).unit
    assert isinstance(value, float) and math.isfinite(value), f"{name} = {value!r}"
    if unit == "%":
        assert 0.0 <= value <= 1.0, f"{name} = {value} is a fraction"
    elif unit == "nats":
        assert value >= 0.0


def _documented() -> dict[str, tuple[str, str, str]]:
    """name -> (unit, direction, label or "") from the tables of docs/metrics.md with those columns."""
    out: dict[str, tuple[str, str, str]] = {}
    header: list[str] = []
    for line in DOC.read_text().splitlines():
        if not line.startswith("|"):
            header = []
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not header:
            header = [c.lower() for c in cells]
            continue
        if {"name", "unit", "direction"} <= set(header) and cells[0].startswith("`"):
            for name in re.findall(r"`([^`]+)`", cells[0]):
                label = cells[header.index("label")] if "label" in header else ""
                out[name] = (cells[header.index("unit")], cells[header.index("direction")], label)
    return out


@pytest.mark.parametrize("name", METRICS.names())
def test_documented_with_its_unit_and_direction(name):
    metric = METRICS.get(name)
    assert metric.better in DIRECTIONS
    documented = _documented()
    assert name in documented, f"metric {name!r} is registered but not documented in docs/metrics.md"
    unit, direction, label = documented[name]
    assert direction == metric.better, f"{name}: docs say {direction!r}, the registry {metric.better!r}"
    assert unit == (metric.unit or "—"), f"{name}: docs say unit {unit!r}, the registry {metric.unit!r}"
    assert not label or label == metric.label, f"{name}: docs label {label!r}, the registry {metric.label!r}"


@pytest.mark.parametrize("scenario", SCENARIOS.names())
def test_every_scenario_metric_is_registered(scenario, toy_random):
    model, _ = toy_random
    bundle = load_dataset("synthetic", n_samples=400, n_features=10, n_classes=4)
    sc = get_scenario(scenario)
    data = sc.build(bundle, seed=0)
    sc.prepare_task(model, data)
    unknown = set(sc.extra_metrics(model, data)) - set(METRICS.names())
    assert not unknown, f"scenario {scenario!r} reports unregistered metrics {sorted(unknown)}"
