"""Imports flow one way: data/scenarios -> methods -> evaluation -> bench | ledger -> cli, and no module
of the package takes part in an import cycle.

``ledger`` (deletion receipts on a user's own model) has the rank of ``bench``: it imports nothing
of bench and bench nothing of it, and only ``cli`` sits above both.

Scenarios and methods meet only in the task (``task.py``, ``goals.py``): neither imports the other.
Every import inside the package (module level, lazy inside a function, or only for type checking) is
checked against the layers below: a part imports itself and lower layers only. Inside ``bench`` the
same holds for its packages: reports <- pipeline <- grid, audit (grid and audit are siblings). The
one documented exception: scenarios use ``evaluation.metrics`` (accuracy, logits) for their own
extra metrics; ``evaluation.metrics`` imports only ``data``, so there is no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import unlearnkit

PACKAGE = Path(unlearnkit.__file__).parent
#: rank of each top-level part of the package; the shared chores (errors, params, data, ...) are 0
LAYERS = {"scenarios": 1, "methods": 1, "evaluation": 2, "bench": 3, "ledger": 3, "cli": 4}
#: rank of each package inside bench
BENCH_LAYERS = {"reports": 1, "pipeline": 2, "grid": 3, "audit": 3}
ALLOWED = {("scenarios", "evaluation.metrics")}


def _module_names(package: Path) -> dict[str, Path]:
    """Package-relative dotted name ("" for the package itself) -> file, for every module."""
    names = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _imports(path: Path, package: Path) -> list[str]:
    """Package-relative dotted names that ``path`` imports (``unlearnkit.x.y`` and ``..x.y`` forms)."""
    parts = path.relative_to(package).with_suffix("").parts
    here = list(parts[:-1])  # the package that relative imports start from
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("unlearnkit."):
                target = node.module[len("unlearnkit."):]
            else:
                continue
            names.extend(f"{target}.{a.name}".lstrip(".") if not node.module else target for a in node.names)
        elif isinstance(node, ast.Import):
            names += [a.name[len("unlearnkit."):] for a in node.names if a.name.startswith("unlearnkit.")]
    return [n for n in names if n]


def _rank(dotted: str) -> tuple[int, int]:
    parts = dotted.split(".")
    top = LAYERS.get(parts[0], 0)
    inner = BENCH_LAYERS.get(parts[1], 0) if parts[0] == "bench" and len(parts) > 1 else 0
    return top, inner


def layering_violations(package: Path) -> list[str]:
    violations = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).with_suffix("").parts
        if len(parts) == 1:  # top-level modules: shared chores and the public API in __init__
            continue
        source = ".".join(parts)
        for target in _imports(path, package):
            if any(parts[0] == s and target.startswith(t) for s, t in ALLOWED):
                continue
            src_top, src_inner = _rank(source)
            dst_top, dst_inner = _rank(target)
            if target.split(".")[0] != parts[0]:
                if dst_top >= max(src_top, 1):
                    violations.append(f"{path.relative_to(package)} imports {target}")
            elif parts[0] == "bench" and len(parts) > 2 and target.split(".")[1:2] != [parts[1]]:
                if dst_inner >= src_inner:
                    violations.append(f"{path.relative_to(package)} imports {target}")
    return violations


def import_cycles(package: Path) -> list[list[str]]:
    """Groups of modules that import each other, directly or through others (strongly connected
    components of the import graph with more than one module); every import counts."""
    modules = _module_names(package)

    def resolve(dotted: str) -> str | None:  # the module an imported name lives in
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):
            if ".".join(parts[:i]) in modules:
                return ".".join(parts[:i])
        return None

    graph = {m: {t for n in _imports(p, package) if (t := resolve(n)) and t != m} for m, p in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_imports_flow_one_way():
    violations = layering_violations(PACKAGE)
    assert not violations, "imports against the layering:\n" + "\n".join(violations)


def test_no_import_cycles():
    cycles = import_cycles(PACKAGE)
    assert not cycles, "modules that import each other:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_checker_sees_a_lazy_upward_import(tmp_path):
    bad = tmp_path / "methods" / "bad.py"
    bad.parent.mkdir()
    bad.write_text("def f():\n    from ..scenarios.instance import goal_met\n")
    (tmp_path / "methods" / "ok.py").write_text("from ..data.split import Split\nfrom . import base\n")
    assert layering_violations(tmp_path) == ["methods/bad.py imports scenarios.instance"]


def test_the_checker_sees_an_upward_import_inside_bench(tmp_path):
    (tmp_path / "bench" / "reports").mkdir(parents=True)
    (tmp_path / "bench" / "grid").mkdir()
    (tmp_path / "bench" / "reports" / "table.py").write_text("from ..pipeline.config import ExperimentConfig\n")
    (tmp_path / "bench" / "grid" / "runner.py").write_text("from ..pipeline.cells import compute_cells\n"
                                                           "from ..audit.run import run_audit\n")
    assert layering_violations(tmp_path) == ["bench/grid/runner.py imports bench.audit.run",
                                             "bench/reports/table.py imports bench.pipeline.config"]


def test_the_checker_finds_a_planted_cycle(tmp_path):
    """A cycle through a lazy import and one only for type checking counts as a cycle."""
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "__init__.py").write_text("")
    (tmp_path / "bench" / "a.py").write_text("def f():\n    from .b import g\n")
    (tmp_path / "bench" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                             "    from .c import h\n")
    (tmp_path / "bench" / "c.py").write_text("from unlearnkit.bench.a import f\n")
    (tmp_path / "bench" / "d.py").write_text("from .a import f\n")
    assert import_cycles(tmp_path) == [["bench.a", "bench.b", "bench.c"]]
