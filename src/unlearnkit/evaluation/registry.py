"""The metric registry: every number a result row carries, with its label, unit and direction.

A metric registered with a function is computed by :func:`compute_metrics`, the one row builder
behind ``run``, ``demo``, ``bench``, ``tune``, ``audit`` and ``evaluate()``. A metric declared
without one is produced elsewhere (a scenario's extras, the clock, the audit's attacks) and is
registered so that every table, leaderboard, ``results`` listing and plot labels and ranks it the
same way. The registration order is the display order. The gap to Retrain (``signed_gaps``,
``avg_gap``) is taken over the registry's gap metrics.

Adding a metric is one function and its decorator::

    @register_metric("forget_margin", label="Forget margin", unit="", better="closest")
    def forget_margin(model, inputs):
        ...  # a float from the model and inputs.task / inputs.reference / inputs.seed
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional

import numpy as np
from torch import nn

from ..errors import UnlearnkitError
from ..registry import Registry
from ..task import UnlearningTask
from .metrics import accuracy, js_to_model, mean_loss, mia_efficacy

#: "closest" = the closer to Retrain's value the better (forgetting metrics)
DIRECTIONS = ("higher", "lower", "closest")
UNITS = ("%", "s", "nats", "")


@dataclass
class MetricInputs:
    """What a metric function may look at besides the model: the task's splits, the Retrain model
    (``reference``, for metrics that compare with it) and the seed of any random choice."""

    task: UnlearningTask
    reference: Optional[nn.Module] = None
    seed: int = 0

    def has(self, need: str) -> bool:
        return self.reference is not None if need == "reference" else getattr(self.task, need) is not None


MetricFunction = Callable[[nn.Module, MetricInputs], float]


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    unit: str              # "%" (a fraction shown x100), "s", "nats" or "" (a plain number)
    better: str            # higher, lower, or closest (to Retrain)
    fn: Optional[MetricFunction] = None
    needs: tuple[str, ...] = ()   # task splits (retain, test, ...) or "reference" the function needs
    gap: bool = False      # counted in the average gap to Retrain
    digits: int = 1        # decimals in tables (of the x100 value for "%"); significant digits if significant
    table: bool = True     # a column of the run / leaderboard tables when present
    significant: bool = False  # e.g. a forget loss of 1.5e-4 must not print as 0.000

    def format(self, mean: Optional[float], std: Optional[float] = None) -> str:
        """The table cell: "—" for a missing value; percentages x100; ``± std`` when given."""
        if mean is None or (isinstance(mean, float) and math.isnan(mean)):
            return "—"
        scale = 100.0 if self.unit == "%" else 1.0
        spec = f".{self.digits}{'g' if self.significant else 'f'}"
        text = "0" if self.significant and mean == 0 else f"{scale * mean:{spec}}"
        if std is not None and not (isinstance(std, float) and math.isnan(std)):
            text += f" ± {scale * std:{spec}}"
        return text


class MetricRegistry(Registry[Metric]):
    """Metrics in registration (display) order."""

    def __init__(self) -> None:
        super().__init__("metric")

    def add(self, metric: Metric) -> Metric:
        if metric.better not in DIRECTIONS:
            raise UnlearnkitError(f"metric {metric.name!r}: better={metric.better!r}; use one of {DIRECTIONS}")
        if metric.unit not in UNITS:
            raise UnlearnkitError(f"metric {metric.name!r}: unit={metric.unit!r}; use one of {UNITS}")
        return self.register(metric.name)(metric)

    def remove(self, name: str) -> None:
        """Unregister (tests that register a metric of their own clean up with this)."""
        self.get(name)
        del self._items[name]

    def ordered(self) -> Iterator[Metric]:
        return iter(self._items.values())

    def computed(self) -> list[Metric]:
        return [m for m in self.ordered() if m.fn is not None]

    def gap_metrics(self) -> list[str]:
        return [m.name for m in self.ordered() if m.gap]

    def table_metrics(self, present: Iterable[str], unit: Optional[str] = None) -> list[Metric]:
        """The table columns among ``present`` names, in display order (optionally of one unit)."""
        have = set(present)
        return [m for m in self.ordered() if m.name in have and m.table and (unit is None or m.unit == unit)]


METRICS = MetricRegistry()


def register_metric(name: str, *, label: str, unit: str, better: str, needs: tuple[str, ...] = (),
                    gap: bool = False, digits: int = 1, table: bool = True, significant: bool = False
                    ) -> Callable[[MetricFunction], MetricFunction]:
    """Decorator: register ``fn(model, inputs) -> float`` as metric ``name`` (duplicates raise)."""
    def decorator(fn: MetricFunction) -> MetricFunction:
        METRICS.add(Metric(name, label, unit, better, fn, tuple(needs), gap, digits, table, significant))
        return fn

    return decorator


def declare_metric(name: str, *, label: str, unit: str, better: str, gap: bool = False, digits: int = 1,
                   table: bool = True) -> Metric:
    """Register a metric that another producer computes (a scenario extra, the clock, the audit)."""
    return METRICS.add(Metric(name, label, unit, better, None, (), gap, digits, table))


def compute_metrics(model: nn.Module, inputs: MetricInputs, names: Optional[Iterable[str]] = None
                    ) -> tuple[dict[str, float], dict[str, str]]:
    """The registered metrics of ``model`` (all computable ones, or ``names``) and, for each that
    cannot run on these inputs, the reason ("skipped: needs retain data")."""
    wanted = [METRICS.get(n) for n in names] if names is not None else METRICS.computed()
    values: dict[str, float] = {}
    skipped: dict[str, str] = {}
    for metric in wanted:
        if metric.fn is None:
            raise UnlearnkitError(f"metric {metric.name!r} is reported by its producer, not computed from a model")
        missing = [n for n in metric.needs if not inputs.has(n)]
        if missing:
            skipped[metric.name] = "skipped: needs " + " and ".join(
                "a Retrain model" if n == "reference" else f"{n}" for n in missing) + (
                "" if missing == ["reference"] else " data")
            continue
        values[metric.name] = metric.fn(model, inputs)
    return values, skipped


# -- the metrics ----------------------------------------------------------------------------------
@register_metric("forget_acc", label="Forget acc", unit="%", better="closest", gap=True)
def forget_acc(model: nn.Module, inputs: MetricInputs) -> float:
    return accuracy(model, inputs.task.forget)


@register_metric("retain_acc", label="Retain acc", unit="%", better="higher", needs=("retain",), gap=True)
def retain_acc(model: nn.Module, inputs: MetricInputs) -> float:
    return accuracy(model, inputs.task.retain)


@register_metric("test_acc", label="Test acc", unit="%", better="higher", needs=("test",), gap=True)
def test_acc(model: nn.Module, inputs: MetricInputs) -> float:
    return accuracy(model, inputs.task.test)


@register_metric("mia_efficacy", label="MIA-eff.", unit="%", better="closest", needs=("retain", "test"), gap=True)
def mia(model: nn.Module, inputs: MetricInputs) -> float:
    t = inputs.task
    return mia_efficacy(model, t.retain, t.test, t.forget, seed=inputs.seed)


# scenario extras (computed by each scenario's ``extra_metrics``), in the order tables show them
declare_metric("test_forget_acc", label="Test acc (forgotten class)", unit="%", better="closest")
declare_metric("asr", label="ASR", unit="%", better="closest", gap=True)
declare_metric("goal_success", label="Goal success", unit="%", better="closest")
declare_metric("forget_prev_acc", label="Acc earlier requests", unit="%", better="closest")
declare_metric("forget_true_acc", label="Forget acc (clean labels)", unit="%", better="higher", table=False)
declare_metric("corrected_acc", label="Corrected acc", unit="%", better="higher", table=False)
declare_metric("pattern_flip", label="Pattern flip", unit="%", better="closest", table=False)
declare_metric("pattern_target", label="Pattern target", unit="%", better="closest", table=False)
declare_metric("pattern_class_acc", label="Pattern acc (marked class)", unit="%", better="closest", table=False)
declare_metric("canary_exposure", label="Canary exposure", unit="", better="closest", digits=2, table=False)


@register_metric("js_to_retrain", label="JS→Retrain", unit="nats", better="lower", needs=("reference",), digits=4)
def js_to_retrain(model: nn.Module, inputs: MetricInputs) -> float:
    return js_to_model(model, inputs.reference, inputs.task.forget)


@register_metric("forget_loss", label="Forget loss", unit="nats", better="closest", digits=3, significant=True)
def forget_loss(model: nn.Module, inputs: MetricInputs) -> float:
    return mean_loss(model, inputs.task.forget)


declare_metric("time_s", label="Time (s)", unit="s", better="lower", digits=2)
# sequential deletion requests (bench/pipeline/continual.py): the stream's clock so far, and Retrain's
declare_metric("cum_time_s", label="Cum. time (s)", unit="s", better="lower", digits=2, table=False)
declare_metric("retrain_time_s", label="One Retrain (s)", unit="s", better="lower", digits=2, table=False)
declare_metric("cum_retrain_time_s", label="Cum. Retrain time (s)", unit="s", better="lower", digits=2, table=False)

# the per-example attacks of `unlearnkit audit`
declare_metric("ulira_acc", label="U-LiRA acc ↓", unit="", better="lower", digits=3, table=False)
declare_metric("ulira_auc", label="U-LiRA AUC ↓", unit="", better="lower", digits=3, table=False)
declare_metric("forgetting_quality", label="FQ (challenge) ↑", unit="", better="higher", digits=3, table=False)
declare_metric("forgetting_quality_cp", label="FQ (CP) ↑", unit="", better="higher", digits=3, table=False)
declare_metric("challenge_score", label="Challenge score ↑", unit="", better="higher", digits=3, table=False)
declare_metric("mean_epsilon", label="mean ε ↓", unit="", better="lower", digits=2, table=False)
declare_metric("lira_forget_auc", label="LiRA AUC forget ↓", unit="", better="lower", digits=3, table=False)


#: the gap metrics every row builder computes (forget / retain / test accuracy, MIA-efficacy)
CORE_METRICS = tuple(m.name for m in METRICS.computed() if m.gap)


def gap_metrics_of(means: dict[str, Any]) -> list[str]:
    """The gap metrics present in a summary's means (the core four, plus ASR for backdoors)."""
    return [n for n in METRICS.gap_metrics() if n in means]


def signed_gaps(method_means: dict, retrain_means: dict, metrics: Optional[Iterable[str]] = None) -> dict:
    """metric - metric of Retrain for each metric present in both (means over seeds first);
    ``metrics`` defaults to the registry's gap metrics."""
    if metrics is None:
        metrics = METRICS.gap_metrics()
    out = {}
    for m in metrics:
        a, b = method_means.get(m), retrain_means.get(m)
        if a is not None and b is not None and not (math.isnan(a) or math.isnan(b)):
            out[m] = a - b
    return out


def avg_gap(method_means: dict, retrain_means: dict, metrics: Optional[Iterable[str]] = None) -> float:
    """Mean absolute gap to Retrain over ``metrics`` (fractions; x100 for points)."""
    gaps = signed_gaps(method_means, retrain_means, metrics)
    return float(np.mean([abs(g) for g in gaps.values()])) if gaps else float("nan")
