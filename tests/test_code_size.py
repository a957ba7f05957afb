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


MAX_PACKAGE_MODULES = 12
#: folders whose modules are entries of a registry (one file per method or scenario)
REGISTRY_FOLDERS = {"methods", "scenarios"}


def crowded_packages(package: Path) -> list[str]:
    """Package folders (other than the registries) holding more than MAX_PACKAGE_MODULES modules,
    ``__init__.py`` included."""
    crowded = []
    for folder in sorted({p.parent for p in package.rglob("*.py")}):
        n = len(list(folder.glob("*.py")))
        if n > MAX_PACKAGE_MODULES and folder.name not in REGISTRY_FOLDERS:
            crowded.append(f"{folder.relative_to(package.parent)}: {n} modules")
    return crowded


def test_no_package_folder_is_crowded():
    crowded = crowded_packages(ROOT / "src" / "unlearnkit")
    assert not crowded, (f"package folders over {MAX_PACKAGE_MODULES} modules (split them by concern):\n  "
                         + "\n  ".join(crowded))


def test_the_crowding_check_names_the_folder(tmp_path):
    for i in range(MAX_PACKAGE_MODULES + 1):
        (tmp_path / "pkg" / "bench").mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / "bench" / f"m{i}.py").write_text("")
        (tmp_path / "pkg" / "methods").mkdir(exist_ok=True)
        (tmp_path / "pkg" / "methods" / f"m{i}.py").write_text("")
    assert crowded_packages(tmp_path / "pkg") == [f"pkg/bench: {MAX_PACKAGE_MODULES + 1} modules"]
