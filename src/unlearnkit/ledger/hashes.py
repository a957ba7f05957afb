"""The SHA-256 hashes a receipt records about the data and the weights.

Every hash is SHA-256 in hex. ``HASH_SCHEME`` (copied into each receipt) says exactly what bytes
each one covers, so a third party can recompute them without unlearnkit. ``weights_sha256`` hashes
the tensors of a state_dict, not a file's bytes, so the same weights saved by any tool (or on any
device) hash the same; ``match_weights`` tells which side of a receipt a set of weights is.
``row_sha256s`` identifies single samples by their content: that is how a chain of receipts knows
which rows earlier requests removed, whether or not the rows are still in the user's files.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..data.split import Split
from ..errors import DataError
from ..io import tensor_digest

HASH_SCHEME = {
    "weights": "for each state_dict entry in sorted name order, the UTF-8 text 'name|dtype|shape|' (dtype "
               "as torch prints it, e.g. torch.float32; shape as a Python tuple, e.g. (64, 20)) followed by "
               "the tensor's raw bytes in C order (little-endian)",
    "forget_indices": "the sorted forget indices as little-endian int64",
    "forget_samples": "the weights scheme applied to two tensors: 'x', the forget samples as the model sees "
                      "them, and 'y', their labels as int64, both in sorted-index order (in the order given "
                      "when the forget set came without indices)",
    "test_samples": "the forget_samples scheme applied to the test data, in the order given",
    "rows": "one sample alone: the weights scheme applied to 'x', the sample as the model sees it (without "
            "the batch dimension), and 'y', its label as an int64 scalar (shape ())",
    "receipt": "digest.sha256: SHA-256 of the RFC 8785 (JSON Canonicalization Scheme) serialisation of the "
               "receipt without its top-level members 'digest' and 'signature'; digest.fields: the same for "
               "each top-level member's value, or for each member of a top-level object as 'member.key'",
    "signature": "Ed25519 (RFC 8032) over the same RFC 8785 bytes as digest.sha256, base64; signer.public_key "
                 "is the raw 32-byte public key in base64, signer.public_key_sha256 the SHA-256 of its DER "
                 "SubjectPublicKeyInfo (what `openssl pkey -pubin -outform DER` writes)",
}


def weights_sha256(weights: nn.Module | Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of a model's state_dict (or of a state dict) as described in ``HASH_SCHEME``: the
    checksum ``save_model`` stores in every file it writes."""
    return tensor_digest(dict(weights.state_dict() if isinstance(weights, nn.Module) else weights))


def indices_sha256(indices: Sequence[int] | np.ndarray) -> str:
    """SHA-256 of the sorted indices as little-endian int64."""
    ordered = np.sort(np.asarray(indices, dtype=np.int64)).astype("<i8")
    return hashlib.sha256(ordered.tobytes()).hexdigest()


def samples_sha256(samples: Split, indices: Optional[Sequence[int] | np.ndarray] = None) -> str:
    """SHA-256 of a set of samples, put in sorted-index order when their indices are given."""
    x, y = samples.x, samples.y
    if indices is not None:
        order = torch.as_tensor(np.argsort(np.asarray(indices, dtype=np.int64), kind="stable"))
        x, y = x[order.to(x.device)], y[order.to(y.device)]
    return tensor_digest({"x": x, "y": y.long()})


def row_sha256s(samples: Split) -> list[str]:
    """The ``rows`` hash of every sample, in order: equal to ``tensor_digest({"x": x[i], "y": y[i]})``,
    computed without building a dict per row."""
    if len(samples) == 0:
        return []
    x = samples.x.detach().cpu().contiguous()
    y = samples.y.detach().cpu().long().contiguous()
    head_x = f"x|{x.dtype}|{tuple(x.shape[1:])}|".encode()
    head_y = f"y|{y.dtype}|()|".encode()
    x_bytes = x.reshape(len(x), -1).view(torch.uint8).numpy() if x[0].numel() else None
    y_bytes = y.reshape(-1, 1).view(torch.uint8).numpy()
    out = []
    for i in range(len(y)):
        h = hashlib.sha256(head_x)
        if x_bytes is not None:
            h.update(x_bytes[i].tobytes())
        h.update(head_y)
        h.update(y_bytes[i].tobytes())
        out.append(h.hexdigest())
    return out


def match_weights(receipt: Mapping[str, Any], weights: nn.Module | Mapping[str, torch.Tensor]) -> Optional[str]:
    """``"output"`` if ``weights`` are the unlearned weights the receipt describes, ``"input"`` if they
    are the weights before unlearning, None if neither."""
    hashes = receipt.get("hashes") if isinstance(receipt, Mapping) else None
    if not isinstance(hashes, Mapping) or "output_weights_sha256" not in hashes:
        raise DataError("this is not an unlearnkit deletion receipt: it has no hashes.output_weights_sha256")
    digest = weights_sha256(weights)
    if digest == hashes["output_weights_sha256"]:
        return "output"
    if digest == hashes.get("input_weights_sha256"):
        return "input"
    return None
