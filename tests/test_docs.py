"""The design documents under docs/: every link inside the repository resolves (files and section
anchors), and the pages that describe code name things that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / n for n in ("README.md", "BENCHMARKS.md", "DEVELOPING.md")]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            text = line.lstrip("#").strip().lower()
            out.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text)))
    return out


def _broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target} (no such section)")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_resolve(page):
    assert not _broken_links(page), f"{page.name}: broken links {_broken_links(page)}"


def test_link_checker_reports_missing_files_and_sections(tmp_path):
    (tmp_path / "a.md").write_text("# Title here\n[ok](#title-here) [gone](b.md) [bad](a.md#nothing)\n")
    assert _broken_links(tmp_path / "a.md") == ["b.md (no such file)", "a.md#nothing (no such section)"]


def test_architecture_page_names_real_modules():
    """Every `path/module.py` the architecture page mentions exists in the package."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    package = ROOT / "src" / "unlearnkit"
    named = set(re.findall(r"`([a-z_/]+\.py)`", text))
    assert named, "the architecture page should name the modules it describes"
    missing = [n for n in sorted(named) if not (package / n).exists() and not (ROOT / n).exists()]
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"
