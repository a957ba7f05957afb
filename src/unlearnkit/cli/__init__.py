"""The ``unlearnkit`` command. Each subcommand lives in its own module of this package and
defines ``register(subparsers)``; modules are discovered on start-up."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from typing import Optional, Sequence

from .._version import __version__
from ..errors import UnlearnkitError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    level = logging.WARNING if getattr(args, "quiet", False) else logging.INFO
    if getattr(args, "verbose", False):
        level = logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except UnlearnkitError as exc:  # also TypeError subclasses of ours: a user error, no traceback
        print(f"unlearnkit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("unlearnkit: interrupted; completed rows and models are kept - run the same command "
              "again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
