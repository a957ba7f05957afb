"""A per-example audit of one unlearning request on a user's own model (``unlearnkit unlearn --audit K``).

U-LiRA (Hayes et al., SaTML 2025, https://arxiv.org/abs/2403.01218) with K shadow pairs built from
the user's model factory: shadow k trains a fresh model on the whole training set, runs the same
method with the same hyperparameters and forget set on it, and trains another fresh model on the
retain set only. For each forget example, Gaussians of the LiRA statistic over the unlearned and
the retrained shadows tell the two apart (``evaluation.attacks.ulira``):

* leave-one-out over the K pairs gives the attack's accuracy on this method and forget set
  (0.5 = unlearning looks like retraining, 1.0 = every example exposed) and a per-example accuracy;
* the user's unlearned model is scored against all K pairs: the share of forget examples on which
  it looks "unlearned" rather than "retrained" (about 0.5 for a model that retraining explains).

The shadows are only as good as their training recipe: it should match how the user's model was
trained (``--train KEY=VALUE``).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional

import numpy as np
from torch import nn

from ..data.split import Split
from ..errors import MissingSplitError
from ..evaluation.attacks import ulira_leave_one_out, ulira_scores
from ..evaluation.attacks.base import model_statistic
from ..evaluation.metrics import accuracy
from ..methods import UnlearningMethod
from ..task import UnlearningTask
from ..training import TrainRecipe, train_model
from ..utils import resolve_device, seeded

log = logging.getLogger(__name__)

#: shadow k trains with seed SHADOW_SEED + k and unlearns with UNLEARN_SEED + k, never the user's seed
SHADOW_SEED = 20_000
UNLEARN_SEED = 21_000
#: how many of the most exposed forget examples the summary lists
TOP_EXAMPLES = 10


def _train(factory: Callable[[], nn.Module], data: Split, recipe: TrainRecipe, seed: int, device) -> nn.Module:
    with seeded(seed):  # the factory's initialisation
        model = factory()
    return train_model(model, data, recipe, seed=seed, device=device)


def shadow_statistics(factory: Callable[[], nn.Module], task: UnlearningTask, algorithm: UnlearningMethod,
                      recipe: TrainRecipe, shadow_models: int, device: str = "auto",
                      progress: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
    """LiRA statistics on the forget set of K unlearned and K retrained shadow models, shape (K, forget),
    and the shadow originals' mean training accuracy (a check that the recipe fits the data)."""
    if task.retain is None:
        raise MissingSplitError("the audit trains shadow models on the retain set, and the forget set covers "
                                "the whole training data")
    full = Split.concat(task.retain, task.forget)
    dev = resolve_device(device)
    unlearned, retrained, train_acc = [], [], []
    steps = range(shadow_models)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="audit shadows", leave=False)
    for k in steps:
        original = _train(factory, full, recipe, SHADOW_SEED + k, dev)
        train_acc.append(accuracy(original, full))
        forgot = algorithm.unlearn(original, task, seed=UNLEARN_SEED + k, device=dev)
        unlearned.append(model_statistic(forgot, task.forget))
        retrained.append(model_statistic(_train(factory, task.retain, recipe, SHADOW_SEED + k, dev), task.forget))
    return np.stack(unlearned), np.stack(retrained), float(np.mean(train_acc))


def audit_request(factory: Callable[[], nn.Module], task: UnlearningTask, algorithm: UnlearningMethod,
                  target: nn.Module, recipe: TrainRecipe, shadow_models: int, *,
                  forget_indices: Optional[np.ndarray] = None, device: str = "auto",
                  progress: bool = False) -> dict[str, Any]:
    """The per-example audit summary of ``target`` (the user's unlearned model); see the module doc."""
    phi_u, phi_r, train_acc = shadow_statistics(factory, task, algorithm, recipe, shadow_models, device, progress)
    loo = ulira_leave_one_out(phi_u, phi_r)
    target_llr = ulira_scores(phi_u, phi_r, model_statistic(target, task.forget))[0]
    per_example = loo.per_example["acc"]
    index = np.arange(len(per_example)) if forget_indices is None else np.asarray(forget_indices)
    order = np.argsort(-per_example, kind="stable")[:TOP_EXAMPLES]
    return {
        "attack": "U-LiRA, leave-one-out over shadow pairs (Hayes et al., SaTML 2025)",
        "shadow_models": shadow_models,
        "train_recipe": recipe.to_dict(),
        "shadow_train_acc": train_acc,
        "ulira_acc": loo.info["acc"],
        "ulira_auc": loo.info["auc"],
        "variance": loo.info["variance"],
        "per_example_acc": {"mean": float(per_example.mean()), "median": float(np.median(per_example)),
                            "p90": float(np.quantile(per_example, 0.9)), "max": float(per_example.max())},
        "target_looks_unlearned_fraction": float((target_llr > 0).mean()),
        "most_exposed": [{"index": int(index[i]), "ulira_acc": float(per_example[i]),
                          "target_llr": float(target_llr[i])} for i in order],
        "reading": "ulira_acc 0.5 = the method's forget outputs look like retraining, 1.0 = every example "
                   "exposed; target_looks_unlearned_fraction near 0.5 = this model looks retrained",
    }
