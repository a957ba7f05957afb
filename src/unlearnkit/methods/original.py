"""Original: the model before unlearning, returned unchanged, as a reference row.

No paper: the upper bound on what a model remembers of its forget set. Every table shows it next to
``retrain`` (the lower bound), so a method's row reads against both ends. The template skips the
no-op check for it (``changes_model = False``). No hyperparameters.

    >>> same = get_method("original").unlearn(model, task)   # a copy, weights unchanged

Design notes: docs/methods/original.md
"""

from __future__ import annotations

from .base import UnlearningMethod, register_method


@register_method
class Original(UnlearningMethod):
    """Returns an unchanged copy of the model. The upper bound on what is remembered."""

    name = "original"
    summary = "no-op: the model before unlearning (reference row)"
    family = "reference"
    changes_model = False

    def _unlearn(self, model, task):
        return model
