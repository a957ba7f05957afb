"""The contract every bench backend honours: the same spec gives the same rows, whichever backend
and however many workers computed them (only timings and the host may differ), and the store
records one line per cell either way."""

from __future__ import annotations

import pytest

from unlearnkit.bench.pipeline import ModelCache
from unlearnkit.bench.grid import run_bench
from unlearnkit.bench.pipeline import BACKENDS
from unlearnkit.bench.grid import parse_spec
from unlearnkit.bench.grid import ResultStore

SPEC = {
    "name": "contract",
    "seeds": [0, 1],
    "datasets": [{"name": "synthetic", "options": {"n_samples": 240}, "models": ["mlp"], "recipe": {"epochs": 3}}],
    "scenarios": [{"name": "random", "options": {"forget_size": 0.1}}],
    "methods": ["original", "retrain", "ga", "ssd"],
    "method_params": {"ga": {"epochs": 2}},
}
TIMING = {"time_s"}


def _rows(tmp_path, name: str, backend: str, workers: int) -> dict[str, list[dict]]:
    """Cell key -> rows without timings, from a fresh store and a fresh model cache."""
    store = ResultStore(tmp_path / f"{name}.sqlite")
    try:
        summary = run_bench(parse_spec(SPEC), store, cache=ModelCache(tmp_path / f"{name}-cache"),
                            workers=workers, backend=backend, progress=False)
        assert summary.errors == 0 and summary.skipped == 0 and summary.ran == 8
        runs = store.runs()
        assert len(runs) == 8 and all(r["backend"] == backend for r in runs)
        return {r["cell_key"]: [{k: v for k, v in row.items() if k not in TIMING} for row in r["rows"]]
                for r in runs}
    finally:
        store.close()


@pytest.fixture(scope="module")
def in_process(tmp_path_factory):
    """The reference: the local backend with one worker computes every cell in this process."""
    return _rows(tmp_path_factory.mktemp("ref"), "ref", "local", 1)


@pytest.mark.parametrize("backend, workers", [(b, 2) for b in BACKENDS])
def test_backend_gives_the_same_rows_as_in_process(backend, workers, in_process, tmp_path):
    if backend == "ray":
        pytest.importorskip("ray")
    rows = _rows(tmp_path, backend, backend, workers)
    assert rows.keys() == in_process.keys()
    for key, expected in in_process.items():
        assert rows[key] == expected, f"{backend} x{workers}: cell {key} differs"
