"""docs/own-model.md runs as pasted: every bash and python block in order, in one empty folder, with
only the virtual environment and the system tools on the PATH; what it shows is what they print, and
the files they write hold what it says."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import missing_component

DOC = Path(__file__).resolve().parents[1] / "docs" / "own-model.md"
RUNNABLE = re.compile(r"```(bash|python)\n(.*?)```", re.S)
SHOWN = re.compile(r"```text\n(.*?)```", re.S)


def _masked(line: str) -> str:
    """A printed line without what changes from run to run or is shortened on the page: digests, times."""
    line = re.sub(r"[0-9a-f]{8,}…?", "<hex>", line)
    return re.sub(r"\d+\.\d+ s\b", "<t> s", line).rstrip()


def _run_blocks(folder: Path) -> list[tuple[str, subprocess.CompletedProcess]]:
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "OMP_NUM_THREADS": "1", "HOME": str(folder)}
    runs = []
    for lang, body in RUNNABLE.findall(DOC.read_text()):
        command = ["bash", "-euo", "pipefail", "-c", body] if lang == "bash" else [sys.executable, "-"]
        proc = subprocess.run(command, cwd=folder, env=env, input=body if lang == "python" else None,
                              capture_output=True, text=True, timeout=400)
        assert proc.returncode == 0, f"block\n{body}\nfailed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        runs.append((body, proc))
    return runs


@pytest.mark.slow
@pytest.mark.timeout(900)  # a dozen commands, each starting torch: minutes on a loaded 2-core machine
def test_the_own_model_page_runs_as_pasted_and_shows_what_it_prints(tmp_path):
    if shutil.which("openssl") is None:
        missing_component("openssl", "apt-get install openssl")
    runs = _run_blocks(tmp_path)
    printed = {_masked(line) for _, proc in runs for line in (proc.stdout + proc.stderr).splitlines()}
    shown = [line for block in SHOWN.findall(DOC.read_text()) for line in block.splitlines() if line.strip()]
    assert len(shown) > 40
    missing = [line for line in shown if _masked(line) not in printed]
    assert not missing, "the page shows lines the commands do not print:\n" + "\n".join(missing)

    receipts = {name: json.loads((tmp_path / name / "receipt.json").read_text())
                for name in ("deletion-1", "deletion-2", "deletion-3", "samples-1")}
    first, second, third = receipts["deletion-1"], receipts["deletion-2"], receipts["deletion-3"]
    assert first["signer"]["public_key_sha256"] == second["signer"]["public_key_sha256"]
    assert second["chain"]["previous_digest"] == first["digest"]["sha256"]
    assert second["chain"]["rows_removed"] == 125 and "removed_share" in second["drift"]["crossed"]
    assert third["method"]["name"] == "retrain" and third["drift"]["retrain_recommended"] is False
    assert third["counts"]["retain"] == 1000 - 127
    assert receipts["samples-1"]["data"]["seen_by_method"] == ["forget", "third_party"]
    assert not (tmp_path / "samples-x").exists()
    outputs = "\n".join(proc.stdout + proc.stderr for _, proc in runs)
    assert "OK: the chain of 2 requests holds together" in outputs and "OK: the chain of 3 requests" in outputs
    assert "Signature Verified Successfully" in outputs
    assert f"{second['digest']['sha256']}  content.json" in outputs  # sha256sum agrees with the receipt
    assert "80 ['forget', 'third_party']\n[]" in outputs  # the Python block: two links, the chain holds
