"""Evaluation: metrics and attacks, decoupled from methods."""

from .evaluate import evaluate
from .metrics import accuracy, js_divergence, js_to_model, mean_std, mia_efficacy, predict_logits, predict_probs
from .registry import (CORE_METRICS, METRICS, Metric, MetricInputs, avg_gap, compute_metrics, declare_metric,
                       register_metric, signed_gaps)

__all__ = ["CORE_METRICS", "METRICS", "Metric", "MetricInputs", "accuracy", "avg_gap", "compute_metrics",
           "declare_metric", "evaluate", "js_divergence", "js_to_model", "mean_std", "mia_efficacy",
           "predict_logits", "predict_probs", "register_metric", "signed_gaps"]
