"""How the command line prints logs and warnings: one readable line each, above any progress bar.

A warning reaches the terminal as ``unlearnkit: warning: seed 1 ft: ft left the forget set unchanged
... Try: ...`` - never with Python's source path and line of code. Log records of WARNING and above
print the same way; INFO and DEBUG as ``LEVEL logger: message``. Lines go through ``tqdm.write`` so
that they land above a running progress bar instead of on its line. Only the command line is changed:
the Python API raises real ``warnings``.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any, Optional, TextIO


def one_line(text: Any) -> str:
    """``text`` with its line breaks and runs of spaces folded into single spaces."""
    return " ".join(str(text).split())


def _write(line: str, file: Optional[TextIO] = None) -> None:
    from tqdm import tqdm

    tqdm.write(line, file=file or sys.stderr)


def show_warning(message: Any, category: type, filename: str, lineno: int, file: Optional[TextIO] = None,
                 line: Optional[str] = None) -> None:
    """``warnings.showwarning`` of the command line: one line, no source path, no code line."""
    _write(f"unlearnkit: warning: {one_line(message)}", file)


class OneLineFormatter(logging.Formatter):
    """WARNING and above as ``unlearnkit: warning: message``; the rest as ``LEVEL logger: message``."""

    def format(self, record: logging.LogRecord) -> str:
        message = one_line(record.getMessage())
        if record.levelno >= logging.WARNING:
            return f"unlearnkit: {record.levelname.lower()}: {message}"
        text = f"{record.levelname} {record.name}: {message}"
        if record.exc_info:  # --verbose tracebacks keep their lines
            text += "\n" + self.formatException(record.exc_info)
        return text


class ProgressSafeHandler(logging.Handler):
    """Writes each record with ``tqdm.write`` on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            _write(self.format(record))
        except Exception:  # noqa: BLE001 - logging's own contract: report, never raise
            self.handleError(record)


def set_up_output(level: int) -> None:
    """Logging at ``level`` and warnings, both in one-line form, for a command-line run."""
    handler = ProgressSafeHandler()
    handler.setFormatter(OneLineFormatter())
    logging.basicConfig(level=level, handlers=[handler])
    warnings.showwarning = show_warning
