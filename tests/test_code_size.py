"""Size limits that keep the code readable: no source file over 350 lines, no function over 60."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_FILE_LINES = 350
MAX_FUNCTION_LINES = 60


def _sources():
    for folder in ("src", "benchmarks"):
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_no_source_file_over_350_lines():
    long = [f"{p.relative_to(ROOT)}: {n} lines" for p in _sources()
            if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES]
    assert not long, (f"source files over {MAX_FILE_LINES} lines (split them by concern):\n  " + "\n  ".join(long))


def test_no_function_over_60_lines():
    long = []
    for p in _sources():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1  # from `def` to its last line, decorators aside
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.name}(): {n} lines")
    assert not long, (f"functions over {MAX_FUNCTION_LINES} lines (extract steps into named helpers):\n  "
                      + "\n  ".join(long))


def test_the_size_check_names_the_offender(tmp_path, monkeypatch):
    """The checks must be able to fail, and say where."""
    import pytest

    big = tmp_path / "src" / "big.py"
    big.parent.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES + 1))
    big.write_text("def huge():\n" + body + "\n" + "\n" * MAX_FILE_LINES)
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    (tmp_path / "benchmarks").mkdir()
    with pytest.raises(AssertionError, match=r"src/big.py:1 huge\(\): 62 lines"):
        test_no_function_over_60_lines()
    with pytest.raises(AssertionError, match=r"src/big.py: \d+ lines"):
        test_no_source_file_over_350_lines()
