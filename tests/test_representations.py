"""The comparison page's numbers: linear CKA, per-class accuracies, prediction matrices, 2-D embeddings,
layer Gram matrices and membership scores, on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from unlearnkit.data.split import Split
from unlearnkit.errors import DataError
from unlearnkit.evaluation.comparison import Probe, References, membership_scores, model_view
from unlearnkit.evaluation.representations import (cka, embed_2d, layer_grams, linear_cka, penultimate_features,
                                                   per_class_accuracy, prediction_matrix, weighted_layers)
from unlearnkit.task import UnlearningTask


def _rng(seed=0):
    return np.random.default_rng(seed)


# -- CKA ---------------------------------------------------------------------------------------------
def test_cka_of_a_representation_with_itself_is_one():
    x = _rng().normal(size=(60, 30))
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)


def test_cka_of_independent_representations_is_near_zero_even_when_wider_than_the_sample():
    rng = _rng(1)
    values = [linear_cka(rng.normal(size=(100, 500)), rng.normal(size=(100, 300))) for _ in range(5)]
    assert max(abs(v) for v in values) < 0.05
    # the biased estimator (plain centred HSIC) reads ~0.7 here: the debiasing matters
    x, y = rng.normal(size=(100, 500)), rng.normal(size=(100, 300))
    h = np.eye(100) - 1 / 100
    k, l = h @ x @ x.T @ h, h @ y @ y.T @ h
    assert (k * l).sum() / np.sqrt((k * k).sum() * (l * l).sum()) > 0.5


def test_cka_is_invariant_to_orthogonal_transforms_and_isotropic_scaling():
    rng = _rng(2)
    x = rng.normal(size=(80, 20))
    y = x @ rng.normal(size=(20, 12)) + 0.5 * rng.normal(size=(80, 12))  # related, not identical
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    base = linear_cka(x, y)
    assert 0.2 < base < 0.99
    assert linear_cka(x, 7.5 * (y @ q)) == pytest.approx(base, abs=1e-10)
    assert linear_cka(x, y + 3.0) == pytest.approx(base, abs=1e-10)  # centring: a shift changes nothing


def test_cka_is_not_invariant_to_an_anisotropic_scaling():
    rng = _rng(3)
    x = rng.normal(size=(80, 10))
    y = x @ rng.normal(size=(10, 10)) + 0.3 * rng.normal(size=(80, 10))
    stretched = y * np.r_[50.0, np.ones(9)]
    assert abs(linear_cka(x, stretched) - linear_cka(x, y)) > 0.05


def test_cka_rejects_bad_input():
    with pytest.raises(DataError, match="same examples"):
        linear_cka(np.ones((5, 2)), np.ones((6, 2)))
    with pytest.raises(DataError, match="at least 4"):
        cka(np.eye(3), np.eye(3))
    with pytest.raises(DataError, match="square"):
        cka(np.ones((4, 3)), np.ones((4, 3)))
    assert np.isnan(linear_cka(np.ones((10, 3)), _rng().normal(size=(10, 3))))  # a constant representation


# -- per-class accuracy and prediction matrix on a hand-made model -------------------------------------
class ArgmaxOfInput(nn.Module):
    """Predicts the index of the largest input feature: the logits are the input."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x + 0 * self.dummy


def _one_hot_split(predicted: list[int], labels: list[int], classes: int = 3) -> Split:
    x = torch.nn.functional.one_hot(torch.tensor(predicted), classes).float()
    return Split(x, torch.tensor(labels))


def test_per_class_accuracy_and_prediction_matrix_by_hand():
    # class 0: 2 of 3 right; class 1: 0 of 1 right (predicted 2); class 2: none present
    split = _one_hot_split([0, 0, 1, 2], [0, 0, 0, 1])
    acc = per_class_accuracy(ArgmaxOfInput(), split, 3)
    assert acc[0] == pytest.approx(2 / 3) and acc[1] == 0.0 and np.isnan(acc[2])
    m = prediction_matrix(ArgmaxOfInput(), split, 3)
    assert m.tolist() == [[2, 1, 0], [0, 0, 1], [0, 0, 0]]


def test_per_class_accuracy_rejects_labels_outside_the_classes():
    with pytest.raises(DataError, match=r"labels must be in \[0, 1\]"):
        per_class_accuracy(ArgmaxOfInput(), _one_hot_split([0, 1, 2], [0, 1, 2]), 2)


