"""The experiment protocol: config resolution, the user's model left as given, honest timings."""

from __future__ import annotations

import json

import pytest

import unlearnkit
from unlearnkit.cli import build_parser, main
from unlearnkit.cli.common import config_from_args

FAST = ["--dataset", "synthetic", "--model", "mlp", "--set", "train.epochs=5", "--quiet"]


@pytest.mark.parametrize("command", ["run", "audit"])
def test_yaml_methods_are_used_unless_a_flag_overrides_them(tmp_path, command):
    cfg = tmp_path / "x.yaml"
    cfg.write_text("dataset: synthetic\nmodel: mlp\nmethods: [original, retrain, rl]\nseeds: [3]\n")
    parser = build_parser()
    args = parser.parse_args([command, "--config", str(cfg), "--out", str(tmp_path / "o")])
    assert config_from_args(args).methods == ["original", "retrain", "rl"]
    args = parser.parse_args([command, "--config", str(cfg), "--methods", "ft", "--out", str(tmp_path / "o")])
    assert config_from_args(args).methods == ["ft"]
    args = parser.parse_args([command, "--out", str(tmp_path / "o")])  # neither: the command's default
    assert config_from_args(args).methods[:2] == ["original", "retrain"]


def _modes(model):
    return [m.training for m in model.modules()]


@pytest.mark.parametrize("inplace", [False, True])
def test_unlearn_and_evaluate_leave_every_module_mode_of_the_users_model(toy_random, inplace):
    """A user's model in train mode with one submodule frozen in eval (e.g. a BatchNorm) keeps exactly
    those modes: validating the data and evaluating must not flip the submodule to train."""
    import copy

    model, data = toy_random
    mine = copy.deepcopy(model).train()
    frozen = list(mine.modules())[2]
    frozen.eval()
    before = _modes(mine)
    assert before.count(False) == 1
    t = data.task
    out = unlearnkit.unlearn(mine, forget=(t.forget.x, t.forget.y), retain=(t.retain.x, t.retain.y),
                             method="ft", epochs=1, inplace=inplace)
    assert _modes(mine) == before
    assert _modes(out) == before
    unlearnkit.evaluate(mine, forget=(t.forget.x, t.forget.y), retain=(t.retain.x, t.retain.y),
                        test=(t.test.x, t.test.y))
    assert _modes(mine) == before


def test_retrain_time_in_a_warm_cache_is_measured_in_this_run(tmp_path):
    """Retrain's time must not be read back from the cache entry (written by whichever run trained
    it, under whatever load): a warm run measures it again, so speedups compare times of one run."""
    cache = tmp_path / "cache"
    args = [*FAST, "--cache-dir", str(cache), "--scenario", "random", "--forget-size", "0.1",
            "--methods", "retrain,ft", "--seeds", "0", "--set", "ft.epochs=1"]
    assert main(["run", *args, "--out", str(tmp_path / "cold")]) == 0
    cold = json.loads((tmp_path / "cold" / "results.json").read_text())
    # make every cached model claim it took 1000 s to train, as a loaded machine once might have
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    entries = list((cache / "models").glob("*.safetensors"))
    assert entries
    for path in entries:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata()
        info = json.loads(meta["unlearnkit"])
        save_file(load_file(str(path)), str(path), metadata={**meta, "unlearnkit": json.dumps({**info, "time_s": 1000.0})})
    assert main(["run", *args, "--out", str(tmp_path / "warm")]) == 0
    warm = json.loads((tmp_path / "warm" / "results.json").read_text())
    retrain = next(r for r in warm["rows"] if r["method"] == "retrain")
    assert retrain["time_s"] < 100, "Retrain's time came from the cache entry, not from this run"
    assert retrain["time_source"] == "measured"
    speedups = {e["method"]: e["speedup"] for e in warm["summary"]}
    cold_speedups = {e["method"]: e["speedup"] for e in cold["summary"]}
    assert speedups["ft"] < 100 * cold_speedups["ft"]




