"""On-disk cache of trained models (originals, Retrain) keyed by what determines them.

Safe to share between runs and processes: a file lock per key serialises training of the same
model, and checkpoints are written atomically, so a reader sees either nothing or a whole file.

An entry cannot silently stand in for another model: each file stores its full key and a checksum
of its tensors (see ``unlearnkit.io``), and both are checked on every load. An entry that fails
(truncated, emptied, bytes changed, another model's file copied over it) is logged, moved aside to
``<name>.bad`` for inspection and trained again.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Optional

from torch import nn

from ...errors import CheckpointError, UnlearnkitError
from ...io import check_state_matches, load_state, save_model
from ...utils import cache_root, stable_hash

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    return cache_root()


def _canonical(key: dict[str, Any]) -> str:
    """The key as stored in a file's metadata (JSON with ``default=str``), in a comparable form."""
    return json.dumps(json.loads(json.dumps(key, default=str)), sort_keys=True)


class ModelCache:
    def __init__(self, root: str | Path | None = None, enabled: bool = True) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.enabled = enabled

    def path(self, key: dict[str, Any]) -> Path:
        return self.root / "models" / f"{stable_hash(key, 24)}.safetensors"

    def check_usable(self) -> None:
        """Fail now, with a message, if the cache folder cannot be created or written."""
        if not self.enabled:
            return
        models = self.root / "models"
        try:
            models.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UnlearnkitError(f"cannot use model cache {self.root}: {exc.strerror or exc}; pass --cache-dir "
                                  "DIR (or set UNLEARNKIT_CACHE) to a writable folder, or --no-cache") from None
        if not os.access(models, os.W_OK | os.X_OK):
            raise UnlearnkitError(f"model cache {self.root} is not writable; pass --cache-dir DIR (or set "
                                  "UNLEARNKIT_CACHE) to a writable folder, or --no-cache")

    def get_or_create(
        self, key: dict[str, Any], model: nn.Module, create: Callable[[], tuple[nn.Module, dict]],
    ) -> tuple[nn.Module, dict[str, Any]]:
        """Load the model for ``key`` into ``model`` or call ``create()`` -> (model, metadata) and
        store it. Returns the model and its metadata (e.g. training time) with ``cached`` set."""
        if not self.enabled:
            trained, meta = create()
            return trained, {**meta, "cached": False}
        from filelock import FileLock

        path = self.path(key)
        self.check_usable()
        with FileLock(str(path) + ".lock"):
            hit = self._load(path, key, model)
            if hit is not None:
                return model, {**hit, "cached": True}
            trained, meta = create()
            save_model(trained, path, {**meta, "key": key})
            return trained, {**meta, "cached": False}

    def _load(self, path: Path, key: dict[str, Any], model: nn.Module) -> Optional[dict]:
        if not path.exists():
            return None
        try:
            state, meta = load_state(path, require_digest=True)
            stored = meta.pop("key", None)
            if stored is None or _canonical(stored) != _canonical(key):
                raise CheckpointError(f"checkpoint {path} was stored for another model (its key differs)")
            check_state_matches(model, state, path)
            model.load_state_dict(state)
        except CheckpointError as exc:
            self._move_aside(path, str(exc))
            return None
        return meta

    @staticmethod
    def _move_aside(path: Path, reason: str) -> None:
        bad = path.with_name(path.name + ".bad")
        try:
            os.replace(path, bad)
        except OSError as exc:
            raise UnlearnkitError(f"{reason}; it could not be moved aside ({exc.strerror or exc}): "
                                  f"delete {path} and run again") from None
        log.warning("%s; moved it to %s and training the model again", reason, bad)
