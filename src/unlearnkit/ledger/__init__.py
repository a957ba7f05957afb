"""The deletion ledger: receipts of unlearning requests on a user's own model, sealed, signed and chained.

* ``receipt`` - ``unlearn_with_receipt``: one request and its receipt (what was deleted, from which
  model, how, which data the method saw, the evidence before and after).
* ``hashes`` - the SHA-256 hashes of weights, samples and rows a receipt records, and their scheme.
* ``digest`` - the receipt's digest of its own canonical content (RFC 8785) and sealing.
* ``signing`` - optional Ed25519 signatures (``pip install 'unlearnkit[sign]'``).
* ``chain`` - requests served one after another, each receipt a link naming the previous one.
* ``drift`` - how far a chain has moved the model, and when a real retrain is recommended.
* ``audit`` - the per-example U-LiRA audit of one request with shadow models from the user's factory.
* ``inputs``, ``request`` - reading the user's model, weights and data from files (``unlearnkit unlearn``).
"""

from __future__ import annotations

from .chain import ChainError, chain_problems, load_receipt, receipt_problems
from .digest import seal
from .drift import RetrainThresholds, assess_drift
from .hashes import HASH_SCHEME, match_weights, row_sha256s, weights_sha256
from .receipt import RECEIPT_VERSION, UnlearningResult, unlearn_with_receipt

__all__ = ["HASH_SCHEME", "RECEIPT_VERSION", "ChainError", "RetrainThresholds", "UnlearningResult", "assess_drift",
           "chain_problems", "load_receipt", "match_weights", "receipt_problems", "row_sha256s", "seal",
           "unlearn_with_receipt", "weights_sha256"]
