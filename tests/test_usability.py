"""What a new user sees: dry runs that write nothing, readable plots and tables, help texts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from unlearnkit.bench.pipeline import ModelCache
from unlearnkit.bench.reports import markdown_table
from unlearnkit.bench.grid import run_bench
from unlearnkit.bench.grid import load_spec
from unlearnkit.bench.grid import ResultStore
from unlearnkit.cli import main as cli

SPEC = {
    "name": "dry",
    "seeds": [0, 1],
    "datasets": [{"name": "synthetic", "options": {"n_samples": 200}, "models": ["mlp"], "recipe": {"epochs": 3}}],
    "scenarios": [{"name": "random", "options": {"forget_size": 0.1}},
                  {"name": "class", "options": {"forget_class": 1}}],
    "methods": ["original", "retrain", "ft"],
    "method_params": {"ft": {"epochs": 1}},
}


def _files(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


def test_dry_run_without_a_store_summarises_and_creates_nothing(tmp_path, capsys):
    spec = tmp_path / "dry.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    store = tmp_path / "results" / "dry.sqlite"
    assert cli(["bench", str(spec), "--store", str(store), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "12 cells, 0 already" in out and "12 to run" in out
    assert "synthetic(n_samples=200)/mlp/random(forget_size=0.1): 6 of 6 to run" in out
    assert "nothing was run or written" in out
    assert not (tmp_path / "results").exists()


def test_dry_run_reads_an_existing_store_without_changing_it(tmp_path, capsys):
    data = {**SPEC, "scenarios": SPEC["scenarios"][:1]}
    spec = tmp_path / "dry.yaml"
    spec.write_text(yaml.safe_dump(data))
    store_path = tmp_path / "dry.sqlite"
    with ResultStore(store_path) as store:
        run_bench(load_spec(spec), store, cache=ModelCache(tmp_path / "cache"), workers=1, progress=False)
    data["seeds"] = [0, 1, 2]  # one more seed: 3 new cells with timings known from the store
    spec.write_text(yaml.safe_dump(data))
    before = _files(tmp_path)
    assert cli(["bench", str(spec), "--store", str(store_path), "--dry-run", "-v", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "9 cells, 6 already" in out and "3 to run" in out
    assert "estimated cell time" in out and "without a stored timing" not in out
    assert "ft\tseed 2" in out  # -v lists the pending cells
    assert _files(tmp_path) == before


def test_method_styles_are_distinct_for_many_methods():
    from unlearnkit.bench.reports.plots import method_styles

    names = [f"m{i}" for i in range(45)]
    styles = method_styles(names)
    pairs = {(tuple(s["color"]), s["marker"]) for s in styles.values()}
    assert len(pairs) == len(names)


def test_labels_of_coinciding_points_do_not_overlap():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from unlearnkit.bench.reports.plots import method_styles, scatter_methods

    # ft sits exactly on original and ga next to neggrad_plus, as in the demo's plot
    points = [("original", 0.0, 99.4), ("ft", 0.0, 99.4), ("ga", 0.1, 99.3), ("neggrad_plus", 0.1, 99.3),
              ("l1_sparse", 0.9, 99.1), ("rl", 37.0, 98.8), ("retrain", 0.0, 98.7)]
    fig, ax = plt.subplots(figsize=(5, 4))
    texts = scatter_methods(ax, points, method_styles(p[0] for p in points))
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in texts]
    assert len({(b.x0, b.y0) for b in boxes}) == len(points)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not (a.x0 < b.x1 and a.x1 > b.x0 and a.y0 < b.y1 and a.y1 > b.y0), "two labels overlap"
    plt.close(fig)


def test_forget_loss_keeps_significant_digits():
    summary = [{"method": "ft", "mean": {"forget_acc": 1.0, "forget_loss": 1.53e-4, "time_s": 1.0},
                "std": {"forget_acc": 0.0, "time_s": 0.0}}]
    table = markdown_table(summary)
    assert "0.000153" in table and "| 0.000 |" not in table


def test_demo_help_shows_a_single_percent_sign(capsys):
    with pytest.raises(SystemExit):
        cli(["demo", "--help"])
    out = capsys.readouterr().out
    assert "10%" in out and "%%" not in out


def test_audit_report_reads_its_ceiling_and_resolution_from_the_numbers():
    from unlearnkit.bench.reports.audit import _ceiling_sentence, resolution_warning, separable_fq

    rows = [{"method": "retrain", "forgetting_quality": 0.303, "forgetting_quality_cp": 1.0},
            {"method": "ga", "forgetting_quality": 0.2, "forgetting_quality_cp": 1.0},
            {"method": "rl", "forgetting_quality": 0.1, "forgetting_quality_cp": 0.4}]
    assert "0.303" in _ceiling_sentence(rows) and "0.17" not in _ceiling_sentence(rows)
    # N = 4: a perfectly exposed method still gets FQ (CP) 1, so the report must say it cannot separate
    assert separable_fq(4, "clopper_pearson") == 1.0
    warning = resolution_warning(4, rows)
    assert "N = 4" in warning and "`ga` ties with Retrain's 1.000" in warning and "use N >=" in warning
    assert "`rl`" not in warning
    assert separable_fq(32, "clopper_pearson") < 0.1 and resolution_warning(32, rows) == ""


# -- README, docs/cli.md and --help agree with the code -----------------------------------------------
ROOT = Path(__file__).resolve().parents[1]
#: the pages that show commands to paste
COMMAND_PAGES = (ROOT / "README.md", ROOT / "docs" / "cli.md")


def documented_commands() -> list[list[str]]:
    """Every ``unlearnkit ...`` command in the shell blocks and inline code of the README and the
    command-line page, as argv lists."""
    import re
    import shlex

    text = "\n".join(page.read_text() for page in COMMAND_PAGES)
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        lines += block.replace("\\\n", " ").splitlines()
    # inline code that is a whole command (a subcommand name alone is just a mention)
    lines += [c for c in re.findall(r"`(unlearnkit [^`]+)`", text) if len(c.split()) > 2]
    commands = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line.startswith("unlearnkit "):
            commands.append(shlex.split(line)[1:])
    return commands


def test_every_documented_command_parses():
    from unlearnkit.cli import build_parser

    commands = documented_commands()
    assert len(commands) >= 8
    for argv in commands:
        try:
            build_parser().parse_args(argv)
        except SystemExit as exc:  # --help exits 0; a bad flag exits 2
            if exc.code == 0:
                continue
            raise AssertionError(f"documented command does not parse: unlearnkit {' '.join(argv)}") from exc


def test_readme_yaml_example_is_the_documented_command(tmp_path):
    import re

    from unlearnkit.cli import build_parser
    from unlearnkit.cli.common import config_from_args

    text = (ROOT / "docs" / "cli.md").read_text()
    example = re.search(r"A complete `experiment.yaml`.*?```yaml\n(.*?)```", text, flags=re.S).group(1)
    (tmp_path / "experiment.yaml").write_text(example)
    command = next(c for c in documented_commands() if c[:1] == ["run"] and "--forget-class" in c)
    from_flags = config_from_args(build_parser().parse_args(command))
    from_yaml = config_from_args(build_parser().parse_args(["run", "--config", str(tmp_path / "experiment.yaml"),
                                                           "--out", "runs/x"]))
    assert from_yaml.to_dict() == from_flags.to_dict()


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    d = tmp_path_factory.mktemp("store")
    spec = d / "dry.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "seeds": [0], "scenarios": SPEC["scenarios"][:1]}))
    with ResultStore(d / "s.sqlite") as store:
        run_bench(load_spec(spec), store, cache=ModelCache(d / "cache"), workers=1, progress=False)
    return d / "s.sqlite"


def test_results_filter_with_an_unknown_name_says_what_the_store_holds(small_store, capsys):
    assert cli(["results", str(small_store), "--method", "scrb"]) == 2
    err = capsys.readouterr().err
    assert "no method 'scrb'" in err and "ft, original, retrain" in err
    assert cli(["results", str(small_store), "--dataset", "digits"]) == 2
    assert "it holds: synthetic" in capsys.readouterr().err


def test_results_say_their_units_and_offer_both(small_store, capsys):
    import csv
    import io

    assert cli(["results", str(small_store), "-f", "csv", "--method", "ft"]) == 0
    fraction = next(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert cli(["results", str(small_store), "-f", "csv", "--method", "ft", "--units", "percent"]) == 0
    percent = next(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert float(percent["forget_acc [%]"]) == pytest.approx(100 * float(fraction["forget_acc [fraction]"]))
    assert float(percent["time_s"]) == pytest.approx(float(fraction["time_s"]))  # seconds are not rates
    assert cli(["results", str(small_store), "--method", "ft"]) == 0
    assert "forget_acc [%]" in capsys.readouterr().out  # the table uses percent, like every report


def test_run_help_shows_default_methods_and_each_scenario_option(capsys):
    with pytest.raises(SystemExit):
        cli(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "default original,retrain,ft" in out
    assert "--forget-size FLOAT" in out and "training set, default 16" in out and "to forget, default 0.1" in out
    assert "--goal {misclassify,relabel}" in out
    # a flag shared by scenarios with different meanings explains each
    assert "backdoor: class the poisoned samples are relabelled to" in out and "label: class the flipped" in out


def test_tuning_shows_a_progress_bar_per_method(tmp_path, capsys):
    from unlearnkit.bench.grid import tune_spec

    data = {**SPEC, "seeds": [0], "scenarios": SPEC["scenarios"][:1], "methods": ["original", "retrain", "ga"],
            "method_params": {}, "search": {"ga": {"lr": {"low": 1e-3, "high": 1e-1, "log": True}}},
            "tune": {"trials": 2, "seeds": [1000]}}
    spec = tmp_path / "t.yaml"
    spec.write_text(yaml.safe_dump(data))
    with ResultStore(tmp_path / "t.sqlite") as store:
        tune_spec(load_spec(spec), store, {}, cache=ModelCache(tmp_path / "cache"), progress=True)
    err = capsys.readouterr().err
    assert "tuning ga on synthetic(n_samples=200)/mlp/random" in err and "2/2" in err and "best gap" in err


def test_a_cells_warnings_are_reported_with_the_cell_named(tmp_path, monkeypatch):
    import logging
    import warnings

    from unlearnkit.bench.pipeline import Experiment

    real = Experiment.run_cell

    def noisy(self, ctx, name):
        if name == "ft":
            logging.getLogger("unlearnkit.evaluation.metrics").warning("model outputs are not finite for 3 examples")
            warnings.warn("a deprecated option", UserWarning)
        return real(self, ctx, name)

    monkeypatch.setattr(Experiment, "run_cell", noisy)
    spec = tmp_path / "w.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "seeds": [0], "scenarios": SPEC["scenarios"][:1]}))
    lines: list[str] = []
    with ResultStore(tmp_path / "w.sqlite") as store:
        run_bench(load_spec(spec), store, cache=ModelCache(tmp_path / "cache"), workers=1, progress=False,
                  status_line=lines.append)
    cell = "synthetic(n_samples=200)/mlp/random(forget_size=0.1) seed 0 ft"
    assert any(cell in line and "not finite for 3 examples" in line for line in lines)
    assert any(cell in line and "UserWarning: a deprecated option" in line for line in lines)
    assert not any("retrain:" in line and "warning" in line for line in lines)


def test_only_methods_restricts_the_dry_run_and_rejects_a_method_outside_the_spec(tmp_path, capsys):
    spec = tmp_path / "dry.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    store = tmp_path / "dry.sqlite"
    assert cli(["bench", str(spec), "--store", str(store), "--dry-run", "--only-methods", "ft"]) == 0
    assert "4 cells, 0 already" in capsys.readouterr().out  # ft only: 2 scenarios x 2 seeds
    assert cli(["bench", str(spec), "--store", str(store), "--dry-run", "--only-methods", "ft,ga"]) == 2
    assert "--only-methods ['ga'] are not methods of spec" in capsys.readouterr().err
    # leaving out a method the spec gives hyperparameters for drops them with it
    assert cli(["bench", str(spec), "--store", str(store), "--dry-run", "--only-methods", "original,retrain"]) == 0
    assert "8 cells, 0 already" in capsys.readouterr().out  # 2 methods x 2 scenarios x 2 seeds


def test_only_models_restricts_the_dry_run(tmp_path, capsys):
    spec = tmp_path / "dry.yaml"
    two_models = {**SPEC, "datasets": [{**SPEC["datasets"][0], "models": ["mlp", "cnn1d"]}]}
    spec.write_text(yaml.safe_dump(two_models))
    store = tmp_path / "dry.sqlite"
    assert cli(["bench", str(spec), "--store", str(store), "--dry-run"]) == 0
    assert "24 cells, 0 already" in capsys.readouterr().out  # 2 models x 2 scenarios x 3 methods x 2 seeds
    assert cli(["bench", str(spec), "--store", str(store), "--dry-run", "--only-models", "mlp"]) == 0
    assert "12 cells, 0 already" in capsys.readouterr().out
    assert cli(["bench", str(spec), "--store", str(store), "--dry-run", "--only-models", "resnet18"]) == 2
    assert "leave no experiment" in capsys.readouterr().err
