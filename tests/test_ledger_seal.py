"""Sealed receipts: the digest's bytes on a hand-computed case, every edit caught and named, Ed25519
signatures with keys as OpenSSL writes them (checked by OpenSSL too), and the errors on bad keys."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import shutil
import subprocess
import sys

import pytest
from conftest import missing_component

from unlearnkit.errors import UnlearnkitError
from unlearnkit.ledger import receipt_problems, seal, unlearn_with_receipt
from unlearnkit.ledger.digest import canonical_bytes, content


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _openssl(*args: str, **kwargs) -> subprocess.CompletedProcess:
    if shutil.which("openssl") is None:
        missing_component("openssl", "apt-get install openssl")
    return subprocess.run(["openssl", *args], check=True, capture_output=True, **kwargs)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Two Ed25519 key pairs written by OpenSSL, and an RSA key."""
    d = tmp_path_factory.mktemp("keys")
    for name in ("a", "b"):
        _openssl("genpkey", "-algorithm", "ed25519", "-out", str(d / f"{name}.pem"))
        _openssl("pkey", "-in", str(d / f"{name}.pem"), "-pubout", "-out", str(d / f"{name}.pub.pem"))
    _openssl("genpkey", "-algorithm", "rsa", "-pkeyopt", "rsa_keygen_bits:1024", "-out", str(d / "rsa.pem"))
    return d


@pytest.fixture(scope="module")
def signed(toy_random, keys):
    """A receipt of a real request, signed with key a."""
    model, data = toy_random
    t = data.task
    return unlearn_with_receipt(model, (t.forget.x, t.forget.y), (t.retain.x, t.retain.y), test=(t.test.x, t.test.y),
                                method="ga", forget_indices=t.forget.indices, lr=0.05, epochs=1,
                                sign_key=keys / "a.pem").receipt


def test_the_digest_is_sha256_of_the_rfc8785_bytes_without_digest_and_signature():
    receipt = {"b": 1.0, "a": [1, "\u00e9", 1e-7], "m": {"k": True, "j": None}, "digest": "stale", "signature": "x"}
    sealed = seal(receipt)
    # RFC 8785 by hand: keys sorted, no spaces, 1.0 -> 1, 1e-7 as ECMAScript writes it, UTF-8 as is
    raw = b'{"a":[1,"\xc3\xa9",1e-7],"b":1,"m":{"j":null,"k":true}}'
    assert canonical_bytes(content(receipt)) == raw
    assert sealed["digest"] == {"sha256": _sha(raw), "fields": {
        "a": _sha(b'[1,"\xc3\xa9",1e-7]'), "b": _sha(b"1"), "m.j": _sha(b"null"), "m.k": _sha(b"true")}}
    assert "signature" not in sealed and "signer" not in sealed
    assert receipt_problems(sealed) == []
    reordered = json.loads(json.dumps(sealed, indent=7, sort_keys=True))  # layout and key order do not count
    assert receipt_problems(reordered) == []


def _leaves(value, path=()):
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            yield from _leaves(inner, (*path, key))
    elif isinstance(value, list) and value:
        for i, inner in enumerate(value):
            yield from _leaves(inner, (*path, i))
    else:
        yield path, value


