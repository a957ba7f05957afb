"""Typed, documented hyperparameters shared by methods and scenarios.

Values from the CLI or YAML arrive as strings or plain YAML scalars; ``from_dict`` converts them to
each field's declared type and rejects unknown names and values of the wrong type with a message
that names them. Nothing is ever ``eval``-ed.
"""

from __future__ import annotations

import copy
import math
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Optional

from .errors import HyperparameterError, UnknownNameError


def hp(default: Any, help: str, source: str = "", choices: Optional[tuple] = None, *,
       ge: Optional[float] = None, gt: Optional[float] = None,
       le: Optional[float] = None, lt: Optional[float] = None):
    """A documented hyperparameter field: ``lr: float = hp(0.01, "learning rate", "paper Tab. 3", gt=0)``.

    ``ge`` / ``gt`` / ``le`` / ``lt`` bound a numeric value (>=, >, <=, <); they are checked when the
    hyperparameters are built, so a method with an out-of-range value fails before any training."""
    meta: dict[str, Any] = {"help": help, "source": source}
    if choices is not None:
        meta["choices"] = tuple(choices)
    bounds = {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)) if v is not None}
    if bounds:
        meta["bounds"] = bounds
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class Hyperparameters:
    """Typed hyperparameters. Subclasses add fields with ``hp(default, help, source)``."""

    @classmethod
    def field_types(cls) -> dict[str, type]:
        hints = typing.get_type_hints(cls)
        return {f.name: hints[f.name] for f in fields(cls)}

    @classmethod
    def from_dict(cls, values: dict[str, Any], owner: str = "method") -> "Hyperparameters":
        """Build from a mapping, converting strings (CLI/YAML) to each field's type.
        Unknown names and values of the wrong type raise ``HyperparameterError``."""
        types = cls.field_types()
        unknown = sorted(set(values) - set(types))
        if unknown:
            raise UnknownNameError(
                f"{owner} has no hyperparameter(s) {unknown}; valid: {sorted(types)}"
            )
        converted = {k: convert_value(owner, k, v, types[k]) for k, v in values.items()}
        params = cls(**converted)
        params.validate(owner)
        return params

    def validate(self, owner: str = "method") -> None:
        """Declared choices and bounds. None passes every bound, and the choices of an ``Optional`` field
        (where it stands for a value decided later, e.g. the original model's recipe)."""
        types = self.field_types()
        for f in fields(self):
            value = getattr(self, f.name)
            choices = f.metadata.get("choices")
            if choices and accepts_none(types[f.name]):
                choices = (*choices, None)
            if choices and value not in choices:
                raise HyperparameterError(f"{owner}.{f.name}={value!r} is not one of {list(choices)}")
            if isinstance(value, float) and not math.isfinite(value):
                raise HyperparameterError(f"{owner}.{f.name}={value!r} must be a finite number")
            bounds = dict(f.metadata.get("bounds", {}))
            if f.name in ("lr", "epochs", "batch_size") and not bounds:
                bounds = {"gt": 0}  # a zero or negative step size, length or batch is never meant
            if f.name in ("momentum", "weight_decay") and not bounds:
                bounds = {"ge": 0}  # torch's optimisers reject negative values (with a traceback)
            if value is not None and not _within(value, bounds):
                raise HyperparameterError(f"{owner}.{f.name}={value!r} must be {_describe_bounds(bounds)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def typed_overrides(cls, values: dict[str, Any], owner: str = "method") -> dict[str, Any]:
        """``values`` converted to the declared types and checked as ``from_dict`` does (ranges too),
        keeping only the keys given: ``{"lr": "0.1"}`` -> ``{"lr": 0.1}``."""
        params = cls.from_dict(values, owner=owner)
        return {k: getattr(params, k) for k in values}

    @classmethod
    def describe(cls) -> list[dict[str, Any]]:
        """Name, type, default, help, source and allowed range of each hyperparameter (for `unlearnkit methods`)."""
        out = []
        types = cls.field_types()
        for f in fields(cls):
            default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
            out.append({"name": f.name, "type": getattr(types[f.name], "__name__", str(types[f.name])),
                        "default": default, "help": f.metadata.get("help", ""),
                        "source": f.metadata.get("source", ""),
                        "range": _describe_bounds(f.metadata["bounds"]) if "bounds" in f.metadata else ""})
        return out


def accepts_none(typ: Any) -> bool:
    """Whether a field annotation is ``Optional[X]`` (None is a value of the field)."""
    return typing.get_origin(typ) is typing.Union and type(None) in typing.get_args(typ)


_BOUND_CHECKS = {"ge": lambda v, b: v >= b, "gt": lambda v, b: v > b,
                 "le": lambda v, b: v <= b, "lt": lambda v, b: v < b}


def _within(value: Any, bounds: dict[str, float]) -> bool:
    return all(_BOUND_CHECKS[k](value, b) for k, b in bounds.items())


def _describe_bounds(bounds: dict[str, float]) -> str:
    """``{"gt": 0, "le": 1}`` -> "in (0, 1]"; one-sided bounds read "> 0", ">= 1"."""
    low = ("(", bounds["gt"]) if "gt" in bounds else ("[", bounds["ge"]) if "ge" in bounds else None
    high = (")", bounds["lt"]) if "lt" in bounds else ("]", bounds["le"]) if "le" in bounds else None
    if low and high:
        return f"in {low[0]}{low[1]}, {high[1]}{high[0]}"
    if low:
        return f"{'>' if low[0] == '(' else '>='} {low[1]}"
    return f"{'<' if high[0] == ')' else '<='} {high[1]}"


def convert_fields(cls: type, values: dict[str, Any], owner: str) -> dict[str, Any]:
    """``values`` for the dataclass ``cls`` converted to its fields' declared types (unknown names raise)."""
    types = {f.name: typing.get_type_hints(cls)[f.name] for f in fields(cls)}
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise UnknownNameError(f"{owner} has no key(s) {unknown}; valid: {sorted(types)}")
    return {k: convert_value(owner, k, v, types[k]) for k, v in values.items()}


def convert_value(owner: str, name: str, value: Any, typ: Any) -> Any:
    """``value`` (a CLI string or YAML scalar) as type ``typ``; ``HyperparameterError`` naming
    ``owner.name`` if it is not one."""
    origin = typing.get_origin(typ)
    if origin is typing.Union:  # Optional[X]
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        typ = args[0]
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
                return value.lower() in ("true", "1", "yes", "on")
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise ValueError
        if typ is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            if isinstance(value, str):
                number = float(value)  # accepts "5", "5.0" and "1e3"; rejects "2.5" below
                if not number.is_integer():
                    raise ValueError
                return int(number)
            return int(value)
        if typ is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if typ is str:
            if not isinstance(value, str):
                raise ValueError
            return value
    except (TypeError, ValueError, OverflowError):  # int("inf") overflows
        raise HyperparameterError(
            f"{owner}.{name} must be of type {getattr(typ, '__name__', typ)}, got {value!r}"
        ) from None
    return value
