"""Exceptions raised by unlearnkit.

Every user-facing error is a ``ValueError`` or ``TypeError`` subclass whose message names the
offending value and says what to do about it, so callers can catch the standard exceptions.
"""


class UnlearnkitError(ValueError):
    """Base class of all unlearnkit errors caused by bad input."""


class UnknownNameError(UnlearnkitError, KeyError):
    """A method, dataset, model, scenario or hyperparameter name that is not registered."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class MissingSplitError(UnlearnkitError):
    """A method needs a data split (retain, third_party, ...) that the task does not provide."""


class DataError(UnlearnkitError):
    """Forget/retain data is malformed: bad indices, empty sets, wrong shapes or labels."""


class HyperparameterError(UnlearnkitError, TypeError):
    """A hyperparameter has the wrong type or an invalid value."""


class CheckpointError(UnlearnkitError):
    """A weights file is unreadable, damaged (its checksum does not match) or belongs to another model."""


class NonFiniteError(UnlearnkitError):
    """Input data, a hyperparameter or a trained/unlearned model holds NaN or infinite values."""


class NoOpWarning(UserWarning):
    """An unlearning call left the forget set's predictions and loss unchanged (see ``methods/blocks/noop.py``)."""


class DivergenceWarning(UserWarning):
    """An iterative method's loss or weights became NaN or infinite and the run restarted from the input
    model with a smaller learning rate (the divergence guard, see ``methods/iterative.py``)."""


class OverForgetWarning(UserWarning):
    """An unlearning call left the forget set looking *less* like training data than unseen data does:
    past where retraining without it would leave it (see ``methods/blocks/noop.py``)."""