def _edited(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value[:-1] + ("0" if value[-1:] != "0" else "1")  # same length: a changed hex digit, say
    if value is None:
        return 0
    return [*value, 0] if isinstance(value, list) else {**value, "x": 0}


def _set(receipt, path, value):
    out = copy.deepcopy(receipt)
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


def test_every_edit_of_a_signed_receipt_is_caught(signed):
    assert receipt_problems(signed) == []
    leaves = list(_leaves(signed))
    assert len(leaves) > 150 and ("signature",) in dict(leaves) and ("chain", "removed_rows_sha256", 0) in dict(leaves)
    missed = [path for path, value in leaves if not receipt_problems(_set(signed, path, _edited(value)))]
    assert not missed, f"edits not caught: {missed}"
    removed = [k for k in signed if not receipt_problems({n: v for n, v in signed.items() if n != k})]
    assert not removed, f"removals not caught: {removed}"


@pytest.mark.parametrize("path, expected", [
    (("counts", "forget"), "it was modified after it was written: counts.forget changed"),
    (("metrics", "after", "test_acc"), "metrics.after changed"),
    (("seed",), "seed changed"),
    (("digest", "sha256"), "digest.sha256 was edited"),
    (("digest", "fields", "seed"), "digest.fields was edited (seed changed)"),
    (("signer", "public_key_sha256"), "signer.public_key_sha256 changed"),
    (("signature",), "its signature does not match its content"),
])
def test_the_check_names_what_no_longer_matches(signed, path, expected):
    value = signed
    for key in path:
        value = value[key]
    problems = receipt_problems(_set(signed, path, _edited(value)))
    assert any(expected in p for p in problems), problems


def test_removed_digest_signature_and_non_json_values_are_named(signed):
    no_digest = {k: v for k, v in signed.items() if k != "digest"}
    assert "carries no digest" in receipt_problems(no_digest)[0]
    unsigned = {k: v for k, v in signed.items() if k != "signature"}
    assert receipt_problems(unsigned) == ["it names a signer but carries no signature (was it removed?)"]
    nan = _set(signed, ("counts", "test"), float("nan"))  # json.loads accepts NaN; canonical JSON does not
    assert "counts.test cannot be written as canonical JSON" in receipt_problems(nan)[0]


def test_verify_exit_codes_and_lines_for_signed_and_edited_receipts(signed, keys, tmp_path, capsys):
    from unlearnkit.cli import main

    good, edited = tmp_path / "good.json", tmp_path / "edited.json"
    good.write_text(json.dumps(signed, indent=2))
    edited.write_text(json.dumps(_set(signed, ("counts", "forget"), signed["counts"]["forget"] + 1)))
    fingerprint = signed["signer"]["public_key_sha256"]
    assert main(["verify", str(good), "--public-key", str(keys / "a.pub.pem")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"OK: {good} is as written") and f"signed by key sha256:{fingerprint}, the key in" in out
    assert main(["verify", str(good)]) == 0
    assert "add --public-key to check whose key that is" in capsys.readouterr().out
    assert main(["verify", str(good), "--public-key", str(keys / "b.pub.pem")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"signed by key sha256:{fingerprint}, not by the key in {keys / 'b.pub.pem'}" in err
    assert main(["verify", str(edited)]) == 1
    assert capsys.readouterr().err == f"MISMATCH: {edited}: it was modified after it was written: counts.forget changed\n"
    unsigned = tmp_path / "unsigned.json"
    unsigned.write_text(json.dumps(seal(content(signed))))
    assert main(["verify", str(unsigned)]) == 0
    assert "not signed" in capsys.readouterr().out
    assert main(["verify", str(unsigned), "--public-key", str(keys / "a.pub.pem")]) == 1
    assert f"it is not signed, so the key in {keys / 'a.pub.pem'} cannot vouch for it" in capsys.readouterr().err
    old = tmp_path / "version-1.json"  # written before receipts were sealed
    old.write_text(json.dumps({**content(signed), "receipt_version": 1}))
    assert main(["verify", str(old)]) == 1
    assert "carries no digest, so an edit cannot be detected" in capsys.readouterr().err


def test_openssl_verifies_the_signature_and_prints_the_fingerprint(signed, keys, tmp_path):
    (tmp_path / "msg").write_bytes(canonical_bytes(content(signed)))
    (tmp_path / "sig").write_bytes(base64.b64decode(signed["signature"]))
    out = _openssl("pkeyutl", "-verify", "-pubin", "-inkey", str(keys / "a.pub.pem"), "-rawin",
                   "-in", str(tmp_path / "msg"), "-sigfile", str(tmp_path / "sig"), text=True).stdout
    assert "Signature Verified Successfully" in out
    der = _openssl("pkey", "-pubin", "-in", str(keys / "a.pub.pem"), "-outform", "DER").stdout
    assert signed["signer"]["public_key_sha256"] == _sha(der)
    assert signed["signer"]["algorithm"] == "Ed25519" and len(base64.b64decode(signed["signer"]["public_key"])) == 32


@pytest.mark.parametrize("flag, key, expected", [
    ("--sign-key", "rsa.pem", "holds a RSA key; receipts are signed with Ed25519"),
    ("--sign-key", "a.pub.pem", "holds a public key; signing needs the private key"),
    ("--sign-key", "missing.pem", "missing.pem: no such file"),
    ("--public-key", "a.pem", "holds a private key; give its public key"),
    ("--public-key", "garbage.pem", "is not a PEM public key"),
])
def test_bad_keys_fail_with_one_line(signed, keys, tmp_path, capsys, flag, key, expected):
    from unlearnkit.cli import main

    (keys / "garbage.pem").write_text("not a key\n")
    receipt = tmp_path / "r.json"
    receipt.write_text(json.dumps(signed))
    args = ["verify", str(receipt), flag, str(keys / key)] if flag == "--public-key" else \
        ["unlearn", "--model-factory", "m:f", "--weights", "w", "--forget", "f.npz", "--method", "ga",
         flag, str(keys / key), "--out", str(tmp_path / "o")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("unlearnkit: error: ") and err.count("\n") == 1 and expected in err, err
    assert not (tmp_path / "o").exists()


def test_an_encrypted_key_and_a_missing_cryptography_package_are_named(keys, tmp_path, monkeypatch):
    from unlearnkit.ledger import signing

    _openssl("pkey", "-in", str(keys / "a.pem"), "-out", str(tmp_path / "enc.pem"), "-aes256", "-passout", "pass:pw")
    with pytest.raises(UnlearnkitError, match="is encrypted; give an unencrypted PKCS#8 key"):
        signing.private_key(tmp_path / "enc.pem")
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.asymmetric", None)  # as if not installed
    with pytest.raises(UnlearnkitError, match=r"need the cryptography package: pip install 'unlearnkit\[sign\]'"):
        signing.private_key(keys / "a.pem")
    assert seal({"a": 1})["digest"]  # digests need no cryptography
