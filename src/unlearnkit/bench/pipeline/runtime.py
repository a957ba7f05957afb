"""One threading policy for every command, and the runtime facts that change trained weights.

Policy: every process that trains or unlearns uses ``threads`` torch threads (default 1, set by
``Experiment``), and a command running ``workers`` processes at once needs ``workers x threads``
cores at most. One thread by default because the intra-op thread count changes the order of float
reductions on CPU, hence the trained weights: with a fixed count, ``demo``, ``run``, ``bench`` and
``audit`` train the same originals and share cache entries, on any machine.

What changes trained weights besides the data and recipe (the torch version, the device type and,
on CPU, the thread count) enters every model-cache key and cell key through :func:`runtime_key`.
"""

from __future__ import annotations

import os
import platform

import torch

from ...errors import UnlearnkitError

#: parallel processes at most, whatever the core count (memory, not cores, limits beyond this)
MAX_WORKERS = 8


def cpu_budget() -> int:
    """Cores this process may use (its CPU affinity where the OS reports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS / Windows
        return max(1, os.cpu_count() or 1)


def plan_workers(workers: int, threads: int) -> int:
    """The number of worker processes: ``workers`` (0 = as many as the cores allow at ``threads``
    each, at most MAX_WORKERS), checked against workers x threads <= cores."""
    if threads < 1:
        raise UnlearnkitError(f"--threads must be >= 1, got {threads}")
    if workers < 0:
        raise UnlearnkitError(f"--workers must be >= 0, got {workers}")
    budget = cpu_budget()
    if workers == 0:
        return max(1, min(budget // threads, MAX_WORKERS))
    if workers * threads > budget:
        raise UnlearnkitError(f"{workers} worker(s) x {threads} thread(s) need {workers * threads} cores but "
                              f"{budget} are available; lower --workers or --threads")
    return workers


def apply_threads(threads: int) -> None:
    """Pin this process's torch intra-op threads (the policy's one setter)."""
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


class _NullBar:
    def update(self, n: int = 1) -> None: ...
    def set_postfix_str(self, s: str) -> None: ...
    def close(self) -> None: ...


def progress_bar(total: int, enabled: bool, desc: str):
    """A tqdm bar, or a silent stand-in when progress output is off (``--quiet``, workers)."""
    if not enabled:
        return _NullBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc)


def runtime_key(device: torch.device, threads: int) -> dict:
    """The runtime part of a model-cache or cell key: torch version, device type and, on CPU only,
    the thread count (GPU kernels do not depend on it)."""
    return {"torch": torch.__version__, "device": device.type,
            "threads": threads if device.type == "cpu" else None}


def runtime_record(device: torch.device, threads: int, workers: int) -> dict:
    """What results.json records about where and how its times were measured."""
    return {**runtime_key(device, threads), "threads": threads, "workers": workers, "cpu_budget": cpu_budget(),
            "host": platform.node(), "python": platform.python_version()}
