"""``unlearnkit verify``: are these weights the unlearned model a deletion receipt describes?"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import UnlearnkitError
from ..receipt import match_weights, weights_sha256
from ._inputs import read_weights

#: exit status when the weights are readable but are not the receipt's output weights
MISMATCH = 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify", help="check that a weights file is the unlearned model a receipt describes",
        description="Re-hash the tensors of a safetensors file and compare them with the output weights "
                    "recorded in a receipt written by `unlearnkit unlearn`. Exit 0: they match; exit 1: they "
                    "do not (the line says whether they are the weights from before unlearning); exit 2: "
                    "the receipt or weights cannot be read, or the file is damaged (its tensors do not match the "
                    "checksum stored in it).")
    p.add_argument("receipt", type=Path, help="receipt.json")
    p.add_argument("--weights", type=Path, required=True, help="the .safetensors file to check")
    p.set_defaults(func=main)


def load_receipt(path: Path) -> dict:
    if not path.is_file():
        raise UnlearnkitError(f"receipt {path}: no such file")
    try:
        receipt = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnlearnkitError(f"receipt {path} is not JSON ({exc})") from exc
    if not isinstance(receipt, dict):
        raise UnlearnkitError(f"receipt {path} is not an unlearnkit deletion receipt (not a JSON object)")
    return receipt


def main(args: argparse.Namespace) -> int:
    receipt = load_receipt(args.receipt)
    state = read_weights(args.weights)
    side = match_weights(receipt, state)
    method = receipt.get("method", {}).get("name", "?")
    if side == "output":
        print(f"OK: {args.weights} holds the weights {args.receipt} records as the output of {method} "
              f"(sha256 {receipt['hashes']['output_weights_sha256']})")
        return 0
    why = ("they are the weights BEFORE unlearning (the receipt's input weights)" if side == "input"
           else f"sha256 {weights_sha256(state)}, expected {receipt['hashes']['output_weights_sha256']}")
    print(f"MISMATCH: {args.weights} is not the unlearned model {args.receipt} describes: {why}", file=sys.stderr)
    return MISMATCH
