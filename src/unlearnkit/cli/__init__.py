"""The ``unlearnkit`` command. Each subcommand lives in its own module of this package and
defines ``register(subparsers)``; modules are discovered on start-up.

``main`` is the error boundary: an error caused by the input (``UnlearnkitError``, including every
bad name, value, file or configuration, and file-system errors such as a read-only folder) ends the
command with one line on stderr and exit status 2, never a traceback (``--verbose`` adds it), and an
output folder the command created is removed again if nothing was written into it. Warnings and log
records print as one readable line each (``set_up_output``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence, TextIO

from .._version import __version__
from ..errors import UnlearnkitError

log = logging.getLogger(__name__)

#: argument names that hold paths a command writes (folders or files)
OUTPUT_ARGS = ("out", "store", "report")
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a command killed by a closed pipe reports


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (the usage block is one --help away)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


# -- how the command line prints logs and warnings --------------------------------------------------
# A warning reaches the terminal as ``unlearnkit: warning: seed 1 ft: ft left the forget set unchanged
# ... Try: ...``, never with Python's source path and line of code; log records of WARNING and above
# print the same way, INFO and DEBUG as ``LEVEL logger: message``. Lines go through ``tqdm.write``, so
# they land above a running progress bar. Only the command line changes this: the Python API raises
# real ``warnings``.
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


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="unlearnkit",
        description="Machine unlearning for deep classifiers: run methods, compare them with Retrain, audit.",
    )
    parser.add_argument("--version", action="version", version=f"unlearnkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_") and info.name != "common":
            module = importlib.import_module(f"{__name__}.{info.name}")
            module.register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    previous = warnings.showwarning  # the one-line form is the command line's, not the caller's
    try:
        return _main(argv)
    except BrokenPipeError:  # `unlearnkit methods | head`: the reader left, so stop quietly
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    finally:
        warnings.showwarning = previous


def _main(argv: Optional[Sequence[str]]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors: one line and SystemExit(2), as argparse does
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    level = logging.WARNING if getattr(args, "quiet", False) else logging.INFO
    if getattr(args, "verbose", False):
        level = logging.DEBUG
    set_up_output(level)
    created = [p for p in (_first_missing(getattr(args, a, None)) for a in OUTPUT_ARGS) if p is not None]
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        raise
    except (UnlearnkitError, OSError) as exc:  # caused by the input: one line, no traceback
        _remove_if_empty(created)
        if getattr(args, "verbose", False):
            log.debug("traceback", exc_info=True)
        print(f"unlearnkit: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        _remove_if_empty(created)
        print("unlearnkit: interrupted; completed rows and models are kept - run the same command "
              "again to resume", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        target = f" {exc.filename}" if exc.filename else ""
        text = f"{exc.strerror}:{target}" if target else exc.strerror
    else:
        text = str(exc)
    return " ".join(line.strip() for line in text.strip().splitlines())


def _first_missing(path: object) -> Optional[Path]:
    """The outermost folder of ``path`` (itself included) that does not exist yet, if any."""
    if not isinstance(path, (str, Path)):
        return None
    path = Path(path).absolute()
    if path.exists():
        return None
    while not path.parent.exists():
        path = path.parent
    return path


def _remove_if_empty(paths: list[Path]) -> None:
    """Remove folders created by a failed command when no file was written inside them."""
    for path in paths:
        if path.is_dir() and not any(p.is_file() or p.is_symlink() for p in path.rglob("*")):
            shutil.rmtree(path, ignore_errors=True)


def _discard_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout is not a real file (captured in-process)
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
