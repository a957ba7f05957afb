"""Reading a user's own model, data and forget set from files for ``unlearnkit unlearn``.

Nothing here unpickles a user file: weights are safetensors, arrays are read with
``allow_pickle=False``, and factories are imported by name (``package.module:function``) and called
with keyword arguments typed by YAML's scalar rules.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from ..data.split import Split, as_split, native_array
from ..errors import CheckpointError, DataError, UnlearnkitError
from ..io import load_state

#: arrays an --data file may hold: the training data and optional test / third-party pairs
NPZ_PAIRS = {"train": ("x", "y"), "test": ("x_test", "y_test"), "third_party": ("x_third_party", "y_third_party")}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _existing(path: Path, flag: str) -> Path:
    if not path.is_file():
        raise UnlearnkitError(f"{flag} {path}: no such file")
    return path


def _short(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# -- factories -----------------------------------------------------------------------------------
def import_callable(spec: str, flag: str) -> Callable[..., Any]:
    """The callable named by ``package.module:function`` (the current folder is importable, as with
    ``python -m``; PYTHONPATH works too)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UnlearnkitError(f"{flag} {spec!r} must look like package.module:function")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnlearnkitError(f"{flag} {spec!r}: cannot import {module_name!r} ({exc}); run from the folder "
                              "that holds it or add that folder to PYTHONPATH") from exc
    except Exception as exc:  # the user's module failed while importing: report it on one line
        raise UnlearnkitError(f"{flag} {spec!r}: importing {module_name!r} failed: "
                              f"{type(exc).__name__}: {exc}") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UnlearnkitError(f"{flag} {spec!r}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UnlearnkitError(f"{flag} {spec!r} is a {type(obj).__name__}, not a callable")
    return obj


def call_factory(spec: str, flag: str, kwargs: dict[str, Any]) -> Any:
    factory = import_callable(spec, flag)
    try:
        return factory(**kwargs)
    except Exception as exc:  # the user's code failed: one line naming the call, not a traceback
        raise UnlearnkitError(f"{flag} {spec} with arguments {kwargs} failed: {type(exc).__name__}: {exc}"
                              .split("\n")[0]) from exc


def build_model(spec: str, kwargs: dict[str, Any]) -> nn.Module:
    model = call_factory(spec, "--model-factory", kwargs)
    if not isinstance(model, nn.Module):
        raise UnlearnkitError(f"--model-factory {spec} returned a {type(model).__name__}, not a torch.nn.Module")
    return model


# -- weights -------------------------------------------------------------------------------------
def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (never a pickle)."""
    try:
        state, _ = load_state(_existing(path, "--weights"))
    except CheckpointError as exc:
        raise CheckpointError(f"--weights: {exc}; unlearnkit never unpickles a file - save the weights with "
                              "safetensors.torch.save_file(model.state_dict(), PATH)") from exc
    return state


def load_weights(model: nn.Module, path: Path, spec: str) -> None:
    """Load ``path`` into ``model``; keys and shapes must match exactly."""
    state = read_weights(path)
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise UnlearnkitError(f"--weights {path} do not fit the model built by {spec}: missing keys "
                              f"[{_short(missing)}], unexpected keys [{_short(unexpected)}]")
    wrong = [f"{k} {tuple(state[k].shape)} vs model {tuple(v.shape)}" for k, v in expected.items()
             if tuple(state[k].shape) != tuple(v.shape)]
    if wrong:
        raise UnlearnkitError(f"--weights {path} do not fit the model built by {spec}: shape mismatch "
                              f"{_short(wrong, 3)}")
    model.load_state_dict(state)


# -- data ----------------------------------------------------------------------------------------
def _pair(arrays: dict[str, np.ndarray], x_name: str, y_name: str, where: str) -> Split:
    """A split from two arrays: inputs of any numeric dtype (the task converts them to the model's
    dtype), labels of any integer dtype (or whole-number floats); any byte order."""
    x, y = native_array(arrays[x_name]), native_array(arrays[y_name])
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool) or x.ndim < 1:
        raise DataError(f"{where}: {x_name} must be a numeric array, got dtype {x.dtype}, shape {x.shape}")
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise DataError(f"{where}: {y_name} must be a 1-D array of integer labels, got dtype "
                        f"{y.dtype}, shape {y.shape}")
    if np.issubdtype(y.dtype, np.floating) and not (np.isfinite(y).all() and (y == np.round(y)).all()):
        raise DataError(f"{where}: {y_name} must hold whole-number class labels, found {y[y != np.round(y)][0].item()}")
    if len(x) != len(y):
        raise DataError(f"{where}: {x_name} has {len(x)} rows but {y_name} has {len(y)}")
    if len(x) == 0:
        raise DataError(f"{where}: {x_name} is empty")
    if x.ndim == 1:
        raise DataError(f"{where}: {x_name} must have one row per example, shape (N, features...); got shape "
                        f"{x.shape} (for N examples of one feature use x.reshape(-1, 1))")
    if np.issubdtype(y.dtype, np.unsignedinteger) and y.size and y.max() > np.iinfo(np.int64).max:
        raise DataError(f"{where}: {y_name} holds label {y.max()}, beyond any class index")
    return Split(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64)))


def _read_npz(path: Path, flag: str) -> dict[str, np.ndarray]:
    if not zipfile.is_zipfile(_existing(path, flag)):
        raise DataError(f"{flag} {path} is not an .npz file (write it with numpy.savez)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{flag} {path} is not a readable .npz of numeric arrays ({exc})".split("\n")[0]) from exc


def load_npz(path: Path) -> dict[str, Split]:
    """``train`` (arrays x, y) and, when present, ``test`` / ``third_party`` splits of an .npz file."""
    arrays = _read_npz(path, "--data")
    known = {name for pair in NPZ_PAIRS.values() for name in pair}
    unknown = sorted(set(arrays) - known)
    if unknown:
        raise DataError(f"--data {path}: unknown arrays {unknown}; expected x, y and optionally "
                        "x_test, y_test, x_third_party, y_third_party")
    splits = {}
    for split, (x_name, y_name) in NPZ_PAIRS.items():
        present = [n for n in (x_name, y_name) if n in arrays]
        if len(present) == 1:
            missing = y_name if present == [x_name] else x_name
            raise DataError(f"--data {path} has {present[0]} but not {missing}; give both or neither")
        if present:
            splits[split] = _pair(arrays, x_name, y_name, f"--data {path}")
    if "train" not in splits:
        raise DataError(f"--data {path} must hold the training data as arrays 'x' and 'y'")
    return splits


def load_samples(path: Path, flag: str) -> Split:
    """Samples given directly (``--forget``, ``--reference``, ``--test``): an .npz with arrays x and y."""
    arrays = _read_npz(path, flag)
    if set(arrays) != {"x", "y"}:
        raise DataError(f"{flag} {path} must hold exactly the arrays 'x' (one row per sample) and 'y' (their "
                        f"integer labels), found {sorted(arrays)}")
    return _pair(arrays, "x", "y", f"{flag} {path}")


def data_from_factory(spec: str, kwargs: dict[str, Any]) -> dict[str, Split]:
    """A data factory returns the training Dataset, or a mapping with ``train`` and optionally
    ``test`` / ``third_party`` Datasets."""
    out = call_factory(spec, "--data-factory", kwargs)
    if isinstance(out, Dataset):
        out = {"train": out}
    if not isinstance(out, dict) or "train" not in out or set(out) - set(NPZ_PAIRS):
        raise DataError(f"--data-factory {spec} must return a torch Dataset or a dict with 'train' and "
                        f"optionally 'test' / 'third_party' Datasets, got {type(out).__name__}"
                        + (f" with keys {sorted(out)}" if isinstance(out, dict) else ""))
    return {name: as_split(value, f"{spec} {name}") for name, value in out.items() if value is not None}


# -- the forget set ------------------------------------------------------------------------------
def _read_index_lines(path: Path) -> tuple[np.ndarray, list[int]]:
    values, lines = [], []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            values.append(int(text))
        except ValueError:
            raise DataError(f"--forget-indices {path} line {number}: {text!r} is not an integer index") from None
        lines.append(number)
    return np.asarray(values, dtype=np.int64), lines


def load_indices(path: Path, n_train: int) -> np.ndarray:
    """Sorted forget indices from a text file (one per line; '#' starts a comment) or a .npy array,
    each in [0, n_train) and none repeated."""
    _existing(path, "--forget-indices")
    if path.suffix == ".npy":
        try:
            raw = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"--forget-indices {path} is not a readable .npy array ({exc})") from exc
        if raw.ndim != 1 or not np.issubdtype(raw.dtype, np.integer):
            raise DataError(f"--forget-indices {path} must be a 1-D integer array, got dtype {raw.dtype}, "
                            f"shape {raw.shape}")
        idx, where = raw.astype(np.int64), [f"position {i}" for i in range(len(raw))]
    else:
        idx, lines = _read_index_lines(path)
        where = [f"line {n}" for n in lines]
    if len(idx) == 0:
        raise DataError(f"--forget-indices {path} holds no index")
    bad = np.flatnonzero((idx < 0) | (idx >= n_train))
    if len(bad):
        raise DataError(f"--forget-indices {path} {where[bad[0]]}: index {idx[bad[0]]} is out of range; the "
                        f"training data has {n_train} examples (0..{n_train - 1})")
    values, counts = np.unique(idx, return_counts=True)
    if (counts > 1).any():
        repeated = values[counts > 1]
        raise DataError(f"--forget-indices {path}: index {repeated[0]} appears {counts[counts > 1][0]} times"
                        + (f" ({len(repeated)} indices repeat)" if len(repeated) > 1 else ""))
    return values  # np.unique sorts
