"""``run_experiment(workers=...)``: cells computed in worker processes give the rows, files and
resume behaviour of a run in one process."""

import json

import pytest

from unlearnkit.bench.pipeline import ModelCache
from unlearnkit.bench.pipeline import ExperimentConfig, run_experiment
from unlearnkit.bench.pipeline.runtime import cpu_budget
from unlearnkit.errors import NoOpWarning, UnlearnkitError

pytestmark = pytest.mark.skipif(cpu_budget() < 2, reason="two worker processes need two cores")

def _config(methods=("original", "retrain", "ga"), seeds=(0, 1)):
    return ExperimentConfig(dataset="synthetic", model="mlp", scenario="random", methods=list(methods),
                            seeds=list(seeds), recipe={"epochs": 3}, scenario_options={"forget_size": 0.1},
                            method_params={m: {"epochs": 1} for m in ("ft", "ga") if m in methods})


def _comparable(rows):
    """The rows without what depends on the clock (times, and speedups made of them)."""
    return [{k: v for k, v in r.items() if "time" not in k and k != "speedup"} for r in rows]


def test_workers_give_the_rows_of_one_process(tmp_path):
    config = _config()
    serial = run_experiment(config, tmp_path / "one", cache=ModelCache(tmp_path / "c1"), progress=False)
    with pytest.warns(NoOpWarning, match="seed 0 ga: ga left the forget set unchanged"):  # raised again here
        parallel = run_experiment(config, tmp_path / "two", cache=ModelCache(tmp_path / "c2"), progress=False,
                                  workers=2)
    assert parallel["runtime"]["workers"] == 2 and serial["runtime"]["workers"] == 1
    # every model is trained in a worker from its own seed: the same numbers, in the config's order
    assert [(r["seed"], r["method"]) for r in parallel["rows"]] == [(s, m) for s in (0, 1) for m in config.methods]
    assert _comparable(parallel["rows"]) == _comparable(serial["rows"])
    assert parallel["forget_indices"] == serial["forget_indices"]
    # a second call resumes: every cell is already in the folder, nothing is appended
    lines = (tmp_path / "two" / "rows.jsonl").read_text()
    again = run_experiment(config, tmp_path / "two", cache=ModelCache(tmp_path / "c2"), progress=False, workers=2)
    assert (tmp_path / "two" / "rows.jsonl").read_text() == lines
    assert _comparable(again["rows"]) == _comparable(parallel["rows"])


def test_a_failing_cell_is_named_and_the_others_are_kept(tmp_path):
    # first_order needs a `corrected` split, which random deletion does not have
    config = _config(methods=("original", "first_order", "ft"), seeds=(0,))
    with pytest.raises(UnlearnkitError, match=r"1 cell\(s\) failed.*seed 0 first_order: .*corrected"):
        run_experiment(config, tmp_path / "out", progress=False, workers=2)
    saved = [json.loads(line)["row"]["method"] for line in (tmp_path / "out" / "rows.jsonl").read_text().splitlines()]
    assert sorted(saved) == ["ft", "original"]


def test_more_workers_than_cores_is_refused_before_any_work(tmp_path):
    with pytest.raises(UnlearnkitError, match="cores"):
        run_experiment(_config(), tmp_path / "out", progress=False, workers=cpu_budget() + 1)
    assert not (tmp_path / "out" / "rows.jsonl").exists()
