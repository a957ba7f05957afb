"""`unlearnkit unlearn` / `unlearnkit verify` on a user's own model, data and forget set, end to end."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from unlearnkit.cli import main
from unlearnkit.ledger.hashes import samples_sha256, weights_sha256
from unlearnkit.data import Split
from unlearnkit.training import TrainRecipe, train_model

FACTORY = '''
from torch import nn

def build(in_features=12, classes=3, hidden=32):
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, classes))

def not_a_model():
    return "a string"

def data(n=150):
    import torch
    from torch.utils.data import TensorDataset
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 12, generator=g)
    return {"train": TensorDataset(x, (x[:, 0] > 0).long()), "test": TensorDataset(x[:30], (x[:30, 0] > 0).long())}
'''
# trains the factory's MLP to 100% training accuracy (it memorises the noisy training set)
RECIPE = TrainRecipe("adam", lr=1e-2, momentum=0.0, weight_decay=0.0, epochs=30, batch_size=32, schedule="constant")
TRAIN_FLAGS = ["--train", "optimizer=adam", "--train", "lr=0.01", "--train", "momentum=0", "--train", "weight_decay=0",
               "--train", "epochs=30", "--train", "batch_size=32", "--train", "schedule=constant"]


def _data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 12)).astype(np.float32)
    x[np.arange(n), y] += 1.5
    return x, y


@pytest.fixture
def user(tmp_path, monkeypatch):
    """A factory module on sys.path, trained weights, an npz and an index file, as a user would have."""
    module = f"usermodels_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    factory = __import__(module).build
    rng = np.random.default_rng(0)
    x, y = _data(rng, 200)
    x_test, y_test = _data(rng, 80)
    np.savez(tmp_path / "data.npz", x=x, y=y, x_test=x_test, y_test=y_test)
    torch.manual_seed(0)
    model = train_model(factory(), Split(torch.from_numpy(x), torch.from_numpy(y)), RECIPE)
    save_file(model.state_dict(), tmp_path / "weights.safetensors")
    forget = [37, 3, 150, 8, 99, 120, 64, 11, 190, 45]
    (tmp_path / "forget.txt").write_text("# rows to delete\n" + "\n".join(map(str, forget)) + "\n")
    base = ["unlearn", "--model-factory", f"{module}:build", "--weights", str(tmp_path / "weights.safetensors"),
            "--data", str(tmp_path / "data.npz"), "--forget-indices", str(tmp_path / "forget.txt"), "--quiet"]
    return {"dir": tmp_path, "module": module, "factory": factory, "model": model, "x": x, "y": y,
            "forget": forget, "base": base}


def test_unlearn_writes_a_model_the_factory_loads_and_a_receipt_verify_checks(user, capsys):
    d = user["dir"]
    out = d / "out"
    rc = main([*user["base"], "--method", "neggrad_plus", "--set", "epochs=3", "--seed", "4", "--device", "cpu",
               "--audit", "3", *TRAIN_FLAGS, "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    unlearned = user["factory"]()
    state = load_file(out / "model.safetensors")
    assert set(state) == set(user["model"].state_dict())
    unlearned.load_state_dict(state)  # strict: the factory's model takes the output as it is
    receipt = json.loads((out / "receipt.json").read_text())
    hashes = receipt["hashes"]
    assert hashes["output_weights_sha256"] == weights_sha256(unlearned) != weights_sha256(user["model"])
    assert hashes["input_weights_sha256"] == weights_sha256(load_file(d / "weights.safetensors"))
    forget = sorted(user["forget"])
    assert hashes["forget_indices_sha256"] == hashlib.sha256(np.array(forget, "<i8").tobytes()).hexdigest()
    xf, yf = torch.from_numpy(user["x"][forget]), torch.from_numpy(user["y"][forget])
    assert hashes["forget_samples_sha256"] == samples_sha256(Split(xf, yf))
    assert receipt["inputs"]["weights_file_sha256"] == hashlib.sha256((d / "weights.safetensors").read_bytes()).hexdigest()
    assert receipt["outputs"]["model_file_sha256"] == hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
    assert receipt["method"]["name"] == "neggrad_plus" and receipt["method"]["hyperparameters"]["epochs"] == 3
    assert receipt["method"]["hyperparameters"]["lr"] > 0  # defaults resolved, not only what was set
    assert (receipt["seed"], receipt["device"], receipt["threads"]) == (4, "cpu", 1)
    assert receipt["counts"] == {"forget": 10, "retain": 190, "test": 80, "third_party": 0,
                                 "parameters": sum(p.numel() for p in unlearned.parameters())}
    assert set(receipt["software"]) == {"unlearnkit", "torch", "numpy", "python"}
    for side in ("before", "after"):
        assert {"forget_acc", "retain_acc", "test_acc", "mia_efficacy"} <= set(receipt["metrics"][side])
    assert receipt["metrics"]["before"]["forget_acc"] == 1.0 and receipt["no_op"] is False
    assert receipt["forget_change"]["forget_loss_after"] > receipt["forget_change"]["forget_loss_before"]
    audit = receipt["audit"]
    assert audit["shadow_models"] == 3 and 0.0 <= audit["ulira_acc"] <= 1.0
    assert {e["index"] for e in audit["most_exposed"]} <= set(forget)
    assert all(receipt["wall_time_s"][k] > 0 for k in ("unlearn", "evaluation", "audit", "total"))

    again = d / "again"  # the same request (without the audit) gives the same weights: the receipt is reproducible
    assert main([*user["base"], "--method", "neggrad_plus", "--set", "epochs=3", "--seed", "4", "--device", "cpu",
                 "--out", str(again)]) == 0
    assert json.loads((again / "receipt.json").read_text())["hashes"] == hashes
    capsys.readouterr()
    assert main(["verify", str(out / "receipt.json"), "--weights", str(out / "model.safetensors")]) == 0
    assert capsys.readouterr().out.startswith("OK:")
    assert main(["verify", str(out / "receipt.json"), "--weights", str(d / "weights.safetensors")]) == 1
    assert "BEFORE unlearning" in capsys.readouterr().err
    state["0.weight"][0, 0] += 1e-3  # tampered: one weight nudged
    save_file(state, d / "tampered.safetensors")
    assert main(["verify", str(out / "receipt.json"), "--weights", str(d / "tampered.safetensors")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("MISMATCH:") and err.count("\n") == 1
    blob = bytearray((out / "model.safetensors").read_bytes())
    blob[-1] ^= 0xFF  # the output file edited in place: its stored checksum catches it
    (d / "damaged.safetensors").write_bytes(bytes(blob))
    assert main(["verify", str(out / "receipt.json"), "--weights", str(d / "damaged.safetensors")]) == 2
    assert "is damaged" in capsys.readouterr().err


def test_data_factory_npy_indices_and_an_unchanged_model_flagged_as_no_op(user, tmp_path, capsys):
    np.save(tmp_path / "forget.npy", np.array([5, 1, 2]))
    # the data factory's data differ from what the weights were trained on; only the plumbing matters here
    args = ["unlearn", "--model-factory", f"{user['module']}:build", "--weights", str(tmp_path / "weights.safetensors"),
            "--data-factory", f"{user['module']}:data", "--data-arg", "n=40", "--forget-indices",
            str(tmp_path / "forget.npy"), "--method", "ga", "--set", "lr=1e-9", "--set", "epochs=1", "--quiet",
            "--out", str(tmp_path / "o")]
    assert main(args) == 0
    receipt = json.loads((tmp_path / "o" / "receipt.json").read_text())
    assert receipt["counts"]["forget"] == 3 and receipt["counts"]["retain"] == 37 and receipt["counts"]["test"] == 30
    assert receipt["inputs"]["data_args"] == {"n": 40}
    assert receipt["no_op"] is True and receipt["forget_change"]["forget_predictions_changed"] == 0
    assert "no-op" in capsys.readouterr().out


def _bad(tmp_path: Path, user: dict, name: str) -> list[str]:
    """Arguments for one bad input (files written into tmp_path)."""
    base, m = list(user["base"]), user["module"]
    method = ["--method", "ft", "--out", str(tmp_path / f"out-{name}")]

    def replace(flag: str, value: str) -> list[str]:
        i = base.index(flag)
        return base[:i + 1] + [value] + base[i + 2:] + method

    def npz(**arrays) -> list[str]:
        np.savez(tmp_path / f"{name}.npz", **arrays)
        return replace("--data", str(tmp_path / f"{name}.npz"))

    def indices(text: str) -> list[str]:
        (tmp_path / f"{name}.txt").write_text(text)
        return replace("--forget-indices", str(tmp_path / f"{name}.txt"))

    x, y = user["x"], user["y"]
    cases = {
        "factory_module": lambda: replace("--model-factory", "no_such_module_xyz:build"),
        "factory_attr": lambda: replace("--model-factory", f"{m}:nope"),
        "factory_spec": lambda: replace("--model-factory", f"{m}.build"),
        "factory_type": lambda: replace("--model-factory", f"{m}:not_a_model"),
        "factory_args": lambda: base + ["--model-arg", "depth=3"] + method,
        "weights_pickle": lambda: (torch.save(user["model"].state_dict(), tmp_path / "w.pt"),
                                   replace("--weights", str(tmp_path / "w.pt")))[1],
        "weights_shape": lambda: base + ["--model-arg", "hidden=16"] + method,
        "weights_keys": lambda: (save_file({"w": torch.zeros(2)}, tmp_path / "k.safetensors"),
                                 replace("--weights", str(tmp_path / "k.safetensors")))[1],
        "weights_missing": lambda: replace("--weights", str(tmp_path / "absent.safetensors")),
        "index_range": lambda: indices("1\n2\n200\n"),
        "index_negative": lambda: indices("-1\n"),
        "index_duplicate": lambda: indices("4\n7\n4\n"),
        "index_text": lambda: indices("4\nseven\n"),
        "index_empty": lambda: indices("# nothing\n"),
        "npz_lengths": lambda: npz(x=x, y=y[:-1]),
        "npz_test_lengths": lambda: npz(x=x, y=y, x_test=x[:5], y_test=y[:4]),
        "npz_half_pair": lambda: npz(x=x, y=y, x_test=x[:5]),
        "npz_unknown": lambda: npz(x=x, y=y, labels=y),
        "npz_no_y": lambda: npz(x=x),
        "npz_labels": lambda: npz(x=x, y=y + 5),
        "npz_not_npz": lambda: ((tmp_path / "bad.npz").write_text("hello"), replace("--data", str(tmp_path / "bad.npz")))[1],
        "method": lambda: base + ["--method", "forgetful", "--out", str(tmp_path / "o")],
        "hyperparameter": lambda: base + ["--method", "ft", "--set", "lr=fast", "--out", str(tmp_path / "o")],
        "audit_k": lambda: base + ["--audit", "2"] + method,
        "train_recipe": lambda: base + ["--train", "optimizer=lbfgs"] + method,
        "data_arg": lambda: base + ["--data-arg", "n=3"] + method,
        "threads": lambda: base + ["--threads", "0"] + method,
    }
    return cases[name]()


BAD = {
    "factory_module": "cannot import 'no_such_module_xyz'", "factory_attr": "has no attribute 'nope'",
    "factory_spec": "must look like package.module:function", "factory_type": "returned a str, not a torch.nn.Module",
    "factory_args": "unexpected keyword argument 'depth'", "weights_pickle": "never unpickles",
    "weights_shape": "shape mismatch", "weights_keys": "missing keys", "weights_missing": "no such file",
    "index_range": "line 3: index 200 is out of range", "index_negative": "index -1 is out of range",
    "index_duplicate": "index 4 appears 2 times", "index_text": "line 2: 'seven' is not an integer",
    "index_empty": "holds no index", "npz_lengths": "x has 200 rows but y has 199",
    "npz_test_lengths": "x_test has 5 rows but y_test has 4", "npz_half_pair": "has x_test but not y_test",
    "npz_unknown": "unknown arrays ['labels']", "npz_no_y": "has x but not y", "npz_labels": "labels must be in [0, 2]",
    "npz_not_npz": "is not an .npz file", "method": "unknown method 'forgetful'",
    "hyperparameter": "lr must be of type float", "audit_k": "K >= 3", "train_recipe": "--train: optimizer 'lbfgs'",
    "data_arg": "--data-arg applies to --data-factory only", "threads": "--threads must be >= 1",
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_inputs_fail_with_one_line_naming_the_problem(user, tmp_path, capsys, name):
    capsys.readouterr()
    assert main(_bad(tmp_path, user, name)) == 2
    err = capsys.readouterr().err
    assert err.startswith("unlearnkit: error: ") and err.count("\n") == 1, err
    assert BAD[name] in err, err


def test_existing_output_is_never_overwritten_and_verify_rejects_non_receipts(user, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "receipt.json").write_text("{}")
    assert main([*user["base"], "--method", "ft", "--out", str(out)]) == 2
    assert "already holds receipt.json" in capsys.readouterr().err
    weights = str(tmp_path / "weights.safetensors")
    assert main(["verify", str(out / "receipt.json"), "--weights", weights]) == 2
    assert "not an unlearnkit deletion receipt" in capsys.readouterr().err
    (out / "r.json").write_text("not json")
    assert main(["verify", str(out / "r.json"), "--weights", weights]) == 2
    assert "is not JSON" in capsys.readouterr().err


def test_unlearn_writes_its_comparison_page_unless_told_not_to(user, capsys):
    from unlearnkit.bench.reports.compare import load_comparison

    out = user["dir"] / "cmp"
    assert main([*user["base"], "--method", "neggrad_plus", "--set", "epochs=3", "--out", str(out)]) == 0
    assert f"comparison page: {out / 'compare.html'}" in capsys.readouterr().out
    data = load_comparison(out, 0, ["neggrad_plus"])
    assert data["methods"] == ["neggrad_plus"] and set(data["views"]) == {"original", "neggrad_plus"}
    view = data["views"]["neggrad_plus"]
    assert len(view["membership"]) == 10 and sum(map(sum, view["forget_matrix"])) == 10
    plain = user["dir"] / "plain"
    assert main([*user["base"], "--method", "neggrad_plus", "--set", "epochs=3", "--no-compare", "--out", str(plain)]) == 0
    assert (plain / "receipt.json").exists() and not (plain / "compare.html").exists()
