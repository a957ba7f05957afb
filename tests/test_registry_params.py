"""Registry and typed hyperparameters: duplicate/unknown names, string conversion, bad values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pytest

from unlearnkit.errors import HyperparameterError, UnknownNameError, UnlearnkitError
from unlearnkit.methods import METHODS, get_method
from unlearnkit.params import Hyperparameters, hp
from unlearnkit.registry import Registry


def test_registry_rejects_duplicates_and_lists_valid_names():
    reg: Registry[int] = Registry("widget")
    reg.register("a")(1)
    reg.register("b")(2)
    with pytest.raises(UnlearnkitError, match="already registered"):
        reg.register("a")(3)
    with pytest.raises(UnknownNameError, match=r"unknown widget 'c'; valid names: a, b"):
        reg.get("c")
    with pytest.raises(UnlearnkitError, match="lower-case"):
        reg.register("Bad Name")


def test_unknown_method_lists_valid_ones():
    with pytest.raises(UnknownNameError) as err:
        get_method("finetune")
    assert "'finetune'" in str(err.value) and "ft" in str(err.value)
    assert isinstance(err.value, ValueError)


@dataclass
class _P(Hyperparameters):
    lr: float = hp(0.1, "learning rate")
    epochs: int = hp(3, "epochs")
    flag: bool = hp(False, "a switch")
    mode: str = hp("a", "mode", choices=("a", "b"))
    cap: Optional[int] = hp(None, "optional cap")


def test_strings_from_the_cli_are_converted_to_field_types():
    p = _P.from_dict({"lr": "1e-3", "epochs": "7", "flag": "true", "mode": "b", "cap": "none"})
    assert p == _P(lr=1e-3, epochs=7, flag=True, mode="b", cap=None)
    assert _P.from_dict({"cap": "5"}).cap == 5


@pytest.mark.parametrize("values, message", [
    ({"lr": "fast"}, r"_P\.lr must be of type float, got 'fast'"),
    ({"epochs": "2.5"}, r"epochs must be of type int"),
    ({"flag": "maybe"}, r"flag must be of type bool"),
    ({"mode": "c"}, r"mode='c' is not one of \['a', 'b'\]"),
    ({"lr": -1.0}, r"lr=-1.0 must be > 0"),
])
def test_bad_hyperparameter_values_raise_clear_errors(values, message):
    with pytest.raises(HyperparameterError, match=message):
        _P.from_dict(values, owner="_P")


def test_unknown_hyperparameter_name_lists_valid_names():
    with pytest.raises(UnknownNameError, match=r"ft has no hyperparameter\(s\) \['learning_rate'\]; valid: .*'lr'"):
        get_method("ft", learning_rate=0.1)


def test_non_numeric_hyperparameter_through_a_method():
    with pytest.raises(HyperparameterError, match="ft.lr must be of type float, got 'abc'"):
        get_method("ft", lr="abc")


def test_every_method_documents_its_defaults():
    for name in METHODS.names():
        for h in METHODS.get(name).Params.describe():
            assert {"name", "type", "default", "help", "source"} <= set(h)
