"""Saving and loading model weights with safetensors (never unpickling), atomically and checksummed.

Every file written by ``save_model`` carries, in its safetensors metadata, a SHA-256 digest of its
tensors (names, dtypes, shapes and bytes). ``load_state`` recomputes it, so a truncated file, a file
with scrambled bytes or a half-copied one is reported as a ``CheckpointError`` instead of loading
garbage weights.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from .errors import CheckpointError
from .utils import atomic_write_bytes

DIGEST_KEY = "sha256"


def tensor_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict: every tensor's name, dtype, shape and raw bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_model(model: nn.Module, path: str | Path, metadata: Optional[dict[str, Any]] = None) -> Path:
    """Write the model's state_dict to ``path`` (safetensors) via temp file + rename."""
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    # safetensors refuses tensors that share memory; clone any aliases
    seen: dict[int, str] = {}
    for k, v in list(state.items()):
        ptr = v.data_ptr()
        if ptr in seen and v.numel() > 0:
            state[k] = v.clone()
        seen[ptr] = k
    meta = {"unlearnkit": json.dumps(metadata or {}, default=str), DIGEST_KEY: tensor_digest(state)}
    atomic_write_bytes(path, save(state, metadata=meta))
    return Path(path)


def load_state(path: str | Path, require_digest: bool = False
               ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and the unlearnkit metadata of a file written by ``save_model``.

    Raises ``CheckpointError`` when the file is missing, not safetensors (truncated, empty, another
    format) or its tensors do not match the stored digest; ``require_digest`` also refuses a file
    without one (written by something else, so it cannot be verified)."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}")
    try:
        blob = path.read_bytes()
        state = load(blob)
        header = json.loads(blob[8:8 + int.from_bytes(blob[:8], "little")])
        raw = header.get("__metadata__") or {}
        meta = json.loads(raw.get("unlearnkit", "{}"))
    except (SafetensorError, ValueError, OSError) as exc:  # JSON errors are ValueErrors
        raise CheckpointError(f"checkpoint {path} is unreadable ({exc}); it is damaged or not a "
                              "safetensors file written by unlearnkit") from None
    expected = raw.get(DIGEST_KEY)
    if expected is None and require_digest:
        raise CheckpointError(f"checkpoint {path} has no checksum, so it cannot be verified")
    if expected is not None and tensor_digest(state) != expected:
        raise CheckpointError(f"checkpoint {path} is damaged: its tensors do not match the stored checksum")
    return state, meta


def load_model(model: nn.Module, path: str | Path) -> nn.Module:
    """Load weights saved by ``save_model`` into ``model`` (same architecture) and return it."""
    state, _ = load_state(path)
    check_state_matches(model, state, path)
    model.load_state_dict(state)
    return model


def check_state_matches(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Raise ``CheckpointError`` unless ``state`` has exactly the keys and shapes of ``model``'s."""
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(f"checkpoint {path} does not match the model: missing keys {missing}, "
                              f"unexpected keys {unexpected}")
    shapes = [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
    if shapes:
        raise CheckpointError(f"checkpoint {path} does not match the model: tensor(s) {shapes} have other shapes")
