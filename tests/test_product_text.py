"""Product text (code, docstrings, tests, README, BENCHMARKS.md, DEVELOPING.md, docs/) stays inside
the repository: no pointer to a design file or notes kept elsewhere, no tracker numbers."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "a design file outside docs/": re.compile(r"DESIGN\.md"),
    "a folder outside the repository": re.compile(r"\.\./shared|/work/"),
    "a tracker number": re.compile(r"\bissues?[- #]?\d+", re.IGNORECASE),
}


def _files() -> list[Path]:
    tops = [ROOT / n for n in ("README.md", "BENCHMARKS.md", "DEVELOPING.md", "Makefile", "pyproject.toml")]
    trees = [p for d in ("src", "tests", "benchmarks", "docs") for p in sorted((ROOT / d).rglob("*"))
             if p.is_file() and p.suffix in (".py", ".md", ".yaml", ".yml", ".toml", ".txt")]
    return [p for p in tops + trees if p.exists() and p.name != Path(__file__).name]


def offending_lines(paths: list[Path]) -> list[str]:
    out = []
    for path in paths:
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            for what, pattern in FORBIDDEN.items():
                if pattern.search(line):
                    out.append(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{n}: {what}")
    return out


def test_product_text_points_only_inside_the_repository():
    found = offending_lines(_files())
    assert not found, "\n".join(found)


def test_the_scan_finds_each_kind(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text('"""See DESIGN.md."""\n# from ../shared/notes\nsource = "issue 5 measurement"\nfine = 1\n')
    assert [line.split(": ", 1)[1] for line in offending_lines([bad])] == [
        "a design file outside docs/", "a folder outside the repository", "a tracker number"]
