"""Chains of receipts: deletion requests served one after another, each receipt the next link.

Every receipt is a link (a single request is a chain of one). Its ``chain`` section records
``requests`` (its position, 1 for the first), ``previous_digest`` (the previous receipt's
``digest.sha256``; null for the first), ``rows_removed`` (by this link and every earlier one),
``training_rows`` (the rows the chain's first model was trained on, when known), ``share_removed``
and ``removed_rows_sha256``: the ``rows`` hash (see ``hashes.HASH_SCHEME``) of every sample removed
so far, sorted. A row is identified by its content (its input as the model sees it and its label),
so it stays identified whether it is given by index or as a sample, and whether or not it is still in
the user's files; an identical copy of a removed row counts as removed.

A request that continues a chain (``previous``) is refused, before anything is computed or written,
when the previous receipt fails its own check (digest, signature), when the model is not the previous
receipt's output, when a forget row was removed by an earlier link, or when the retain data hold one.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from ..errors import DataError, UnlearnkitError
from . import digest as digests
from .hashes import row_sha256s


class ChainError(DataError):
    """A request cannot be the next link of the chain it names."""


def load_receipt(path: Any) -> dict[str, Any]:
    """A receipt read from a JSON file (``UnlearnkitError`` when it cannot be one; what an edit broke
    inside it is for ``receipt_problems`` to say)."""
    path = Path(path)
    if not path.is_file():
        raise UnlearnkitError(f"receipt {path}: no such file")
    try:
        receipt = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnlearnkitError(f"receipt {path} is not JSON ({exc})") from exc
    if not isinstance(receipt, dict) or not set(receipt) & {"receipt_version", "hashes", "digest"}:
        raise UnlearnkitError(f"{path} is not an unlearnkit deletion receipt (a JSON object with receipt_version, "
                              "hashes and digest)")
    return receipt


def removed_rows(receipt: Mapping[str, Any]) -> list[str]:
    return list(receipt["chain"]["removed_rows_sha256"])


def positions_removed(rows: Sequence[str], removed: Sequence[str]) -> list[int]:
    """Positions in ``rows`` whose hash is among ``removed``."""
    gone = set(removed)
    return [i for i, h in enumerate(rows) if h in gone]


def _short(values: Sequence[Any], limit: int = 8) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


@dataclass
class Link:
    """A request about to join a chain: the previous receipt (None for a first link) and row hashes."""

    previous: Optional[dict[str, Any]] = None
    name: str = ""
    forget_rows: list[str] = field(default_factory=list)

    def record(self, training_rows: Optional[int], n_retain: Optional[int]) -> dict[str, Any]:
        """This link's ``chain`` section; ``n_retain``: the retain rows given (None without retain)."""
        prev = self.previous["chain"] if self.previous is not None else None
        known = prev["training_rows"] if prev else None
        if known is not None and training_rows is not None and training_rows != known:
            raise ChainError(f"the chain's first model was trained on {known} rows ({self.name}), not {training_rows}")
        if known is None:
            known = training_rows
        if known is None and prev is None and n_retain is not None:
            known = len(self.forget_rows) + n_retain
        removed = sorted((removed_rows(self.previous) if self.previous is not None else []) + self.forget_rows)
        if known is not None and known < len(removed):
            raise ChainError(f"training_rows={known} is fewer than the {len(removed)} rows the chain has removed")
        return {"requests": (prev["requests"] if prev else 0) + 1,
                "previous_digest": digests.digest_of(self.previous) if self.previous is not None else None,
                "rows_removed": len(removed), "training_rows": known,
                "share_removed": len(removed) / known if known else None, "removed_rows_sha256": removed}


def open_link(previous: Any, input_weights_sha256: str, forget, retain=None) -> Link:
    """Check that a request may follow ``previous`` (a receipt dict or the path of its file; None for a
    first link) and return its ``Link``. Raises ``ChainError`` naming what is refused."""
    rows = row_sha256s(forget)
    if previous is None:
        return Link(None, "", rows)
    receipt, name = previous_receipt(previous)
    check_handed_on(receipt, name, input_weights_sha256)
    removed = removed_rows(receipt)
    again = positions_removed(rows, removed)
    if again:
        raise ChainError(f"forget samples at positions {_short(again)} were already removed by an earlier "
                         f"request of the chain ({name})")
    if retain is not None:
        kept = positions_removed(row_sha256s(retain), removed)
        if kept:
            raise ChainError(f"the retain data hold {len(kept)} rows that earlier requests of the chain removed "
                             f"(positions {_short(kept)}); leave them out")
    return Link(dict(receipt), name, rows)


