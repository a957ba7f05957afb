"""What an unlearning call did to the forget set: too little (a no-op) or too much (over-forgetting).

**No-op.** A method that follows the gradient of the forget loss does nothing on a model trained to zero
loss (the gradient vanishes as p_y -> 1); a user must not mistake that for success. After every
``unlearn`` call the template compares the input and the output model on the forget set: the call is
a no-op when every top-1 prediction is the same and the mean cross-entropy moved by at most
``NOOP_REL_TOL`` of its value. The method records it and a ``NoOpWarning`` names the likely cause.

**Over-forgetting.** Retrain never saw the forget set, so where that set is a sample of the training
data with its true labels (random or instance deletion) Retrain treats it like any unseen data: its
confidence on a forgotten example is distributed like its confidence on an unseen example of the same
class. A method can overshoot (random labels, gradient ascent): forget confidences far *below* those
on unseen data single the forget set out as clearly as the Original did, from the other side. The
check uses data the method had (the task's test and third-party data, never a retrained model).

Criterion (docs/metrics.md#over-forgetting). With phi(x, y) = z_y - logsumexp_{j != y} z_j the
logit-scaled confidence of the output model, F_c the forget examples of class c and U_c the unseen ones
(test + third-party, at most ``MAX_UNSEEN`` rows drawn once), over the classes with unseen examples and
with w_c = |F_c| / sum_c |F_c|:

    d = sum_c w_c (acc(U_c) - acc(F_c))                                  accuracy gap
    A = sum_c w_c P(phi(f) < phi(u) | f in F_c, u in U_c)  (ties 1/2)    rank statistic

d = 0 and A = 0.5 when the forget set looks like unseen data. The call over-forgets when

    d >= max(ACC_MARGIN, Z sigma_d)   or   A >= 0.5 + max(AUC_MARGIN, Z sigma_A),

sigma_d and sigma_A being their standard deviations when forget and unseen examples are exchangeable
(binomial with the pooled accuracy of each class; Mann-Whitney), so that a small forget set is not
flagged for its noise. It applies unless the task says otherwise: ``task.corrected`` given (a
correction: Retrain learns the corrected examples) or ``task.metadata["forget_like_unseen"] is False``
(set by the class, subclass and backdoor scenarios: there Retrain does not treat the forget set like
unseen data).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Optional

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ...data.split import Split
from ...errors import NoOpWarning, OverForgetWarning
from ...utils import eval_mode
from .forget_loss import logit_confidence

#: relative change of the mean forget loss below which a call counts as a no-op (with identical predictions)
NOOP_REL_TOL = 0.1
#: mean p_y on the forget set above which its loss is called saturated
SATURATED_CONFIDENCE = 0.99


@dataclass
class NoOpReport:
    loss_before: float
    loss_after: float
    mean_confidence: float  # mean p_y of the input model on the forget set

    @property
    def saturated(self) -> bool:
        return self.mean_confidence >= SATURATED_CONFIDENCE


@torch.no_grad()
def _eval_logits(model: nn.Module, split: Split) -> torch.Tensor:
    """``model``'s logits on every example of ``split``, in order (eval mode; every module's mode restored)."""
    device = next(model.parameters()).device
    with eval_mode(model):
        return torch.cat([model(x.to(device)) for x, _ in split.batches(512)])


def _forget_stats(model: nn.Module, forget: Split) -> tuple[torch.Tensor, float, float]:
    logits = _eval_logits(model, forget)
    y = forget.y.to(logits.device)
    log_p_y = F.log_softmax(logits, 1).gather(1, y[:, None])  # mean cross-entropy = -mean log p_y
    return logits.argmax(1), float(-log_p_y.mean()), float(log_p_y.exp().mean())


def is_noop(predictions_changed: int, loss_before: float, loss_after: float) -> bool:
    """The no-op criterion: no forget prediction changed and the mean forget loss moved by at most
    ``NOOP_REL_TOL`` of its value."""
    return predictions_changed == 0 and abs(loss_after - loss_before) <= NOOP_REL_TOL * abs(loss_before) + 1e-12


def detect_noop(before: nn.Module, after: nn.Module, forget: Split) -> Optional[NoOpReport]:
    """A report when ``after`` leaves the forget set as ``before`` had it (``is_noop``); None when the
    call changed something."""
    pred_b, loss_b, conf_b = _forget_stats(before, forget)
    pred_a, loss_a, _ = _forget_stats(after, forget)
    return NoOpReport(loss_b, loss_a, conf_b) if is_noop(int((pred_a != pred_b).sum()), loss_b, loss_a) else None


def warn_noop(method: str, report: NoOpReport, hint: str) -> None:
    """Warn (``NoOpWarning``) that ``method`` left the forget set as it was, with cause and remedy."""
    if report.saturated:
        cause = (f"the input model is saturated on the forget set (mean p_y = {report.mean_confidence:.4f}): "
                 "gradients of the forget loss vanish, and updates on other data barely move outputs this sure")
    else:
        cause = "its updates were too small to move the forget outputs (vanishing gradient, lr or epochs too low)"
    warnings.warn(
        f"{method} left the forget set unchanged: every prediction is the same and the forget loss moved "
        f"{report.loss_before:.3g} -> {report.loss_after:.3g}. Likely cause: {cause}. Try: {hint}",
        NoOpWarning, stacklevel=4)  # the caller of unlearn()


# -- over-forgetting --------------------------------------------------------------------------------
#: how far below the unseen accuracy the forget accuracy must be, at least, to flag a call
ACC_MARGIN = 0.15
#: how far past 0.5 the forget-below-unseen probability A must be, at least, to flag a call
AUC_MARGIN = 0.1
#: ... and, for either, how many null standard deviations (a small forget set is noisy)
OVERFORGET_Z = 4.0
#: unseen rows the check reads at most (a fixed draw, so that its cost does not grow with the data)
MAX_UNSEEN = 2000
#: the warning's advice when a method has none of its own
OVERFORGET_HINT = "fewer epochs or a smaller lr (the method pushes the forget set past where Retrain leaves it)"


@dataclass
class OverforgetReport:
    """The over-forgetting check of one model on one forget set (``to_dict`` for a receipt)."""

    overforget: bool       # either arm of the criterion fired
    forget_acc: float      # accuracy on the forget examples compared (those of classes with unseen examples)
    unseen_acc: float      # accuracy on unseen data, weighted to the forget set's class mix
    acc_gap: float         # unseen_acc - forget_acc
    acc_threshold: float   # max(ACC_MARGIN, Z * its null standard deviation)
    auc: float             # A: P(phi forget < phi unseen), same class, ties 1/2
    auc_threshold: float   # 0.5 + max(AUC_MARGIN, Z * its null standard deviation)
    n_forget: int          # forget examples compared
    n_unseen: int          # unseen examples of their classes

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "acc_margin": ACC_MARGIN, "auc_margin": AUC_MARGIN, "z": OVERFORGET_Z}


def not_applicable(task: Any) -> Optional[str]:
    """Why the check does not apply to ``task`` (an ``UnlearningTask``), or None when it does."""
    if task.corrected is not None:
        return "a correction request: Retrain learns the corrected examples instead of treating them as unseen"
    if (task.metadata or {}).get("forget_like_unseen") is False:
        return "the task says Retrain would not treat the forget set like unseen data (metadata forget_like_unseen)"
    if task.test is None and task.third_party is None:
        return "the task holds no unseen (test or third-party) data to compare with"
    return None


def unseen_data(task: Any) -> Split:
    """The task's test and third-party data, at most ``MAX_UNSEEN`` rows of them (a fixed draw)."""
    parts = [s for s in (task.test, task.third_party) if s is not None]
    unseen = Split.concat(*parts) if len(parts) > 1 else parts[0]
    if len(unseen) <= MAX_UNSEEN:
        return unseen
    rows = torch.randperm(len(unseen), generator=torch.Generator().manual_seed(0))[:MAX_UNSEEN].sort().values
    return unseen.subset(rows.numpy())


