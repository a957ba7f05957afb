"""Every bad input a user can give ends in one clear line, never a traceback or a half-written result.

CLI cases run in-process through ``unlearnkit.cli.main`` (exit status 2, one line on stderr naming
the problem, no new files outside the model cache, existing files unchanged); API cases check the
documented exception type and a one-line message. A few real subprocesses cover the exit path of
the installed command.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from unlearnkit.cli import main

RUN = ["run", "--dataset", "synthetic", "--model", "mlp", "--methods", "original,ga", "--seeds", "0",
       "--set", "train.epochs=2", "--quiet", "--cache-dir", "{tmp}/cache", "--out", "{tmp}/out"]

SPEC_OK = "name: s\nseeds: [0]\ndatasets: [{name: synthetic, models: [mlp], recipe: {epochs: 2}}]\nmethods: [original]\n"

FILES = {
    "bad.yaml": "seeds: [0, 1\n",
    "seeds_str.yaml": 'seeds: "0"\n',
    "options_list.yaml": "scenario_options: [1, 2]\n",
    "unknown_key.yaml": "colour: blue\n",
    "list.yaml": "- a\n- b\n",
    "notes.txt": "not a store\n",
    "empty.sqlite": "",
    "spec_dataset.yaml": SPEC_OK.replace("name: synthetic", "name: nosuch"),
    "spec_model.yaml": SPEC_OK.replace("[mlp]", "[nosuch]"),
    "spec_forget0.yaml": SPEC_OK + "scenarios: [{name: random, options: {forget_size: 0}}]\n",
    "spec_search.yaml": SPEC_OK.replace("[original]", "[original, ga]") + "search: {ga: {nosuch: {low: 1, high: 2}}}\n",
    "spec_search_range.yaml": SPEC_OK.replace("[original]", "[original, ga]")
    + "search: {ga: {lr: {low: -1.0, high: 0.1}}}\n",
    "spec_seeds.yaml": SPEC_OK.replace("seeds: [0]", "seeds: [0, 0]"),
    "spec_seeds_str.yaml": SPEC_OK.replace("seeds: [0]", "seeds: [zero]"),
    "spec_key.yaml": SPEC_OK + "colour: blue\n",
    "spec_bad.yaml": "name: [\n",
    "spec_ok.yaml": SPEC_OK,
}

# (id, argv; {tmp} is the test folder, expected words of the message)
CLI_CASES = [
    ("config-malformed-yaml", RUN + ["--config", "{tmp}/bad.yaml"], "not valid YAML"),
    ("config-seeds-string", RUN + ["--config", "{tmp}/seeds_str.yaml"], "'seeds' must be a list"),
    ("config-options-list", RUN + ["--config", "{tmp}/options_list.yaml"], "'scenario_options' must be a mapping"),
    ("config-binary", RUN + ["--config", sys.executable], "not a text"),
    ("config-directory", RUN + ["--config", "{tmp}"], "is not a file"),
    ("config-missing", RUN + ["--config", "{tmp}/missing.yaml"], "does not exist"),
    ("config-unknown-key", RUN + ["--config", "{tmp}/unknown_key.yaml"], "unknown key"),
    ("config-not-mapping", RUN + ["--config", "{tmp}/list.yaml"], "must hold a mapping"),
    ("seeds-negative", RUN + ["--seeds", "-1"], "out of range"),
    ("seeds-past-2^63", RUN + ["--seeds", str(2**63)], "out of range"),
    ("seeds-duplicate", RUN + ["--seeds", "0,0"], "more than once"),
    ("seeds-not-integers", RUN + ["--seeds", "a,b"], "comma-separated integers"),
    ("momentum-negative", RUN + ["--set", "ga.momentum=-5"], "ga.momentum"),
    ("train-epochs-text", RUN + ["--set", "train.epochs=abc"], "train.epochs"),
    ("train-epochs-fraction", RUN + ["--set", "train.epochs=2.5"], "train.epochs"),
    ("lr-nan", RUN + ["--set", "ga.lr=nan"], "finite"),
    ("lr-inf", RUN + ["--set", "ga.lr=inf"], "finite"),
    ("train-lr-nan", RUN + ["--set", "train.lr=nan"], "finite"),
    ("train-lr-inf", RUN + ["--set", "train.lr=inf"], "finite"),
    ("lr-zero", RUN + ["--set", "ga.lr=0"], "ga.lr"),
    ("epochs-inf", RUN + ["--set", "ga.epochs=inf"], "ga.epochs"),
    ("set-without-value", RUN + ["--set", "ga.lr"], "KEY=VALUE"),
    ("set-without-method", RUN + ["--set", "lr=0.1"], "name the method"),
    ("set-method-not-run", RUN + ["--set", "ft.lr=0.1"], "not among the methods"),
    ("set-unknown-param", RUN + ["--set", "ga.nosuch=1"], "no hyperparameter"),
    ("set-unknown-recipe-key", RUN + ["--set", "train.nosuch=1"], "unknown training-recipe"),
    ("out-is-a-file", RUN + ["--out", "{tmp}/notes.txt"], "existing file"),
    ("out-below-a-file", RUN + ["--out", "{tmp}/notes.txt/sub"], "notes.txt"),
    ("cache-is-a-file", RUN + ["--cache-dir", "{tmp}/notes.txt"], "model cache"),
    ("device-unknown", RUN + ["--device", "banana"], "invalid device"),
    ("dataset-option-type", RUN + ["--dataset-opt", "n_samples=abc"], "n_samples"),
    ("dataset-option-form", RUN + ["--dataset-opt", "n_samples"], "KEY=VALUE"),
    ("dataset-option-unknown", RUN + ["--dataset-opt", "colour=blue"], "no option"),
    ("dataset-unknown", RUN + ["--dataset", "nosuch"], "unknown dataset"),
    ("model-unknown", RUN + ["--model", "nosuch"], "unknown model"),
    ("method-unknown", RUN + ["--methods", "original,nosuch"], "unknown method"),
    ("methods-none", RUN + ["--methods", ","], "no methods"),
    ("methods-twice", RUN + ["--methods", "ga,ga"], "listed twice"),
    ("scenario-unknown", RUN + ["--scenario", "nosuch"], "unknown scenario"),
    ("forget-size-zero", RUN + ["--forget-size", "0"], "forget-size"),
    ("forget-size-everything", RUN + ["--forget-size", "100000"], "nothing would remain"),
    ("forget-class-missing", RUN + ["--scenario", "class", "--forget-class", "99"], "forget_class=99"),
    ("option-of-other-scenario", RUN + ["--forget-class", "1"], "does not apply"),
    ("diverging-method", RUN + ["--methods", "ga", "--set", "ga.lr=1e30"], "NaN or infinite"),
    ("run-unknown-flag", RUN + ["--colour", "blue"], "unrecognized arguments"),
    ("command-unknown", ["colour"], "invalid choice"),
    ("run-without-out", RUN[:-2], "--out"),
    ("audit-out-is-file", ["audit", "--dataset", "synthetic", "--model", "mlp", "--out", "{tmp}/notes.txt", "-q",
                           "--cache-dir", "{tmp}/cache"], "existing file"),
    ("methods-unknown-name", ["methods", "nosuch"], "unknown method"),
    ("results-missing-store", ["results", "{tmp}/missing.sqlite"], "does not exist"),
    ("results-text-file", ["results", "{tmp}/notes.txt"], "not an unlearnkit results store"),
    ("results-empty-file", ["results", "{tmp}/empty.sqlite"], "not an unlearnkit results store"),
    ("results-directory", ["results", "{tmp}"], "folder"),
    ("results-foreign-sqlite", ["results", "{tmp}/foreign.sqlite"], "not an unlearnkit results store"),
    ("results-newer-schema", ["results", "{tmp}/future.sqlite"], "schema version"),
    ("results-out-is-folder", ["results", "{tmp}/store.sqlite", "--out", "{tmp}"], "is a folder"),
    ("report-text-file", ["report", "{tmp}/notes.txt", "--out", "{tmp}/rep"], "not an unlearnkit results store"),
    ("report-foreign-sqlite", ["report", "{tmp}/foreign.sqlite", "--out", "{tmp}/rep"], "not an unlearnkit"),
    ("report-empty-store", ["report", "{tmp}/store.sqlite", "--out", "{tmp}/rep"], "no finished cells"),
    ("report-out-is-file", ["report", "{tmp}/store.sqlite", "--out", "{tmp}/notes.txt"], "existing file"),
    ("bench-missing-spec", ["bench", "{tmp}/missing.yaml", "--store", "{tmp}/b.sqlite"], "does not exist"),
    ("bench-malformed-spec", ["bench", "{tmp}/spec_bad.yaml", "--store", "{tmp}/b.sqlite"], "not valid YAML"),
    ("bench-unknown-dataset", ["bench", "{tmp}/spec_dataset.yaml", "--store", "{tmp}/b.sqlite"], "unknown dataset"),
    ("bench-unknown-model", ["bench", "{tmp}/spec_model.yaml", "--store", "{tmp}/b.sqlite"], "unknown model"),
    ("bench-forget-size-zero", ["bench", "{tmp}/spec_forget0.yaml", "--store", "{tmp}/b.sqlite"], "forget-size"),
    ("bench-search-unknown-param", ["bench", "{tmp}/spec_search.yaml", "--store", "{tmp}/b.sqlite"],
     "no hyperparameter"),
    ("bench-search-bad-range", ["bench", "{tmp}/spec_search_range.yaml", "--store", "{tmp}/b.sqlite"], "ga.lr"),
    ("bench-duplicate-seeds", ["bench", "{tmp}/spec_seeds.yaml", "--store", "{tmp}/b.sqlite"], "more than once"),
    ("bench-seed-not-integer", ["bench", "{tmp}/spec_seeds_str.yaml", "--store", "{tmp}/b.sqlite"], "integers"),
    ("bench-unknown-key", ["bench", "{tmp}/spec_key.yaml", "--store", "{tmp}/b.sqlite"], "unknown key"),
    ("bench-seeds-outside-spec", ["bench", "{tmp}/spec_ok.yaml", "--seeds", "5", "--store", "{tmp}/b.sqlite"],
     "not seeds of spec"),
    ("bench-workers-negative", ["bench", "{tmp}/spec_ok.yaml", "--workers", "-1", "--store", "{tmp}/b.sqlite"],
     "--workers"),
    ("bench-store-text-file", ["bench", "{tmp}/spec_ok.yaml", "--store", "{tmp}/notes.txt"],
     "not an unlearnkit results store"),
    ("bench-store-foreign-sqlite", ["bench", "{tmp}/spec_ok.yaml", "--store", "{tmp}/foreign.sqlite"],
     "not an unlearnkit results store"),
]


def _status(argv: list[str]) -> int:
    """The exit status of ``unlearnkit ARGV`` run in this process (usage errors raise SystemExit)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def _fill(argv: list[str], tmp: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp)) for a in argv]


