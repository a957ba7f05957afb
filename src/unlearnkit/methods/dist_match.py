"""Distribution matching: fine-tune until the model's outputs on the forget set are distributed like
its outputs on unseen third-party data.

After Chen et al., "Fast yet versatile machine unlearning for deep neural networks", Neural Networks
190, 2025 (https://doi.org/10.1016/j.neunet.2025.107648; the abstract states the principle, the
losses below are ours):

    subset:   min_theta  mean_i huber( s_theta(x_i, y_i) - t_i )        + retention
    concept:  min_theta  MMD^2( softmax f_theta(X_f), softmax f_theta(X_t) ) + retention
    retention = w_anchor * KL( f_orig(x_t) || f_theta(x_t) ) + w_retain * CE( f_theta(x_r), y_r )

* ``subset`` mode (a part of the training data: random samples, instances, a corrected feature).
  The per-example, label-aware statistic is the LiRA-style scaled confidence
  s(x, y) = log p_y - log(1 - p_y) (Carlini et al., S&P 2022), the quantity membership attacks read.
  Matching is per class: at the start of every epoch the forget examples of class k are ranked by
  their current s and each gets as target t_i the quantile of the third-party class-k scores at
  level (rank + u) / n_k. This is the monotone (optimal-transport) coupling of the two 1-D
  distributions, so minimising the loss minimises their Wasserstein distance, and examples the
  model is least sure of become the ones it gets wrong. u is the stratum's midpoint 1/2, except in
  a class with fewer than ``jitter_below`` forget examples: there the offsets are jittered (uniform
  in [0, 1), drawn once per example, handed out in ascending order by rank), so the matched set is a
  draw of the third-party distribution; a midpoint would send a lone example to the median, always
  right for a class the model gets right more often than not, where Retrain gets it wrong at the
  rate of unseen data. With many examples per class the midpoints have the lower variance.
  Targets come from the current model, so they follow what the
  retention terms do to unseen data; at most ``reference_size`` third-party samples (drawn once)
  give them, so a check costs the same at any data-set size. A class without third-party samples
  uses the pooled third-party scores.
  A forget set of n < ``batch_size`` samples makes one step per epoch on a batch kappa = n /
  batch_size times the usual one; following the square-root scaling rule for Adam (Malladi et al.,
  "On the SDEs and Scaling Rules for Adaptive Gradient Algorithms", NeurIPS 2022), its learning rate
  is lr * sqrt(kappa) and its epoch cap epochs / kappa (the rule's beta and epsilon adjustments are
  not applied; without the rule, full-size Adam steps on 16 instances cost the retain set points).
* Corrections (a ``corrected`` split: the forget samples as they should have been) are subsets
  whose reference is third-party data put through the request's change, as Retrain sees the forget
  samples: a model trained on the corrected data meets their changed inputs as an unfamiliar pattern
  and their old labels as wrong ones. Where inputs changed, the reference gets fresh values drawn
  uniformly in the request's input range there (not the planted pattern: the model knows it); where
  labels changed, reference samples of class c take the labels the request's class-c samples had, at
  the same rates. The class is relearned from ``corrected`` meanwhile, so the targets move and the
  stopping rule can fire on a transient crossing: a correction runs the epoch cap.
* ``concept`` mode (a whole class, a backdoor, a sub-population). Labels name the concept being
  removed, so the softmax vectors of the whole forget set are matched to those of third-party data
  with the forget label withheld (what Retrain does with class-k inputs is map them onto the other
  classes, as the model does with unseen samples of those classes): squared MMD (biased
  V-statistic) with a Gaussian kernel of median-heuristic bandwidth (Gretton et al., JMLR 2012).
* ``auto`` (default) picks concept when the request is a deletion (no ``corrected`` split) of a
  single label that is a large part of its class: at least ``concept_share`` of that label's
  training samples (forget + retain), or, without retain data, a single-label forget set of at
  least ``concept_min`` samples. Otherwise subset. So class removal, backdoor poison (all
  relabelled to the target) and a removed sub-class are concepts; random samples, a few instances
  and corrections (a feature correction keeps its class) are subsets.
* Stopping rule, checked before the first step and after every epoch, on the statistic each mode
  matches. Subset: the class-stratified two-sample AUC of s (probability that a forget example
  scores above a third-party example of its class, ties 1/2, averaged over classes weighted by
  forget counts). A logistic regression on softmax + one-hot label cannot see this: with classes
  balanced, "p_y is high for the given y" is not linear in those features. Concept: held-out AUC of
  a logistic regression telling forget from third-party softmax vectors (2-fold, at most
  ``check_size`` samples per side, one forward pass for both). Subset mode stops when
  |AUC - 0.5| <= ``stop_tol`` (no classifier is fitted, so an AUC below 1/2 is overshoot:
  training goes on and the targets pull the scores back); concept mode when AUC - 0.5 <=
  ``concept_stop_tol`` (a held-out AUC below 1/2 is a classifier that found nothing). ``epochs`` (subset) and
  ``concept_epochs`` cap them. When the forget set is a whole label (retain data given, none of it
  with that label), concept mode checks only before the first step (a request with nothing to do
  stays a no-op) and then runs ``concept_epochs`` (``check_whole_label`` keeps the checks): a model
  that never saw a label maps its inputs onto the others less surely than their own inputs: even
  Retrain's stay distinguishable (AUC 0.76-0.85, digits/cnn and mnist1d/mlp class): a stop would be noise.

Data: forget and third_party are required. Retain is optional (used when given; the registered
variant ``dist_match_noretain`` never sees it): CE on it is a retention term. ``corrected`` (a
correction request) is optional and joins the retain term, as it joins Retrain's training set.
Without retain data the KL anchor to the original on third-party data is the main retention term
(``alone_*`` settings; corrected data, all of one class in a feature correction, get a weaker CE term).

Defaults (our tuning; no reference implementation exists; searches and 5-seed results in
BENCHMARKS.md#zero-loss-unlearning-benchmarksmemoriseyaml): Adam lr 3e-3, forget batch 64, anchor
weight 1, Huber delta 1. Subset (mnist1d/mlp random 10%, seeds 0-4): retain weight 12 on batches of
256 (it holds the MIA's member/non-member threshold in place, which forget updates move by lowering
the confidence of nearby retain examples; weight 32: 1.9 points from Retrain instead of 2.6, at 7x
Retrain's speed instead of 10x), at most 10 epochs, stop_tol 0.01; without retain data, anchor
weight 6 on 256 third-party samples (weight 9 on 64: 6.3 points; these 5.2) and, for corrections,
corrected weight 4 (the best of 0, 1, 4 and 12 averaged over label and feature corrections,
BENCHMARKS.md#corrections-reference-data-that-mirror-the-change). Concept (digits/cnn class and backdoor,
mnist1d/mlp subclass and backdoor): at most 5 epochs, stop_tol 0.05 on at most 128 samples per
side, retain weight 2 on batches of 128 (a squared MMD is at most 2 and subset mode's retain weight
outweighed it: mnist1d/mlp backdoor 20.0 points from Retrain vs 3.7). concept_share 0.25 and
concept_min 16 are our choices.

Example::

    from unlearnkit.methods import get_method
    model_u = get_method("dist_match").unlearn(model, task, seed=0)   # task.third_party required
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

from ..data.split import Split
from .blocks.dist_match_stats import (auc_stop, gaussian_mmd2, mirror_correction, quantile_targets, stratified_auc,
                                two_sample_auc)
from .blocks.forget_loss import logit_confidence as lira_confidence
from .base import hp, register_method
from .iterative import IterativeMethod, IterativeParams


# -- the method ------------------------------------------------------------------------------------
@dataclass
class DistMatchParams(IterativeParams):
    epochs: int = hp(10, "subset: cap on passes over the forget set (the stopping rule may stop earlier)",
                      "our tuning on mnist1d/mlp", ge=1)
    lr: float = hp(3e-3, "learning rate", "our tuning on mnist1d/mlp", gt=0)
    batch_size: int = hp(64, "forget samples per step (the third-party batch is as large, see alone_*)",
                         "our tuning on mnist1d/mlp", ge=1)
    optimizer: str = hp("adam", "optimiser", "our tuning", choices=("sgd", "adam"))
    weight_decay: float = hp(0.0, "weight decay")
    mode: str = hp("auto", "subset (per-example, per-class score matching), concept (marginal softmax MMD, "
                           "forget label withheld) or auto (see the module docstring)",
                   choices=("auto", "subset", "concept"))
    concept_share: float = hp(0.25, "auto: a single-label deletion is a concept when it holds at least this "
                                    "share of its label's training samples", "our choice", ge=0, le=1)
    concept_min: int = hp(16, "auto without retain data: a single-label deletion of at least this many "
                              "samples is a concept", "our choice", ge=1)
    retain_batch: int = hp(256, "subset: retain (+ corrected) samples per step", "our tuning on mnist1d/mlp", ge=1)
    match_weight: float = hp(1.0, "weight of the matching term", ge=0)
    anchor_weight: float = hp(1.0, "weight of KL(original || model) on third-party data (see alone_*)", ge=0)
    alone_anchor_weight: float = hp(6.0, "subset mode without retain data: weight of the anchor, then the only "
                                         "retention term", "our tuning on mnist1d/mlp", ge=0)
    alone_anchor_batch: int = hp(256, "subset mode without retain data: third-party samples per step (with retain "
                                      "data, as many as forget samples)", "our tuning on mnist1d/mlp", ge=1)
    alone_corrected_weight: float = hp(4.0, "without retain data: weight of CE on a correction's corrected data, on "
                                            "forget-size batches", "our tuning on label and feature corrections", ge=0)
    retain_weight: float = hp(12.0, "subset: weight of CE on retain (+ corrected) data, when used",
                              "our tuning on mnist1d/mlp", ge=0)
    jitter_below: int = hp(8, "subset: a class with fewer forget samples than this gets jittered quantile levels, "
                              "the others midpoint levels (0: midpoints everywhere)",
                           "our choice, checked on instance deletion and digits/cnn random", ge=0)
    small_set_scaling: bool = hp(True, "subset: a forget set of n < batch_size samples gets lr * sqrt(n / batch_size) "
                                       "and an epoch cap of epochs * batch_size / n",
                                 "Adam's square-root scaling rule, Malladi et al., NeurIPS 2022")
    huber_delta: float = hp(1.0, "subset: Huber transition of the score loss (score units)", "our choice", gt=0)
    stop_tol: float = hp(0.01, "subset: stop when |stratified AUC - 0.5| <= stop_tol",
                         "our tuning on mnist1d/mlp", ge=0)
    concept_epochs: int = hp(5, "concept: cap on passes over the forget set (more did not pay for their time "
                                "on digits/cnn)", "our tuning on digits/cnn", ge=1)
    concept_retain_weight: float = hp(2.0, "concept: weight of CE on retain data, when used (the squared MMD "
                                           "is at most 2)", "our tuning on mnist1d/mlp and digits/cnn", ge=0)
    concept_retain_batch: int = hp(128, "concept: retain samples per step", "our tuning on digits/cnn", ge=1)
    concept_stop_tol: float = hp(0.05, "concept: stop when the held-out AUC - 0.5 <= this",
                                 "our tuning on digits/cnn", ge=0)
    check_size: int = hp(128, "concept: at most this many forget and third-party samples feed the stopping rule",
                         "our tuning on digits/cnn", ge=4)
    reference_size: int = hp(2048, "subset: at most this many third-party samples (drawn once) give the targets and "
                                   "the stopping rule's scores, so a check's cost does not grow with the data set",
                             "our choice (about 200 per class on 10 classes)", ge=2)
    check_whole_label: bool = hp(False, "concept: keep checking after the first step when the forget set is a whole "
                                        "label (no retain sample has it), where even Retrain's outputs stay "
                                        "distinguishable", "our measurement on digits/cnn and mnist1d/mlp class")


@register_method
class DistMatch(IterativeMethod):
    name = "dist_match"
    summary = "match forget-set outputs to those on unseen third-party data, per class and per example"
    Params = DistMatchParams
    requires = ("forget", "third_party")
    optional = ("retain", "corrected")

    # -- set-up ---------------------------------------------------------------------------------
    def prepare(self, model: nn.Module, task) -> None:
        p = self.params
        self.mode = p.mode if p.mode != "auto" else self.choose_mode(task)
        self.target_set = task.third_party
        if self.mode == "concept":
            keep = ~torch.isin(task.third_party.y, torch.unique(task.forget.y))
            if int(keep.sum()) >= 2:
                self.target_set = task.third_party.subset(torch.nonzero(keep).squeeze(1).cpu())
        self.retain_set = self.retention_data(task)
        with torch.no_grad():  # the original's outputs on third-party data, the anchor's fixed target
            self.anchor = torch.cat([F.log_softmax(self.original(x), 1) for x, _ in self.target_set.batches(512)])
        self.history: list[float] = []  # the stopping rule's AUC at every check
        self.epochs_run = 0
        self.targets: Optional[torch.Tensor] = None
        self.offsets = None  # subset mode's quantile levels within their strata (None: the midpoints)
        if self.mode == "subset":
            self.reference_set = self.target_set.subset(self.check_rows(len(self.target_set), p.reference_size).cpu())
            ref, fix, f = self.reference_set, task.corrected, task.forget
            if fix is not None:  # the reference goes through the correction's change (module docstring)
                self.reference_set = Split(*mirror_correction(ref.x, ref.y, f.x, f.y, fix.x, fix.y, self.generator))
            few = torch.bincount(task.forget.y)[task.forget.y] < p.jitter_below
            if bool(few.any()):
                jitter = torch.rand(len(task.forget), generator=self.generator).to(task.forget.x.device)
                self.offsets = torch.where(few, jitter, torch.full_like(jitter, 0.5))
        self.checks_after_steps = self.mode == "subset" or p.check_whole_label or not self.whole_label(task)
        self.stopped = self.indistinguishable() and task.corrected is None  # a correction runs the epoch cap

    def choose_mode(self, task) -> str:
        """The ``auto`` rule of the module docstring."""
        p, labels = self.params, torch.unique(task.forget.y)
        if task.corrected is not None or len(labels) != 1:
            return "subset"
        if task.retain is None:
            return "concept" if len(task.forget) >= p.concept_min else "subset"
        same = int((task.retain.y == labels[0]).sum())
        return "concept" if len(task.forget) >= p.concept_share * (len(task.forget) + same) else "subset"

    @staticmethod
    def whole_label(task) -> bool:
        """The forget set holds every training sample of its labels: retain data is given and has none."""
        return task.retain is not None and not bool(torch.isin(task.retain.y, torch.unique(task.forget.y)).any())

    @staticmethod
    def retention_data(task) -> Optional[Split]:
        parts = [s for s in (task.retain, task.corrected) if s is not None]
        return Split.concat(*parts) if parts else None

    # -- the loop -------------------------------------------------------------------------------
    def run_epoch(self, epoch: int) -> None:
        if self.stopped:
            return
        p, model, forget, tgt = self.params, self.model, self.task.forget, self.target_set
        anchor_weight, tp_batch, retain_weight, retain_batch = self.retention_setting()
        order = torch.randperm(len(forget), generator=self.generator)
        for start in range(0, len(forget), p.batch_size):
            rows = order[start:start + p.batch_size].to(forget.x.device)
            xf, yf = forget.x[rows], forget.y[rows]
            ti = torch.randint(0, len(tgt), (tp_batch or len(rows),), generator=self.generator).to(tgt.x.device)
            ri = None
            if retain_weight > 0:
                ri = torch.randint(0, len(self.retain_set), (retain_batch,), generator=self.generator)
                ri = ri.to(self.retain_set.x.device)
            # forget and third-party rows always share a pass (so BatchNorm in train mode normalises
            # them together); the retain batch joins it where no layer depends on the batch
            inputs = [torch.cat([xf, tgt.x[ti]])] + ([] if ri is None else [self.retain_set.x[ri]])
            matched, *retain_logits = self.forward_together(model, inputs)
            lf, lt = matched[: len(rows)], matched[len(rows):]
            loss = p.match_weight * self.match_loss(lf, yf, lt, rows)
            if anchor_weight > 0:
                loss = loss + anchor_weight * F.kl_div(F.log_softmax(lt, 1), self.anchor[ti], log_target=True,
                                                         reduction="batchmean")
            if ri is not None:
                loss = loss + retain_weight * F.cross_entropy(retain_logits[0], self.retain_set.y[ri])
            self.update(loss)
        self.epochs_run += 1
        # after the last allowed epoch the rule's verdict changes nothing: skip its forward passes and fit
        if self.epochs_run >= self.epoch_count():
            self.stopped = True
        elif self.checks_after_steps:  # the check also refreshes the subset targets; a correction runs the cap
            self.stopped = self.indistinguishable() and self.task.corrected is None

    def retention_setting(self) -> tuple[float, Optional[int], float, int]:
        """(anchor weight, third-party batch or None for the forget batch's size, retain weight, retain
        batch) of the active mode. Without retain data subset mode leans on the anchor, with its own
        weight and a larger third-party batch, and corrected data (no sample of the training set: all
        of one class in a feature correction) get a weak CE term of their own; concept mode's MMD term
        is small, so its retain term is weaker."""
        p = self.params
        if self.task.retain is None:
            fix = (0.0, 0) if self.task.corrected is None else (p.alone_corrected_weight, p.batch_size)
            anchor = (p.alone_anchor_weight, p.alone_anchor_batch) if self.mode == "subset" else (p.anchor_weight, None)
            return anchor + fix
        if self.mode == "concept":
            return p.anchor_weight, None, p.concept_retain_weight, p.concept_retain_batch
        return p.anchor_weight, None, p.retain_weight, p.retain_batch

    def match_loss(self, lf: torch.Tensor, yf: torch.Tensor, lt: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        if self.mode == "concept":
            return gaussian_mmd2(F.softmax(lf, 1), F.softmax(lt, 1).detach())
        score = lira_confidence(lf, yf)
        return F.huber_loss(score, self.targets[rows], delta=self.params.huber_delta)

    def epoch_count(self) -> int:
        if self.mode == "concept":
            return self.params.concept_epochs
        return math.ceil(self.params.epochs / self.batch_share())

    def batch_share(self) -> float:
        """kappa = n / batch_size for a subset-mode forget set smaller than one batch (with
        ``small_set_scaling``), else 1: such a set makes one step per epoch on a batch kappa times
        the usual size, so the square-root rule scales the learning rate by sqrt(kappa) and the
        number of steps by 1 / kappa."""
        if self.mode != "subset" or not self.params.small_set_scaling:
            return 1.0
        return min(1.0, len(self.task.forget) / self.params.batch_size)

    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        optimizer = super().make_optimizer(model)
        for group in optimizer.param_groups:
            group["lr"] *= math.sqrt(self.batch_share())
        return optimizer

    def should_stop(self, epoch: int) -> bool:
        return self.stopped

    # -- the stopping rule ------------------------------------------------------------------------
    @torch.no_grad()
    def outputs(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.model(chunk) for chunk in x.split(512)])

    @torch.no_grad()
    def indistinguishable(self) -> bool:
        """The stopping rule of the active mode (module docstring); records the AUC and, in subset
        mode, refreshes the per-example targets from the same forward pass."""
        model, was = self.model, self.model.training
        model.eval()
        try:
            auc = self.concept_auc() if self.mode == "concept" else self.subset_auc()
        finally:
            model.train(was)
        self.history.append(auc)
        if self.mode == "concept":
            return auc_stop(auc, self.params.concept_stop_tol)
        return abs(auc - 0.5) <= self.params.stop_tol  # no classifier is fitted: below 0.5 is overshoot

    def subset_auc(self) -> float:
        """The stratified AUC of the scores of the whole forget set against those of at most
        ``reference_size`` third-party samples (drawn once in ``prepare``), and the targets."""
        forget, ref = self.task.forget, self.reference_set
        sf = lira_confidence(self.outputs(forget.x), forget.y)
        st = lira_confidence(self.outputs(ref.x), ref.y)
        self.targets = quantile_targets(sf, forget.y, st, ref.y, self.offsets)
        return stratified_auc(sf, forget.y, st, ref.y)

    def concept_auc(self) -> float:
        """The held-out AUC on the same (at most ``check_size``) forget and third-party samples at
        every check. Before the first step the model is the original, whose third-party outputs are
        the anchor: only the forget side needs a forward pass then."""
        size = self.params.check_size
        forget_rows = self.check_rows(len(self.task.forget), size)
        target_rows = self.check_rows(len(self.target_set), size)
        xf = self.task.forget.x[forget_rows]
        if self.epochs_run == 0:
            pf, pt = F.softmax(self.outputs(xf), 1), self.anchor[target_rows].exp()
        else:  # one forward pass for both sides (eval mode: the rows do not interact)
            probs = F.softmax(self.outputs(torch.cat([xf, self.target_set.x[target_rows]])), 1)
            pf, pt = probs[: len(xf)], probs[len(xf):]
        return two_sample_auc(pf, pt, seed=self.seed)

    def check_rows(self, n: int, size: int) -> torch.Tensor:
        """All of n rows, or ``size`` of them drawn from the seed (the same at every check)."""
        if n <= size:
            return torch.arange(n)
        g = torch.Generator().manual_seed(self.seed + 29)
        return torch.randperm(n, generator=g)[:size].sort().values
