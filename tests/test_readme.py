"""The README's Python example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

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

    rows = set(re.findall(r"^\| `(\w+)` \|", README.read_text(), flags=re.M))
    assert rows == set(METHODS.names()), "README's method table and the registry disagree"
