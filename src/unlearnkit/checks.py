"""Checks shared by every entry point: finite tensors and models, seeds, YAML files.

NaN or infinite values spread silently through training and evaluation (a NaN model still
"predicts" a class, so its row looks like a number). These checks stop them where they enter.
"""

from __future__ import annotations

import typing
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import DataError, UnlearnkitError

#: seeds must fit every RNG that is seeded with them (torch takes up to 2**64 - 1, numpy is reduced mod 2**32)
MAX_SEED = 2**63 - 1


def check_finite_tensor(x: torch.Tensor, what: str) -> None:
    """Raise ``DataError`` if a floating tensor of input data holds NaN or infinite entries."""
    if x.dtype.is_floating_point or x.dtype.is_complex:
        bad = int((~torch.isfinite(x)).sum())
        if bad:
            raise DataError(f"{what} holds {bad} NaN or infinite value(s); remove or impute them first")


def nonfinite_parameters(model: nn.Module) -> list[str]:
    """Names of the parameters and buffers of ``model`` that hold NaN or infinite entries."""
    return [name for name, t in model.state_dict().items()
            if t.dtype.is_floating_point and not bool(torch.isfinite(t).all())]


def check_seeds(seeds: Any, what: str = "seeds") -> list[int]:
    """A non-empty list of distinct integers in [0, 2**63 - 1]; returns it."""
    if not isinstance(seeds, (list, tuple)):
        raise UnlearnkitError(f"{what} must be a list of integers, e.g. [0, 1, 2]; got {seeds!r}")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int):
            raise UnlearnkitError(f"{what} must be integers, got {s!r}")
        if not 0 <= s <= MAX_SEED:
            raise UnlearnkitError(f"seed {s} is out of range: seeds must be in [0, 2^63 - 1]")
    dupes = sorted({s for s in seeds if list(seeds).count(s) > 1})
    if dupes:
        raise UnlearnkitError(f"{what} list {dupes} more than once; give each seed once")
    return list(seeds)


def _matches(value: Any, typ: Any) -> bool:
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    if typ is Any:
        return True
    if origin is list:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) and _matches(v, args[1]) for k, v in value.items())
    if typ is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if typ is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, typ)


def _type_name(typ: Any) -> str:
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    if origin is list:
        return f"a list of {_type_name(args[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin is dict:
        return "a mapping" if args[1] is Any else "a mapping of names to mappings"
    return {str: "a string", int: "an integer", float: "a number", dict: "a mapping"}.get(typ, str(typ))


def check_field_types(obj: Any, where: str) -> None:
    """Every field of the dataclass ``obj`` holds a value of its declared type (as YAML gives them)."""
    hints = typing.get_type_hints(type(obj))
    for f in fields(obj):
        value = getattr(obj, f.name)
        if not _matches(value, hints[f.name]):
            raise UnlearnkitError(f"{where} {f.name!r} must be {_type_name(hints[f.name])}, got {value!r}")


def read_yaml(path: Path, what: str) -> Any:
    """The parsed YAML of ``path``, or an ``UnlearnkitError`` saying why it cannot be read."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise UnlearnkitError(f"{what} {path} does not exist")
    if not path.is_file():
        raise UnlearnkitError(f"{what} {path} is not a file")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UnlearnkitError(f"{what} {path} is not a text (UTF-8) file") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        raise UnlearnkitError(f"{what} {path} is not valid YAML{at}: "
                              f"{getattr(exc, 'problem', None) or exc}") from None
    except OSError as exc:
        raise UnlearnkitError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
