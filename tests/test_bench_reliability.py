"""bench: inapplicable cells are skipped with their reason, failures are errors listed at the end,
and worker processes do not outlive a killed coordinator."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from unlearnkit.bench.grid import ResultStore
from unlearnkit.cli import main

SPEC = {"name": "rel", "seeds": [0], "methods": ["original", "first_order", "ga"],
        "datasets": [{"name": "synthetic", "options": {"n_samples": 300}, "models": ["mlp"], "recipe": {"epochs": 3}}],
        "method_params": {"ga": {"lr": 1.0e30}}}


def test_skipped_and_failed_cells_are_told_apart_and_listed(tmp_path, capsys):
    spec = tmp_path / "rel.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    store = tmp_path / "rel.sqlite"
    rc = main(["bench", str(spec), "--store", str(store), "--cache-dir", str(tmp_path / "c"), "--workers", "1", "-q"])
    err = capsys.readouterr().err
    assert rc == 1  # a failed cell makes the command fail
    with ResultStore(store, readonly=True) as s:
        status = {r["method"]: (r["status"], r["error"]) for r in s.runs()}
    assert status["original"][0] == "done"
    assert status["first_order"][0] == "skipped" and "needs the corrected data" in status["first_order"][1]
    assert status["ga"][0] == "error" and "'ga' produced NaN or infinite weights" in status["ga"][1]
    lines = err.strip().splitlines()
    assert any(ln.startswith("skipped (1 cell(s): synthetic(n_samples=300)/mlp/random first_order seed 0): MissingSplitError")
               for ln in lines), err
    assert any(ln.startswith("error (1 cell(s): synthetic(n_samples=300)/mlp/random ga seed 0): NonFiniteError") for ln in lines), err


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _finished_cells(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(store, timeout=1) as con:
            return con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_workers_end_when_bench_is_killed(tmp_path):
    spec = tmp_path / "kill.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "seeds": [0, 1, 2, 3], "methods": ["original", "retrain", "ft"],
                                    "method_params": {}}))
    cmd = [sys.executable, "-c", "import sys; from unlearnkit.cli import main; sys.exit(main())", "bench", str(spec),
           "--store", str(tmp_path / "k.sqlite"), "--cache-dir", str(tmp_path / "c"), "--workers", "2", "-q"]
    proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            # the pool's workers (the spawn resource tracker is a child too; it exits on its own)
            workers = [p for p in _children(proc.pid) if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]
            if len(workers) >= 2:
                break
            time.sleep(0.2)
        assert len(workers) >= 2, "the pool did not start"
        while time.time() < deadline and proc.poll() is None and not _finished_cells(tmp_path / "k.sqlite"):
            time.sleep(0.2)  # until the workers are at work (a worker notices its parent once initialised)
        os.kill(proc.pid, signal.SIGKILL)  # the coordinator only, as an OOM killer would
        proc.wait()
        deadline = time.time() + 60
        while time.time() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.2)
        survivors = [p for p in workers if _alive(p)]
        assert not survivors, f"workers {survivors} outlived the killed bench"
    finally:
        for p in workers:
            if _alive(p):
                os.kill(p, signal.SIGKILL)


AUDIT_SCRIPT = """
import unlearnkit

result = unlearnkit.audit("synthetic", "mlp", "random", ["original", "ga"], shadow_models=4, challenge_models=3,
                          workers=2, lira=False, ulira=False, progress=False, cache_dir={cache!r},
                          dataset_options={{"n_samples": 200}}, recipe={{"epochs": 2}},
                          scenario_options={{"forget_size": 0.1}})
print("rows", len(result["rows"]), "errors", result["audit"]["errors"])
"""


@pytest.mark.slow
@pytest.mark.timeout(900)  # three processes importing torch; minutes on a loaded machine
def test_audit_runs_from_a_plain_script_without_a_main_guard(tmp_path):
    script = tmp_path / "plain.py"
    script.write_text(AUDIT_SCRIPT.format(cache=str(tmp_path / "cache")))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines() == ["rows 2 errors {}"]  # once: the workers did not re-run the script
