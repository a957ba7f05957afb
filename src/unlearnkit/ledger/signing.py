"""Ed25519 signatures of receipts, through the ``cryptography`` package (``pip install 'unlearnkit[sign]'``).

Keys are what OpenSSL writes: ``openssl genpkey -algorithm ed25519 -out key.pem`` (PEM, PKCS#8,
unencrypted) and ``openssl pkey -in key.pem -pubout -out pub.pem`` (PEM, SubjectPublicKeyInfo). A
signed receipt names its signer in its content (``signer``: algorithm, raw public key, SHA-256 of the
DER public key) and carries ``signature``: the Ed25519 signature (RFC 8032) of the same canonical
bytes its digest covers, in base64. The signature is always checked against the key the receipt
names; only a public key the checker already trusts (``--public-key``) says who signed it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path
from typing import Any, Mapping, Optional

from ..errors import UnlearnkitError

ALGORITHM = "Ed25519"
INSTALL = "pip install 'unlearnkit[sign]'"


def _crypto() -> tuple[Any, Any, Any]:
    """``serialization``, ``ed25519`` and ``InvalidSignature`` from ``cryptography``, imported lazily."""
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:
        raise UnlearnkitError(f"signed receipts need the cryptography package: {INSTALL}") from exc
    return serialization, ed25519, InvalidSignature


def _read_pem(path: Any, flag: str) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise UnlearnkitError(f"{flag} {path}: no such file")
    return path.read_bytes()


def private_key(key: Any, flag: str = "sign_key") -> Any:
    """An Ed25519 private key from a PEM file (PKCS#8, as ``openssl genpkey -algorithm ed25519`` writes
    it) or a key object."""
    serialization, ed25519, _ = _crypto()
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    if not isinstance(key, (str, Path)):
        raise TypeError(f"{flag} must be a path to a PEM file or an Ed25519PrivateKey, got {type(key).__name__}")
    data = _read_pem(key, flag)
    if b"PUBLIC KEY-----" in data:
        raise UnlearnkitError(f"{flag} {key} holds a public key; signing needs the private key "
                              "(openssl genpkey -algorithm ed25519 -out key.pem)")
    try:
        loaded = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # the key is encrypted
        raise UnlearnkitError(f"{flag} {key} is encrypted; give an unencrypted PKCS#8 key "
                              "(openssl genpkey -algorithm ed25519 -out key.pem)") from None
    except ValueError as exc:
        raise UnlearnkitError(f"{flag} {key} is not a PEM private key ({exc})".split("\n")[0]) from None
    if not isinstance(loaded, ed25519.Ed25519PrivateKey):
        raise UnlearnkitError(f"{flag} {key} holds a {_kind(loaded)} key; receipts are signed with Ed25519 "
                              "(openssl genpkey -algorithm ed25519 -out key.pem)")
    return loaded


def public_key(key: Any, flag: str = "public_key") -> Any:
    """An Ed25519 public key from a PEM file (SubjectPublicKeyInfo, as ``openssl pkey -pubout`` writes it)
    or a key object."""
    serialization, ed25519, _ = _crypto()
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if not isinstance(key, (str, Path)):
        raise TypeError(f"{flag} must be a path to a PEM file or an Ed25519PublicKey, got {type(key).__name__}")
    data = _read_pem(key, flag)
    if b"PRIVATE KEY-----" in data:
        raise UnlearnkitError(f"{flag} {key} holds a private key; give its public key "
                              "(openssl pkey -in key.pem -pubout -out pub.pem) and keep the private key secret")
    try:
        loaded = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise UnlearnkitError(f"{flag} {key} is not a PEM public key ({exc})".split("\n")[0]) from None
    if not isinstance(loaded, ed25519.Ed25519PublicKey):
        raise UnlearnkitError(f"{flag} {key} holds a {_kind(loaded)} key; receipts are signed with Ed25519")
    return loaded


def _kind(key: Any) -> str:
    return type(key).__name__.removeprefix("_").replace("PrivateKey", "").replace("PublicKey", "") or "another"


def fingerprint(key: Any) -> str:
    """SHA-256 (hex) of the public key's DER SubjectPublicKeyInfo, what
    ``openssl pkey -pubin -in pub.pem -outform DER | sha256sum`` prints."""
    serialization, _, _ = _crypto()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def signer_record(key: Any) -> dict[str, str]:
    """How a receipt names its signer: the algorithm, the raw public key and its fingerprint."""
    serialization, _, _ = _crypto()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"algorithm": ALGORITHM, "public_key": base64.b64encode(raw).decode(),
            "public_key_sha256": fingerprint(key)}


def sign(key: Any, message: bytes) -> str:
    return base64.b64encode(key.sign(message)).decode()


def signature_problems(receipt: Mapping[str, Any], message: bytes, trusted: Optional[Any] = None,
                       trusted_name: str = "the given public key") -> list[str]:
    """What is wrong with a receipt's signature: checked against the key the receipt names, then that
    key against ``trusted`` (a public key) when given. ``message``: the receipt's canonical bytes."""
    signer, signature = receipt.get("signer"), receipt.get("signature")
    if signer is None:
        problems = [] if signature is None else ["it carries a signature but names no signer"]
        if trusted is not None:
            problems.append(f"it is not signed, so {trusted_name} cannot vouch for it")
        return problems
    if signature is None:
        return ["it names a signer but carries no signature (was it removed?)"]
    _, ed25519, invalid = _crypto()
    named = _named_key(signer, ed25519)
    if isinstance(named, str):
        return [named]
    try:
        named.verify(_b64(signature, 64), message)
    except (invalid, ValueError):
        return [f"its signature does not match its content (signer sha256:{signer['public_key_sha256']})"]
    if trusted is not None and fingerprint(trusted) != signer["public_key_sha256"]:
        return [f"it was signed by key sha256:{signer['public_key_sha256']}, not by {trusted_name} "
                f"(sha256:{fingerprint(trusted)})"]
    return []


def _named_key(signer: Any, ed25519: Any) -> Any:
    """The public key a receipt's ``signer`` names, or a sentence saying why it cannot be used."""
    if not isinstance(signer, Mapping) or set(signer) != {"algorithm", "public_key", "public_key_sha256"}:
        return "its signer section was edited: it must hold exactly algorithm, public_key and public_key_sha256"
    if signer["algorithm"] != ALGORITHM:
        return f"its signer names algorithm {signer['algorithm']!r}; unlearnkit signs with {ALGORITHM}"
    try:
        key = ed25519.Ed25519PublicKey.from_public_bytes(_b64(signer["public_key"], 32))
    except ValueError:
        return "its signer.public_key is not a base64 Ed25519 public key"
    if fingerprint(key) != signer["public_key_sha256"]:
        return "its signer.public_key_sha256 is not the SHA-256 of signer.public_key"
    return key


def _b64(text: Any, size: int) -> bytes:
    """The bytes of canonical base64 text holding exactly ``size`` bytes (ValueError otherwise)."""
    if not isinstance(text, str):
        raise ValueError("not a string")
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None
    if len(raw) != size:
        raise ValueError(f"{len(raw)} bytes, expected {size}")
    if base64.b64encode(raw).decode() != text:  # unused low bits set: another text for the same bytes
        raise ValueError("not in canonical base64")
    return raw