def _world(tmp: Path) -> None:
    from unlearnkit.bench.grid import ResultStore

    for name, text in FILES.items():
        (tmp / name).write_text(text)
    con = sqlite3.connect(tmp / "foreign.sqlite")
    con.execute("CREATE TABLE notes (text TEXT)")
    con.commit()
    con.close()
    ResultStore(tmp / "store.sqlite").close()
    ResultStore(tmp / "future.sqlite").close()
    con = sqlite3.connect(tmp / "future.sqlite")
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.commit()
    con.close()


def _snapshot(tmp: Path) -> dict[str, str]:
    """Every file outside the model cache, with a hash of its bytes."""
    return {str(p.relative_to(tmp)): hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp.rglob("*")
            if p.is_file() and "cache" not in p.relative_to(tmp).parts}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    _world(tmp)
    return tmp


def test_the_list_is_long_enough():
    assert len(CLI_CASES) + len(API_CASES) >= 40
    assert len({c[0] for c in CLI_CASES}) == len(CLI_CASES)


@pytest.mark.parametrize("case", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input(case, world, capsys):
    name, argv, words = case
    before = _snapshot(world)
    rc = _status(_fill(argv, world))
    out, err = capsys.readouterr()
    assert rc == 2, (rc, err)
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    assert err.startswith("unlearnkit") and "error:" in err
    assert words.lower() in err.lower(), err
    assert "Traceback" not in err + out
    assert _snapshot(world) == before, "files were written or changed"


def test_cuda_on_a_cpu_only_torch(world, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    assert main(_fill(RUN + ["--device", "cuda"], world)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no CUDA GPU" in err


def _model_and_data(n: int = 40):
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    return model, torch.randn(n, 5, generator=gen), torch.randint(0, 3, (n,), generator=gen)


def _with(x: torch.Tensor, value: float) -> torch.Tensor:
    x = x.clone()
    x[3, 2] = value
    return x


def _damaged_checkpoint(tmp: Path) -> Path:
    from unlearnkit.io import save_model

    path = save_model(torch.nn.Linear(5, 3), tmp / "m.safetensors")
    path.write_bytes(path.read_bytes()[:-7])
    return path


def _api(name: str, tmp: Path):
    """Call the public API the bad way named by the case."""
    import unlearnkit as uk
    from unlearnkit.bench.pipeline import ExperimentConfig, run_experiment
    from unlearnkit.bench.grid import ResultStore

    model, x, y = _model_and_data()
    calls = {
        "evaluate-1d-x": lambda: uk.evaluate(model, forget=(x[:, 0], y)),
        "evaluate-not-a-module": lambda: uk.evaluate("model.pt", forget=(x, y)),
        "evaluate-label-out-of-range": lambda: uk.evaluate(model, forget=(x, y + 5)),
        "unlearn-nan-in-forget": lambda: uk.unlearn(model, forget=(_with(x, float("nan")), y), method="ga"),
        "unlearn-inf-in-retain": lambda: uk.unlearn(model, forget=(x[:5], y[:5]),
                                                    retain=(_with(x, float("inf")), y), method="ft"),
        "unlearn-not-a-module": lambda: uk.unlearn({"weight": 1}, forget=(x, y)),
        "unlearn-unknown-method": lambda: uk.unlearn(model, forget=(x, y), method="nosuch"),
        "unlearn-lr-nan": lambda: uk.unlearn(model, forget=(x, y), method="ga", lr=float("nan")),
        "unlearn-momentum-negative": lambda: uk.unlearn(model, forget=(x, y), method="ga", momentum=-1.0),
        "unlearn-diverges": lambda: uk.unlearn(model, forget=(x, y), method="ga", lr=1e30, epochs=3),
        "method-epochs-text": lambda: uk.get_method("ga", epochs="abc"),
        "recipe-lr-nan": lambda: uk.TrainRecipe.from_dict({"lr": float("nan")}),
        "recipe-epochs-text": lambda: uk.TrainRecipe.from_dict({"epochs": "many"}),
        "load-damaged-checkpoint": lambda: uk.load_model(torch.nn.Linear(5, 3), _damaged_checkpoint(tmp)),
        "config-duplicate-seeds": lambda: ExperimentConfig(seeds=[0, 0]).validate(),
        "config-seeds-string": lambda: ExperimentConfig(seeds="0").validate(),
        "run-experiment-out-is-file": lambda: run_experiment(
            ExperimentConfig(dataset="synthetic", model="mlp", methods=["original"], seeds=[0]), tmp / "notes.txt"),
        "store-readonly-directory": lambda: ResultStore(tmp, readonly=True),
    }
    return calls[name]()


API_CASES = [
    ("evaluate-1d-x", "DataError", "one row per example"),
    ("evaluate-not-a-module", "TypeError", "torch.nn.Module"),
    ("evaluate-label-out-of-range", "DataError", "labels must be in"),
    ("unlearn-nan-in-forget", "DataError", "NaN"),
    ("unlearn-inf-in-retain", "DataError", "retain"),
    ("unlearn-not-a-module", "TypeError", "torch.nn.Module"),
    ("unlearn-unknown-method", "UnknownNameError", "unknown method"),
    ("unlearn-lr-nan", "HyperparameterError", "finite"),
    ("unlearn-momentum-negative", "HyperparameterError", "momentum"),
    ("unlearn-diverges", "NonFiniteError", "'ga' produced NaN or infinite weights"),
    ("method-epochs-text", "HyperparameterError", "ga.epochs"),
    ("recipe-lr-nan", "HyperparameterError", "finite"),
    ("recipe-epochs-text", "HyperparameterError", "train.epochs"),
    ("load-damaged-checkpoint", "CheckpointError", "m.safetensors"),
    ("config-duplicate-seeds", "UnlearnkitError", "more than once"),
    ("config-seeds-string", "UnlearnkitError", "must be a list"),
    ("run-experiment-out-is-file", "UnlearnkitError", "existing file"),
    ("store-readonly-directory", "UnlearnkitError", "folder"),
]


@pytest.mark.parametrize("case", API_CASES, ids=[c[0] for c in API_CASES])
def test_api_bad_input(case, world):
    import unlearnkit.errors as errors

    name, exc_name, words = case
    expected = getattr(errors, exc_name, None) or getattr(__builtins__, exc_name, None) or TypeError
    with pytest.raises(expected) as info:
        _api(name, world)
    message = str(info.value)
    assert "\n" not in message and words in message, message


def test_out_folder_of_another_experiment_is_refused_unless_overwrite(tmp_path, capsys):
    base = _fill(RUN, tmp_path) + ["--methods", "original"]
    assert main(base) == 0
    rows = (tmp_path / "out" / "rows.jsonl").read_bytes()
    assert main(base + ["--dataset-opt", "n_samples=300"]) == 2
    err = capsys.readouterr().err
    assert "holds results of another experiment" in err and "dataset_options" in err and err.count("\n") == 1
    assert (tmp_path / "out" / "rows.jsonl").read_bytes() == rows  # untouched
    assert main(base + ["--dataset-opt", "n_samples=300", "--overwrite"]) == 0
    assert (tmp_path / "out" / "rows.jsonl").read_bytes() != rows
    assert main(base + ["--dataset-opt", "n_samples=300", "--methods", "original,ft"]) == 0  # more methods: resume
    mode = (tmp_path / "out" / "results.json").stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # result files follow the umask, like any file the user creates


def _cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import sys; from unlearnkit.cli import main; sys.exit(main())",
                           *args], capture_output=True, text=True, timeout=300, **kwargs)


def test_installed_command_exits_2_with_one_line(tmp_path):
    proc = _cli(*_fill(RUN, tmp_path), "--set", "ga.lr=nan")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "unlearnkit: error: ga.lr=nan must be a finite number"
    assert not (tmp_path / "out").exists()
    usage = _cli("run", "--seeds")
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1 and "expected one argument" in usage.stderr


def test_methods_into_a_closed_pipe_ends_quietly():
    proc = subprocess.run(f"{sys.executable} -c 'import sys; from unlearnkit.cli import main; sys.exit(main())' "
                          "methods | head -n 1", shell=True, capture_output=True, text=True, timeout=300)
    assert proc.stdout.count("\n") == 1
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
