"""Imports flow one way: data/scenarios -> methods -> evaluation -> bench | ledger -> cli.

``ledger`` (deletion receipts on a user's own model) has the rank of ``bench``: it imports nothing
of bench and bench nothing of it, and only ``cli`` sits above both.

Scenarios and methods meet only in the task (``task.py``, ``goals.py``): neither imports the other.
Every import inside the package (module level or lazy, inside a function) is checked against the
layers below: a part imports itself and lower layers only. The one documented exception: scenarios use ``evaluation.metrics`` (accuracy, logits)
for their own extra metrics; ``evaluation.metrics`` imports only ``data``, so there is no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import unlearnkit

PACKAGE = Path(unlearnkit.__file__).parent
#: rank of each top-level part of the package; the shared chores (errors, params, data, ...) are 0
LAYERS = {"scenarios": 1, "methods": 1, "evaluation": 2, "bench": 3, "ledger": 3, "cli": 4}
ALLOWED = {("scenarios", "evaluation.metrics")}


def _part(dotted: str) -> str:
    return dotted.split(".")[0]


def _imports(path: Path, package: Path) -> list[str]:
    """Package-relative dotted names that ``path`` imports (``unlearnkit.x.y`` and ``..x.y`` forms)."""
    module = path.relative_to(package).with_suffix("").parts
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(module[:len(module) - node.level])
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("unlearnkit."):
                target = node.module[len("unlearnkit."):]
            else:
                continue
            names.extend(f"{target}.{a.name}" if not node.module else target for a in node.names)
        elif isinstance(node, ast.Import):
            names += [a.name[len("unlearnkit."):] for a in node.names if a.name.startswith("unlearnkit.")]
    return [n for n in names if n]


def layering_violations(package: Path) -> list[str]:
    violations = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).parts
        if len(parts) == 1:  # top-level modules: shared chores and the public API in __init__
            continue
        source = parts[0]
        for target in _imports(path, package):
            if any(source == s and target.startswith(t) for s, t in ALLOWED):
                continue
            part = _part(target)
            if part != source and LAYERS.get(part, 0) >= max(LAYERS.get(source, 0), 1):
                violations.append(f"{path.relative_to(package)} imports {target}")
    return violations


def test_imports_flow_one_way():
    violations = layering_violations(PACKAGE)
    assert not violations, "imports against the layering:\n" + "\n".join(violations)


def test_the_checker_sees_a_lazy_upward_import(tmp_path):
    bad = tmp_path / "methods" / "bad.py"
    bad.parent.mkdir()
    bad.write_text("def f():\n    from ..scenarios.instance import goal_met\n")
    (tmp_path / "methods" / "ok.py").write_text("from ..data.split import Split\nfrom . import base\n")
    assert layering_violations(tmp_path) == ["methods/bad.py imports scenarios.instance"]
