"""A user's own model and files, as the ledger tests need them: a factory module on sys.path, weights
trained on the data, and data saved the usual NumPy way (float64 inputs, int32 labels)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from unlearnkit.data import Split
from unlearnkit.training import TrainRecipe, train_model

FACTORY = '''
from torch import nn

def build(in_features=12, classes=3, hidden=32):
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, classes))
'''
RECIPE = TrainRecipe("adam", lr=1e-2, momentum=0.0, weight_decay=0.0, epochs=30, batch_size=32, schedule="constant")
TRAIN_FLAGS = ["--train", "optimizer=adam", "--train", "lr=0.01", "--train", "momentum=0", "--train", "weight_decay=0",
               "--train", "epochs=30", "--train", "batch_size=32", "--train", "schedule=constant"]


def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A noisy 3-class problem: float64 inputs and int32 labels, as NumPy makes them."""
    y = rng.integers(0, 3, n).astype(np.int32)
    x = rng.normal(size=(n, 12))
    x[np.arange(n), y] += 1.5
    return x, y


def make_user(folder: Path, monkeypatch) -> dict:
    """Write the factory, weights and data files into ``folder``; return what the tests need."""
    module = f"ledgermodels_{uuid.uuid4().hex[:8]}"
    (folder / f"{module}.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(folder))
    factory = __import__(module).build
    rng = np.random.default_rng(0)
    x, y = draw(rng, 200)
    x_test, y_test = draw(rng, 80)
    x_ref, y_ref = draw(rng, 80)
    np.savez(folder / "data.npz", x=x, y=y, x_test=x_test, y_test=y_test, x_third_party=x_ref, y_third_party=y_ref)
    torch.manual_seed(0)
    model = train_model(factory(), Split(torch.from_numpy(x).float(), torch.from_numpy(y)), RECIPE)
    save_file(model.state_dict(), folder / "weights.safetensors")
    return {"dir": folder, "module": module, "factory": factory, "model": model, "x": x, "y": y,
            "x_test": x_test, "y_test": y_test, "x_ref": x_ref, "y_ref": y_ref,
            "model_flags": ["--model-factory", f"{module}:build"]}


def write_indices(path: Path, indices) -> Path:
    path.write_text("\n".join(map(str, indices)) + "\n")
    return path


def read_receipt(folder: Path) -> dict:
    return json.loads((folder / "receipt.json").read_text())
