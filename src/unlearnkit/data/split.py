"""``Split``: a labelled set of examples held as two tensors, and conversion from user data.

unlearnkit materialises every split as ``(x, y)`` tensors. The datasets it targets (digits,
mnist1d, CIFAR-scale) fit in memory, batching by tensor indexing is an order of magnitude faster
on CPU than a per-item ``DataLoader``, and methods can index forget/retain sets directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..checks import check_finite_tensor
from ..errors import DataError


@dataclass
class Split:
    """Examples ``x`` (N, ...) float and labels ``y`` (N,) long; ``indices`` into the source set."""

    x: torch.Tensor
    y: torch.Tensor
    indices: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        if not isinstance(self.x, torch.Tensor) or not isinstance(self.y, torch.Tensor):
            raise DataError(f"Split needs tensors, got x={type(self.x).__name__}, y={type(self.y).__name__}")
        if self.y.ndim != 1:
            raise DataError(f"labels must be a 1-D tensor of class indices, got shape {tuple(self.y.shape)}")
        if len(self.x) != len(self.y):
            raise DataError(f"x has {len(self.x)} examples but y has {len(self.y)} labels")
        if self.y.dtype.is_floating_point:
            if not torch.equal(self.y, self.y.round()):
                raise DataError("labels must be integer class indices, got non-integer floats")
            self.y = self.y.long()
        elif self.y.dtype != torch.long:
            self.y = self.y.long()
        if not self.x.dtype.is_floating_point:
            self.x = self.x.float()

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx: np.ndarray | torch.Tensor | list[int]) -> "Split":
        """Rows ``idx`` of this split; ``indices`` keep pointing into the original source."""
        idx_t = torch.as_tensor(np.asarray(idx, dtype=np.int64))
        src = self.indices if self.indices is not None else np.arange(len(self))
        return Split(self.x[idx_t], self.y[idx_t], np.asarray(src)[idx_t.numpy()])

    def with_labels(self, y: torch.Tensor) -> "Split":
        return Split(self.x, y, self.indices)

    def to(self, device: torch.device) -> "Split":
        return Split(self.x.to(device), self.y.to(device), self.indices)

    def batches(
        self,
        batch_size: int,
        shuffle: bool = False,
        generator: Optional[torch.Generator] = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(x, y)`` mini-batches; ``shuffle`` draws the order from ``generator``."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        order = order.to(self.x.device)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            yield self.x[idx], self.y[idx]

    @staticmethod
    def concat(*splits: "Split") -> "Split":
        parts = [s for s in splits if s is not None and len(s) > 0]
        if not parts:
            raise DataError("cannot concatenate empty splits")
        idx = None
        if all(s.indices is not None for s in parts):
            idx = np.concatenate([s.indices for s in parts])
        return Split(torch.cat([s.x for s in parts]), torch.cat([s.y for s in parts]), idx)


def as_split(data: Any, name: str = "data") -> Split:
    """Convert user data to a ``Split``.

    Accepts a ``Split``, an ``(x, y)`` pair of tensors/arrays, a ``DataLoader`` or any map-style
    ``Dataset`` whose items are ``(x, y)`` pairs (it is iterated once and kept in memory).
    ``name`` is used in error messages ("forget", "retain", ...).
    """
    if data is None:
        raise DataError(f"{name} data is None")
    if isinstance(data, Split):
        split = data
    elif isinstance(data, (tuple, list)) and len(data) == 2 and not isinstance(data[0], (tuple, list)):
        x, y = data
        split = Split(x if isinstance(x, torch.Tensor) else torch.as_tensor(native_array(x)),
                      y if isinstance(y, torch.Tensor) else torch.as_tensor(native_array(y)))
    elif isinstance(data, DataLoader):
        split = _collect(data, name)
    elif isinstance(data, Dataset):
        split = _collect(DataLoader(data, batch_size=512, shuffle=False), name)
    else:
        raise DataError(
            f"{name} data of type {type(data).__name__} is not supported: pass a torch Dataset, "
            "a DataLoader, or an (x, y) pair of tensors"
        )
    if len(split) == 0:
        raise DataError(f"the {name} set is empty: give at least one example")
    if split.x.ndim < 2:
        raise DataError(f"{name} x must have one row per example, shape (N, features...); got shape "
                        f"{tuple(split.x.shape)} (for N examples of one feature use x.reshape(-1, 1))")
    check_finite_tensor(split.x, f"the {name} data (x)")
    return split


def model_dtype(model: torch.nn.Module) -> Optional[torch.dtype]:
    """The dtype of the model's first floating-point parameter (or buffer); None if it has none."""
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return None


def as_model_dtype(model: torch.nn.Module, split: Split, name: str) -> Split:
    """``split`` with its inputs in the model's parameter dtype (unchanged when they already are)."""
    dtype = model_dtype(model) if isinstance(model, torch.nn.Module) else None  # a non-model is refused later
    if dtype is None or split.x.dtype == dtype:
        return split
    x = split.x.to(dtype)
    check_finite_tensor(x, f"the {name} data (x) converted to the model's {dtype}")
    return Split(x, split.y, split.indices)


def native_array(values: Any) -> np.ndarray:
    """``values`` as a NumPy array in the machine's byte order (torch reads no other)."""
    array = np.asarray(values)
    return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))


def _collect(loader: DataLoader, name: str) -> Split:
    xs, ys = [], []
    for item in loader:
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise DataError(f"{name} dataset items must be (x, y) pairs, got {type(item).__name__}")
        xs.append(torch.as_tensor(item[0]))
        ys.append(torch.as_tensor(item[1]))
    if not xs:
        raise DataError(f"the {name} set is empty: give at least one example")
    return Split(torch.cat(xs), torch.cat(ys))
