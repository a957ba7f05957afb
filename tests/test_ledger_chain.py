"""Chains of receipts: a two-request chain from Python and from the command line verifies; links that
do not follow (other weights, a row already removed, retain holding one, an edited previous receipt)
are refused before anything is written; `verify --chain` finds a broken link."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from ledger_helpers import TRAIN_FLAGS, make_user, read_receipt, write_indices

from unlearnkit.cli import main
from unlearnkit.data import Split
from unlearnkit.errors import DataError
from unlearnkit.ledger import ChainError, chain_problems, receipt_problems, row_sha256s, seal, unlearn_with_receipt
from unlearnkit.ledger.digest import content


def _pair(split: Split) -> tuple:
    return split.x, split.y


@pytest.fixture(scope="module")
def two_links(toy_random):
    """Request 1 forgets half the toy forget set, request 2 the other half, from request 1's output."""
    model, data = toy_random
    forget, retain = data.task.forget, data.task.retain
    first_half, second_half = forget.subset(range(12)), forget.subset(range(12, len(forget)))
    test = _pair(data.task.test)
    first = unlearn_with_receipt(model, _pair(first_half), _pair(Split.concat(retain, second_half)), test=test,
                                 method="ga", lr=0.05, epochs=1)
    second = unlearn_with_receipt(first.model, _pair(second_half), _pair(retain), test=test, method="ga",
                                  previous=first.receipt, lr=0.05, epochs=1)
    return model, data, first, second, first_half, second_half


def test_a_python_chain_records_its_links_and_verifies(two_links):
    model, data, first, second, first_half, second_half = two_links
    c1, c2 = first.receipt["chain"], second.receipt["chain"]
    n_train = len(data.task.forget) + len(data.task.retain)
    assert c1 == {"requests": 1, "previous_digest": None, "rows_removed": 12, "training_rows": n_train,
                  "share_removed": 12 / n_train, "removed_rows_sha256": sorted(row_sha256s(first_half))}
    assert c2["requests"] == 2 and c2["previous_digest"] == first.receipt["digest"]["sha256"]
    assert c2["rows_removed"] == len(data.task.forget) and c2["training_rows"] == n_train
    assert c2["removed_rows_sha256"] == sorted(row_sha256s(first_half) + row_sha256s(second_half))
    assert second.receipt["hashes"]["input_weights_sha256"] == first.receipt["hashes"]["output_weights_sha256"]
    drift = second.receipt["drift"]
    assert drift["approximate_rows_removed"] == 24 and drift["baseline"]["weights_sha256"] == \
        first.receipt["hashes"]["input_weights_sha256"]
    links = [("r1", first.receipt), ("r2", second.receipt)]
    assert chain_problems(links) == [] and all(receipt_problems(r) == [] for _, r in links)
    assert "is request 2 of its chain but number 1" in chain_problems(links[::-1])[0]
    assert "is request 2 of its chain but number 1" in chain_problems(links[1:])[0]


def test_an_edited_link_breaks_the_chain_even_when_its_digest_is_recomputed(two_links):
    _, _, first, second, _, _ = two_links
    forged = content(first.receipt)
    forged["counts"] = {**forged["counts"], "forget": 11}
    forged = seal(forged)  # whoever edits can recompute the digest: the next link still holds the old one
    assert receipt_problems(forged) == []
    problems = chain_problems([("r1", forged), ("r2", second.receipt)])
    assert any(p.startswith(f"r2 records previous digest {first.receipt['digest']['sha256']}, but r1's digest is")
               for p in problems), problems
    drifted = content(second.receipt)
    drifted["drift"] = {**drifted["drift"], "retrain_recommended": True}
    assert chain_problems([("r1", first.receipt), ("r2", seal(drifted))]) == \
        ["r2: its drift section does not follow from the chain"]


