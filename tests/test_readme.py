"""The README's Python example runs as written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    assert len(blocks[0].strip().splitlines()) <= 12
    exec(compile(blocks[0], "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "forget_acc" in out and "mia_efficacy" in out


def test_readme_methods_table_lists_every_registered_method():
    from unlearnkit.methods import METHODS
    from unlearnkit.methods.base import RETAIN_FREE_SUFFIX

    rows = set(re.findall(r"^\| `(\w+)` \|", README.read_text(), flags=re.M))
    # retain-free variants are described once under the table, not as rows
    names = {n for n in METHODS.names() if not METHODS.get(n).withheld}
    assert rows == names, "README's method table and the registry disagree"
    assert all(n.endswith(RETAIN_FREE_SUFFIX) for n in set(METHODS.names()) - names)


@pytest.mark.slow
def test_readme_unlearn_example_runs_as_pasted(tmp_path):
    """The `unlearnkit unlearn` block, run by bash in an empty folder with only the venv on PATH."""
    blocks = [b for b in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
              if "unlearnkit unlearn --model-factory" in b]
    assert len(blocks) == 1, "README must hold one bash block with the `unlearnkit unlearn` example"
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "OMP_NUM_THREADS": "1", "HOME": str(tmp_path)}
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", blocks[0]], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "OK:" in proc.stdout
    receipt = json.loads((tmp_path / "deletion-1" / "receipt.json").read_text())
    assert receipt["no_op"] is False
    assert receipt["metrics"]["after"]["forget_loss"] > receipt["metrics"]["before"]["forget_loss"]
