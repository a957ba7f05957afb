"""What ``instance_adv`` carries from one deletion request to the next (``carry_state``).

Kept in the stream's ``RequestState`` (``self.state.data``, see methods/blocks/state.py):

* ``reference``: the state_dict of the first request's input model (the original). The importance
  anchor, the adversarial examples and the importance of every later request come from it, not
  from the model the earlier requests have already changed.
* ``forget_x``, ``forget_y`` (``targets`` for relabelling): the instances of every request so far;
  the goal is checked on all of them, so an earlier instance that relapses is pushed again.
* ``adv_x``, ``adv_y``: the adversarial examples of every request so far (all from the reference).
* ``mas_sums``, ``mas_count``: MAS importance summed over every forget instance so far.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class CarriedAcrossRequests:
    """Mixin of ``InstanceAdv``: ``self.params.carry_state`` switches carrying on; off, every request
    starts from its own input model, as a single request does."""

    def reference_model(self) -> nn.Module:
        """The model the anchor, adversarial examples and importance come from: the input model, or
        with ``carry_state`` the input model of the stream's first request."""
        if not self.params.carry_state:
            return self.original
        saved = self.state.data.get("reference")
        if saved is None:
            self.state.data["reference"] = {k: v.detach().clone() for k, v in self.original.state_dict().items()}
            return self.original
        reference = copy.deepcopy(self.original)
        reference.load_state_dict(saved)
        return reference.eval()

    def carried(self, keys: tuple[str, ...], new: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """``new`` appended to what earlier requests stored under ``keys`` (and stored back), or
        ``new`` alone without ``carry_state``."""
        if not self.params.carry_state:
            return new
        data = self.state.data
        out = tuple(new_t if data.get(k) is None else torch.cat([data[k], new_t]) for k, new_t in zip(keys, new))
        data.update(zip(keys, out))
        return out

    def carried_importance(self, reference: nn.Module, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], int]:
        """MAS sums over the forget instances of this and (``carry_state``) every earlier request."""
        sums, count = self.mas_sums(reference, x), len(x)
        if self.params.carry_state:
            data = self.state.data
            if data.get("mas_sums") is not None:
                sums = {n: t + data["mas_sums"][n] for n, t in sums.items()}
                count += int(data["mas_count"])
            data.update(mas_sums=sums, mas_count=count)
        return sums, count


def normalise_per_tensor(sums: dict[str, torch.Tensor], count: int) -> dict[str, torch.Tensor]:
    """Mean (``sums`` / ``count``) min-max normalised to [0, 1] per tensor (all zeros when constant)."""
    out: dict[str, torch.Tensor] = {}
    for n, t in sums.items():
        t = t / max(count, 1)
        lo, hi = t.min(), t.max()
        out[n] = (t - lo) / (hi - lo) if hi > lo else torch.zeros_like(t)
    return out
