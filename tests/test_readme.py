"""The README's Python example runs as written (the own-model walk-through is tested in
test_own_model_doc.py)."""

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
    from unlearnkit.methods.base import RETAIN_FREE_SUFFIX

    rows = set(re.findall(r"^\| `(\w+)` \|", README.read_text(), flags=re.M))
    # retain-free variants are described once under the table, not as rows
    names = {n for n in METHODS.names() if not METHODS.get(n).withheld}
    assert rows == names, "README's method table and the registry disagree"
    assert all(n.endswith(RETAIN_FREE_SUFFIX) for n in set(METHODS.names()) - names)
