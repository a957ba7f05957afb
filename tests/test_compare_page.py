"""compare.html: written by ``run`` from the features the pipeline stores, rebuilt from the output folder
alone, self-contained (no network), and drawn without a script error in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import missing_component

from unlearnkit.bench.pipeline.config import ExperimentConfig
from unlearnkit.bench.pipeline.run import write_comparison
from unlearnkit.bench.reports.compare import VIEW_IDS, load_comparison, render_compare_page
from unlearnkit.cli import main as cli
from unlearnkit.errors import UnlearnkitError

METHODS = ["original", "retrain", "dist_match", "rl"]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """The command of the acceptance check: digits/cnn, random 10%, four methods, seed 0."""
    out = tmp_path_factory.mktemp("cmp") / "D"
    assert cli(["run", "--dataset", "digits", "--model", "cnn", "--scenario", "random", "--forget-size", "0.1",
                "--methods", ",".join(METHODS), "--seeds", "0", "--out", str(out), "--quiet"]) == 0
    return out


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def _open(browser: str, page: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--disable-component-update", "--no-first-run", "--hide-scrollbars",
                           "--virtual-time-budget=15000", "--enable-logging=stderr", "--v=0",
                           f"--user-data-dir={tmp / 'profile'}", *extra, page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)


def _page_requests(net_log: Path) -> list[str]:
    """http(s) requests the page made, from Chromium's net log (the browser's own background requests,
    whose initiator is "not an origin", excluded)."""
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [e["params"]["url"] for e in log["events"] if e["type"] == start
            and e.get("params", {}).get("url", "").startswith(("http:", "https:"))
            and e["params"].get("initiator") != "not an origin"]


def test_run_writes_the_page_and_its_records(digits_run):
    page = (digits_run / "compare.html").read_text()
    for view in VIEW_IDS:
        assert f'id="{view}"' in page
    assert page.count("<script") == 4 and "<script src" not in page  # everything inline
    assert digits_run.joinpath("compare.html").stat().st_size < 6e6
    for m in METHODS:
        assert (digits_run / "compare" / f"{m}.seed0.json").exists()
    data = load_comparison(digits_run, 0, METHODS)
    assert data["methods"] == ["dist_match", "rl"] and set(data["views"]) == set(METHODS)
    view = data["views"]["dist_match"]
    assert len(view["per_class"]["forget"]) == 10 and len(view["forget_matrix"]) == 10
    n_forget = len(json.loads((digits_run / "forget_indices.json").read_text())["0"])
    assert sum(map(sum, view["forget_matrix"])) == n_forget == len(view["membership"])
    # Retrain is Retrain: its CKA to itself is 1 on every layer
    assert data["views"]["retrain"]["cka"]["retrain"]["forget"] == pytest.approx([1.0] * len(data["layers"]))


def test_the_page_is_rebuilt_from_the_output_folder_alone(digits_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(digits_run, copy)
    (copy / "compare.html").unlink()
    config = ExperimentConfig(**json.loads((copy / "results.json").read_text())["config"])
    rebuilt = write_comparison(copy, config)
    assert rebuilt.read_text() == (digits_run / "compare.html").read_text()


def test_page_data_cannot_close_its_script_element():
    data = {"views": {"original": {}}, "methods": [], "title": "t", "note": "</script><script>alert(1)"}
    page = render_compare_page(data)
    assert "</script><script>alert(1)" not in page and "<\\/script><script>alert(1)" in page
    with pytest.raises(UnlearnkitError, match="Original"):
        render_compare_page({"views": {}, "methods": []})


@pytest.mark.slow
def test_page_renders_in_headless_chromium_offline(digits_run, tmp_path):
    browser = _chromium()
    if browser is None:
        missing_component("chromium", "Debian/Ubuntu: apt-get install -y chromium")
    page = digits_run / "compare.html"
    net_log = tmp_path / "net.json"
    dom = _open(browser, page, tmp_path, "--dump-dom", f"--log-net-log={net_log}")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-status="ok"' in dom.stdout, re.findall(r'data-status="[^"]*"', dom.stdout)
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    assert len(set(re.findall(r'id="exposed-\d+"', dom.stdout))) == 8  # the most exposed forget examples, drawn
    assert not _page_requests(net_log), f"the page reached the network: {_page_requests(net_log)[:5]}"
    shot = tmp_path / "compare.png"
    _open(browser, page, tmp_path, f"--screenshot={shot}", "--window-size=1400,3700")
    assert shot.exists() and shot.stat().st_size > 50_000


@pytest.mark.slow
def test_the_network_check_sees_what_a_page_requests(tmp_path):
    browser = _chromium()
    if browser is None:
        missing_component("chromium", "Debian/Ubuntu: apt-get install -y chromium")
    probe = tmp_path / "probe.html"
    probe.write_text('<html><body><img src="http://example.invalid/x.png"></body></html>')
    _open(browser, probe, tmp_path, "--dump-dom", f"--log-net-log={tmp_path / 'net.json'}")
    assert _page_requests(tmp_path / "net.json") == ["http://example.invalid/x.png"]


@pytest.mark.slow
def test_a_view_that_fails_is_named_in_the_status(digits_run, tmp_path):
    browser = _chromium()
    if browser is None:
        missing_component("chromium", "Debian/Ubuntu: apt-get install -y chromium")
    data = load_comparison(digits_run, 0, METHODS)
    del data["views"]["dist_match"]["cka"]  # a record without its layer similarities
    page = tmp_path / "broken.html"
    page.write_text(render_compare_page(data))
    dom = _open(browser, page, tmp_path, "--dump-dom")
    status = re.findall(r'data-status="([^"]*)"', dom.stdout)
    assert status and status[0].startswith("failed: layer-similarity:"), status


@pytest.mark.slow
@pytest.mark.parametrize("with_retrain", [False, True])
def test_a_users_model_gets_a_page_with_or_without_retrain(toy_random, tmp_path, with_retrain):
    from unlearnkit.bench.pipeline.comparison import write_model_comparison
    from unlearnkit.methods import get_method

    model, data = toy_random
    task = data.task
    unlearned = get_method("ga", epochs=1).unlearn(model, task, seed=0)
    retrain = get_method("retrain").unlearn(model, task, seed=0) if with_retrain else None
    page = write_model_comparison(tmp_path / "out", model, unlearned, task, method="ga", retrain=retrain)
    saved = load_comparison(tmp_path / "out", 0, ["ga"])
    assert saved["methods"] == ["ga"] and ("retrain" in saved["views"]) == with_retrain
    assert set(saved["views"]["ga"]["cka"]) == ({"original", "retrain"} if with_retrain else {"original"})
    browser = _chromium()
    if browser is None:
        missing_component("chromium", "Debian/Ubuntu: apt-get install -y chromium")
    dom = _open(browser, page, tmp_path, "--dump-dom")
    assert 'data-status="ok"' in dom.stdout, re.findall(r'data-status="[^"]*"', dom.stdout)
