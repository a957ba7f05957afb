"""The results store: one embedded SQLite database (stdlib ``sqlite3``) per benchmark.

Only the coordinating process writes (workers return their rows), one short transaction per cell,
in WAL mode with ``synchronous=FULL``: a cell is either wholly in the store or not at all, so killing
the process at any moment (SIGKILL included) loses only the cells in flight and never corrupts the
database. ``runs.cell_key`` is the primary key, so a cell can never appear twice.

Schema (``runs``: one row per (experiment, method, seed) cell; ``tuned``: chosen hyperparameters):
see ``SCHEMA`` below. ``rows`` holds the cell's result rows as JSON (the row contract of docs/results.md:
one row, or one per deletion request).
"""

from __future__ import annotations

import json
import platform
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any, Iterable, Optional

from ..._version import __version__
from ...errors import UnlearnkitError
from ...utils import to_jsonable

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    cell_key      TEXT PRIMARY KEY,          -- experiment.cell_key(config, method, seed)
    spec          TEXT,                      -- name of the spec that first produced it
    grp           TEXT NOT NULL,             -- dataset(options)/model/scenario(options)
    dataset       TEXT NOT NULL,
    model         TEXT NOT NULL,
    scenario      TEXT NOT NULL,
    method        TEXT NOT NULL,
    seed          INTEGER NOT NULL,
    params        TEXT NOT NULL,             -- JSON: the method's hyperparameter overrides
    config        TEXT NOT NULL,             -- JSON: the full ExperimentConfig
    config_hash   TEXT NOT NULL,             -- hash of the config without methods/seeds/params
    forget_hash   TEXT,                      -- hash of the forget indices
    code_version  TEXT NOT NULL,             -- unlearnkit version + git commit (+dirty)
    status        TEXT NOT NULL CHECK (status IN ('done', 'skipped', 'error')),
    error         TEXT,                      -- why a cell was skipped (not applicable) or failed
    rows          TEXT,                      -- JSON list of result rows
    time_s        REAL,                      -- unlearning call only (the row's time_s)
    prepare_s     REAL,                      -- scenario + original + Retrain (0 when cached)
    wall_s        REAL,                      -- the whole cell in its worker
    backend       TEXT,
    host          TEXT,
    finished_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_grp ON runs (grp, method);
CREATE TABLE IF NOT EXISTS tuned (
    tune_key      TEXT PRIMARY KEY,          -- hash of experiment, method, search space, budget, seeds
    grp           TEXT NOT NULL,
    method        TEXT NOT NULL,
    params        TEXT NOT NULL,             -- JSON: best values of the searched parameters
    objective     REAL,                      -- best validation avg gap to Retrain
    n_trials      INTEGER NOT NULL,
    search_space  TEXT NOT NULL,
    settings      TEXT NOT NULL,             -- JSON: tune seeds, validation split, fixed params
    trials        TEXT NOT NULL,             -- JSON list of {params, value}
    code_version  TEXT NOT NULL,
    finished_at   TEXT NOT NULL
);
"""

RUN_COLUMNS = ("cell_key", "spec", "grp", "dataset", "model", "scenario", "method", "seed", "params", "config",
               "config_hash", "forget_hash", "code_version", "status", "error", "rows", "time_s", "prepare_s",
               "wall_s", "backend", "host", "finished_at")


_CODE_VERSION: Optional[str] = None


def code_version() -> str:
    """``unlearnkit <version>`` plus the git commit of the source tree (``+dirty`` with local edits)."""
    global _CODE_VERSION
    if _CODE_VERSION is None:
        version = __version__
        try:
            root = Path(__file__).resolve().parents[3]
            commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True, timeout=5)
            if commit.returncode == 0:
                dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                       capture_output=True, text=True, timeout=5)
                version += f"+g{commit.stdout.strip()}" + ("+dirty" if dirty.stdout.strip() else "")
        except (OSError, subprocess.SubprocessError):
            pass
        _CODE_VERSION = version
    return _CODE_VERSION


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


SQLITE_HEADER = b"SQLite format 3\x00"


class ResultStore:
    """Open a store. ``readonly`` (for queries and reports) never creates or changes a file; a
    writable store is created when ``path`` does not exist. Either way an existing path must be a
    store of this schema version: another file, an unrelated SQLite database or a folder is refused."""

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if readonly or self.path.exists():
            self._check_is_store()
        if readonly:
            self.conn = sqlite3.connect(self._readonly_uri(), uri=True, timeout=60, isolation_level=None)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(str(self.path), timeout=60, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA busy_timeout=60000")
        if readonly:
            self._check_schema()
            return
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(SCHEMA)  # idempotent (IF NOT EXISTS)
        self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        self._check_schema()

    def _readonly_uri(self) -> str:
        """With no writer at work (no -wal file) the file is opened immutable, so that reading leaves
        no -wal/-shm files behind; beside a running bench it is read as a WAL database."""
        idle = not Path(f"{self.path}-wal").exists()
        return f"{self.path.absolute().as_uri()}?mode=ro" + ("&immutable=1" if idle else "")

    def _check_is_store(self) -> None:
        what = f"{self.path} is not an unlearnkit results store"
        if not self.path.exists():
            raise UnlearnkitError(f"results store {self.path} does not exist (run `unlearnkit bench SPEC` first)")
        if not self.path.is_file():
            raise UnlearnkitError(f"{what} (it is a folder); give the .sqlite file")
        with self.path.open("rb") as handle:
            if handle.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                raise UnlearnkitError(f"{what} (not an SQLite database)")
        try:
            probe = sqlite3.connect(self._readonly_uri(), uri=True)
            try:
                tables = {r[0] for r in probe.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            finally:
                probe.close()
        except sqlite3.DatabaseError as exc:
            raise UnlearnkitError(f"{what} ({exc})") from None
        if not {"meta", "runs"} <= tables:
            raise UnlearnkitError(f"{what} (an SQLite database without its tables); it was left unchanged")

    def _check_schema(self) -> None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        found = row[0] if row else None
        if found != str(SCHEMA_VERSION):
            self.conn.close()
            raise UnlearnkitError(f"results store {self.path} has schema version {found}, this unlearnkit "
                                  f"({__version__}) reads version {SCHEMA_VERSION}; use the unlearnkit that "
                                  "wrote it or start a new store")

    def transaction(self):
        store = self

        class _Tx:
            def __enter__(self):
                store.conn.execute("BEGIN IMMEDIATE")

            def __exit__(self, exc_type, *rest):
                store.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
                return False

        return _Tx()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- runs -------------------------------------------------------------------------------------
    def status_of(self, keys: Iterable[str]) -> dict[str, str]:
        keys = list(keys)
        out: dict[str, str] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            q = f"SELECT cell_key, status FROM runs WHERE cell_key IN ({','.join('?' * len(chunk))})"
            out.update({r["cell_key"]: r["status"] for r in self.conn.execute(q, chunk)})
        return out

    def put_run(self, record: dict[str, Any]) -> None:
        """Insert or replace one cell in its own transaction (all of it or nothing)."""
        values = dict(record)
        for k in ("params", "config", "rows"):
            if values.get(k) is not None and not isinstance(values[k], str):
                values[k] = json.dumps(to_jsonable(values[k]), sort_keys=True)
        values.setdefault("code_version", code_version())
        values.setdefault("host", platform.node())
        values.setdefault("finished_at", _now())
        row = [values.get(c) for c in RUN_COLUMNS]
        with self.transaction():
            self.conn.execute(f"INSERT OR REPLACE INTO runs ({','.join(RUN_COLUMNS)}) "
                              f"VALUES ({','.join('?' * len(RUN_COLUMNS))})", row)

    def relabel(self, groups: dict[str, str]) -> int:
        """Store ``groups`` (cell key -> the group label its spec gives it now) for the cells held whose
        stored label differs, e.g. one recorded before the labels named dataset options; returns how
        many changed. A cell's key does not depend on its label, so the cell itself stays as it is."""
        with self.transaction():
            return sum(self.conn.execute("UPDATE runs SET grp = ? WHERE cell_key = ? AND grp != ?",
                                         (group, key, group)).rowcount for key, group in groups.items())

    def runs(self, keys: Optional[Iterable[str]] = None, status: Optional[str] = None,
             where: Optional[dict[str, Any]] = None) -> list[dict[str, Any]]:
        q, args = "SELECT * FROM runs WHERE 1=1", []
        if status:
            q += " AND status = ?"
            args.append(status)
        for col, value in (where or {}).items():
            if col not in RUN_COLUMNS:
                raise ValueError(f"unknown column {col!r}; valid: {RUN_COLUMNS}")
            q += f" AND {col} = ?"
            args.append(value)
        q += " ORDER BY grp, method, seed"
        out = []
        wanted = set(keys) if keys is not None else None
        for r in self.conn.execute(q, args):
            if wanted is not None and r["cell_key"] not in wanted:
                continue
            d = dict(r)
            for k in ("params", "config", "rows"):
                d[k] = json.loads(d[k]) if d[k] else None
            out.append(d)
        return out

    def result_rows(self, keys: Optional[Iterable[str]] = None, where: Optional[dict[str, Any]] = None
                    ) -> list[dict[str, Any]]:
        """The metric rows of the done cells, each with its group (``grp``) and params."""
        rows = []
        for run in self.runs(keys, status="done", where=where):
            for row in run["rows"] or []:
                rows.append({"grp": run["grp"], **row, "params": run["params"]})
        return rows

    def distinct(self, column: str) -> list:
        """The values ``column`` takes in the store (e.g. the methods it holds), sorted."""
        if column not in RUN_COLUMNS:
            raise ValueError(f"unknown column {column!r}; valid: {RUN_COLUMNS}")
        return sorted(r[0] for r in self.conn.execute(f"SELECT DISTINCT {column} FROM runs") if r[0] is not None)

    def count(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status")}

    # -- tuning -----------------------------------------------------------------------------------
    def get_tuned(self, tune_key: str) -> Optional[dict[str, Any]]:
        r = self.conn.execute("SELECT * FROM tuned WHERE tune_key = ?", (tune_key,)).fetchone()
        if r is None:
            return None
        d = dict(r)
        for k in ("params", "search_space", "settings", "trials"):
            d[k] = json.loads(d[k])
        return d

    def all_tuned(self) -> list[dict[str, Any]]:
        return [self.get_tuned(r[0]) for r in self.conn.execute("SELECT tune_key FROM tuned ORDER BY grp, method")]

    def put_tuned(self, tune_key: str, grp: str, method: str, params: dict, objective: float, n_trials: int,
                  search_space: dict, settings: dict, trials: list) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO tuned VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (tune_key, grp, method, json.dumps(to_jsonable(params), sort_keys=True), objective, n_trials,
                 json.dumps(search_space, sort_keys=True), json.dumps(to_jsonable(settings), sort_keys=True),
                 json.dumps(to_jsonable(trials)), code_version(), _now()))