def previous_receipt(previous: Any) -> tuple[dict[str, Any], str]:
    """The receipt a request follows (a dict or the path of its file) and its name for messages; it must
    pass its own check."""
    if isinstance(previous, (str, Path)):
        receipt, name = load_receipt(previous), str(previous)
    else:
        receipt, name = previous, "the previous receipt"
    if not isinstance(receipt, Mapping) or not isinstance(receipt.get("chain"), Mapping):
        raise ChainError(f"{name} is not a receipt that a request can follow (it has no chain section)")
    problems = receipt_problems(receipt)
    if problems:
        raise ChainError(f"{name} fails its own check: {problems[0]}")
    return dict(receipt), name


def check_handed_on(receipt: Mapping[str, Any], name: str, weights_sha256: str, what: str = "the model") -> None:
    """``ChainError`` unless the weights are the output of the receipt's request."""
    expected = receipt["hashes"]["output_weights_sha256"]
    if weights_sha256 == expected:
        return
    output = receipt.get("outputs", {}).get("model") if isinstance(receipt.get("outputs"), Mapping) else None
    hint = f" ({Path(name).parent / output})" if output and name != "the previous receipt" else ""
    raise ChainError(f"{what} is not the output of {name} (weights sha256 {weights_sha256}, expected {expected}); "
                     f"a request continues a chain from the model its previous request wrote{hint}")


def receipt_problems(receipt: Mapping[str, Any], public_key: Any = None,
                     key_name: str = "the given public key") -> list[str]:
    """Everything that no longer matches in one receipt: its digest and its signature (checked against
    the key it names, then against ``public_key`` when given)."""
    from . import signing

    problems = digests.digest_problems(receipt)
    if problems:
        return problems  # a modified content cannot match its signature either: one line says it
    message = digests.canonical_bytes(digests.content(receipt))
    return signing.signature_problems(receipt, message, public_key, key_name)


def chain_problems(links: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """What breaks the chain ``links`` (name, receipt) in the order given: positions, the previous digest
    each link records, the weights handed on, the running totals and the drift sections."""
    from .drift import assess_drift

    problems = []
    for i, (name, receipt) in enumerate(links):
        chain = receipt.get("chain")
        if not isinstance(chain, Mapping) or chain.get("requests") != i + 1:
            where = chain.get("requests") if isinstance(chain, Mapping) else None
            problems.append(f"{name} is request {where} of its chain but number {i + 1} in the list: give the "
                            "receipts from the chain's first request on, in order")
            continue
        prev_name, prev = links[i - 1] if i else ("", None)
        try:
            problems += _link_problems(name, receipt, prev_name, prev)
            expected = assess_drift(digests.content(receipt), prev, receipt["drift"]["thresholds"])
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"{name} lacks what a chain link records ({type(exc).__name__}: {exc})")
            continue
        if expected != receipt.get("drift"):
            problems.append(f"{name}: its drift section does not follow from the chain")
    return problems


def _link_problems(name: str, receipt: Mapping[str, Any], prev_name: str,
                   prev: Optional[Mapping[str, Any]]) -> list[str]:
    chain, out = receipt["chain"], []
    earlier = removed_rows(prev) if prev is not None else []
    if prev is not None and chain["previous_digest"] != digests.digest_of(prev):
        out.append(f"{name} records previous digest {chain['previous_digest']}, but {prev_name}'s digest is "
                   f"{digests.digest_of(prev)}")
    if prev is not None and receipt["hashes"]["input_weights_sha256"] != prev["hashes"]["output_weights_sha256"]:
        out.append(f"{name} started from other weights than {prev_name}'s output")
    if prev is None and chain["previous_digest"] is not None:
        out.append(f"{name} records a previous digest, but is given as the chain's first request")
    rows = removed_rows(receipt)
    if Counter(earlier) - Counter(rows) or len(rows) - len(earlier) != receipt["counts"]["forget"] \
            or chain["rows_removed"] != len(rows):
        out.append(f"{name}'s removed rows are not the earlier requests' plus its own {receipt['counts']['forget']}")
    known = prev["chain"]["training_rows"] if prev is not None else None
    if known is not None and chain["training_rows"] != known:
        out.append(f"{name} counts {chain['training_rows']} training rows, {prev_name} {known}")
    return out
