"""The evidence pipeline: results stores as text, records with provenance, and the benchmark
documents regenerated from them (``make tables``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from unlearnkit.bench.grid import ResultStore, dump_store, load_dump, open_store
from unlearnkit.errors import UnlearnkitError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from docgen.pages import Context, expand  # noqa: E402
from docgen.records import RecordError  # noqa: E402

GROUP = "toy(n=1)/mlp/random(forget_size=0.1)"
#: hand-made seed means: method "a" is 10, 0, 10 and 20 points from Retrain -> avg gap 10.0
METRICS = {"retrain": (0.5, 1.0, 0.8, 0.4), "original": (1.0, 1.0, 0.8, 0.0), "a": (0.6, 1.0, 0.7, 0.2)}


def _store(path: Path) -> None:
    with ResultStore(path) as store:
        for method, (f, r, t, mia) in METRICS.items():
            for seed in (0, 1):
                rows = [{"method": method, "scenario": "random", "dataset": "toy", "model": "mlp", "seed": seed,
                         "forget_acc": f, "retain_acc": r, "test_acc": t, "mia_efficacy": mia,
                         "time_s": 2.0 if method == "retrain" else 0.5, "time_source": "measured"}]
                store.put_run({"cell_key": f"{method}-{seed}", "spec": "toy", "grp": GROUP, "dataset": "toy",
                               "model": "mlp", "scenario": "random", "method": method, "seed": seed, "params": {},
                               "config": {"dataset": "toy"}, "config_hash": "h", "status": "done", "rows": rows,
                               "time_s": rows[0]["time_s"], "finished_at": "2026-01-01T00:00:00Z",
                               "code_version": "0.1.0", "host": "h"})
        store.put_run({"cell_key": "b-0", "spec": "toy", "grp": GROUP, "dataset": "toy", "model": "mlp",
                       "scenario": "random", "method": "b", "seed": 0, "params": {}, "config": {"dataset": "toy"},
                       "config_hash": "h", "status": "error", "error": "NonFiniteError: b diverged",
                       "finished_at": "2026-01-01T00:00:00Z", "code_version": "0.1.0", "host": "h"})


def _record(results: Path, name: str = "toy") -> Path:
    folder = results / name
    folder.mkdir(parents=True)
    _store(folder / "s.sqlite")
    dump_store(folder / "s.sqlite", folder / "store.jsonl")
    (folder / "s.sqlite").unlink()
    inv = {"command": "unlearnkit bench toy.yaml", "commit": "0123456789abcdef", "dirty": False,
           "started": "2026-01-01T10:00:00Z", "finished": "2026-01-01T10:05:00Z", "wall_s": 300.0,
           "exit_status": 0, "load_before": [0.05, 0.1, 0.1], "load_after": [1.0, 0.5, 0.2],
           "machine": {"cores": 2, "cpu": "Test CPU", "memory_gib": 23.4, "system": "Linux x86_64",
                       "python": "3.11.7", "torch": "2.13.0", "numpy": "2.0"}}
    (folder / "record.json").write_text(json.dumps({"name": name, "invocations": [inv], "source": {}}))
    return folder


def _expand(tmp_path: Path, text: str) -> str:
    ctx = Context(results=tmp_path / "results", page=tmp_path / "docs" / "benchmarks" / "p.md",
                  images=tmp_path / "img", images_link=tmp_path / "docs" / "benchmarks" / "img")
    return expand(text, ctx, "p.md")


def test_a_dump_loads_back_into_the_same_store(tmp_path):
    _store(tmp_path / "a.sqlite")
    dump_store(tmp_path / "a.sqlite", tmp_path / "a.jsonl")
    load_dump(tmp_path / "a.jsonl", tmp_path / "b.sqlite")
    dump_store(tmp_path / "b.sqlite", tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()
    with ResultStore(tmp_path / "a.sqlite", readonly=True) as a, open_store(tmp_path / "a.jsonl") as b:
        assert a.runs() == b.runs() and a.result_rows() == b.result_rows()
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["format"] == "unlearnkit-results-dump"
    assert [json.loads(x)["cell_key"] for x in lines[1:]] == sorted(json.loads(x)["cell_key"] for x in lines[1:])


def test_a_file_that_is_not_a_dump_is_refused(tmp_path):
    (tmp_path / "x.jsonl").write_text('{"rows": []}\n')
    with pytest.raises(UnlearnkitError, match="not an unlearnkit results dump"):
        load_dump(tmp_path / "x.jsonl", tmp_path / "s.sqlite")
    _store(tmp_path / "a.sqlite")
    dump_store(tmp_path / "a.sqlite", tmp_path / "a.jsonl")
    with pytest.raises(UnlearnkitError, match="exists"):
        load_dump(tmp_path / "a.jsonl", tmp_path / "a.sqlite")


def test_the_results_command_reads_and_writes_dumps(tmp_path):
    from unlearnkit.cli import main

    _store(tmp_path / "a.sqlite")
    assert main(["results", str(tmp_path / "a.sqlite"), "--dump", str(tmp_path / "a.jsonl")]) == 0
    assert main(["results", str(tmp_path / "a.jsonl"), "-f", "csv", "-o", str(tmp_path / "a.csv")]) == 0
    assert (tmp_path / "a.csv").read_text().count("\n") == 1 + 2 * len(METRICS)


def test_directives_compute_from_the_record(tmp_path):
    _record(tmp_path / "results")
    text = _expand(tmp_path, f"gap {{{{ value toy {GROUP} a avg_gap }}}} at {{{{ value toy - a speedup }}}}.\n"
                             "{{ leaderboard toy }}\n{{ failures toy }}\n{{ provenance toy }}")
    assert text.startswith("gap 10.0 at 4.0×.")  # Retrain 2 s / 0.5 s
    assert "| `a` | 2 |" in text and "| `retrain` |" in text
    assert "toy seed 0 `b`: NonFiniteError: b diverged" in text.replace(GROUP, "toy")
    assert "`unlearnkit bench toy.yaml` — commit `0123456789`" in text and "load average 0.05 before" in text
    assert "(../../results/toy)" in text  # links relative to the page's place in the repository


def test_a_bad_directive_names_its_template_line(tmp_path):
    _record(tmp_path / "results")
    with pytest.raises(RecordError, match=r"p.md:2: unknown directive \['tabel'\]"):
        _expand(tmp_path, "fine\n{{ tabel toy }}\n")
    with pytest.raises(RecordError, match=r"p.md:1: .*no experiment 'nope'"):
        _expand(tmp_path, "{{ leaderboard toy nope }}\n")
    with pytest.raises(RecordError, match="no record 'missing'"):
        _expand(tmp_path, "{{ leaderboard missing }}\n")


def test_figures_are_the_same_bytes_every_time(tmp_path):
    _record(tmp_path / "results")
    _expand(tmp_path, "{{ figure tradeoff toy - file=t }}\n")
    first = (tmp_path / "img" / "t.svg").read_bytes()
    (tmp_path / "img" / "t.svg").unlink()
    text = _expand(tmp_path, "{{ figure tradeoff toy - file=t }}\n")
    assert (tmp_path / "img" / "t.svg").read_bytes() == first
    assert "](img/t.svg)" in text and first.startswith(b"<?xml") and b"<svg" in first


def test_record_keeps_the_results_and_how_they_were_made(tmp_path):
    out = tmp_path / "out"
    script = f"import json, pathlib; p = pathlib.Path({str(out)!r}); p.mkdir(); (p / 'results.json').write_text('{{}}')"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "record.py"), "demo", "--out", str(out), "--allow-dirty",
           "--results-dir", str(tmp_path / "results"), "--", sys.executable, "-c", script]
    assert subprocess.run(cmd, capture_output=True, text=True).returncode == 0
    record = json.loads((tmp_path / "results" / "demo" / "record.json").read_text())
    (inv,) = record["invocations"]
    assert inv["exit_status"] == 0 and len(inv["commit"]) == 40 and inv["machine"]["cores"] >= 1
    assert inv["command"].endswith(script) and (tmp_path / "results" / "demo" / "results.json").read_text() == "{}"
    # the same command again resumes the folder: a second invocation; a fresh folder starts the record anew
    resume = cmd[:-2] + ["-c", "pass"]
    assert subprocess.run(resume, capture_output=True, text=True).returncode == 0
    assert len(json.loads((tmp_path / "results" / "demo" / "record.json").read_text())["invocations"]) == 2
    shutil.rmtree(out)
    assert subprocess.run(cmd, capture_output=True, text=True).returncode == 0
    assert len(json.loads((tmp_path / "results" / "demo" / "record.json").read_text())["invocations"]) == 1


def test_the_committed_documents_are_what_the_results_give():
    """`make tables` on this checkout changes nothing: every published table comes from results/."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "tables.py"), "--check"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr


