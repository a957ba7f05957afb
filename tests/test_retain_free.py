"""The retain-free input path (the samples to forget given directly, with optional reference and test
data) from the command line and from Python, and data as users save it (float64 inputs, any integer
label dtype, any byte order) converted to the model's dtype."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ledger_helpers import make_user, read_receipt, write_indices

import unlearnkit
from unlearnkit.cli import main
from unlearnkit.data import Split
from unlearnkit.errors import DataError, MissingSplitError
from unlearnkit.ledger.hashes import row_sha256s, samples_sha256


@pytest.fixture
def user(tmp_path, monkeypatch):
    u = make_user(tmp_path, monkeypatch)
    d = tmp_path
    np.savez(d / "forget.npz", x=u["x"][:10], y=u["y"][:10])
    np.savez(d / "reference.npz", x=u["x_ref"], y=u["y_ref"])
    np.savez(d / "test.npz", x=u["x_test"], y=u["y_test"])
    return u


def _free(u: dict, out: str, method: str = "dist_match_noretain", *extra: str) -> list[str]:
    d = u["dir"]
    return ["unlearn", *u["model_flags"], "--weights", str(d / "weights.safetensors"), "--forget", str(d / "forget.npz"),
            "--method", method, "--quiet", "--out", str(d / out), *extra]


def test_the_samples_alone_with_reference_and_test_data(user, capsys):
    d = user["dir"]
    args = _free(user, "o", "dist_match_noretain", "--reference", str(d / "reference.npz"), "--test", str(d / "test.npz"))
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("dist_match_noretain: forgot 10 samples in")
    assert "the method saw: forget, third_party; not: retain (not given); test (given, but dist_match_noretain " \
           "does not read it)" in out
    assert "removed by approximate methods" in out and "not checked: the number of rows the first model" in out
    r = read_receipt(d / "o")
    assert r["data"] == {"forget_given_as": "samples", "seen_by_method": ["forget", "third_party"],
                         "not_seen": {"retain": "not given", "test": "given, but dist_match_noretain does not read it"}}
    assert r["counts"] == {"forget": 10, "retain": 0, "test": 80, "third_party": 80, "parameters": r["counts"]["parameters"]}
    assert r["hashes"]["forget_indices_sha256"] is None and r["metrics"]["after"]["test_acc"] is not None
    xf = torch.from_numpy(user["x"][:10]).float()  # the float64 file, as the float32 model sees it
    assert r["hashes"]["forget_samples_sha256"] == samples_sha256(Split(xf, torch.from_numpy(user["y"][:10])))
    assert r["chain"]["removed_rows_sha256"] == sorted(row_sha256s(Split(xf, torch.from_numpy(user["y"][:10]))))
    assert {"forget", "forget_file_sha256", "reference", "reference_file_sha256", "test", "test_file_sha256"} <= set(r["inputs"])
    assert r["chain"]["training_rows"] is None and r["drift"]["approximate_share_removed"] is None
    assert main(_free(user, "o2", "ga", "--training-rows", "200")) == 0
    assert read_receipt(d / "o2")["chain"]["share_removed"] == 0.05


def test_a_method_that_needs_more_data_is_refused_with_one_line_naming_it(user, capsys):
    d = user["dir"]
    cases = {
        "ft": "method 'ft' needs the retain data, which this request does not give; pass the training data with "
              "--data and --forget-indices instead of --forget, or choose a method that runs on the data given: "
              "boundary_shrink, ga, instance_adv, instance_adv_noretain",
        "dist_match": "method 'dist_match' needs the third_party data, which this request does not give; pass "
                      "--reference FILE.npz, or choose",
    }
    for method, expected in cases.items():
        assert main(_free(user, "o", method)) == 2
        err = capsys.readouterr().err
        assert err.startswith("unlearnkit: error: " + expected) and err.count("\n") == 1, err
    assert not (d / "o").exists()
    with pytest.raises(MissingSplitError, match="method 'rl' needs the retain data, .* pass retain=..."):
        unlearnkit.unlearn(user["model"], forget=(user["x"][:10], user["y"][:10]), method="rl")


@pytest.mark.parametrize("extra, expected", [
    (["--forget-indices", "i.txt"], "--forget-indices points into --data; with --forget the samples are given directly"),
    (["--data", "data.npz"], "--forget gives the samples to forget instead of --data / --data-factory"),
    (["--audit", "3"], "--audit trains shadow models on the training data, which --forget does not give"),
    (["--training-rows", "0"], "--training-rows must be >= 1"),
])
def test_flags_of_the_two_paths_do_not_mix(user, capsys, extra, expected):
    try:
        code = main(_free(user, "o", "ga", *extra))
    except SystemExit as usage:  # argparse's own usage errors
        code = usage.code
    assert code == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1, err


def test_reference_and_test_files_go_with_forget_and_the_forget_set_must_be_given(user, capsys):
    d = user["dir"]
    base = ["unlearn", *user["model_flags"], "--weights", str(d / "weights.safetensors"), "--method", "ga",
            "--out", str(d / "o")]
    assert main([*base, "--data", str(d / "data.npz"), "--forget-indices", str(write_indices(d / "i.txt", [1])),
                 "--test", str(d / "test.npz")]) == 2
    assert "--test go with --forget; with --data put them in the .npz as" in capsys.readouterr().err
    assert main(base) == 2
    assert "give the forget set: --data (or --data-factory) with --forget-indices, or the samples" in capsys.readouterr().err
    assert main([*base, "--data", str(d / "data.npz")]) == 2
    assert "--data and --data-factory need --forget-indices" in capsys.readouterr().err
    np.savez(d / "bad.npz", x=user["x"][:3], y=user["y"][:3], x_test=user["x"][:3])
    assert main([*base, "--forget", str(d / "bad.npz")]) == 2
    assert "--forget " + str(d / "bad.npz") + " must hold exactly the arrays 'x'" in capsys.readouterr().err


def test_a_retain_free_chain_refuses_a_sample_already_removed(user, capsys):
    d = user["dir"]
    assert main(_free(user, "r1", "ga", "--set", "lr=0.05")) == 0
    np.savez(d / "forget-2.npz", x=user["x"][8:14], y=user["y"][8:14])  # rows 8, 9 were in the first request
    args = ["unlearn", *user["model_flags"], "--weights", str(d / "r1" / "model.safetensors"),
            "--forget", str(d / "forget-2.npz"), "--method", "ga", "--previous", str(d / "r1" / "receipt.json"),
            "--out", str(d / "r2")]
    assert main(args) == 2
    assert "forget samples at positions 0, 1 were already removed by an earlier request of the chain" in \
        capsys.readouterr().err
    np.savez(d / "forget-2.npz", x=user["x"][10:14], y=user["y"][10:14])
    assert main(args) == 0
    assert read_receipt(d / "r2")["chain"]["rows_removed"] == 14


def test_python_retain_free_requests_and_their_receipt(user):
    model, x, y = user["model"], user["x"], user["y"]
    forget, reference = (x[:10], y[:10]), (user["x_ref"], user["y_ref"])
    plain = unlearnkit.unlearn(model, forget, third_party=reference, method="dist_match_noretain")
    result = unlearnkit.unlearn_with_receipt(model, forget, third_party=reference, method="dist_match_noretain")
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), result.model.state_dict().values()))
    assert result.receipt["data"]["seen_by_method"] == ["forget", "third_party"]
    assert result.receipt["counts"]["retain"] == 0
    withheld = unlearnkit.unlearn_with_receipt(model, forget, (x[10:], y[10:]), third_party=reference,
                                               method="dist_match_noretain").receipt["data"]["not_seen"]
    assert withheld["retain"] == "withheld: dist_match_noretain runs without retain data"


@pytest.mark.parametrize("labels", ["uint8", "int16", "uint32", "int64", ">i4", "float64"])
def test_inputs_of_any_float_dtype_and_labels_of_any_integer_dtype(user, labels, tmp_path):
    d = user["dir"]
    for dtype in ("float64", "float16", ">f8"):
        np.savez(tmp_path / "f.npz", x=user["x"][:10].astype(dtype), y=user["y"][:10].astype(labels))
        args = ["unlearn", *user["model_flags"], "--weights", str(d / "weights.safetensors"), "--forget",
                str(tmp_path / "f.npz"), "--method", "ga", "--quiet", "--out", str(tmp_path / f"o-{dtype}-{labels}")]
        assert main(args) == 0, (dtype, labels)
        r = read_receipt(tmp_path / f"o-{dtype}-{labels}")
        xf = torch.from_numpy(user["x"][:10].astype(dtype).astype("float32"))
        assert r["hashes"]["forget_samples_sha256"] == samples_sha256(Split(xf, torch.from_numpy(user["y"][:10])))


@pytest.mark.parametrize("y, expected", [
    (np.array([0.0, 1.5]), "y must hold whole-number class labels, found 1.5"),
    (np.array([True, False]), "y must be a 1-D array of integer labels, got dtype bool"),
    (np.array([[0], [1]]), "y must be a 1-D array of integer labels"),
])
def test_labels_that_are_not_class_indices_are_refused(user, capsys, y, expected):
    d = user["dir"]
    np.savez(d / "forget.npz", x=user["x"][:2], y=y)
    assert main(_free(user, "o", "ga")) == 2
    assert expected in capsys.readouterr().err


def test_python_data_in_another_dtype_than_the_model(user):
    x, y = user["x"][:40], user["y"][:40].astype(np.uint16)
    unlearned = unlearnkit.unlearn(user["model"], (x[:10], y[:10]), (x[10:], y[10:]), method="ft", epochs=1)
    assert unlearned[0].weight.dtype == torch.float32
    double = user["factory"]().double()
    unlearnkit.train_model(double, unlearnkit.as_split((x.astype(np.float32), y)), unlearnkit.TrainRecipe(epochs=1))
    result = unlearnkit.unlearn_with_receipt(double, (x[:10].astype(np.float32), y[:10]), method="ga")
    assert result.model[0].weight.dtype == torch.float64
    huge = x[:10].copy()
    huge[3, 2] = 1e300  # finite in float64, infinite as float32
    with pytest.raises(DataError, match=r"the forget data \(x\) converted to the model's torch.float32 holds 1 NaN"):
        unlearnkit.unlearn(user["model"], (huge, y[:10]), method="ga")
