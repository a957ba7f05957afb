"""Records: the results one command produced (``results/NAME/``) and how they were produced.

A record holds ``record.json`` (each invocation's command, commit, start/end, wall time, exit status,
load average and machine; written by ``benchmarks/record.py``) and either ``store.jsonl`` (a results
store's text dump: the cells of a ``bench``) or ``results.json`` (a ``run`` or ``audit`` output
folder's results). Rows carry ``grp``, the experiment's label (dataset(options)/model/scenario(options)).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from unlearnkit.bench.grid import ResultStore, load_dump


class RecordError(ValueError):
    """A record is missing or malformed, or a directive names something a record does not hold."""


def group_label(config: dict[str, Any]) -> str:
    """The label a bench store gives an experiment, for a run's results.json (same rule as the spec)."""
    def label(name: str, options: dict) -> str:
        return name + ("(" + ",".join(f"{k}={options[k]}" for k in sorted(options)) + ")" if options else "")

    return "/".join([label(config["dataset"], config.get("dataset_options") or {}),
                     label(config["model"], config.get("model_options") or {}),
                     label(config["scenario"], config.get("scenario_options") or {})])


@dataclass
class Record:
    name: str
    folder: Path
    meta: dict = field(repr=False)

    @classmethod
    def load(cls, results: Path, name: str) -> "Record":
        folder = results / name
        if not (folder / "record.json").is_file():
            raise RecordError(f"no record {name!r}: {folder / 'record.json'} does not exist "
                              f"(records: {', '.join(sorted(p.name for p in results.iterdir() if p.is_dir()))})")
        return cls(name, folder, json.loads((folder / "record.json").read_text()))

    @cached_property
    def _data(self) -> dict[str, Any]:
        """{"rows": [...], "runs": [...], "results": results.json or None}."""
        if (self.folder / "store.jsonl").is_file():
            with tempfile.TemporaryDirectory(prefix="unlearnkit-docs-") as tmp:
                load_dump(self.folder / "store.jsonl", Path(tmp) / "s.sqlite")
                with ResultStore(Path(tmp) / "s.sqlite", readonly=True) as store:
                    return {"rows": store.result_rows(), "runs": store.runs(), "results": None}
        if (self.folder / "results.json").is_file():
            results = json.loads((self.folder / "results.json").read_text())
            if all("grp" in r for r in results["rows"]):  # a script's rows that name their experiments
                return {"rows": results["rows"], "runs": [], "results": results}
            grp = group_label(results["config"])
            return {"rows": [{"grp": grp, **r} for r in results["rows"]], "runs": [], "results": results}
        raise RecordError(f"record {self.name!r} holds neither store.jsonl nor results.json")

    @property
    def rows(self) -> list[dict[str, Any]]:
        return self._data["rows"]

    @property
    def runs(self) -> list[dict[str, Any]]:
        """The store's cells (status, errors) of a bench record; [] for a run's results."""
        return self._data["runs"]

    @property
    def results(self) -> dict[str, Any] | None:
        return self._data["results"]

    def groups(self) -> list[str]:
        return sorted({r["grp"] for r in self.rows})

    def rows_of(self, group: str | None = None, methods: list[str] | None = None) -> list[dict[str, Any]]:
        """The rows of one experiment (all when the record holds one), optionally of some methods."""
        groups = self.groups()
        if group is None:
            if len(groups) != 1:
                raise RecordError(f"record {self.name!r} holds {len(groups)} experiments; name one of: "
                                  + ", ".join(groups))
            group = groups[0]
        if group not in groups:
            raise RecordError(f"record {self.name!r} has no experiment {group!r}; it holds: " + ", ".join(groups))
        rows = [r for r in self.rows if r["grp"] == group]
        if methods:
            missing = [m for m in methods if m not in {r["method"] for r in rows}]
            if missing:
                raise RecordError(f"record {self.name!r}, {group}: no rows of {', '.join(missing)}")
            rows = [r for r in rows if r["method"] in methods]
        return rows

    def failed_cells(self) -> list[dict[str, Any]]:
        return [r for r in self.runs if r["status"] == "error"]
