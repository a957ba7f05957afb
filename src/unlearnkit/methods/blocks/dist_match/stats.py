"""The statistics of ``dist_match`` (see its module docstring): the Gaussian-kernel MMD with the
median heuristic, the per-class quantile targets, the class-stratified AUC of subset mode, the
held-out logistic-regression AUC of concept mode, the mirroring of a correction onto unseen data, the
saturation temperature of concept mode, the scale-free logit distance of the retain-free anchor and the
nearest-neighbour coverage of unseen samples by the forget set. Module-level, so tests can check them
by hand."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch


def pairwise_sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.unsqueeze(1) - b.unsqueeze(0)).pow(2).sum(-1)


def median_bandwidth(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Median heuristic: the median of the pairwise Euclidean distances between distinct points of
    the pooled sample (detached; 1.0 when all points coincide)."""
    z = torch.cat([x, y]).detach()
    d2 = pairwise_sq_dists(z, z)
    off = d2[~torch.eye(len(z), dtype=torch.bool, device=z.device)]
    if off.numel() == 0:
        return torch.tensor(1.0, device=z.device)
    med = off.median().clamp_min(0).sqrt()
    return med if float(med) > 1e-12 else torch.tensor(1.0, device=z.device)


def gaussian_mmd2(x: torch.Tensor, y: torch.Tensor, sigma: Optional[torch.Tensor | float] = None) -> torch.Tensor:
    """Squared MMD (biased V-statistic) between samples ``x`` (n, d) and ``y`` (m, d) with the
    kernel k(a, b) = exp(-||a - b||^2 / (2 sigma^2)); ``sigma`` defaults to the median heuristic."""
    if sigma is None:
        sigma = median_bandwidth(x, y)
    gamma = 1.0 / (2.0 * torch.as_tensor(sigma, dtype=x.dtype, device=x.device) ** 2)
    kxx = torch.exp(-gamma * pairwise_sq_dists(x, x)).mean()
    kyy = torch.exp(-gamma * pairwise_sq_dists(y, y)).mean()
    kxy = torch.exp(-gamma * pairwise_sq_dists(x, y)).mean()
    return (kxx + kyy - 2 * kxy).clamp_min(0)


