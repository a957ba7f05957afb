"""The data of one deletion request on a user's own model, from the two ways of giving it.

* **Indices** (``--data`` or ``--data-factory`` with ``--forget-indices``): the training data and
  the rows to forget in it; retain is every other training row, minus any row an earlier request of
  the chain removed (rows are matched by content, see ``chain``), and test / third-party data come
  with the training data.
* **Samples** (``--forget``, the retain-free path): the samples to forget themselves, with optional
  reference data (same-domain samples the model never trained on; the task's ``third_party``) and
  test data. There is no retain data, so only methods that run without it are accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
from torch import nn

from ..data.split import Split
from ..task import as_model_dtype
from . import inputs
from .chain import ChainError, positions_removed, removed_rows
from .hashes import row_sha256s

#: how to give each split on the command line, per path (for the message refusing a method)
FLAGS = {
    "indices": {"retain": "training rows beyond the forget set (--forget-indices names them all)",
                "third_party": "x_third_party and y_third_party in --data", "test": "x_test and y_test in --data"},
    "samples": {"retain": "the training data with --data and --forget-indices instead of --forget",
                "third_party": "--reference FILE.npz", "test": "--test FILE.npz"},
}


@dataclass
class Request:
    """The splits of one request, how the forget set was given, and where each input came from."""

    splits: dict[str, Optional[Split]]
    path: str
    forget_indices: Optional[np.ndarray] = None
    excluded: int = 0  # training rows left out of retain because earlier requests removed them
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def available(self) -> set[str]:
        return {name for name, split in self.splits.items() if split is not None}


def from_training_data(model: nn.Module, data: dict[str, Split], indices_path: Path,
                       previous: Optional[dict[str, Any]] = None, previous_name: str = "") -> Request:
    """The index path: ``data`` from ``--data`` / ``--data-factory``, indices from their file."""
    train = data["train"]
    idx = inputs.load_indices(indices_path, len(train))
    keep = np.setdiff1d(np.arange(len(train)), idx)
    excluded = 0
    if previous is not None:
        rows = row_sha256s(as_model_dtype(model, train, "training"))
        removed = removed_rows(previous)
        again = [int(idx[p]) for p in positions_removed([rows[i] for i in idx], removed)]
        if again:
            raise ChainError(f"--forget-indices {indices_path}: rows {', '.join(map(str, again[:8]))}"
                             + (f" and {len(again) - 8} more" if len(again) > 8 else "")
                             + f" were already removed by an earlier request of the chain ({previous_name})")
        gone = set(positions_removed([rows[i] for i in keep], removed))
        excluded = len(gone)
        keep = np.asarray([k for p, k in enumerate(keep) if p not in gone], dtype=np.int64)
    splits = {"forget": train.subset(idx), "retain": train.subset(keep) if len(keep) else None,
              "test": data.get("test"), "third_party": data.get("third_party")}
    record = {"forget_indices": str(indices_path), "forget_indices_file_sha256": inputs.file_sha256(indices_path)}
    return Request(splits, "indices", idx, excluded, record)


def from_samples(forget: Path, reference: Optional[Path] = None, test: Optional[Path] = None) -> Request:
    """The retain-free path: each file an .npz with arrays x, y."""
    splits: dict[str, Optional[Split]] = {"forget": inputs.load_samples(forget, "--forget"), "retain": None,
                                          "test": None, "third_party": None}
    record: dict[str, Any] = {"forget": str(forget), "forget_file_sha256": inputs.file_sha256(forget)}
    for name, flag, path in (("third_party", "reference", reference), ("test", "test", test)):
        if path is not None:
            splits[name] = inputs.load_samples(path, f"--{flag}")
            record.update({flag: str(path), f"{flag}_file_sha256": inputs.file_sha256(path)})
    return Request(splits, "samples", None, 0, record)
