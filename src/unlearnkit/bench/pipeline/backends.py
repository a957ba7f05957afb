"""Execution backends: where independent pieces of work run. ``bench`` (one cell per item) and
``audit`` (one model per item) both hand their items to a backend from this registry.

Interface: ``get_backend(name, address).run(fn, items, workers=, threads=, initializer=, initargs=)``
yields ``(item, result, error)`` as each item finishes, in completion order; ``error`` is a one-line
description when ``fn`` raised (the other items go on). ``initializer(*initargs)`` runs once in each
process before its first item. Workers only compute; the caller alone writes results.

* ``local``: a process pool (spawn), or this process when ``workers <= 1``.
* ``ray``: Ray tasks (the ``unlearnkit[ray]`` extra), on a local Ray or the cluster at ``address``;
  the model-cache directory must then be shared by every node.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Optional

from ...errors import UnlearnkitError
from ...registry import Registry
from ...utils import spawn_without_main

Outcome = tuple[Any, Any, Optional[str]]

BACKENDS: Registry[type] = Registry("backend")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


@BACKENDS.register("local")
class LocalBackend:
    """A process pool on this machine; ``workers <= 1`` runs the items in this process."""

    def __init__(self, address: Optional[str] = None) -> None:
        if address:
            raise UnlearnkitError("the local backend takes no address; use --backend ray for a cluster")

    def run(self, fn: Callable[[Any], Any], items: Iterable[Any], *, workers: int = 1, threads: int = 1,
            initializer: Optional[Callable[..., None]] = None, initargs: tuple = ()) -> Iterator[Outcome]:
        items = list(items)
        if workers <= 1:
            if initializer is not None:
                initializer(*initargs)
            for item in items:
                try:
                    yield item, fn(item), None
                except Exception as exc:  # noqa: BLE001 - reported per item, the rest goes on
                    yield item, None, _describe(exc)
            return
        import multiprocessing as mp
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        from concurrent.futures.process import BrokenProcessPool

        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                 initializer=initializer, initargs=initargs) as pool:
            with spawn_without_main():  # works from a plain script, no __main__ guard needed
                pending = {pool.submit(fn, item): item for item in items}
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        item = pending.pop(future)
                        try:
                            yield item, future.result(), None
                        except BrokenProcessPool:  # every item would fail the same way: stop now, say why
                            raise UnlearnkitError("a worker process died (killed, out of memory, or it could not "
                                                  "start); run with one worker (--workers 1) to compute in this "
                                                  "process and see the cause") from None
                        except Exception as exc:  # noqa: BLE001 - reported per item
                            yield item, None, _describe(exc)
            finally:
                for future in pending:
                    future.cancel()


_RAY_INITIALISED: set[str] = set()


def _ray_call(fn: Callable, item: Any, initializer: Optional[Callable], initargs: tuple) -> Any:
    """Inside a Ray worker process: run the initializer once per (process, initializer), then ``fn``."""
    if initializer is not None:
        tag = f"{initializer.__module__}.{initializer.__qualname__}:{initargs!r}"
        if tag not in _RAY_INITIALISED:
            initializer(*initargs)
            _RAY_INITIALISED.add(tag)
    return fn(item)


@BACKENDS.register("ray")
class RayBackend:
    """Ray tasks, each asking for ``threads`` CPUs; a local Ray with ``workers`` CPUs unless an
    address is given."""

    def __init__(self, address: Optional[str] = None) -> None:
        self.address = address

    def run(self, fn: Callable[[Any], Any], items: Iterable[Any], *, workers: int = 1, threads: int = 1,
            initializer: Optional[Callable[..., None]] = None, initargs: tuple = ()) -> Iterator[Outcome]:
        try:
            import ray
        except ImportError:
            raise UnlearnkitError("the ray backend needs Ray: pip install 'unlearnkit[ray]'") from None
        started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address:
                kwargs["address"] = self.address
            else:
                kwargs["num_cpus"] = max(1, workers) * threads
            ray.init(**kwargs, runtime_env={"env_vars": {"OMP_NUM_THREADS": str(threads)}})
            started = True
        task = ray.remote(num_cpus=threads)(_ray_call)
        try:
            refs = {task.remote(fn, item, initializer, initargs): item for item in items}
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1)
                for ref in done:
                    item = refs.pop(ref)
                    try:
                        yield item, ray.get(ref), None
                    except Exception as exc:  # noqa: BLE001 - a failed task is reported per item
                        yield item, None, _describe(exc)
        finally:
            if started:
                ray.shutdown()


def get_backend(name: str, address: Optional[str] = None):
    """An instance of the registered backend ``name`` (unknown names list the valid ones)."""
    return BACKENDS.get(name)(address)
