"""A results store as text: a lossless, deterministic JSON-lines dump, and back.

A store's cells (``runs``) and tuned hyperparameters (``tuned``) are written one JSON object a line,
sorted by key, with the JSON columns (params, config, rows, ...) as nested objects, so that a dump
diffs line by line and the same store always gives the same bytes. The first line names the format:

    {"format": "unlearnkit-results-dump", "version": 1, "schema_version": 1}
    {"table": "runs", "cell_key": "...", "grp": "...", "rows": [...], ...}
    {"table": "tuned", "tune_key": "...", ...}

``unlearnkit results`` and ``unlearnkit report`` read a dump (``*.jsonl``) wherever they read a
store: it is loaded into a temporary store first (``open_store``).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Iterator

from ...errors import UnlearnkitError
from ...utils import atomic_write_text
from .store import RUN_COLUMNS, SCHEMA_VERSION, ResultStore

FORMAT = "unlearnkit-results-dump"
DUMP_VERSION = 1
#: columns stored as JSON text in SQLite, written as nested JSON in a dump
JSON_COLUMNS = {"runs": ("params", "config", "rows"), "tuned": ("params", "search_space", "settings", "trials")}
TUNED_COLUMNS = ("tune_key", "grp", "method", "params", "objective", "n_trials", "search_space", "settings",
                 "trials", "code_version", "finished_at")


def _records(store: ResultStore, table: str, key: str) -> Iterator[dict]:
    for row in store.conn.execute(f"SELECT * FROM {table} ORDER BY {key}"):
        record = {"table": table, **dict(row)}
        for column in JSON_COLUMNS[table]:
            if record.get(column) is not None:
                record[column] = json.loads(record[column])
        yield record


def dump_text(store: ResultStore) -> str:
    """The dump of ``store`` as one string (see the module docstring)."""
    header = {"format": FORMAT, "version": DUMP_VERSION, "schema_version": SCHEMA_VERSION}
    lines = [json.dumps(header, sort_keys=True)]
    for table, key in (("runs", "cell_key"), ("tuned", "tune_key")):
        lines += [json.dumps(r, sort_keys=True, ensure_ascii=False) for r in _records(store, table, key)]
    return "\n".join(lines) + "\n"


def dump_store(store_path: str | Path, out: str | Path) -> int:
    """Write the dump of the store at ``store_path`` to ``out`` (atomically); returns the cell count."""
    with ResultStore(store_path, readonly=True) as store:
        text, cells = dump_text(store), sum(store.count().values())
    atomic_write_text(Path(out), text)
    return cells


def load_dump(dump_path: str | Path, store_path: str | Path) -> None:
    """Create the store ``store_path`` (which must not exist) from the dump at ``dump_path``."""
    dump_path, store_path = Path(dump_path), Path(store_path)
    if store_path.exists():
        raise UnlearnkitError(f"{store_path} exists; load a dump into a new store path")
    lines = _read_lines(dump_path)
    with ResultStore(store_path) as store, store.transaction():
        for n, line in enumerate(lines[1:], start=2):
            record = json.loads(line)
            table = record.pop("table", None)
            if table not in JSON_COLUMNS:
                raise UnlearnkitError(f"{dump_path}:{n}: unknown table {table!r} in a results dump")
            columns = RUN_COLUMNS if table == "runs" else TUNED_COLUMNS
            values = [json.dumps(record[c], sort_keys=True) if c in JSON_COLUMNS[table] and record.get(c) is not None
                      else record.get(c) for c in columns]
            store.conn.execute(f"INSERT INTO {table} ({','.join(columns)}) VALUES ({','.join('?' * len(columns))})",
                               values)


def _read_lines(dump_path: Path) -> list[str]:
    if not dump_path.is_file():
        raise UnlearnkitError(f"results dump {dump_path} does not exist")
    lines = dump_path.read_text().splitlines()
    try:
        header = json.loads(lines[0]) if lines else {}
    except json.JSONDecodeError:
        header = {}
    if header.get("format") != FORMAT:
        raise UnlearnkitError(f"{dump_path} is not an unlearnkit results dump (its first line must name the format "
                              f"{FORMAT!r}); write one with `unlearnkit results STORE --dump FILE.jsonl`")
    if header.get("version") != DUMP_VERSION or header.get("schema_version") != SCHEMA_VERSION:
        raise UnlearnkitError(f"{dump_path} is dump version {header.get('version')} of store schema "
                              f"{header.get('schema_version')}; this unlearnkit reads version {DUMP_VERSION} of "
                              f"schema {SCHEMA_VERSION}")
    return lines


@contextlib.contextmanager
def open_store(path: str | Path) -> Iterator[ResultStore]:
    """A read-only store: the SQLite file itself, or a dump (``*.jsonl``) loaded into a temporary one."""
    path = Path(path)
    if path.suffix != ".jsonl":
        with ResultStore(path, readonly=True) as store:
            yield store
        return
    with tempfile.TemporaryDirectory(prefix="unlearnkit-dump-") as tmp:
        load_dump(path, Path(tmp) / "store.sqlite")
        with ResultStore(Path(tmp) / "store.sqlite", readonly=True) as store:
            store.path = path  # messages name the file the user gave
            yield store
