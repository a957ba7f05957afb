"""A receipt's digest of its own content, so that an edit is caught, and sealing a receipt.

Exactly which bytes are hashed: the receipt's *content* is the receipt without its top-level members
``digest`` and ``signature``; its canonical bytes are the RFC 8785 (JSON Canonicalization Scheme)
serialisation of that content, UTF-8 encoded; ``digest.sha256`` is their SHA-256 in hex. The hash
covers the parsed JSON, not the file, so re-indenting the file or reordering its keys changes
nothing while changing any value does. ``digest.fields`` holds the same hash of each part (each
top-level member, or each member of a top-level object as ``member.key``) so that a check can name
what changed; integrity rests on ``digest.sha256`` and the signature.

A digest is a seal, not a lock: whoever edits a receipt can recompute it, the scheme being public.
An edit is evident against a record kept outside the file: the signature (only the private key's
holder can make one), the next link of a chain (it records this receipt's digest), or the digest
itself noted elsewhere.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping, Optional

import rfc8785

from ..errors import DataError
from . import signing

DIGEST = "digest"
SIGNATURE = "signature"
#: top-level members that are not part of the content (they are computed from it)
EXCLUDED = (DIGEST, SIGNATURE)


def content(receipt: Mapping[str, Any]) -> dict[str, Any]:
    """The receipt without its digest and signature: what both cover."""
    return {key: value for key, value in receipt.items() if key not in EXCLUDED}


def canonical_bytes(value: Any, where: str = "the receipt") -> bytes:
    """The RFC 8785 serialisation of ``value``."""
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise DataError(f"{where} cannot be written as canonical JSON (RFC 8785): {exc}") from exc


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def field_digests(body: Mapping[str, Any]) -> dict[str, str]:
    """The digest of each part of the content: ``member`` or, inside a non-empty object, ``member.key``."""
    out = {}
    for key, value in body.items():
        if isinstance(value, dict) and value:
            for sub, inner in value.items():
                out[f"{key}.{sub}"] = sha256_hex(canonical_bytes(inner, f"the receipt's {key}.{sub}"))
        else:
            out[key] = sha256_hex(canonical_bytes(value, f"the receipt's {key}"))
    return dict(sorted(out.items()))


def seal(receipt: Mapping[str, Any], sign_key: Any = None, *, key_flag: str = "sign_key") -> dict[str, Any]:
    """A copy of ``receipt`` with a fresh digest, and signed when ``sign_key`` is given (a PEM file or an
    Ed25519 private key object): the signer's public key joins the content, then the digest and the
    signature are computed over it. Any earlier digest, signer and signature are replaced."""
    body = content(receipt)
    body.pop("signer", None)
    key = None if sign_key is None else signing.private_key(sign_key, key_flag)
    if key is not None:
        body["signer"] = signing.signer_record(key.public_key())
    raw = canonical_bytes(body)
    sealed = {**body, DIGEST: {"sha256": sha256_hex(raw), "fields": field_digests(body)}}
    if key is not None:
        sealed[SIGNATURE] = signing.sign(key, raw)
    return sealed


def digest_of(receipt: Mapping[str, Any]) -> Optional[str]:
    """The recorded ``digest.sha256`` of a receipt, or None."""
    record = receipt.get(DIGEST)
    return record.get("sha256") if isinstance(record, Mapping) else None


def digest_problems(receipt: Mapping[str, Any]) -> list[str]:
    """What no longer matches the receipt's digest (empty when it is intact)."""
    record = receipt.get(DIGEST)
    if record is None:
        return ["it carries no digest, so an edit cannot be detected (written by an unlearnkit older than "
                "receipt_version 2, or its digest was removed)"]
    if (not isinstance(record, dict) or set(record) != {"sha256", "fields"} or not isinstance(record["sha256"], str)
            or not isinstance(record["fields"], dict)):
        return ["its digest section was edited: it must hold exactly sha256 and fields"]
    body = content(receipt)
    try:
        actual = field_digests(body)  # first: its errors name the part
        raw = canonical_bytes(body)
    except DataError as exc:
        return [f"it was modified after it was written: {exc}"]
    recorded = record["fields"]
    changed = [_change(k, recorded, actual) for k in sorted(set(recorded) | set(actual))
               if recorded.get(k) != actual.get(k)]
    if sha256_hex(raw) != record["sha256"]:
        if changed:
            return [f"it was modified after it was written: {', '.join(changed)}"]
        return ["digest.sha256 was edited: it does not match the content, whose every part matches digest.fields"]
    if changed:
        return [f"digest.fields was edited ({', '.join(changed)}); the content matches digest.sha256"]
    return []


def _change(key: str, recorded: Mapping[str, Any], actual: Mapping[str, Any]) -> str:
    if key not in recorded:
        return f"{key} added"
    return f"{key} removed" if key not in actual else f"{key} changed"