def test_a_registered_metric_reaches_the_row_the_report_and_the_leaderboard(tmp_path, toy_random):
    """Adding a metric = one function + its registry entry: the row builders compute it, the run's
    report and the leaderboard show it under its label, and evaluate() returns it."""
    from unlearnkit.bench.pipeline import ExperimentConfig, run_experiment
    from unlearnkit.bench.reports import markdown_leaderboard, summaries
    from unlearnkit.evaluation import METRICS, accuracy, evaluate, register_metric

    @register_metric("forget_error", label="Forget error", unit="%", better="closest")
    def forget_error(model, inputs):
        return 1.0 - accuracy(model, inputs.task.forget)

    try:
        config = ExperimentConfig(dataset="synthetic", model="mlp", scenario="random", methods=["retrain", "ft"],
                                  seeds=[0], recipe={"epochs": 3}, method_params={"ft": {"epochs": 1}},
                                  scenario_options={"forget_size": 0.1})
        results = run_experiment(config, tmp_path / "out", progress=False)
        for row in results["rows"]:
            assert row["forget_error"] == pytest.approx(1.0 - row["forget_acc"])
        report = (tmp_path / "out" / "report.md").read_text()
        assert "| Forget error |" in report
        leaderboard = markdown_leaderboard(summaries([{**r, "grp": "g"} for r in results["rows"]]))
        assert "| Forget error |" in leaderboard
        model, data = toy_random
        t = data.task
        assert evaluate(model, forget=(t.forget.x, t.forget.y))["forget_error"] == pytest.approx(
            1.0 - accuracy(model, t.forget))
    finally:
        METRICS.remove("forget_error")
    assert "forget_error" not in METRICS


def test_metric_registry_rejects_duplicates_and_bad_directions():
    from unlearnkit.errors import UnknownNameError, UnlearnkitError
    from unlearnkit.evaluation import METRICS, declare_metric

    with pytest.raises(UnlearnkitError, match="'forget_acc' is already registered"):
        declare_metric("forget_acc", label="x", unit="%", better="higher")
    with pytest.raises(UnlearnkitError, match="better='up'; use one of"):
        declare_metric("new_metric", label="x", unit="%", better="up")
    with pytest.raises(UnknownNameError, match="unknown metric 'nope'; valid names: .*forget_acc"):
        METRICS.get("nope")


def test_flag_values_are_typed_once_before_training_and_keys_hash_typed_values(tmp_path):
    """``--set ga.lr=0.1`` is the float 0.1 in the config, in results.json and in the cell key (the
    same cell as 0.1 from YAML); scenario options and recipe overrides are typed the same way."""
    from unlearnkit.bench.pipeline import ExperimentConfig, cell_key

    parser = build_parser()
    args = parser.parse_args(["run", *FAST, "--methods", "retrain,ga", "--seeds", "0", "--set", "ga.lr=0.1",
                              "--set", "ga.epochs=2", "--set", "train.lr=1e-3", "--scenario", "random",
                              "--forget-size", "0.1", "--out", str(tmp_path / "o")])
    config = config_from_args(args)
    assert config.method_params == {"ga": {"lr": 0.1, "epochs": 2}}
    assert isinstance(config.method_params["ga"]["lr"], float) and isinstance(config.method_params["ga"]["epochs"], int)
    assert config.scenario_options == {"forget_size": 0.1} and config.recipe["lr"] == 0.001
    from_yaml = ExperimentConfig(dataset="synthetic", model="mlp", scenario="random", methods=["retrain", "ga"],
                                 seeds=[0], method_params={"ga": {"lr": 0.1, "epochs": 2}},
                                 scenario_options={"forget_size": 0.1}, recipe={"epochs": 5, "lr": 0.001})
    raw = ExperimentConfig(dataset="synthetic", model="mlp", scenario="random", methods=["retrain", "ga"],
                           seeds=[0], method_params={"ga": {"lr": "0.1", "epochs": "2"}},
                           scenario_options={"forget_size": "0.1"}, recipe={"epochs": "5", "lr": "1e-3"})
    assert cell_key(raw, "ga", 0) == cell_key(from_yaml, "ga", 0) == cell_key(config, "ga", 0)
    assert main(["run", *FAST, "--methods", "retrain,ga", "--seeds", "0", "--set", "ga.lr=0.1",
                 "--set", "ga.epochs=1", "--forget-size", "0.1", "--cache-dir", str(tmp_path / "c"),
                 "--out", str(tmp_path / "o")]) == 0
    saved = json.loads((tmp_path / "o" / "results.json").read_text())["config"]
    assert saved["method_params"]["ga"] == {"lr": 0.1, "epochs": 1}
    assert saved["scenario_options"] == {"forget_size": 0.1}


