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
    share: float = hp(0.5, "a fraction", gt=0, le=1)
    count: Optional[int] = hp(None, "optional count", ge=1)
    solver: Optional[str] = hp(None, "a choice; None = decided later", choices=("x", "y"))


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
    ({"share": 0}, r"_P\.share=0\.0 must be in \(0, 1\]"),
    ({"share": "1.5"}, r"share=1\.5 must be in \(0, 1\]"),
    ({"count": 0}, r"_P\.count=0 must be >= 1"),
    ({"solver": "z"}, r"_P\.solver='z' is not one of \['x', 'y', None\]"),
    ({"mode": "none"}, r"_P\.mode='none' is not one of \['a', 'b'\]"),  # None is no choice of a plain field
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


def test_declared_bounds_accept_their_edges_and_none():
    assert _P.from_dict({"share": 1.0, "count": 1}).share == 1.0
    assert _P.from_dict({"count": "none"}).count is None
    assert _P.from_dict({"solver": "none"}).solver is None and _P.from_dict({"solver": "y"}).solver == "y"
    assert {h["name"]: h["range"] for h in _P.describe()}["share"] == "in (0, 1]"


@pytest.mark.parametrize("method, values, message", [
    ("salun", {"fraction": 0.0}, r"salun\.fraction=0\.0 must be in \(0, 1\]"),
    ("ssd", {"lam": 0}, r"ssd\.lam=0\.0 must be > 0"),
    ("fisher", {"alpha": -1e-6}, r"fisher\.alpha=-1e-06 must be >= 0"),
    ("bad_teacher", {"retain_fraction": 1.2}, r"bad_teacher\.retain_fraction=1\.2 must be in \[0, 1\]"),
    ("unsir", {"retain_fraction": 0}, r"unsir\.retain_fraction=0\.0 must be in \(0, 1\]"),
    ("dist_match", {"concept_share": -0.5}, r"dist_match\.concept_share=-0\.5 must be in \[0, 1\]"),
    ("instance_adv", {"pgd_steps": 0}, r"instance_adv\.pgd_steps=0 must be >= 1"),
    ("ga", {"select_fraction": 2}, r"ga\.select_fraction=2\.0 must be in \(0, 1\]"),
    ("cf_k", {"optimizer": "rmsprop"}, r"cf_k\.optimizer='rmsprop' is not one of \['sgd', 'adam', None\]"),
    ("eu_k", {"optimizer": "SGD"}, r"eu_k\.optimizer='SGD' is not one of \['sgd', 'adam', None\]"),
])
def test_hyperparameter_ranges_fail_when_the_method_is_built(method, values, message):
    """Out-of-range values are rejected by ``get_method`` itself, before any model is trained."""
    with pytest.raises(HyperparameterError, match=message):
        get_method(method, **values)


def test_every_method_documents_its_defaults():
    for name in METHODS.names():
        params = METHODS.get(name).Params
        defaults = params()
        for h in params.describe():
            assert h["help"].strip(), f"{name}.{h['name']} has no help text"
            assert h["default"] == getattr(defaults, h["name"]), f"{name}.{h['name']}: describe() shows a wrong default"
            assert h["type"] in ("int", "float", "str", "bool", "Optional"), f"{name}.{h['name']}: untyped"
        # the listed defaults are valid values: building the method from them round-trips
        listed = {h["name"]: h["default"] for h in params.describe()}
        assert get_method(name, **listed).params == defaults
