"""What ``dist_match`` keeps while it matches: its retention terms, chosen by mode and by the data the
task holds (the reasoning and measurements are in docs/methods/dist_match.md). A mixin of ``DistMatch``:
it reads ``self.params``, ``self.task``, ``self.mode``, ``self.original``, ``self.generator``,
``self.target_set`` and ``self.retain_set``.

* The anchor: the original model's own outputs on unseen data held fixed. With retain data, and for
  corrections, KL(original || model) on the matching batch's third-party rows. Without retain data,
  on a deletion, the squared distance of centred logits to the original's, relative to the
  original's mean squared centred-logit norm (scale-free): it holds confidence levels, which KL lets
  slide when the original is sure. In subset mode its weight starts high and shrinks
  (``alone_anchor_decay``) after every epoch whose progress falls behind the pace that would finish
  within the epoch cap (the strongest anchor that still lets the match finish); in a stream of
  requests its reference is the first model's outputs (stream.py). In concept mode
  (weight ``concept_alone_anchor_weight``) it covers every unseen sample except those of the
  forgotten labels that the forget set covers (``covered``): what the forget set leaves of its labels
  keeps its outputs. A forget set that covers its label's unseen samples nearly as often as a uniform
  draw of the label would (``whole_label_coverage``) is the whole label: none of its unseen samples is
  anchored, nor its logit anywhere (Retrain never learnt the label).
* The retain term: cross-entropy on retain (+ corrected) batches.
* The repair, with retain data, in subset mode, on forget sets of at least one batch: after the
  match, retain samples whose score fell more than ``repair_tol`` below min(their original score,
  ``repair_level``) are pushed back (hinge), beside a random retain batch, while the forget scores
  are held where the match left them.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch.nn import functional as F

from ....data.split import Split
from .stats import centred_logits, covered, relative_logit_distance
from .stream import first_model_logits
from ..forget_loss import logit_confidence


class Retention:
    """Mixin of ``DistMatch``: the anchor, the retain term's settings and the repair."""

    # -- the anchor -----------------------------------------------------------------------------
    def prepare_anchor(self, task) -> None:
        """The anchor's data (``anchor_set``: the matching batch's own third-party rows when it is
        ``target_set``), the original's logits on it, and the anchor kind."""
        self.relative_anchor = task.retain is None and task.corrected is None
        self.anchor_set, self.whole_labels = self.target_set, []
        if task.retain is None and self.mode == "concept":
            tp = task.third_party
            keep = torch.ones(len(tp), dtype=torch.bool, device=tp.x.device)
            for label in torch.unique(task.forget.y).tolist():
                rows = torch.nonzero(tp.y == label).squeeze(1)
                whole, hit = self.whole_label_test(tp.x[rows], task.forget.x[task.forget.y == label])
                keep[rows if whole else rows[hit]] = False
                self.whole_labels += [label] if whole else []
            self.anchor_set = tp.subset(torch.nonzero(keep).squeeze(1).cpu())
        with torch.no_grad():
            self.anchor_logits = torch.cat([self.original(x) for x, _ in self.anchor_set.batches(512)])
        if self.relative_anchor:  # in a stream: the first model's outputs (stream.py)
            self.anchor_logits = first_model_logits(self.anchor_set.x, self.anchor_logits, self.state,
                                                    self.params.carry_forgotten)
        self.anchor_log_probs = F.log_softmax(self.anchor_logits, 1)
        # the scale-free anchor holds the logits of the labels that stay: a removed whole label is meant
        # to change everywhere (Retrain never learnt it)
        columns = torch.arange(self.anchor_logits.shape[1], device=self.anchor_logits.device)
        removed = torch.tensor(self.whole_labels, dtype=torch.long, device=columns.device)
        columns = columns[~torch.isin(columns, removed)]
        self.anchor_columns = columns
        kept = self.anchor_logits[:, columns]
        self.anchor_scale = float(centred_logits(kept).pow(2).sum(1).mean().clamp_min(1e-12))
        self.anchor_factor = 1.0  # the relative anchor's weight multiplier (shrunk when behind pace)

    def whole_label_test(self, unseen: torch.Tensor, forget: torch.Tensor) -> tuple[bool, torch.Tensor]:
        """(whether the forget set is the whole label, which unseen samples of the label it covers): whole
        when it covers them at least ``whole_label_coverage`` times as often as a uniform draw of the
        label would (n_f / (n_f + n_t - 1)). A whole label's unseen samples all go unanchored, else the
        covered ones."""
        hit = covered(unseen, forget)
        n_f, n_t = len(forget), len(unseen)
        uniform = n_f / max(1, n_f + n_t - 1)
        return bool(n_t) and float(hit.float().mean()) >= self.params.whole_label_coverage * uniform, hit

    def anchor_term(self, logits: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        if self.relative_anchor:
            cols = self.anchor_columns
            return self.anchor_factor * relative_logit_distance(logits[:, cols], self.anchor_logits[rows][:, cols],
                                                                self.anchor_scale)
        return F.kl_div(F.log_softmax(logits, 1), self.anchor_log_probs[rows], log_target=True, reduction="batchmean")

    def pace_anchor(self) -> None:
        """Shrink the relative anchor's weight when the last nominal epoch (``batch_size`` forget samples
        seen: several one-step epochs for a forget set smaller than a batch) reduced |AUC - 1/2| by less
        than its share of what is left to remove within the epoch cap."""
        stride = max(1, round(1 / self.batch_share()))
        if not self.relative_anchor or self.mode != "subset" or len(self.history) <= stride or self.epochs_run % stride:
            return
        before, after = abs(self.history[-1 - stride] - 0.5), abs(self.history[-1] - 0.5)
        left = self.epoch_count() - self.epochs_run
        if before - after < (before - self.params.stop_tol) * stride / (left + stride):
            self.anchor_factor *= self.params.alone_anchor_decay

    def retention_setting(self) -> tuple[float, Optional[int], float, int]:
        """(anchor weight, third-party batch or None for the forget batch's size, retain weight, retain
        batch) of the active mode and data (module docstring): without retain data subset mode leans
        on the anchor, on a larger batch, and corrected data (all of one class in a feature correction)
        get a CE term of their own; concept mode's MMD term is small, so its retain term is weaker."""
        p = self.params
        if self.task.retain is None:
            if self.task.corrected is not None:
                return p.correction_anchor_weight, p.alone_anchor_batch, p.alone_corrected_weight, p.batch_size
            if self.mode == "subset":
                return p.alone_anchor_weight, p.alone_anchor_batch, 0.0, 0
            return p.concept_alone_anchor_weight, None, 0.0, 0
        if self.mode == "concept":
            return p.anchor_weight, None, p.concept_retain_weight, p.concept_retain_batch
        return p.anchor_weight, None, p.retain_weight, p.retain_batch

    # -- the repair -----------------------------------------------------------------------------
    def repairs(self) -> bool:
        return (self.params.repair_steps > 0 and self.mode == "subset" and self.task.retain is not None
                and len(self.task.forget) >= self.params.batch_size)

    def repair(self) -> None:
        """The repair phase (module docstring), on the retain split (not on corrected data)."""
        p, model, retain, forget = self.params, self.model, self.task.retain, self.task.forget
        with torch.no_grad():
            was = model.training
            model.eval()
            now = logit_confidence(self.outputs(retain.x), retain.y)
            held = logit_confidence(self.outputs(forget.x), forget.y)
            model.train(was)
            level = logit_confidence(torch.cat([self.original(x) for x, _ in retain.batches(512)]), retain.y)
            level = level.clamp(max=p.repair_level)
        fallen = torch.nonzero(now < level - p.repair_tol).squeeze(1)
        if len(fallen) == 0:
            return
        size = p.repair_batch
        for _ in range(p.repair_steps):
            picked = fallen if len(fallen) <= size else fallen[self.draw(len(fallen), size, fallen.device)]
            rows = torch.cat([picked, self.draw(len(retain), size, fallen.device)])
            kept = self.draw(len(forget), min(len(forget), size), fallen.device)
            zr, zf = self.forward_together(model, [retain.x[rows], forget.x[kept]])
            loss = (level[rows] - logit_confidence(zr, retain.y[rows])).clamp_min(0).mean()
            loss = loss + p.repair_hold * F.huber_loss(logit_confidence(zf, forget.y[kept]), held[kept])
            self.update(loss)

    def draw(self, n: int, size: int, device: torch.device) -> torch.Tensor:
        return torch.randint(0, n, (size,), generator=self.generator).to(device)


def concat_or_none(*parts: Optional[Split]) -> Optional[Split]:
    present = [s for s in parts if s is not None]
    return Split.concat(*present) if present else None
