"""Evaluation: metrics and attacks, decoupled from methods."""

from .evaluate import evaluate
from .metrics import (CORE_METRICS, accuracy, avg_gap, js_divergence, js_to_model, mean_std,
                      mia_efficacy, predict_logits, predict_probs, signed_gaps)

__all__ = ["CORE_METRICS", "accuracy", "avg_gap", "evaluate", "js_divergence", "js_to_model",
           "mean_std", "mia_efficacy", "predict_logits", "predict_probs", "signed_gaps"]
