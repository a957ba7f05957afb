"""The output folder of an experiment run: which experiment it holds, and its rows file.

A folder records the experiment it belongs to (``experiment.json``: everything that determines the
forget sets and models, not the list of methods or seeds, so adding a method or a seed resumes into
the same folder). Running a different experiment into it is refused unless ``overwrite`` is given,
which first deletes the files a run writes (and nothing else). ``rows.jsonl`` gets one whole line per
finished cell in a single append; a line torn by a kill is cut off before the next append.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import UnlearnkitError
from ..utils import atomic_write_text

EXPERIMENT_FILE = "experiment.json"
ROWS_FILE = "rows.jsonl"
RUN_FILES = (ROWS_FILE, "forget_indices.json", "results.json", "report.md", EXPERIMENT_FILE)


def _recorded(out: Path) -> Any:
    path = out / EXPERIMENT_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (ValueError, OSError):
        return {"unreadable": str(path)}


def check_out_dir(out: Path, identity: dict[str, Any], overwrite: bool = False) -> None:
    """Refuse a file, an unwritable folder, or a folder holding another experiment (unless
    ``overwrite``: then delete the run files in it). Creates nothing."""
    if out.exists() and not out.is_dir():
        raise UnlearnkitError(f"output folder {out} is an existing file; give a folder path")
    if not out.exists():
        return
    if not os.access(out, os.W_OK | os.X_OK):
        raise UnlearnkitError(f"output folder {out} is not writable; choose another folder")
    previous = _recorded(out)
    if overwrite:
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
        for plot in out.glob("*.png"):
            plot.unlink()
        return
    if previous is not None and previous != identity:
        changed = sorted(k for k in set(previous) | set(identity) if previous.get(k) != identity.get(k))
        raise UnlearnkitError(f"output folder {out} holds results of another experiment (different "
                              f"{', '.join(changed)}); choose another folder or pass --overwrite to replace them")


def start_writing(out: Path, identity: dict[str, Any]) -> None:
    """Create the folder and record its experiment (before the first result goes in)."""
    out.mkdir(parents=True, exist_ok=True)
    if _recorded(out) is None:
        atomic_write_text(out / EXPERIMENT_FILE, json.dumps(identity, sort_keys=True, indent=1))


def cut_torn_line(path: Path) -> None:
    """Drop a last line without its newline (the write of a killed process) so appends stay whole."""
    if not path.exists():
        return
    with path.open("rb+") as handle:
        data = handle.read()
        if data and not data.endswith(b"\n"):
            handle.truncate(data.rfind(b"\n") + 1)


def append_line(path: Path, line: str) -> None:
    """Append ``line`` and a newline with one write on an O_APPEND descriptor, then fsync."""
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        written = os.write(fd, data)
        while written < len(data):  # only on a full disk or a signal; finish the line
            written += os.write(fd, data[written:])
        os.fsync(fd)
    finally:
        os.close(fd)
