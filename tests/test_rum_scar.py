"""RUM (memorisation-refined sequential NegGrad+) and SCAR (Mahalanobis pull + distillation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unlearnkit.errors import DivergenceWarning, HyperparameterError, NonFiniteError
from unlearnkit.methods import get_method
from unlearnkit.methods import rum as rum_module
from unlearnkit.methods.rum import curvature_scores, memorisation_groups
from unlearnkit.methods.scar import SCAR, shrink


def test_memorisation_groups_are_tertiles_from_low_to_high():
    scores = torch.tensor([0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6])
    groups = memorisation_groups(scores)
    assert [g.tolist() for g in groups] == [[1, 5, 3], [7, 0, 8], [4, 6, 2]]


def test_curvature_is_zero_without_input_dependence_and_positive_otherwise(toy_random):
    model, data = toy_random
    constant = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(10, 4))
    torch.nn.init.zeros_(constant[1].weight)
    assert torch.all(curvature_scores(constant, data.task.forget, 0.01) == 0)
    scores = curvature_scores(model, data.task.forget, 0.01)
    assert scores.shape == (len(data.task.forget),) and bool((scores > 0).all())


def test_rum_unlearns_the_groups_in_order_low_to_high(toy_random, monkeypatch):
    model, data = toy_random
    calls = []
    real = rum_module.NegGradPlus.unlearn

    def spy(self, m, task, **kw):
        calls.append((task.forget.indices.copy(), self.params.alpha, np.array_equal(task.retain.indices, data.task.retain.indices)))
        return real(self, m, task, **kw)

    monkeypatch.setattr(rum_module.NegGradPlus, "unlearn", spy)
    method = get_method("rum", alpha_low=0.99, alpha_mid=0.97, alpha_high=0.95, epochs_low=1, epochs_mid=1,
                        epochs_high=1)
    method.unlearn(model, data.task, seed=0, device="cpu")
    scores = curvature_scores(model, data.task.forget, 0.01)
    expected = [data.task.forget.indices[g] for g in memorisation_groups(scores)]
    assert [c[1] for c in calls] == [0.99, 0.97, 0.95]
    for (seen, _, same_retain), group in zip(calls, expected):
        assert same_retain and np.array_equal(seen, group)
    assert np.array_equal(np.sort(np.concatenate([c[0] for c in calls])), np.sort(data.task.forget.indices))
    means = [float(scores[g].mean()) for g in memorisation_groups(scores)]
    assert means == sorted(means)


def test_rum_divergence_names_rum_its_group_and_its_seed(toy_random):
    model, data = toy_random
    with pytest.warns(DivergenceWarning, match="rum: NegGrad\\+ on the low-memorisation group diverged with seed 3"), \
            pytest.raises(NonFiniteError, match=r"'rum' diverged .* low-memorisation group with seed 3, also after 3 "
                                                r"restart\(s\) with the step halved; lower lr_low"):
        get_method("rum", lr_low=1e6, alpha_low=0.0).unlearn(model, data.task, seed=3)


def test_rum_rejects_bad_group_settings():
    with pytest.raises(HyperparameterError, match="alpha_mid=1.5"):
        get_method("rum", alpha_mid=1.5)


def test_shrinkage_adds_the_mean_variance_and_mean_covariance():
    cov = torch.tensor([[2.0, 1.0], [1.0, 4.0]])
    assert torch.allclose(shrink(cov, 3, 3), torch.tensor([[2.0 + 9.0, 1.0 + 3.0], [1.0 + 3.0, 4.0 + 9.0]]))


def test_scar_pulls_forget_embeddings_to_their_nearest_wrong_class(toy_random):
    model, data = toy_random
    task = data.task
    method = SCAR(epochs=3, surrogate="retain")
    out = method.unlearn(model, task, seed=0, device="cpu")
    assert bool((method.targets != task.forget.y).all())

    def target_distance(net):
        method.model, method.head = net, [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1]
        with torch.no_grad():
            d = method.distances(method.embed(task.forget.x))
        return d, d.gather(1, method.target_columns[:, None]).squeeze(1)

    before_all, before = target_distance(model.eval())
    masked = before_all.clone()
    masked[torch.tensor(method.classes)[None, :] == task.forget.y[:, None]] = float("inf")
    assert torch.equal(masked.argmin(1), method.target_columns)  # nearest class other than the label
    _, after = target_distance(out.eval())
    assert after.mean() < 0.8 * before.mean()
