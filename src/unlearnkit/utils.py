"""Small shared helpers: devices, seeding, eval mode, timing, atomic file writes."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from .errors import UnlearnkitError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or None) picks CUDA when present, else CPU; anything else is passed to torch."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise UnlearnkitError(f"invalid device {device!r}: use 'auto', 'cpu' or 'cuda[:N]'") from exc
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UnlearnkitError(f"device {device!r}: this torch build or machine has no CUDA GPU; use "
                                  "--device cpu (or auto)")
        if resolved.index is not None and resolved.index >= count:
            raise UnlearnkitError(f"device {device!r}: only {count} CUDA device(s) (cuda:0..cuda:{count - 1})")
    return resolved


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Every submodule of ``model`` in eval mode for the block; afterwards each module gets back its
    own mode. (``model.train(was_training)`` would not do: it overwrites a submodule the user left in
    another mode than its parent, e.g. a frozen BatchNorm.)"""
    modes = [m.training for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, mode in zip(model.modules(), modes):
            m.train(mode)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch, numpy and random for the block and restore the previous global RNG states after.

    Every random choice inside a method (initialisation, batch order, noise) then depends only on
    ``seed``, and calling a method does not disturb the caller's random streams.
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        reseed(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def reseed(seed: int) -> None:
    """Seed torch, numpy and random with ``seed`` (what ``seeded`` does on entry; a method that
    restarts its run inside the block calls it to start again from the same random streams)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@functools.cache
def warm_up_torch() -> None:
    """Pay torch's one-off lazy imports before anything is timed.

    The first ``torch.optim`` optimizer built in a process imports torch._dynamo (about 2 s on an
    idle core, over 10 s on a loaded one); without this, whichever method a process times first is
    charged for it and its speedup is wrong."""
    weight = torch.zeros(1, requires_grad=True)
    weight.sum().backward()
    torch.optim.SGD([weight], lr=0.0).step()


class Timer:
    """Wall-clock timer that synchronises CUDA so GPU work is counted."""

    def __enter__(self) -> "Timer":
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self.start


def cache_root() -> Path:
    """Root of unlearnkit's on-disk caches (trained models, generated datasets): ``$UNLEARNKIT_CACHE``
    or ``~/.cache/unlearnkit``."""
    return Path(os.environ.get("UNLEARNKIT_CACHE", Path.home() / ".cache" / "unlearnkit"))


def exit_with_parent(poll_s: float = 0.5) -> None:
    """In a worker process: end it as soon as the process that started it is gone (killed with
    SIGKILL, for instance), instead of computing on as an orphan. A daemon thread polls the parent id."""
    import multiprocessing
    import threading

    # the parent's pid as the pool knew it: if it died while this process was starting, getppid()
    # would already name the adopting process and the watch would never fire
    parent = getattr(multiprocessing.parent_process(), "pid", None) or os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


@contextlib.contextmanager
def spawn_without_main() -> Iterator[None]:
    """Start "spawn" worker processes inside this block without making them re-run the caller's script.

    A spawned process normally re-imports the main module, so that functions defined there can be
    found. unlearnkit's workers run only unlearnkit functions; re-running a user's script that has no
    ``if __name__ == "__main__":`` guard would start the whole computation again in every worker (and
    fail there). Hiding the main module's file and spec while the processes start prevents that."""
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main is not None and k in main.__dict__}
    try:
        if "__file__" in saved:
            del main.__dict__["__file__"]
        if "__spec__" in saved:
            main.__dict__["__spec__"] = None
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; result files follow the umask like open()
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hash of a JSON-serialisable object that is stable across runs and machines."""
    payload = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:length]


def to_jsonable(obj: Any) -> Any:
    """Convert numpy/torch scalars and arrays inside ``obj`` to plain Python for JSON."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return to_jsonable(obj.detach().cpu().tolist())
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