# -- layers, penultimate features, embeddings -------------------------------------------------------
def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 5), nn.ReLU(), nn.Linear(5, 3))


def test_layer_grams_are_the_gram_matrices_of_each_layer_output():
    model, x = _mlp(), torch.randn(10, 6)
    grams = layer_grams(model, x, batch_size=3)  # batches are stitched together
    assert list(grams) == ["1", "3", "5"]
    h1 = model[1](x).double()
    assert np.allclose(grams["1"], (h1 @ h1.T).detach().numpy())
    logits = model(x).double()
    assert np.allclose(grams["5"], (logits @ logits.T).detach().numpy())
    whole = layer_grams(model, x)  # one batch: each Gram matrix formed as its layer's output appears
    assert all(np.allclose(whole[name], grams[name]) for name in grams)


def test_weighted_layers_keep_the_last_when_thinned():
    model = nn.Sequential(*[nn.Linear(4, 4) for _ in range(20)])
    names = [n for n, _ in weighted_layers(model, max_layers=5)]
    assert len(names) == 5 and names[0] == "0" and names[-1] == "19"


def test_penultimate_features_are_the_input_of_the_last_linear_layer():
    model, x = _mlp(), torch.randn(7, 6)
    expected = model[4](model[3](model[2](model[1](x)))).double().detach().numpy()
    assert np.allclose(penultimate_features(model, x, batch_size=2), expected)


def test_embed_2d_is_pca_and_turns_to_match_a_reference():
    rng = _rng(4)
    feats = rng.normal(size=(50, 6)) * np.r_[5.0, 2.0, 0.1, 0.1, 0.1, 0.1]
    coords = embed_2d(feats)
    assert coords.shape == (50, 2)
    assert np.sqrt((coords ** 2).sum(1).mean()) == pytest.approx(1.0)
    # the first coordinate follows the widest direction
    assert abs(np.corrcoef(coords[:, 0], feats[:, 0])[0, 1]) > 0.95
    theta = 0.7
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    turned = embed_2d(feats, reference=coords @ rotation)
    assert np.allclose(turned, coords @ rotation, atol=1e-8)
    with pytest.raises(DataError):
        embed_2d(np.ones(5))


# -- membership scores and a whole view ------------------------------------------------------------
class Confident(nn.Module):
    """Two classes; the logit of the true-looking class is the first input feature."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(1, 1)
        self.head = nn.Linear(1, 2)
        with torch.no_grad():
            self.body.weight.fill_(1.0)
            self.body.bias.zero_()
            self.head.weight.copy_(torch.tensor([[1.0], [-1.0]]))
            self.head.bias.zero_()

    def forward(self, x):
        return self.head(self.body(x[:, :1]))


def test_membership_score_is_the_share_of_unseen_examples_with_a_lower_phi():
    unseen = Split(torch.tensor([[0.0], [1.0], [2.0], [3.0]]), torch.zeros(4, dtype=torch.long))
    forget = Split(torch.tensor([[-1.0], [1.5], [10.0]]), torch.zeros(3, dtype=torch.long))
    assert membership_scores(Confident(), forget, unseen).tolist() == [0.0, 0.5, 1.0]


def test_model_view_of_the_original_against_itself():
    torch.manual_seed(0)
    x = torch.randn(60, 1)
    y = (x[:, 0] < 0).long()
    task = UnlearningTask(forget=Split(x[:12], y[:12]), retain=Split(x[12:40], y[12:40]),
                          test=Split(x[40:], y[40:]), num_classes=2)
    original, other = Confident(), Confident()
    with torch.no_grad():
        other.head.weight.mul_(-1)  # predicts the other class everywhere
    probe = Probe.from_task(task, size=10, seed=0)
    assert [len(probe.splits[s]) for s in ("forget", "retain", "test")] == [10, 10, 10]
    refs = References.build(original, other, probe)
    view = model_view(original, refs)
    assert view["cka"]["original"]["forget"] == pytest.approx([1.0, 1.0])
    assert sum(map(sum, view["forget_matrix"])) == 12
    acc = per_class_accuracy(original, task.forget, 2)
    assert view["per_class"]["forget"] == pytest.approx(acc.tolist())
    assert len(view["membership"]) == 12 and len(view["exposed"]) == 8
    top = view["exposed"][0]
    assert top["score"] - top["baseline"] == max(e["score"] - e["baseline"] for e in view["exposed"])
    assert top["shape"] == [1] and len(top["x"]) == 1
