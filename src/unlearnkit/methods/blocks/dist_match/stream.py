"""What ``dist_match`` carries from one deletion request to the next (``carry_forgotten``).

Kept in the stream's ``RequestState`` (``state.data``, see methods/blocks/state.py):

* ``forget_x``, ``forget_y``: the samples of every earlier request that ran in subset mode. A
  subset-mode request matches them together with its own, so the samples that earlier requests brought
  to the level of unseen data stay there while this request's updates move the model (without them,
  each request pushes the earlier samples further: the avg gap to Retrain grows from request to
  request, docs/methods/dist_match.md). Concept-mode requests (a class, a backdoor) carry nothing:
  their samples are a concept of their own.
* ``anchor_x``, ``anchor_logits``: the third-party inputs of the retain-free anchor and the stream's
  first model's logits on them. Later requests anchor to those (when their anchor data are the same
  inputs), not to the model the earlier requests already changed, so the losses of the retained
  knowledge do not add up from request to request.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from ....data.split import Split
from ..state import RequestState


def with_earlier_requests(task, state: RequestState, carry: bool):
    """``task`` with the forget samples of the earlier subset-mode requests of the stream before its own
    (stored back, with this request's, for the next one); ``task`` itself without ``carry``."""
    if not carry:
        return task
    data, own = state.data, task.forget
    earlier_x, earlier_y = data.get("forget_x"), data.get("forget_y")
    if earlier_x is not None:
        task = replace(task, forget=Split(torch.cat([earlier_x.to(own.x.device), own.x]),
                                          torch.cat([earlier_y.to(own.y.device), own.y])))
    data["forget_x"], data["forget_y"] = task.forget.x, task.forget.y
    return task


def first_model_logits(x: torch.Tensor, logits: torch.Tensor, state: RequestState, carry: bool) -> torch.Tensor:
    """The anchor's reference logits on inputs ``x``: those of the stream's first model when an earlier
    request stored them for the same inputs, else ``logits`` (this request's input model; stored for
    the next request)."""
    if not carry:
        return logits
    data = state.data
    saved_x, saved = data.get("anchor_x"), data.get("anchor_logits")
    if saved_x is not None and saved_x.shape == x.shape and torch.equal(saved_x.to(x.device), x):
        return saved.to(logits.device)
    data["anchor_x"], data["anchor_logits"] = x, logits
    return logits
