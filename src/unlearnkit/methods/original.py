"""Original: the model before unlearning (a no-op), reported as a reference row."""

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