def test_the_headline_ranks_methods_across_records(tmp_path):
    _record(tmp_path / "results", "one")
    _record(tmp_path / "results", "two")
    text = _expand(tmp_path, "{{ headline one two flagship=one }}\n")
    lines = text.splitlines()
    assert lines[0] == "| Method | one: mean rank (mean gap) of 1 | two: mean rank (mean gap) of 1 | flagship: gap | flagship: speedup |"
    assert lines[2] == "| `a` | 1.0 (10.0) | 1.0 (10.0) | 10.00 | 4.0× |"


def test_guarded_lists_restarted_runs_and_flagged_rows():
    from docgen.tables import guarded

    rows = [{"grp": GROUP, "seed": 0, "method": "a", "restarts": 1, "overforget": False},
            {"grp": GROUP, "seed": 1, "method": "a", "restarts": 0, "overforget": True},
            {"grp": GROUP, "seed": 2, "method": "a", "overforget": True},
            {"grp": GROUP, "seed": 0, "method": "original"}]
    text = guarded(rows)
    assert f"- {GROUP} `a`: 1, 1\n" in text and "restarted these runs" in text
    assert f"- {GROUP} `a`: 2\n" in text.split("over-forgetting")[1]
    assert guarded(rows[3:]) == "The divergence guard restarted no run.\n\nThe over-forgetting check flagged no row.\n"


def test_experiments_that_differ_only_in_options_get_their_own_columns():
    from docgen.pages import experiment_labels
    from docgen.tables import ranks

    groups = ["mnist1d/mlp(hidden=128)/random(forget_size=0.1)", "mnist1d/mlp(dropout=0.2)/random(forget_size=0.1)",
              "digits/cnn/class(forget_class=3)"]
    assert experiment_labels(groups) == ["mnist1d/mlp(hidden=128) random", "mnist1d/mlp(dropout=0.2) random",
                                         "digits/cnn class"]
    with pytest.raises(ValueError, match="share a column label"):
        ranks([("a", []), ("a", [])])