@pytest.mark.parametrize("sets, message", [
    (["--set", "ga.lr=-1"], "ga.lr=-1.0 must be > 0"),
    (["--set", "train.epochs=two"], "train.epochs must be of type int, got 'two'"),
    (["--forget-size", "lots"], "forget_size must be of type float, got 'lots'"),
])
def test_bad_values_fail_while_resolving_the_config(tmp_path, sets, message):
    from unlearnkit.errors import UnlearnkitError

    args = build_parser().parse_args(["run", *FAST, "--methods", "retrain,ga", *sets, "--out", str(tmp_path)])
    with pytest.raises(UnlearnkitError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        config_from_args(args)


def test_cache_and_cell_keys_carry_the_runtime_that_changes_weights(tmp_path):
    """Torch version, device type and (on CPU) the thread count change trained weights: they are in
    the model-cache key and the cell key, and the thread count is set by the one policy."""
    import torch

    from unlearnkit.bench.pipeline import Experiment, ExperimentConfig, cell_key
    from unlearnkit.bench.pipeline.runtime import runtime_key

    def config(threads):
        return ExperimentConfig(dataset="synthetic", model="mlp", scenario="random", methods=["ft"], seeds=[0],
                                device="cpu", threads=threads)

    exp = Experiment(config(1), progress=False)
    assert torch.get_num_threads() == 1
    data = exp.prepare(0).data
    key = exp.model_key(0, data)
    assert key["runtime"] == {"torch": torch.__version__, "device": "cpu", "threads": 1}
    assert runtime_key(torch.device("cuda"), 4)["threads"] is None  # GPU kernels do not depend on it
    assert cell_key(config(1), "ft", 0) != cell_key(config(2), "ft", 0)
    assert cell_key(config(1), "ft", 0) == cell_key(ExperimentConfig(**{**config(1).to_dict(), "device": "auto"}),
                                                    "ft", 0) or torch.cuda.is_available()


def test_workers_times_threads_may_not_exceed_the_cores():
    from unlearnkit.bench.pipeline.runtime import cpu_budget, plan_workers
    from unlearnkit.errors import UnlearnkitError

    cores = cpu_budget()
    assert plan_workers(0, 1) == min(cores, 8)
    assert plan_workers(0, cores) == 1
    with pytest.raises(UnlearnkitError, match=rf"{cores + 1} worker\(s\) x 1 thread\(s\) need {cores + 1} cores but "
                                              rf"{cores} are available"):
        plan_workers(cores + 1, 1)


def test_run_records_its_runtime(tmp_path):
    assert main(["run", *FAST, "--methods", "original", "--seeds", "0", "--cache-dir", str(tmp_path / "c"),
                 "--out", str(tmp_path / "o")]) == 0
    runtime = json.loads((tmp_path / "o" / "results.json").read_text())["runtime"]
    assert runtime["threads"] == 1 and runtime["workers"] == 1 and runtime["torch"]
