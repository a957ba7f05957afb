"""The design documents under docs/ (subfolders included): every link inside the repository resolves
(files and section anchors), the pages that describe code name things that exist, and every method's
docstring fits one screen and ends with a link to its design notes in docs/methods/."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from unlearnkit.methods import METHODS
from unlearnkit.methods.blocks.registry import RETAIN_FREE_SUFFIX

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / n for n in ("README.md", "BENCHMARKS.md", "DEVELOPING.md")]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
NOTES = ROOT / "docs" / "methods"
MAX_DOC_LINES = 40


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


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(page):
    broken = _broken_links(page)
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"


UNFINISHED = re.compile(r"\b[A-Z]+_PLACEHOLDER\b|\bTODO\b|\bTBD\b")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_page_is_left_unfinished(page):
    """A placeholder left by an edit (``RESULTS_PLACEHOLDER``, TODO, TBD) never reaches a reader."""
    found = sorted(set(UNFINISHED.findall(page.read_text())))
    assert not found, f"{page.relative_to(ROOT)}: unfinished text {found}"


def test_unfinished_text_is_recognised():
    assert UNFINISHED.findall("a FINAL_PLACEHOLDER b, TODO: c, TBD") == ["FINAL_PLACEHOLDER", "TODO", "TBD"]
    assert not UNFINISHED.findall("todo list, the Tbd, PLACEHOLDERS")


def test_link_checker_covers_docs_subfolders():
    assert NOTES / "README.md" in PAGES and any(p.parent == NOTES and p.name != "README.md" for p in PAGES)


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


# -- method docstrings and their design notes -------------------------------------------------------------
def _base_name(name: str) -> str:
    """``NAME_noretain`` shares the module, docstring and notes of ``NAME``."""
    return name[: -len(RETAIN_FREE_SUFFIX)] if name.endswith(RETAIN_FREE_SUFFIX) else name


def docstring_problems(doc: str, base: str, notes: Path = NOTES) -> list[str]:
    """What keeps a method module's docstring from being read at once and leading to its notes."""
    lines = (doc or "").strip().splitlines()
    problems = [f"{len(lines)} lines (at most {MAX_DOC_LINES})"] if len(lines) > MAX_DOC_LINES else []
    link = f"Design notes: docs/methods/{base}.md"
    if not lines or lines[-1].strip() != link:
        problems.append(f"last line is {lines[-1].strip() if lines else ''!r}, not {link!r}")
    elif not (notes / f"{base}.md").is_file():
        problems.append(f"docs/methods/{base}.md does not exist")
    return problems


def _module_doc(name: str) -> str:
    return importlib.import_module(METHODS.get(name).__module__).__doc__ or ""


@pytest.mark.parametrize("name", METHODS.names())
def test_method_docstring_fits_one_screen_and_links_its_notes(name):
    problems = docstring_problems(_module_doc(name), _base_name(name))
    assert not problems, f"{METHODS.get(name).__module__}: " + "; ".join(problems)


@pytest.mark.parametrize("name", METHODS.names())
def test_docstring_and_notes_name_every_hyperparameter(name):
    """Every default is stated with its source: at least, each hyperparameter is named in the
    docstring and in a `name` of its design notes."""
    notes = NOTES / f"{_base_name(name)}.md"
    text = notes.read_text() if notes.is_file() else ""
    params = [h["name"] for h in METHODS.get(name).Params.describe()]
    missing_doc = [p for p in params if not re.search(rf"\b{p}\b", _module_doc(name))]
    missing_notes = [p for p in params if f"`{p}`" not in text]
    assert not missing_doc and not missing_notes, (
        f"{name}: hyperparameters missing from the docstring {missing_doc}, from {notes.name} {missing_notes}")


def test_docstring_check_reports_length_link_and_missing_notes(tmp_path):
    (tmp_path / "ok.md").write_text("# ok\n")
    good = "Title.\n\n    update\n\nDesign notes: docs/methods/ok.md\n"
    assert docstring_problems(good, "ok", tmp_path) == []
    long = "Title.\n" + "x\n" * 40 + "Design notes: docs/methods/ok.md"
    assert docstring_problems(long, "ok", tmp_path) == ["42 lines (at most 40)"]
    assert docstring_problems("Title.\n\nDesign notes: elsewhere.md", "ok", tmp_path) == [
        "last line is 'Design notes: elsewhere.md', not 'Design notes: docs/methods/ok.md'"]
    assert docstring_problems(good.replace("ok.md", "gone.md"), "gone", tmp_path) == [
        "docs/methods/gone.md does not exist"]
