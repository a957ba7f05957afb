"""The `unlearnkit` command: run, resume, methods, errors (on the fast synthetic dataset)."""

from __future__ import annotations

import json

import pytest

from unlearnkit.cli import main

FAST = ["--dataset", "synthetic", "--model", "mlp", "--set", "train.epochs=5", "--quiet"]


def run_cli(args, tmp_path):
    return main(["run", *FAST, "--cache-dir", str(tmp_path / "cache"), *args])


def test_run_writes_results_report_and_plot(tmp_path, capsys):
    out = tmp_path / "out"
    rc = run_cli(["--scenario", "random", "--forget-size", "0.1", "--methods", "original,retrain,ft,ga",
                  "--seeds", "0,1", "--set", "ft.epochs=2", "--set", "ga.lr=0.05", "--out", str(out)], tmp_path)
    assert rc == 0
    results = json.loads((out / "results.json").read_text())
    assert results["unlearnkit_version"]
    assert results["config"]["method_params"] == {"ft": {"epochs": 2}, "ga": {"lr": 0.05}}
    assert len(results["rows"]) == 8
    core = {"method", "scenario", "dataset", "model", "seed", "forget_acc", "retain_acc", "test_acc",
            "mia_efficacy", "time_s", "js_to_retrain"}
    for row in results["rows"]:
        assert core <= set(row)
    summary = {e["method"]: e for e in results["summary"]}
    assert summary["retrain"]["avg_gap"] == 0.0 and summary["ft"]["speedup"] > 0
    assert set(results["forget_indices"]) == {"0", "1"}
    assert (out / "report.md").read_text().startswith("# unlearnkit results")
    assert (out / "tradeoff.png").stat().st_size > 1000
    assert "| `ft` |" in capsys.readouterr().out


def test_an_interrupted_run_resumes_without_redoing_rows(tmp_path):
    out = tmp_path / "out"
    args = ["--scenario", "class", "--forget-class", "1", "--methods", "original,retrain,ft",
            "--seeds", "0", "--set", "ft.epochs=1", "--out", str(out)]
    assert run_cli(args, tmp_path) == 0
    lines = (out / "rows.jsonl").read_text().splitlines()
    # simulate a kill after the first row: drop the rest and cut the last line in half
    (out / "rows.jsonl").write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])
    first = json.loads(lines[0])["row"]
    assert run_cli(args, tmp_path) == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["method"] for r in results["rows"]] == ["original", "retrain", "ft"]
    assert results["rows"][0] == first
    assert "test_forget_acc" in results["rows"][0]


def test_cell_key_resolves_hyperparameter_defaults():
    """A cell is identified by the method's resolved hyperparameters: naming a default explicitly is
    the same cell (its row is reused), any other value (or a changed default) is a new one."""
    from unlearnkit.bench.pipeline import ExperimentConfig, cell_key
    from unlearnkit.methods import get_method

    default_lr = get_method("ft").params.lr
    def key(**ft):
        return cell_key(ExperimentConfig(dataset="synthetic", model="mlp", scenario="random", methods=["ft"],
                                         seeds=[0], method_params={"ft": ft} if ft else {}), "ft", 0)
    assert key() == key(lr=default_lr)
    assert key() != key(lr=default_lr * 2)
    assert key() != cell_key(ExperimentConfig(dataset="synthetic", model="mlp", scenario="random",
                                              methods=["ft"], seeds=[0]), "ft", 1)


def test_methods_lists_summaries_and_defaults(capsys):
    assert main(["methods", "ft"]) == 0
    out = capsys.readouterr().out
    assert "fine-tune on the retain set" in out and "lr" in out and "0.01" in out


@pytest.mark.parametrize("args, message", [
    (["--methods", "ft,nope"], "unknown method 'nope'; valid names:"),
    (["--set", "ft.lr=abc"], "ft.lr must be of type float, got 'abc'"),
    (["--set", "ft.speed=3"], "ft has no hyperparameter(s) ['speed']"),
    (["--set", "lr=3"], "name the method"),
    (["--scenario", "class", "--forget-class", "12"], "forget_class=12 does not exist"),
    (["--forget-class", "2"], "--forget-class does not apply to scenario 'random'"),
    (["--forget-size", "0"], "must be > 0"),
    (["--set", "ga.lr=0.1"], "hyperparameters given for 'ga', which is not among the methods"),
])
def test_bad_input_exits_2_with_a_clear_message(tmp_path, capsys, args, message):
    base = ["--methods", "original,ft", "--seeds", "0", "--out", str(tmp_path / "o")]
    merged = base + args if "--methods" not in args else [a for a in base[2:]] + args
    assert run_cli(merged, tmp_path) == 2
    assert message in capsys.readouterr().err


def test_yaml_config_with_flag_overrides(tmp_path):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("dataset: synthetic\nmodel: mlp\nscenario: random\nscenario_options: {forget_size: 10}\n"
                   "methods: [original, ft]\nseeds: [3]\nmethod_params: {ft: {epochs: 1}}\n"
                   "recipe: {epochs: 3}\n")
    out = tmp_path / "out"
    assert main(["run", "--config", str(cfg), "--seeds", "4", "--out", str(out), "--quiet",
                 "--cache-dir", str(tmp_path / "c")]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["seeds"] == [4] and len(results["forget_indices"]["4"]) == 10
    bad = tmp_path / "bad.yaml"
    bad.write_text("datasett: digits\n")
    assert main(["run", "--config", str(bad), "--out", str(out)]) == 2


def test_demo_end_to_end_on_one_seed(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--seeds", "0", "--quiet", "--out", str(out), "--cache-dir", str(tmp_path / "c")]) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["dataset"] == "mnist1d" and results["config"]["model"] == "mlp"
    rows = {r["method"]: r for r in results["rows"]}
    assert list(rows) == ["original", "retrain", "dist_match", "rl", "neggrad_plus", "l1_sparse"]
    # a memorising setting: the Original knows every forget sample, Retrain misclassifies many of them
    assert rows["original"]["forget_acc"] >= 0.99 and rows["retrain"]["forget_acc"] < 0.8
    for name in ("dist_match", "rl", "neggrad_plus", "l1_sparse"):
        # every method moves the forget set towards Retrain: none is a no-op here
        assert rows[name]["forget_acc"] < rows["original"]["forget_acc"] and not rows[name].get("noop")
    assert "| `dist_match` |" in printed and "compare.html" in printed
    assert (out / "tradeoff.png").exists() and (out / "compare.html").exists()