def test_links_that_do_not_follow_are_refused(two_links):
    model, data, first, second, first_half, second_half = two_links
    retain = _pair(data.task.retain)
    with pytest.raises(ChainError, match="the model is not the output of the previous receipt"):
        unlearn_with_receipt(model, _pair(second_half), retain, method="ga", previous=first.receipt)
    with pytest.raises(ChainError, match=r"forget samples at positions 0, 1, 2, .* and 4 more were already removed"):
        unlearn_with_receipt(second.model, _pair(first_half), retain, method="ga", previous=second.receipt)
    with pytest.raises(ChainError, match="the retain data hold 12 rows that earlier requests of the chain removed"):
        unlearn_with_receipt(first.model, _pair(second_half), _pair(Split.concat(data.task.retain, first_half)),
                             method="ga", previous=first.receipt)
    n_train = first.receipt["chain"]["training_rows"]
    with pytest.raises(ChainError, match=f"the chain's first model was trained on {n_train} rows .*, not 500"):
        unlearn_with_receipt(first.model, _pair(second_half), retain, method="ga", previous=first.receipt,
                             training_rows=500)
    with pytest.raises(ChainError, match="training_rows=5 is fewer than the 12 rows the chain has removed"):
        unlearn_with_receipt(model, _pair(first_half), method="ga", training_rows=5)
    with pytest.raises(DataError, match="training_rows must be a positive integer, got 0"):
        unlearn_with_receipt(model, _pair(first_half), method="ga", training_rows=0)
    edited = {**first.receipt, "seed": 1}
    with pytest.raises(ChainError, match="the previous receipt fails its own check: .*seed changed"):
        unlearn_with_receipt(first.model, _pair(second_half), retain, method="ga", previous=edited)


