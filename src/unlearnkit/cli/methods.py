"""``unlearnkit methods``: list methods, their summaries and hyperparameters."""

from __future__ import annotations

import argparse

from ..methods import METHODS
from ..methods.base import describe_data


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("methods", help="list unlearning methods and their hyperparameters",
                       description="List registered methods with a one-line summary, the data they "
                                   "need and use when given, and each hyperparameter with its default "
                                   "and source.")
    p.add_argument("names", nargs="*", help="only these methods")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    names = args.names or METHODS.names()
    for name in names:
        cls = METHODS.get(name)
        print(f"{name:<16} {cls.summary}  [needs: {describe_data(cls)}; family: {cls.family}]")
        for h in cls.Params.describe():
            src = f"  ({h['source']})" if h["source"] else ""
            print(f"    {h['name']:<18} {h['type']:<6} = {h['default']!r:<10} {h['help']}{src}")
    return 0
