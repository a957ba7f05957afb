"""Warnings on the command line are one readable line (cell, what happened, what to try) with no source
path or code line; the Python API raises real warnings naming the cell."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings

import pytest

from unlearnkit.bench.pipeline import ExperimentConfig, ModelCache, run_experiment
from unlearnkit.bench.pipeline.cells import raise_again
from unlearnkit.cli import main as cli
from unlearnkit.cli import OneLineFormatter, show_warning
from unlearnkit.errors import NoOpWarning

# ga for one epoch on a model trained for three: its call leaves seed 0's forget set as it was
NOOP_RUN = ["--dataset", "synthetic", "--model", "mlp", "--scenario", "random", "--forget-size", "0.1",
            "--methods", "original,retrain,ga", "--seeds", "0", "--set", "ga.epochs=1", "--set", "train.epochs=3"]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_command_line_prints_a_warning_as_one_readable_line(tmp_path, workers):
    cmd = [sys.executable, "-c", "import sys; from unlearnkit.cli import main; sys.exit(main(sys.argv[1:]))",
           "run", *NOOP_RUN, "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c"), "--workers", workers]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if "warning" in line.lower()]
    noop = [line for line in lines if "left the forget set unchanged" in line]
    assert len(noop) == 1, proc.stderr[-2000:]
    assert noop[0].startswith("unlearnkit: warning: seed 0 ga: ga left the forget set unchanged")
    assert "Likely cause:" in noop[0] and "Try:" in noop[0]
    for line in proc.stderr.splitlines():  # no source path, no line of code, anywhere
        assert ".py:" not in line and "warnings.warn" not in line and "method.unlearn(" not in line, line


def test_the_python_api_raises_real_warnings_naming_the_cell(tmp_path):
    config = ExperimentConfig(dataset="synthetic", model="mlp", scenario="random", methods=["original", "ga"],
                              seeds=[0], recipe={"epochs": 3}, scenario_options={"forget_size": 0.1},
                              method_params={"ga": {"epochs": 1}})
    with pytest.warns(NoOpWarning, match=r"^seed 0 ga: ga left the forget set unchanged.*Try: ") as record:
        run_experiment(config, tmp_path / "out", cache=ModelCache(tmp_path / "c"), progress=False)
    assert record[0].category is NoOpWarning and record[0].filename.endswith(".py")  # a real warning, with its source


def test_the_command_line_gives_back_the_callers_warning_display(tmp_path):
    before = warnings.showwarning
    assert cli(["methods"]) == 0
    assert warnings.showwarning is before


def test_one_line_formatter_and_display(capsys):
    record = logging.LogRecord("unlearnkit.methods.x", logging.WARNING, "/src/x.py", 12, "first\n  second", None, None)
    assert OneLineFormatter().format(record) == "unlearnkit: warning: first second"
    info = logging.LogRecord("unlearnkit.data", logging.INFO, "/src/d.py", 3, "generating", None, None)
    assert OneLineFormatter().format(info) == "INFO unlearnkit.data: generating"
    show_warning(NoOpWarning("seed 1 ft: nothing\nchanged"), NoOpWarning, "/src/unlearnkit/x.py", 245)
    assert capsys.readouterr().err == "unlearnkit: warning: seed 1 ft: nothing changed\n"


def test_collected_warnings_are_raised_again_with_the_cell_named(caplog):
    with pytest.warns(NoOpWarning, match="^seed 2 ft: ft left"), pytest.warns(DeprecationWarning, match="^seed 2 ft: old"):
        raise_again("seed 2 ft", ["NoOpWarning: ft left it", "DeprecationWarning: old API"])
    with pytest.warns(UserWarning, match="^seed 2 ft: odd"):
        raise_again("seed 2 ft", ["SomeLibraryWarning: odd"])
    with caplog.at_level(logging.WARNING, logger="unlearnkit.bench.pipeline.cells"):
        raise_again("seed 2 ft", ["warning (unlearnkit.methods.ft): lr too low"])
    assert caplog.records[-1].getMessage() == "seed 2 ft: lr too low"
