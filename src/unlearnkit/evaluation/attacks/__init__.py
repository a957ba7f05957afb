"""Membership attacks. Each takes any model and data (or arrays of statistics); none knows about
unlearning methods and none trains a model (``bench/audit.py`` wires them to trained models).

- ``base``: the stable LiRA statistic phi = log p_y - log sum_{j!=y} p_j, Gaussian fits, ROC summaries.
- ``lira``: LiRA (Carlini et al. 2022) with a balanced keep matrix of shadow models.
- ``ulira``: U-LiRA (Hayes et al. 2024): unlearned vs retrained shadow models per forget example.
- ``challenge``: the NeurIPS 2023 unlearning challenge's per-example epsilon, forgetting quality
  and final score (Triantafillou et al. 2024).
"""

from .base import (AttackResult, auc, best_balanced_accuracy, fit_gaussians, lira_statistic,
                   model_statistic, roc_curve, tpr_at_fpr)
from .challenge import (ChallengeScore, attack_epsilon, bucket_index, challenge_score, epsilon_points,
                        forgetting_quality, max_epsilon, per_example_epsilons, threshold_attack_rates)
from .lira import LiRA, balanced_keep_matrix, lira_attack
from .ulira import ulira_leave_one_out, ulira_scores

__all__ = [
    "AttackResult", "ChallengeScore", "LiRA", "attack_epsilon", "auc", "balanced_keep_matrix",
    "best_balanced_accuracy", "bucket_index", "challenge_score", "epsilon_points", "fit_gaussians",
    "forgetting_quality", "lira_attack", "lira_statistic", "max_epsilon", "model_statistic",
    "per_example_epsilons", "roc_curve", "threshold_attack_rates", "tpr_at_fpr", "ulira_leave_one_out",
    "ulira_scores",
]