@pytest.fixture
def user(tmp_path, monkeypatch):
    u = make_user(tmp_path, monkeypatch)
    key = ed25519.Ed25519PrivateKey.generate()  # the PEM PKCS#8 form `openssl genpkey` writes
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    (tmp_path / "pub.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return u


def _unlearn(u: dict, weights: str, indices: list[int], out: str, *extra: str, data: str = "data.npz") -> list[str]:
    d = u["dir"]
    return ["unlearn", *u["model_flags"], "--weights", str(d / weights), "--data", str(d / data), "--forget-indices",
            str(write_indices(d / f"{out}.txt", indices)), "--method", "ga", "--set", "lr=0.05", "--set", "epochs=2",
            "--sign-key", str(d / "key.pem"), "--quiet", "--out", str(d / out), *extra]


def test_a_two_request_chain_from_the_command_line(user, capsys):
    d = user["dir"]
    assert np.load(d / "data.npz")["x"].dtype == np.float64  # saved the usual NumPy way
    assert main(_unlearn(user, "weights.safetensors", list(range(0, 200, 20)), "r1")) == 0
    out = capsys.readouterr().out
    assert "chain: request 1; 10 rows removed in all, 5.0% of 200 training rows" in out and "signed by key" in out
    assert main(_unlearn(user, "r1/model.safetensors", list(range(5, 200, 20)), "r2", "--previous",
                         str(d / "r1" / "receipt.json"))) == 0
    out = capsys.readouterr().out
    assert f"chain: request 2 (follows {d / 'r1' / 'receipt.json'}); 20 rows removed in all, 10.0% of 200" in out
    assert "10 training rows removed earlier left out of retain" in out
    r1, r2 = read_receipt(d / "r1"), read_receipt(d / "r2")
    assert r2["counts"]["retain"] == 180 and r2["inputs"]["training_rows_removed_earlier"] == 10
    assert r2["chain"]["previous_digest"] == r1["digest"]["sha256"] and r2["chain"]["rows_removed"] == 20
    chain = ["verify", "--chain", str(d / "r1" / "receipt.json"), str(d / "r2" / "receipt.json")]
    assert main([*chain, "--weights", str(d / "r2" / "model.safetensors"), "--public-key", str(d / "pub.pem")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ")[:3] for line in lines[:2]] == [["OK:", "request", "1"], ["OK:", "request", "2"]]
    assert lines[2].startswith("OK: the chain of 2 requests holds together; 20 rows removed (10.0% of 200 training rows)")
    assert lines[3].startswith(f"OK: {d / 'r2' / 'model.safetensors'} holds the weights")
    assert main([*chain, "--weights", str(d / "r1" / "model.safetensors")]) == 1
    assert "is not the unlearned model" in capsys.readouterr().err
    assert main(["verify", "--chain", str(d / "r2" / "receipt.json"), str(d / "r1" / "receipt.json")]) == 1
    assert "is request 2 of its chain but number 1 in the list" in capsys.readouterr().err
    assert main([*chain[:2], str(d / "absent.json")]) == 2
    assert main(["verify", str(d / "r1" / "receipt.json"), "--chain", str(d / "r2" / "receipt.json")]) == 2
    assert "give one receipt, or --chain" in capsys.readouterr().err


@pytest.mark.parametrize("case, expected", [
    ("weights", "--weights {d}/weights.safetensors is not the output of {d}/r1/receipt.json (weights sha256 "),
    ("repeat", "--forget-indices {d}/r2.txt: rows 0, 40 were already removed by an earlier request of the chain"),
    ("edited", "{d}/r1/receipt.json fails its own check: it was modified after it was written: counts.forget changed"),
    ("not_a_receipt", "{d}/data.npz is not JSON"),
])
def test_a_link_that_does_not_follow_is_refused_with_one_line_and_writes_nothing(user, capsys, case, expected):
    d = user["dir"]
    assert main(_unlearn(user, "weights.safetensors", list(range(0, 200, 20)), "r1")) == 0
    previous = d / "r1" / "receipt.json"
    weights, indices = "r1/model.safetensors", [0, 3, 40]
    if case == "weights":
        weights = "weights.safetensors"
    elif case == "edited":
        receipt = json.loads(previous.read_text())
        receipt["counts"]["forget"] = 9
        previous.write_text(json.dumps(receipt, indent=2))
    elif case == "not_a_receipt":
        previous = d / "data.npz"
    elif case != "repeat":
        raise AssertionError(case)
    capsys.readouterr()
    assert main(_unlearn(user, weights, indices, "r2", "--previous", str(previous))) == 2
    err = capsys.readouterr().err
    assert err.startswith("unlearnkit: error: ") and err.count("\n") == 1, err
    assert expected.format(d=d) in err, err
    assert not (d / "r2").exists()


def test_a_chain_goes_on_when_the_removed_rows_are_gone_from_the_data(user, capsys):
    """Rows are matched by content: after request 1 the user deletes its rows from the data file, and
    request 2's indices point into what remains."""
    d = user["dir"]
    removed = list(range(0, 200, 20))
    assert main(_unlearn(user, "weights.safetensors", removed, "r1")) == 0
    keep = np.setdiff1d(np.arange(200), removed)
    arrays = dict(np.load(d / "data.npz"))
    np.savez(d / "data-2.npz", **{**arrays, "x": arrays["x"][keep], "y": arrays["y"][keep]})
    assert main(_unlearn(user, "r1/model.safetensors", [1, 2, 3], "r2", "--previous", str(d / "r1" / "receipt.json"),
                         data="data-2.npz")) == 0
    r2 = read_receipt(d / "r2")
    assert r2["counts"]["retain"] == 187 and "training_rows_removed_earlier" not in r2["inputs"]
    assert r2["chain"]["rows_removed"] == 13 and r2["chain"]["training_rows"] == 200
    assert main(_unlearn(user, "r2/model.safetensors", [0], "r3", "--previous", str(d / "r2" / "receipt.json"))) == 2
    assert "rows 0 were already removed" in capsys.readouterr().err  # the original file still holds row 0


def test_a_retrain_request_restarts_the_drift_and_a_threshold_set_on_the_command_line(user, capsys):
    d = user["dir"]
    assert main(_unlearn(user, "weights.safetensors", list(range(0, 200, 10)), "r1", "--retrain-threshold",
                         "removed_share=0.08", "--retrain-threshold", "forget_gap=none")) == 0
    out = capsys.readouterr().out
    assert "retrain recommended: YES (1 threshold crossed)" in out and "CROSSED" in out
    r1 = read_receipt(d / "r1")
    assert r1["drift"]["reasons"] == ["10.0% of the training rows were removed by approximate methods since the last "
                                      "exact model (threshold 8%)"]
    retrain = _unlearn(user, "r1/model.safetensors", [1, 2], "r2", "--previous", str(d / "r1" / "receipt.json"),
                       *TRAIN_FLAGS)
    retrain[retrain.index("ga")] = "retrain"
    assert main([a for a in retrain if a not in ("--set", "lr=0.05", "epochs=2")]) == 0
    r2 = read_receipt(d / "r2")
    assert r2["drift"]["retrain_recommended"] is False and r2["drift"]["thresholds"]["removed_share"] == 0.08
    assert r2["drift"]["baseline"]["model"] == "the model retrained at request 2"
    assert r2["counts"]["retain"] == 178 and r2["data"]["seen_by_method"] == ["forget", "retain"]
    capsys.readouterr()
    assert main(["verify", "--chain", str(d / "r1" / "receipt.json"), str(d / "r2" / "receipt.json")]) == 0
    assert "retrain recommended: no" in capsys.readouterr().out
