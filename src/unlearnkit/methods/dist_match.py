"""Distribution matching, after Chen et al., "Fast yet versatile machine unlearning for deep neural
networks", Neural Networks 190, 2025 (https://doi.org/10.1016/j.neunet.2025.107648; the abstract
states the principle, the losses are ours): fine-tune until the forget outputs are distributed like
the outputs on unseen third-party data.

    subset:  min mean_i huber(s(x_i, y_i) - t_i) + R,  s = log p_y - log(1 - p_y), t_i = the quantile of
             the third-party class-y_i scores at x_i's rank among the forget samples of y_i (per epoch)
    concept: min MMD^2(softmax(f(X_f) / T), softmax(f(X_t) / T)) + R,  forget labels withheld from X_t

``mode`` auto: concept for the deletion of one label holding >= ``concept_share`` of its training
samples (without retain data: >= ``concept_min`` samples), else subset. Stop when a two-sample AUC is
within ``stop_tol`` (subset) / ``concept_stop_tol`` (concept, on <= ``check_size`` samples a side) of
1/2; ``check_whole_label`` keeps checking a removed whole label. R = ``anchor_weight`` KL(original ||
model) on third-party data + CE on retain (+ corrected) data; without retain data a scale-free logit
anchor paced to the epoch cap (subset) or an anchor on unseen data the forget set does not cover
(concept); with retain data a repair after the match lifts retain scores it pushed down.
``dist_match_noretain`` never sees retain data; in a stream, subset mode matches earlier requests' samples.

Defaults (our tuning on mnist1d mlp/cnn1d, digits/cnn and tabular models unless said; the notes):
    optimizer adam, lr 3e-3, batch_size 64, momentum 0.9 (unused), weight_decay 0, match_weight 1,
    anchor_weight 1, huber_delta 1, retain_budget None, select all, select_fraction 0.05 (off)
    subset: epochs 10, retain_weight 12, retain_batch 256, stop_tol 0.01, reference_size 2048,
      jitter_below 8, small_set_scaling on (Malladi et al., NeurIPS 2022, square-root rule)
    repair: repair_steps 20, repair_level 3.5, repair_tol 0.5, repair_hold 3, repair_batch 256
    no retain data: alone_anchor_weight 180, alone_anchor_decay 0.7, alone_anchor_batch 256,
      alone_epochs 20; corrections: correction_anchor_weight 6, alone_corrected_weight 4
    concept: concept_margin 12 (T = median top-2 logit gap / 12, >= 1), concept_epochs 5,
      concept_retain_weight 2, concept_retain_batch 128, concept_stop_tol 0.05, check_size 128,
      check_whole_label off; no retain data: concept_alone_anchor_weight 10, whole_label_coverage
      0.8; concept_share 0.25, concept_min 16 (ours); carry_forgotten on
    restarts 3, clip_grad_norm None: the iterative family's divergence guard (docs/architecture.md)

    >>> model_u = get_method("dist_match").unlearn(model, task, seed=0)   # task.third_party required
    >>> alone = get_method("dist_match_noretain").unlearn(model, task)     # never reads task.retain

Design notes: docs/methods/dist_match.md
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

from ..data.split import Split
from .blocks.dist_match.retention import Retention, concat_or_none
from .blocks.dist_match.stats import (auc_stop, gaussian_mmd2, mirror_correction, quantile_targets,
                                      saturation_temperature, stratified_auc, two_sample_auc)
from .blocks.dist_match.stream import with_earlier_requests
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
    alone_anchor_weight: float = hp(180.0, "subset-mode deletion without retain data: starting weight of the anchor, "
                                          "the squared distance of centred logits to the original's relative to their "
                                          "mean square, scaled by alone_anchor_decay after an epoch behind pace",
                                    "our tuning on mnist1d mlp/cnn1d and three tabular models (benchmarks/own_models.py)",
                                    ge=0)
    alone_anchor_decay: float = hp(0.7, "subset-mode deletion without retain data: factor on the anchor's weight after "
                                        "an epoch behind the pace that finishes the match within alone_epochs",
                                  "our tuning on mnist1d mlp and cnn1d (0.5 over-forgot on cnn1d random)", gt=0, le=1)
    alone_anchor_batch: int = hp(256, "without retain data: third-party samples per step of subset mode (with retain "
                                      "data, as many as forget samples)", "our tuning on mnist1d/mlp", ge=1)
    alone_epochs: int = hp(20, "subset-mode deletion without retain data: cap on passes over the forget set",
                           "our tuning on mnist1d/mlp and three tabular models", ge=1)
    correction_anchor_weight: float = hp(6.0, "a correction without retain data: weight of the KL anchor",
                                         "our tuning on mnist1d/mlp", ge=0)
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
    repair_steps: int = hp(20, "subset with retain data: steps of the repair after the match (0: none)",
                           "our tuning on mnist1d/mlp random 10%", ge=0)
    repair_level: float = hp(3.5, "repair: a retain sample's score is held at min(its original score, this)",
                             "our choice (p_y ~ 0.97, where MIA-efficacy's member threshold lies)", gt=0)
    repair_tol: float = hp(0.5, "repair: samples more than this below their level are pushed back", "our choice", ge=0)
    repair_hold: float = hp(3.0, "repair: weight of the Huber term that holds the forget scores", "our tuning", ge=0)
    repair_batch: int = hp(256, "repair: fallen retain samples (and as many random ones) per step", "our choice", ge=1)
    carry_forgotten: bool = hp(True, "a stream of requests: subset mode matches the earlier subset-mode requests' "
                                     "samples again with its own; without retain data it anchors to the first "
                                     "model's outputs", "our measurement on mnist1d/mlp, 5 requests")
    concept_margin: float = hp(12.0, "concept: softmax temperature = median top-2 logit gap of the forget set / this "
                                     "(at least 1), so that saturated outputs keep a gradient",
                               "our tuning on mnist1d mlp/cnn1d backdoor and subclass, digits/cnn class", gt=0)
    concept_alone_anchor_weight: float = hp(10.0, "concept mode without retain data: weight of the scale-free logit "
                                                  "anchor on the unseen data the forget set does not cover",
                                            "our tuning on mnist1d mlp/cnn1d backdoor and sub-class", ge=0)
    whole_label_coverage: float = hp(0.8, "concept mode without retain data: a forget set that covers its label's "
                                           "unseen samples at least this share of a uniform draw's rate is the "
                                           "whole label (none of them anchored)",
                                     "our choice: whole classes 0.92-1.08, sub-classes 0.62-0.67 (digits, mnist1d)",
                                     ge=0)
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
class DistMatch(Retention, IterativeMethod):
    name = "dist_match"
    summary = "match forget-set outputs to those on unseen third-party data, per class and per example"
    Params = DistMatchParams
    requires = ("forget", "third_party")
    optional = ("retain", "corrected")

    # -- set-up ---------------------------------------------------------------------------------
    def prepare(self, model: nn.Module, task) -> None:
        p = self.params
        self.mode = p.mode if p.mode != "auto" else self.choose_mode(task)
        if self.mode == "subset":  # earlier requests' samples of a stream are matched again (carry_forgotten)
            task = self.task = with_earlier_requests(task, self.state, p.carry_forgotten)
        self.target_set = task.third_party
        if self.mode == "concept":
            keep = ~torch.isin(task.third_party.y, torch.unique(task.forget.y))
            if int(keep.sum()) >= 2:
                self.target_set = task.third_party.subset(torch.nonzero(keep).squeeze(1).cpu())
            with torch.no_grad():  # the original's outputs (eval mode: BatchNorm statistics stay as they are)
                forget_logits = torch.cat([self.original(x) for x in task.forget.x.split(512)])
            self.temperature = saturation_temperature(forget_logits, p.concept_margin)
        self.retain_set = concat_or_none(task.retain, task.corrected)
        self.prepare_anchor(task)
        self.history: list[float] = []  # the stopping rule's AUC at every check
        self.epochs_run = 0
        self.targets: Optional[torch.Tensor] = None
        self.offsets = None  # subset mode's quantile levels within their strata (None: the midpoints)
        if self.mode == "subset":
            self.reference_set = self.target_set.subset(self.check_rows(len(self.target_set), p.reference_size).cpu())
            ref, fix, f = self.reference_set, task.corrected, task.forget
            if fix is not None:  # the reference goes through the correction's change (docs/methods/dist_match.md)
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

    # -- the loop -------------------------------------------------------------------------------
    def run_epoch(self, epoch: int) -> None:
        if self.stopped:
            return
        p, model, forget, tgt, anchor = self.params, self.model, self.task.forget, self.target_set, self.anchor_set
        anchor_weight, tp_batch, retain_weight, retain_batch = self.retention_setting()
        order = torch.randperm(len(forget), generator=self.generator)
        for start in range(0, len(forget), p.batch_size):
            rows = order[start:start + p.batch_size].to(forget.x.device)
            xf, yf = forget.x[rows], forget.y[rows]
            ti = self.draw(len(tgt), tp_batch or len(rows), tgt.x.device)
            ai = None if anchor is tgt else self.draw(len(anchor), tp_batch or len(rows), tgt.x.device)
            ri = None if retain_weight <= 0 else self.draw(len(self.retain_set), retain_batch, forget.x.device)
            # forget and third-party rows always share a pass (so BatchNorm in train mode normalises
            # them together); the anchor and retain batches join it where no layer depends on the batch
            inputs = [torch.cat([xf, tgt.x[ti]])] + [s.x[i] for s, i in ((anchor, ai), (self.retain_set, ri))
                                                     if i is not None]
            matched, *others = self.forward_together(model, inputs)
            lf, lt = matched[: len(rows)], matched[len(rows):]
            loss = p.match_weight * self.match_loss(lf, yf, lt, rows)
            if anchor_weight > 0:
                anchored = self.anchor_term(lt, ti) if ai is None else self.anchor_term(others[0], ai)
                loss = loss + anchor_weight * anchored
            if ri is not None:
                loss = loss + retain_weight * F.cross_entropy(others[-1], self.retain_set.y[ri])
            self.update(loss)
        self.epochs_run += 1
        # after the last allowed epoch the rule's verdict changes nothing: skip its forward passes and fit
        if self.epochs_run >= self.epoch_count():
            self.stopped = True
        elif self.checks_after_steps:  # the check also refreshes the subset targets; a correction runs the cap
            self.stopped = self.indistinguishable() and self.task.corrected is None
            self.pace_anchor()

    def finish(self, model: nn.Module, task) -> None:
        if self.repairs():
            self.repair()

    def match_loss(self, lf: torch.Tensor, yf: torch.Tensor, lt: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        if self.mode == "concept":
            t = self.temperature
            return gaussian_mmd2(F.softmax(lf / t, 1), F.softmax(lt / t, 1).detach())
        score = lira_confidence(lf, yf)
        return F.huber_loss(score, self.targets[rows], delta=self.params.huber_delta)

    def epoch_count(self) -> int:
        p = self.params
        if self.mode == "concept":
            return p.concept_epochs
        alone = self.task.retain is None and self.task.corrected is None
        return math.ceil((p.alone_epochs if alone else p.epochs) / self.batch_share())

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
        if self.epochs_run == 0 and self.anchor_set is self.target_set:
            pf, pt = F.softmax(self.outputs(xf), 1), self.anchor_log_probs[target_rows].exp()
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
