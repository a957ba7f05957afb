"""Benchmark grids: spec validation, the SQLite results store (resume, SIGKILL), exports, reports,
tuning, the Ray backend and the HTML page in headless Chromium."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import missing_component

from unlearnkit.bench.pipeline import ModelCache
from unlearnkit.bench.reports import write_report
from unlearnkit.bench.grid import run_bench
from unlearnkit.bench.grid import load_spec, parse_spec
from unlearnkit.bench.grid import ResultStore
from unlearnkit.cli import main as cli
from unlearnkit.errors import UnknownNameError, UnlearnkitError

TIMING = {"time_s", "wall_s", "prepare_s", "finished_at", "host"}

TINY = {
    "name": "tiny",
    "seeds": [0, 1],
    "datasets": [{"name": "synthetic", "options": {"n_samples": 300}, "models": ["mlp"], "recipe": {"epochs": 5}}],
    "scenarios": [{"name": "random", "options": {"forget_size": 0.1}},
                  {"name": "class", "options": {"forget_class": 1}}],
    "methods": ["original", "retrain", "ft", "ga"],
    "method_params": {"ft": {"epochs": 2}, "ga": {"epochs": 2}},
}


def write_spec(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    spec_path = write_spec(d / "tiny.yaml", TINY)
    store = ResultStore(d / "tiny.sqlite")
    summary = run_bench(load_spec(spec_path), store, cache=ModelCache(d / "cache"), workers=1, progress=False)
    yield d, spec_path, store, summary
    store.close()


# -- specs ------------------------------------------------------------------------------------------
def test_unregistered_method_fails_early_with_a_clear_error():
    with pytest.raises(UnknownNameError, match=r"not registered.*no_such_method|no_such_method.*not registered"):
        parse_spec({**TINY, "methods": ["original", "no_such_method"]})
    with pytest.raises(UnknownNameError, match="nope"):
        parse_spec({**TINY, "scenarios": [{"name": "random", "extra_methods": ["nope"]}]})


def test_spec_errors_name_the_problem():
    with pytest.raises(UnlearnkitError, match="unknown key"):
        parse_spec({**TINY, "method": ["ft"]})
    with pytest.raises(UnlearnkitError, match="tune.seeds"):
        parse_spec({**TINY, "search": {"ga": {"lr": {"low": 1e-4, "high": 1e-2}}}, "tune": {"seeds": [0]}})
    with pytest.raises(UnlearnkitError, match="search.ga.lr"):
        parse_spec({**TINY, "search": {"ga": {"lr": [1e-4, 1e-2]}}})
    with pytest.raises(UnknownNameError):
        parse_spec({**TINY, "scenarios": ["no_such_scenario"]})


def test_grid_expansion_and_shipped_specs():
    spec = parse_spec(TINY)
    assert len(spec.experiments) == 2 and len(spec.cells()) == 2 * 2 * 4
    assert len({c.key for c in spec.cells()}) == len(spec.cells())
    root = Path(__file__).resolve().parents[1] / "benchmarks"
    for name in ("quick.yaml", "full.yaml", "cifar10_resnet18.yaml"):
        assert load_spec(root / name).cells()


def test_group_labels_name_the_dataset_options_that_set_an_experiment_apart():
    sizes = {**TINY, "datasets": [{"name": "mnist1d", "options": {"n_samples": n}, "models": ["mlp"]}
                                  for n in (5000, "20000")], "scenarios": TINY["scenarios"][:1]}
    spec = parse_spec(sizes)
    groups = [spec.group_of(c) for c in spec.experiments]
    # 5000 is mnist1d's default: that label is the one an experiment without options has
    assert groups == ["mnist1d/mlp/random(forget_size=0.1)", "mnist1d(n_samples=20000)/mlp/random(forget_size=0.1)"]
    assert {c.group for c in spec.cells()} == set(groups)
    # what is tuned for one size is applied to that size only (tuned values are looked up by label)
    tuned = parse_spec(sizes, tuned={(groups[1], "ga"): {"lr": 0.123}})
    assert [c.method_params["ga"].get("lr") for c in tuned.experiments] == [None, 0.123]
    assert parse_spec(TINY).cells()[0].group == "synthetic(n_samples=300)/mlp/random(forget_size=0.1)"
    with pytest.raises(UnlearnkitError, match=r"dataset 'mnist1d' has no option\(s\) \['size'\]"):
        parse_spec({**sizes, "datasets": [{"name": "mnist1d", "options": {"size": 10}, "models": ["mlp"]}]})


# -- the store --------------------------------------------------------------------------------------
def test_store_one_row_per_cell_wal_and_tuned(tmp_path):
    with ResultStore(tmp_path / "s.sqlite") as store:
        rec = {"cell_key": "k1", "grp": "g", "dataset": "d", "model": "m", "scenario": "s", "method": "ft", "seed": 0,
               "params": {}, "config": {}, "config_hash": "h", "status": "done", "rows": [{"forget_acc": 1.0}]}
        store.put_run(rec)
        store.put_run({**rec, "rows": [{"forget_acc": 0.5}]})
        assert store.count() == {"done": 1}
        assert store.runs()[0]["rows"] == [{"forget_acc": 0.5}]
        assert store.status_of(["k1", "k2"]) == {"k1": "done"}
        with pytest.raises(sqlite3.IntegrityError):  # status is constrained
            store.put_run({**rec, "cell_key": "k2", "status": "maybe"})
        assert store.count() == {"done": 1}  # the failed transaction left nothing behind
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        store.put_tuned("t", "g", "ga", {"lr": 0.1}, 0.02, 3, {"lr": {"low": 0.01, "high": 1}}, {"seeds": [9]}, [])
        assert store.get_tuned("t")["params"] == {"lr": 0.1}
        assert store.runs()[0]["code_version"].startswith("0.")
        assert store.relabel({"k1": "g2", "absent": "x"}) == 1 and store.runs()[0]["grp"] == "g2"
        assert store.relabel({"k1": "g2"}) == 0


def test_bench_records_every_cell_and_second_run_does_nothing(tiny_run):
    d, spec_path, store, summary = tiny_run
    assert summary.ran == 16 and summary.done == 16 and summary.errors == 0
    runs = store.runs()
    assert len(runs) == 16 and all(r["forget_hash"] and r["config_hash"] and r["code_version"] for r in runs)
    labels = {r["cell_key"]: r["grp"] for r in runs}
    with store.transaction():  # as recorded before the labels named dataset options
        store.conn.execute("UPDATE runs SET grp = replace(grp, 'synthetic(n_samples=300)/', 'synthetic/')")
    again = run_bench(load_spec(spec_path), store, cache=ModelCache(d / "cache"), workers=1, progress=False)
    assert again.ran == 0 and again.already == 16
    assert len(store.runs()) == 16
    assert {r["cell_key"]: r["grp"] for r in store.runs()} == labels  # relabelled, nothing ran


def test_results_export_formats(tiny_run, capsys):
    d, spec_path, store, _ = tiny_run
    db = str(store.path)
    assert cli(["results", db, "--format", "csv", "--method", "ft"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 4 and {r["method"] for r in rows} == {"ft"} and float(rows[0]["test_acc [fraction]"]) > 0
    assert cli(["results", db, "--format", "json", "--spec", str(spec_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data) == 16 and {"forget_acc", "mia_efficacy", "seed", "grp"} <= set(data[0])
    assert cli(["results", db, "--format", "markdown", "--runs"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("| grp |") and md.count("\n") == 18 and "config_hash" in md
    assert cli(["results", db, "--summary"]) == 0
    assert "Avg gap" in capsys.readouterr().out


def test_report_markdown_and_html(tiny_run, tmp_path):
    d, spec_path, store, _ = tiny_run
    assert cli(["report", str(store.path), "--spec", str(spec_path), "--out", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "leaderboard.md").read_text()
    assert md.count("#### synthetic(n_samples=300)/mlp/") == 2 and "**" in md and "Speedup" in md
    page = (tmp_path / "rep" / "index.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "<table>" in page and "http" not in page.split("<body>")[0]


# -- SIGKILL mid-grid -------------------------------------------------------------------------------
KILL_SPEC = {**TINY, "seeds": [0, 1, 2], "methods": ["original", "retrain", "ft", "ga", "rl"],
             "datasets": [{"name": "synthetic", "options": {"n_samples": 300}, "models": ["mlp"],
                           "recipe": {"epochs": 30}}]}


def _bench_cmd(spec: Path, store: Path, cache: Path) -> list[str]:
    return [sys.executable, "-c", "import sys; from unlearnkit.cli import main; sys.exit(main())", "bench",
            str(spec), "--store", str(store), "--cache-dir", str(cache), "--workers", "1", "--quiet"]


def _done(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(store, timeout=1) as c:
            return c.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _content(store: Path) -> list[tuple]:
    with ResultStore(store) as s:
        assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        keys = [r[0] for r in s.conn.execute("SELECT cell_key FROM runs")]
        assert len(keys) == len(set(keys))
        out = []
        for r in s.runs():
            rows = [{k: v for k, v in row.items() if k not in TIMING} for row in r["rows"]]
            out.append((r["cell_key"], r["status"], r["forget_hash"], json.dumps(rows, sort_keys=True)))
        return sorted(out)


@pytest.mark.slow
def test_sigkill_mid_grid_then_resume_equals_uninterrupted_run(tmp_path):
    spec = write_spec(tmp_path / "kill.yaml", KILL_SPEC)
    total = len(load_spec(spec).cells())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed_store = tmp_path / "killed.sqlite"
    proc = subprocess.Popen(_bench_cmd(spec, killed_store, tmp_path / "cache_a"), env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while _done(killed_store) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    partial = _done(killed_store)
    assert 3 <= partial < total, f"kill did not land mid-grid ({partial} of {total} cells)"
    _content(killed_store)  # readable, consistent, no duplicates right after the kill
    resumed = subprocess.run(_bench_cmd(spec, killed_store, tmp_path / "cache_a"), env=env, capture_output=True,
                             text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{partial} already done, ran {total - partial}" in resumed.stdout
    clean_store = tmp_path / "clean.sqlite"
    clean = subprocess.run(_bench_cmd(spec, clean_store, tmp_path / "cache_b"), env=env, capture_output=True,
                           text=True, timeout=120)
    assert clean.returncode == 0, clean.stderr[-2000:]
    a, b = _content(killed_store), _content(clean_store)
    assert len(a) == total and a == b


# -- tuning -----------------------------------------------------------------------------------------
def test_tune_stores_values_and_bench_reuses_them(tmp_path):
    from unlearnkit.bench.grid import load_spec_with_tuning

    data = {**TINY, "scenarios": [{"name": "class", "options": {"forget_class": 1}}], "seeds": [0],
            "methods": ["original", "retrain", "ga"], "search": {"ga": {"lr": {"low": 1e-4, "high": 1e-1, "log": True}}},
            "tune": {"trials": 3, "seeds": [7]}}
    spec_path = write_spec(tmp_path / "t.yaml", data)
    cache = ModelCache(tmp_path / "cache")
    with ResultStore(tmp_path / "t.sqlite") as store:
        spec = load_spec_with_tuning(spec_path, store, cache=cache)
        tuned = store.all_tuned()
        assert len(tuned) == 1 and tuned[0]["n_trials"] == 3 and tuned[0]["settings"]["seeds"] == [7]
        lr = tuned[0]["params"]["lr"]
        assert spec.experiments[0].method_params["ga"] == {"epochs": 2, "lr": lr}
        again = load_spec_with_tuning(spec_path, store, cache=cache, tune=False)
        assert [c.key for c in again.cells()] == [c.key for c in spec.cells()]
        summary = run_bench(spec, store, cache=cache, workers=1, progress=False)
        assert summary.done == 3
        assert [r for r in store.runs() if r["method"] == "ga"][0]["params"]["lr"] == lr


# -- Ray backend ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_ray_backend_runs_a_tiny_grid_with_the_same_store_semantics(tiny_run, tmp_path):
    if importlib.util.find_spec("ray") is None:
        missing_component("ray", "pip install -e '.[ray]'")
    d, spec_path, local_store, _ = tiny_run
    data = {**TINY, "seeds": [0], "scenarios": TINY["scenarios"][:1]}
    spec = load_spec(write_spec(tmp_path / "ray.yaml", data))
    with ResultStore(tmp_path / "ray.sqlite") as store:
        summary = run_bench(spec, store, cache=ModelCache(d / "cache"), workers=2, backend="ray", progress=False)
        assert summary.done == 4 and summary.errors == 0
        again = run_bench(spec, store, cache=ModelCache(d / "cache"), workers=2, backend="ray", progress=False)
        assert again.ran == 0
        ray_rows = {r["cell_key"]: r["rows"] for r in store.runs()}
    local_rows = {r["cell_key"]: r["rows"] for r in local_store.runs()}
    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIMING} for r in rows]  # noqa: E731
    assert all(r["backend"] == "ray" for r in ResultStore(tmp_path / "ray.sqlite").runs())
    for key, rows in ray_rows.items():
        assert strip(rows) == strip(local_rows[key])


# -- the HTML page in a headless browser ------------------------------------------------------------
def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.slow
def test_html_report_opens_in_headless_chromium_without_errors(tiny_run, tmp_path):
    browser = _chromium()
    if browser is None:
        missing_component("chromium", "Debian/Ubuntu: apt-get install -y chromium")
    d, spec_path, store, _ = tiny_run
    page = write_report(store.result_rows(), store.runs(), tmp_path / "rep")["html"]
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--no-first-run", "--virtual-time-budget=5000", "--enable-logging=stderr", "--v=0",
                           f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'data-status="ok"' in proc.stdout, proc.stdout[:500] + proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
