"""``unlearnkit verify``: is a deletion receipt as it was written, signed by whom it should be, and are
these weights the unlearned model it describes? With ``--chain``, the same for every link of a chain."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Mapping, Optional

from ..errors import UnlearnkitError
from ..ledger import signing
from ..ledger.chain import chain_problems, load_receipt, receipt_problems
from ..ledger.digest import digest_of
from ..ledger.hashes import match_weights, weights_sha256
from ..ledger.inputs import read_weights

#: exit status when the inputs are readable but something does not match
MISMATCH = 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify", help="check a receipt (or a chain of them), its signature and a weights file",
        description="Recompute a receipt's digest of its own content (any edit fails), check its Ed25519 signature "
                    "(against --public-key when given), and with --weights check that a safetensors file holds the "
                    "output weights it records. --chain R1 R2 ... checks every link of a chain in order: each "
                    "receipt, the previous digest each records, the weights handed on and the running totals. "
                    "Exit 0: everything matches; exit 1: something does not (each line says what); exit 2: a file "
                    "cannot be read, is not a receipt, or a weights file is damaged.")
    p.add_argument("receipt", type=Path, nargs="?", help="receipt.json")
    p.add_argument("--chain", type=Path, nargs="+", metavar="RECEIPT",
                   help="the receipts of a chain, from its first request on, in order")
    p.add_argument("--weights", type=Path, help="the .safetensors file that should be the (last) receipt's output")
    p.add_argument("--public-key", type=Path, metavar="PUB.pem",
                   help="Ed25519 public key (openssl pkey -in key.pem -pubout) that must have signed every receipt")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if (args.receipt is None) == (args.chain is None):
        raise UnlearnkitError("give one receipt, or --chain with the receipts of a chain in order")
    trusted = signing.public_key(args.public_key, "--public-key") if args.public_key else None
    key_name = f"the key in {args.public_key}"
    links = [(str(path), load_receipt(path)) for path in (args.chain or [args.receipt])]
    state = read_weights(args.weights) if args.weights is not None else None
    problems = [f"{name}: {problem}" for name, receipt in links
                for problem in receipt_problems(receipt, trusted, key_name)]
    if args.chain:
        problems += chain_problems(links)
    if state is not None:
        problems += _weights_problem(args.weights, *links[-1], state)
    for problem in problems:
        print(f"MISMATCH: {problem}", file=sys.stderr)
    if problems:
        return MISMATCH
    for i, (name, receipt) in enumerate(links):
        where = f"request {i + 1} " if args.chain else ""
        print(f"OK: {where}{name} is as written (digest {digest_of(receipt)}); {_signed(receipt, trusted, key_name)}")
    if args.chain:
        print(f"OK: the chain of {len(links)} requests holds together; {_totals(links[-1][1])}")
    if state is not None:
        name, receipt = links[-1]
        print(f"OK: {args.weights} holds the weights {name} records as the output of "
              f"{receipt.get('method', {}).get('name', '?')} (sha256 {receipt['hashes']['output_weights_sha256']})")
    return 0


def _weights_problem(path: Path, name: str, receipt: Mapping[str, Any], state: dict) -> list[str]:
    try:
        side = match_weights(receipt, state)
    except UnlearnkitError:
        return [f"{name} records no output weights to compare {path} with"]
    if side == "output":
        return []
    why = ("they are the weights BEFORE unlearning (the receipt's input weights)" if side == "input"
           else f"sha256 {weights_sha256(state)}, expected {receipt['hashes']['output_weights_sha256']}")
    return [f"{path} is not the unlearned model {name} describes: {why}"]


def _signed(receipt: Mapping[str, Any], trusted: Optional[Any], key_name: str) -> str:
    signer = receipt.get("signer")
    if signer is None:
        return "not signed"
    who = f"signed by key sha256:{signer['public_key_sha256']}"
    return f"{who}, {key_name}" if trusted is not None else f"{who} (add --public-key to check whose key that is)"


def _totals(receipt: Mapping[str, Any]) -> str:
    chain, drift = receipt["chain"], receipt["drift"]
    share = f" ({100 * chain['share_removed']:.1f}% of {chain['training_rows']} training rows)" \
        if chain["share_removed"] is not None else ""
    crossed = f"YES ({', '.join(drift['crossed'])} crossed: see drift.reasons)" if drift["retrain_recommended"] else "no"
    return f"{chain['rows_removed']} rows removed{share}; retrain recommended: {crossed}"
