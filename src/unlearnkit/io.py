"""Saving and loading model weights with safetensors (never unpickling), atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from .errors import UnlearnkitError
from .utils import atomic_write_bytes


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
    meta = {"unlearnkit": json.dumps(metadata or {}, default=str)}
    atomic_write_bytes(path, save(state, metadata=meta))
    return Path(path)


def load_state(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.exists():
        raise UnlearnkitError(f"no checkpoint at {path}")
    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads((handle.metadata() or {}).get("unlearnkit", "{}"))
    return load_file(str(path)), meta


def load_model(model: nn.Module, path: str | Path) -> nn.Module:
    """Load weights saved by ``save_model`` into ``model`` (same architecture) and return it."""
    state, _ = load_state(path)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise UnlearnkitError(f"checkpoint {path} does not match the model: missing keys {missing}, "
                              f"unexpected keys {unexpected}")
    return model
