"""On-disk cache of trained models (originals, Retrain) keyed by what determines them.

Safe to share between runs and processes: a file lock per key serialises training of the same
model, and checkpoints are written atomically, so a reader sees either nothing or a whole file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable, Optional

from torch import nn

from ..io import load_state, save_model
from ..utils import stable_hash

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    return Path(os.environ.get("UNLEARNKIT_CACHE", Path.home() / ".cache" / "unlearnkit"))


class ModelCache:
    def __init__(self, root: str | Path | None = None, enabled: bool = True) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.enabled = enabled

    def path(self, key: dict[str, Any]) -> Path:
        return self.root / "models" / f"{stable_hash(key, 24)}.safetensors"

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
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            hit = self._load(path, model)
            if hit is not None:
                return model, {**hit, "cached": True}
            trained, meta = create()
            save_model(trained, path, {**meta, "key": key})
            return trained, {**meta, "cached": False}

    def _load(self, path: Path, model: nn.Module) -> Optional[dict]:
        if not path.exists():
            return None
        try:
            state, meta = load_state(path)
            model.load_state_dict(state)
        except (OSError, RuntimeError, ValueError) as exc:  # corrupt or stale entry: retrain it
            log.warning("ignoring unreadable cache entry %s (%s); retraining", path, exc)
            return None
        meta.pop("key", None)
        return meta
