"""``RequestState``: what a method carries from one deletion request to the next.

Deletion requests reach a deployed model one after another; the model returned for request r is
the input of request r + 1. A method that needs more than that model (the first request's input
model as an anchor, importance accumulated over every forget set so far, the instances already
forgotten so that they stay forgotten, ...) keeps it in the ``RequestState`` of the stream:

    state = RequestState()
    for task in requests:
        model = method.unlearn(model, task, state=state)

The method reads and writes ``state.data`` during ``_unlearn`` (as ``self.state``); ``done`` counts
the requests completed (0 while the first runs). Stateless methods ignore the state and simply
chain. Values in ``data`` must be tensors, numbers, strings, booleans, None, or lists/dicts of
them, so that the state can be saved beside the model after every request (``to_dict`` /
``from_dict``) and a killed stream resumes where it stopped; store a model as its ``state_dict``.
Tensors are on the method's device during a call and on the CPU between calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ...errors import DataError

_PLAIN = (int, float, str, bool, type(None))


@dataclass
class RequestState:
    """The per-stream state of one method: ``done`` requests completed, ``data`` owned by the method."""

    done: int = 0
    data: dict[str, Any] = field(default_factory=dict)

    def move(self, device: torch.device) -> None:
        """Move every tensor in ``data`` to ``device`` (in place)."""
        self.data = _map_tensors(self.data, lambda t: t.to(device))

    def to_dict(self) -> dict[str, Any]:
        """A plain, ``torch.save``-able copy (tensors detached, on the CPU); raises ``DataError``
        naming the key that holds something else."""
        _check_plain(self.data, "state.data")
        return {"done": self.done, "data": _map_tensors(self.data, lambda t: t.detach().cpu().clone())}

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> "RequestState":
        return cls(done=int(saved["done"]), data=dict(saved["data"]))


def _map_tensors(value: Any, fn) -> Any:
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, dict):
        return {k: _map_tensors(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_map_tensors(v, fn) for v in value]
    return value


def _check_plain(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise DataError(f"{where} has a non-string key {k!r}; request state keys must be strings")
            _check_plain(v, f"{where}[{k!r}]")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
    elif not isinstance(value, (torch.Tensor,) + _PLAIN):
        raise DataError(f"{where} holds a {type(value).__name__}; request state may hold only tensors, numbers, "
                        "strings, booleans, None and lists/dicts of them (store a model as its state_dict)")