def _scores(model: nn.Module, split: Split) -> tuple[np.ndarray, np.ndarray]:
    """phi and correctness of every example of ``split`` (eval mode, float64)."""
    logits = _eval_logits(model, split).double()
    y = split.y.to(logits.device)
    return logit_confidence(logits, y).cpu().numpy(), (logits.argmax(1) == y).cpu().numpy()


def below_probability(f: np.ndarray, u: np.ndarray) -> float:
    """P(a < b) + P(a = b) / 2 for a drawn from ``f`` and b from ``u`` (NaN sorts as lowest)."""
    f, u = np.nan_to_num(f, nan=-np.inf), np.sort(np.nan_to_num(u, nan=-np.inf))
    above = len(u) - np.searchsorted(u, f, side="right")
    ties = np.searchsorted(u, f, side="right") - np.searchsorted(u, f, side="left")
    return float((above + 0.5 * ties).sum() / (len(f) * len(u)))


def overforget_report(model: nn.Module, forget: Split, unseen: Split) -> Optional[OverforgetReport]:
    """The criterion of the module docstring for ``model``; None when no forget class has unseen examples."""
    phi_f, hit_f = _scores(model, forget)
    phi_u, hit_u = _scores(model, unseen)
    yf, yu = forget.y.cpu().numpy(), unseen.y.cpu().numpy()
    classes = [c for c in np.unique(yf) if (yu == c).any()]
    if not classes:
        return None
    nf = np.array([(yf == c).sum() for c in classes], dtype=float)
    nu = np.array([(yu == c).sum() for c in classes], dtype=float)
    w = nf / nf.sum()
    acc_f = np.array([hit_f[yf == c].mean() for c in classes])
    acc_u = np.array([hit_u[yu == c].mean() for c in classes])
    pooled = (acc_f * nf + acc_u * nu) / (nf + nu)  # null: forget and unseen examples exchangeable
    acc_sigma = math.sqrt(float((w**2 * pooled * (1 - pooled) * (1 / nf + 1 / nu)).sum()))
    auc = float(sum(wc * below_probability(phi_f[yf == c], phi_u[yu == c]) for wc, c in zip(w, classes)))
    auc_sigma = math.sqrt(float((w**2 * (nf + nu + 1) / (12 * nf * nu)).sum()))
    forget_acc, unseen_acc = float((w * acc_f).sum()), float((w * acc_u).sum())
    acc_threshold = max(ACC_MARGIN, OVERFORGET_Z * acc_sigma)
    auc_threshold = 0.5 + max(AUC_MARGIN, OVERFORGET_Z * auc_sigma)
    flagged = unseen_acc - forget_acc >= acc_threshold or auc >= auc_threshold
    return OverforgetReport(bool(flagged), forget_acc, unseen_acc, unseen_acc - forget_acc, acc_threshold, auc,
                            auc_threshold, int(nf.sum()), int(nu.sum()))