def _class_keys(a: torch.Tensor, a_labels: torch.Tensor, b: torch.Tensor,
                b_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Integer keys that order rows by (label, score), exactly and with ties kept: a score's key part
    is its rank among the distinct scores of both samples, so one sort groups every class's scores."""
    distinct, ids = torch.unique(torch.cat([a, b]), sorted=True, return_inverse=True)
    width = len(distinct) + 1
    return a_labels.long() * width + ids[: len(a)], b_labels.long() * width + ids[len(a):], width


def quantile_targets(scores: torch.Tensor, labels: torch.Tensor, ref_scores: torch.Tensor,
                     ref_labels: torch.Tensor, offsets: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per class k, the forget example of rank r (ascending, among the n_k of class k) gets the
    (r + o) / n_k quantile (linear interpolation, as ``torch.quantile``) of the reference scores of
    class k (all reference scores when class k has none): the monotone coupling of the two
    empirical distributions. The offset o is 1/2, the midpoint of the rank's stratum, or, given
    ``offsets`` (one value in [0, 1) per example, aligned with ``scores``), the offsets of class k's
    examples sorted ascending and handed out by rank. All classes at once (one sort per sample)."""
    key, ref_key, _ = _class_keys(scores, labels, ref_scores, ref_labels)
    classes = int(torch.cat([labels, ref_labels]).max()) + 1
    count = torch.bincount(labels.long(), minlength=classes)
    order = key.argsort()  # grouped by class, ascending score within each class
    label_sorted = labels.long()[order]
    rank = torch.arange(len(scores), device=scores.device) - (count.cumsum(0) - count)[label_sorted]
    within = torch.full_like(scores, 0.5)
    if offsets is not None:  # grouped by class the same way, ascending offset within each class
        within = offsets.to(scores.dtype)[(labels.double() * 2 + offsets.double()).argsort()]
    levels = (rank.to(scores.dtype) + within) / count[label_sorted].to(scores.dtype)
    ref_count = torch.bincount(ref_labels.long(), minlength=classes)
    first, size = (ref_count.cumsum(0) - ref_count)[label_sorted], ref_count[label_sorted]
    pooled = size == 0  # a class without reference scores reads row 1: all reference scores, sorted
    table = torch.stack([ref_scores[ref_key.argsort()], ref_scores.sort().values])
    first, size = torch.where(pooled, 0, first), torch.where(pooled, len(ref_scores), size)
    pos = levels.clamp(0, 1) * (size - 1).to(scores.dtype)
    below = pos.floor().long()
    above = torch.minimum(below + 1, size - 1)
    low = table[pooled.long(), first + below]
    targets = torch.empty_like(scores)
    targets[order] = low + (table[pooled.long(), first + above] - low) * (pos - below.to(scores.dtype))
    return targets


def mirror_correction(x: torch.Tensor, y: torch.Tensor, forget_x: torch.Tensor, forget_y: torch.Tensor,
                      corrected_x: torch.Tensor, corrected_y: torch.Tensor,
                      generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Unseen samples (x, y) given the change a correction request made, as a model that trained on
    the corrected data sees the forget samples (as trained):

    * input positions where any forget input differs from its corrected version get values drawn
      uniformly in the range of the request's inputs, fresh per sample and position: a pattern the
      model never saw, in the place of the one it did;
    * when labels differ, each sample of a class c in ``corrected_y`` takes the forget label of a
      forget example drawn from those corrected to c (so labels change at the request's rate, class by
      class); samples of other classes are dropped, unless that would leave fewer than two.
    """
    changed = (forget_x != corrected_x).reshape(len(forget_x), -1).any(0).reshape(x.shape[1:])
    if bool(changed.any()):
        x = x.clone()  # the caller's samples stay as they are; labels are only ever replaced, never written
        lo = float(torch.minimum(forget_x.min(), corrected_x.min()))
        hi = float(torch.maximum(forget_x.max(), corrected_x.max()))
        noise = torch.rand((len(x), int(changed.sum())), generator=generator)
        x[:, changed] = (lo + (hi - lo) * noise).to(device=x.device, dtype=x.dtype)
    keep = torch.isin(y, corrected_y)
    if bool((forget_y != corrected_y).any()) and int(keep.sum()) >= 2:
        x, y = x[keep], y[keep]
        order = torch.argsort(corrected_y, stable=True)
        count = torch.bincount(corrected_y.long(), minlength=int(y.max()) + 1)
        first = count.cumsum(0) - count
        draw = torch.rand(len(y), generator=generator).to(y.device)
        pick = first[y] + (draw * count[y]).long().clamp(max=count[y] - 1)
        y = forget_y[order][pick]
    return x, y


def stratified_auc(a: torch.Tensor, a_labels: torch.Tensor, b: torch.Tensor, b_labels: torch.Tensor) -> float:
    """P(a > b) + P(a = b) / 2 for pairs of the same class, averaged over the classes of ``a``
    weighted by their counts (classes absent from ``b`` are skipped; 0.5 when none is left).
    Counted with two binary searches per example in the reference sorted by (class, score) (the
    Mann-Whitney U), so the per-epoch check costs far less than ranking each class's pooled sample."""
    key, ref_key, width = _class_keys(a, a_labels, b, b_labels)
    ref_key = ref_key.sort().values
    start = torch.searchsorted(ref_key, a_labels.long() * width)  # where each example's class begins
    first_equal = torch.searchsorted(ref_key, key, right=False)
    below, ties = first_equal - start, torch.searchsorted(ref_key, key, right=True) - first_equal
    size = torch.searchsorted(ref_key, (a_labels.long() + 1) * width) - start
    present = size > 0
    if not bool(present.any()):
        return 0.5
    return float(((below + 0.5 * ties)[present].double() / size[present]).mean())


def two_sample_auc(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray, seed: int = 0) -> float:
    """Held-out AUC of a logistic-regression classifier (scikit-learn, C = 1) telling rows of ``a``
    (label 1) from rows of ``b`` (label 0): fitted on one random half of each, the other halves'
    decision values ranked (Mann-Whitney, ties 1/2), both ways, averaged. 0.5 = indistinguishable.
    scikit-learn's Newton-Cholesky solver: the same penalised objective as its default solver, solved
    exactly in a few steps, at a third of the time on these small problems (the check runs every epoch)."""
    from sklearn.linear_model import LogisticRegression

    a, b = (torch.as_tensor(v).detach().cpu().double().flatten(1) for v in (a, b))
    if len(a) < 4 or len(b) < 4:
        return 0.5
    rng = np.random.default_rng(seed)
    pa, pb = torch.as_tensor(rng.permutation(len(a))), torch.as_tensor(rng.permutation(len(b)))
    halves_a = (pa[: len(a) // 2], pa[len(a) // 2:])
    halves_b = (pb[: len(b) // 2], pb[len(b) // 2:])
    aucs = []
    for fit, score in ((0, 1), (1, 0)):
        fa, fb = a[halves_a[fit]], b[halves_b[fit]]
        labels = np.r_[np.ones(len(fa)), np.zeros(len(fb))]
        clf = LogisticRegression(C=1.0, solver="newton-cholesky").fit(torch.cat([fa, fb]).numpy(), labels)
        weights = torch.as_tensor(clf.coef_[0])
        sa, sb = a[halves_a[score]] @ weights, b[halves_b[score]] @ weights  # the intercept shifts both alike
        one_class = torch.zeros(len(sa), dtype=torch.long), torch.zeros(len(sb), dtype=torch.long)
        aucs.append(stratified_auc(sa, one_class[0], sb, one_class[1]))
    return float(np.mean(aucs))


def auc_stop(auc: float, tol: float) -> bool:
    """The stopping rule: the two sets are indistinguishable within ``tol``. One-sided: an AUC below
    0.5 (forget outputs less confident than unseen ones, or a held-out classifier that found nothing
    that generalises) is as indistinguishable as 0.5."""
    return auc - 0.5 <= tol


def saturation_temperature(logits: torch.Tensor, margin: float) -> float:
    """max(1, m / ``margin``), m the median over rows of the gap between the two largest logits: the
    softmax temperature at which the typical row's top-2 gap is ``margin`` (rows that saturate the
    softmax at temperature 1 keep a usable gradient)."""
    if logits.shape[1] < 2 or len(logits) == 0:
        return 1.0
    top = logits.detach().topk(2, dim=1).values
    return max(1.0, float((top[:, 0] - top[:, 1]).median()) / margin)


def centred_logits(logits: torch.Tensor) -> torch.Tensor:
    """Each row minus its mean (softmax ignores a shift of a row, so only these differences matter)."""
    return logits - logits.mean(1, keepdim=True)


def relative_logit_distance(logits: torch.Tensor, reference: torch.Tensor, scale: float) -> torch.Tensor:
    """mean_rows ||centred(logits) - centred(reference)||^2 / ``scale``: the squared distance of the
    centred logit vectors, in units of ``scale`` (the anchor uses the reference's mean squared
    centred-logit norm, so the weight does not depend on the model's logit scale)."""
    return (centred_logits(logits) - centred_logits(reference)).pow(2).sum(1).mean() / scale


def covered(points: torch.Tensor, forget: torch.Tensor) -> torch.Tensor:
    """For each row of ``points`` (unseen samples of one label), whether its nearest neighbour among
    the other rows of ``points`` and the rows of ``forget`` is a forget row (Euclidean distance of the
    flattened inputs). A forget set that is the whole label covers most of its unseen samples; a part
    of the label (a sub-population) covers only those that lie among its own samples."""
    a, b = points.flatten(1).double(), forget.flatten(1).double()
    if len(b) == 0:
        return torch.zeros(len(a), dtype=torch.bool, device=points.device)
    own = torch.cdist(a, a)
    own.fill_diagonal_(float("inf"))
    return torch.cdist(a, b).min(1).values < own.min(1).values
