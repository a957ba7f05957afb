"""The numbers behind a side-by-side comparison of an unlearned model with Retrain and the Original.

``Probe.from_task`` draws bounded subsets of the forget, retain and test data (so that the cost does
not grow with the data set); ``References`` holds what the Original and Retrain give on them (layer
Gram matrices, 2-D embedding, membership scores); ``model_view`` gives, for one model, plain numbers
(JSON-ready): per-class accuracies, the forget set's prediction matrix, the 2-D embedding of the
probe's penultimate features (turned to match the Original's), linear CKA per layer to Retrain and
to the Original on forget and on retain data, and a membership score per forget example.

The membership score is loss-based: the fraction of test (unseen) examples whose LiRA statistic
phi = log p_y - log(1 - p_y) is lower than the example's. About 0.5 for an example the model treats
like unseen data, near 1 for one it is more sure of than of almost any unseen example. The examples
*exposed* are those whose score exceeds Retrain's by the most.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
from torch import nn

from ..data.split import Split
from ..errors import DataError
from .attacks.base import lira_statistic
from .metrics import predict_logits
from .representations import (cka, embed_2d, layer_grams, penultimate_features, per_class_accuracy, predictions,
                              prediction_matrix, weighted_layers)

#: splits shown, in this order
SPLITS = ("forget", "retain", "test")
#: examples per split for the embedding and CKA; per-class accuracies use up to ``PER_CLASS_LIMIT``
PROBE_SIZE = 200
PER_CLASS_LIMIT = 2000
#: forget examples shown as data in the per-example view
EXPOSED = 8


def _sample(split: Split, limit: int, rng: np.random.Generator) -> Split:
    if len(split) <= limit:
        return split
    return split.subset(np.sort(rng.choice(len(split), limit, replace=False)))


@dataclass
class Probe:
    """The data every model of a comparison is looked at on: ``splits`` (bounded subsets for the
    embedding and CKA), ``large`` (bounded subsets for per-class accuracies and membership scores;
    the whole forget set), and the number of classes."""

    splits: dict[str, Split]
    large: dict[str, Split]
    num_classes: int

    @classmethod
    def from_task(cls, task: Any, num_classes: Optional[int] = None, size: int = PROBE_SIZE,
                  seed: int = 0) -> "Probe":
        """Subsets of ``task``'s forget, retain and test data (forget required; retain and test when
        the task has them), drawn with ``seed``."""
        if task.forget is None or len(task.forget) < 4:
            raise DataError("a comparison needs a forget set of at least 4 examples")
        num_classes = num_classes or task.num_classes
        if not num_classes:
            raise DataError("a comparison needs the number of classes (task.num_classes)")
        rng = np.random.default_rng(seed)
        present = {s: getattr(task, s) for s in SPLITS if getattr(task, s, None) is not None and len(getattr(task, s))}
        large = {s: (present[s] if s == "forget" else _sample(present[s], PER_CLASS_LIMIT, rng)) for s in present}
        splits = {s: _sample(large[s], size, rng) for s in present}
        return cls(splits, large, int(num_classes))

    def all(self) -> Split:
        return Split.concat(*self.splits.values())

    def layout(self) -> dict[str, Any]:
        """Labels and split of every probe example (the order of every view's embedding)."""
        return {"labels": self.all().y.tolist(),
                "split": [s for s, part in self.splits.items() for _ in range(len(part))]}


def _phi(model: nn.Module, split: Split) -> np.ndarray:
    return lira_statistic(predict_logits(model, split), split.y)


def membership_scores(model: nn.Module, forget: Split, unseen: Split) -> np.ndarray:
    """Per forget example: the fraction of ``unseen`` examples with a lower phi (module docstring)."""
    reference = np.sort(_phi(model, unseen))
    if len(reference) == 0:
        raise DataError("membership scores need unseen (test) examples")
    return np.searchsorted(reference, _phi(model, forget), side="left") / len(reference)


@dataclass
class References:
    """What the Original and Retrain give on the probe, computed once per comparison."""

    probe: Probe
    layers: list[str]
    grams: dict[str, dict[str, dict[str, np.ndarray]]] = field(default_factory=dict)  # model -> split -> layer
    embedding: dict[str, np.ndarray] = field(default_factory=dict)
    scores: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def build(cls, original: nn.Module, retrain: Optional[nn.Module], probe: Probe) -> "References":
        layers = [name for name, _ in weighted_layers(original)]
        refs = cls(probe, layers)
        for name, model in (("original", original), ("retrain", retrain)):
            if model is None:
                continue
            refs.grams[name] = _split_grams(model, probe, layers)
            refs.embedding[name] = _embedding(model, probe, refs.embedding.get("original"))
            if "test" in probe.large:
                refs.scores[name] = membership_scores(model, probe.large["forget"], probe.large["test"])
        return refs


def _split_grams(model: nn.Module, probe: Probe, layers: list[str]) -> dict[str, dict[str, np.ndarray]]:
    named = dict(model.named_modules())
    missing = [n for n in layers if n not in named]
    if missing:
        raise DataError(f"the model has no layer(s) {missing} of the Original: a comparison needs the same architecture")
    chosen = [(n, named[n]) for n in layers]
    return {s: layer_grams(model, probe.splits[s].x, chosen) for s in ("forget", "retain") if s in probe.splits}


def _embedding(model: nn.Module, probe: Probe, reference: Optional[np.ndarray]) -> np.ndarray:
    """2-D embedding of the probe, turned to match ``reference`` on the retain and test rows."""
    x = probe.all().x
    match = np.array([s != "forget" for s in probe.layout()["split"]])
    return embed_2d(penultimate_features(model, x), reference, match if match.any() else None)


def _rounded(values: np.ndarray, digits: int = 4) -> list:
    return [None if v != v else round(float(v), digits) for v in np.asarray(values, dtype=float).ravel()]


def model_view(model: nn.Module, refs: References, original_name: str = "original") -> dict[str, Any]:
    """Plain numbers describing ``model`` against the references (see the module docstring)."""
    probe = refs.probe
    view: dict[str, Any] = {
        "per_class": {s: _rounded(per_class_accuracy(model, probe.large[s], probe.num_classes)) for s in probe.large},
        "forget_matrix": prediction_matrix(model, probe.large["forget"], probe.num_classes).tolist(),
        "embedding": _rounded(_embedding(model, probe, refs.embedding.get(original_name)), 3),
        "predicted": predictions(model, probe.all()).tolist(),
    }
    grams = _split_grams(model, probe, refs.layers)
    view["cka"] = {ref: {s: _rounded([cka(grams[s][layer], refs.grams[ref][s][layer]) for layer in refs.layers])
                         for s in grams} for ref in refs.grams}
    if "test" in probe.large:
        scores = membership_scores(model, probe.large["forget"], probe.large["test"])
        view["membership"] = _rounded(scores)
        base = refs.scores.get("retrain")
        view["exposed"] = exposed_examples(probe.large["forget"], scores, base)
    return view


def exposed_examples(forget: Split, scores: np.ndarray, baseline: Optional[np.ndarray],
                     k: int = EXPOSED) -> list[dict[str, Any]]:
    """The ``k`` forget examples whose score exceeds ``baseline`` (Retrain's) the most (or with the
    highest score without one), with their data as it is (rounded) for drawing."""
    gain = scores - (baseline if baseline is not None else 0.0)
    order = np.argsort(-gain, kind="stable")[:k]
    out = []
    for i in order:
        x = forget.x[int(i)].detach().cpu().double().numpy()
        out.append({"position": int(i), "index": None if forget.indices is None else int(forget.indices[i]),
                    "label": int(forget.y[int(i)]), "score": round(float(scores[i]), 4),
                    "baseline": None if baseline is None else round(float(baseline[i]), 4),
                    "shape": list(x.shape), "x": _rounded(x, 3)})
    return out


def reference_views(refs: References, original: nn.Module, retrain: Optional[nn.Module]) -> dict[str, dict]:
    """``model_view`` of the Original and of Retrain (where given)."""
    views = {"original": model_view(original, refs)}
    if retrain is not None:
        views["retrain"] = model_view(retrain, refs)
    return views
