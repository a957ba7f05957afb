"""Typed, documented hyperparameters shared by methods and scenarios.

Values from the CLI or YAML arrive as strings or plain YAML scalars; ``from_dict`` converts them to
each field's declared type and rejects unknown names and values of the wrong type with a message
that names them. Nothing is ever ``eval``-ed.
"""

from __future__ import annotations

import copy
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Optional

from .errors import HyperparameterError, UnknownNameError


def hp(default: Any, help: str, source: str = "", choices: Optional[tuple] = None):
    """A documented hyperparameter field: ``lr: float = hp(0.01, "learning rate", "paper Tab. 3")``."""
    meta = {"help": help, "source": source}
    if choices is not None:
        meta["choices"] = tuple(choices)
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
        converted = {k: _convert(owner, k, v, types[k]) for k, v in values.items()}
        params = cls(**converted)
        params.validate(owner)
        return params

    def validate(self, owner: str = "method") -> None:
        for f in fields(self):
            choices = f.metadata.get("choices")
            value = getattr(self, f.name)
            if choices and value not in choices:
                raise HyperparameterError(f"{owner}.{f.name}={value!r} is not one of {list(choices)}")
            if f.name in ("lr", "epochs", "batch_size") and isinstance(value, (int, float)) and value <= 0:
                raise HyperparameterError(f"{owner}.{f.name}={value!r} must be > 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def describe(cls) -> list[dict[str, Any]]:
        """Name, type, default, help and source of each hyperparameter (for `unlearnkit methods`)."""
        out = []
        types = cls.field_types()
        for f in fields(cls):
            default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
            out.append({"name": f.name, "type": getattr(types[f.name], "__name__", str(types[f.name])),
                        "default": default, "help": f.metadata.get("help", ""),
                        "source": f.metadata.get("source", "")})
        return out


def _convert(owner: str, name: str, value: Any, typ: Any) -> Any:
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
    except (TypeError, ValueError):
        raise HyperparameterError(
            f"{owner}.{name} must be of type {getattr(typ, '__name__', typ)}, got {value!r}"
        ) from None
    return value