def check_overforget(model: nn.Module, task: Any) -> Optional[OverforgetReport]:
    """The over-forgetting check of ``model`` (an unlearned model) on ``task`` (the ``UnlearningTask`` it
    was unlearned with): a report, or None when the check does not apply (``not_applicable``)."""
    if not_applicable(task) is not None:
        return None
    return overforget_report(model, task.forget, unseen_data(task))


def warn_overforget(method: str, report: OverforgetReport, hint: str) -> None:
    """Warn (``OverForgetWarning``) that ``method`` pushed the forget set past unseen data, with what to try."""
    warnings.warn(
        f"{method} pushed the forget set past unseen data: forget accuracy {report.forget_acc:.1%} against "
        f"{report.unseen_acc:.1%} on unseen data of the same classes (flagged from {report.acc_threshold:.1%} "
        f"below), and a forgotten example is less confident than an unseen one of its class in {report.auc:.0%} "
        f"of pairs (flagged from {report.auc_threshold:.0%}; about 50% when the forget set looks unseen, as "
        f"Retrain leaves a sample of its training data). The forget set stands out again, from the other side. "
        f"Try: {hint}. (The check assumes the forget set is a sample of the training data with its true labels; "
        "if it is not, set task.metadata['forget_like_unseen'] = False.)",
        OverForgetWarning, stacklevel=4)  # the caller of unlearn()
