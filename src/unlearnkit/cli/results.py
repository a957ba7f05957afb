"""``unlearnkit results``: query the results store and export it (CSV, JSON, Markdown)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from ..bench.grid import ResultStore, dump_store, open_store
from ..errors import UnlearnkitError
from ..evaluation.registry import METRICS
from ..utils import atomic_write_text, to_jsonable

IDENTITY_FIELDS = ["grp", "dataset", "model", "scenario", "method", "seed", "request"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("results", help="query and export a benchmark results store",
                       description="List the result rows of a store (one per done cell, or per request), optionally "
                                   "filtered, as a table, CSV, JSON or Markdown; --runs lists cells with their "
                                   "status, hashes, code version and timings; --summary gives the leaderboard.")
    p.add_argument("store", type=Path, help="SQLite results store (e.g. bench-results/quick.sqlite), or its text dump "
                                            "(*.jsonl)")
    p.add_argument("--spec", type=Path, default=None, help="only the cells of this spec")
    p.add_argument("--format", "-f", choices=("table", "csv", "json", "markdown"), default="table")
    p.add_argument("--out", "-o", type=Path, default=None, help="write to a file instead of stdout")
    for col in ("dataset", "model", "scenario", "method"):
        p.add_argument(f"--{col}", default=None, help=f"only this {col}")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--metrics", default=None, metavar="NAMES",
                   help="only these metric columns (comma-separated registered metric names, e.g. "
                        "forget_acc,mia_efficacy)")
    p.add_argument("--units", choices=("percent", "fraction"), default=None,
                   help="accuracies and other rates as percent (default for table/markdown, like every report) "
                        "or as fractions in [0, 1] (default for csv/json); the column header says which")
    p.add_argument("--runs", action="store_true", help="one line per cell: status, hashes, version, timings")
    p.add_argument("--summary", action="store_true", help="mean ± std per method and scenario (leaderboard)")
    p.add_argument("--dump", type=Path, default=None, metavar="FILE.jsonl",
                   help="write the whole store as a lossless, deterministic text dump (JSON lines, sorted by cell) "
                        "that `results` and `report` read like the store itself, then exit")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=main)


def _rows(args, store: ResultStore):
    where = {c: getattr(args, c) for c in ("dataset", "model", "scenario", "method", "seed")
             if getattr(args, c) is not None}
    for column, value in where.items():  # a typo must not look like "no results"
        held = store.distinct(column)
        if value not in held:
            raise UnlearnkitError(f"no {column} {value!r} in {args.store}; it holds: "
                                  f"{', '.join(map(str, held)) or '(no results yet)'}")
    keys = None
    if args.spec:
        from ..bench.grid import load_spec_with_tuning

        keys = [c.key for c in load_spec_with_tuning(args.spec, store, tune=False).cells()]
    return where, keys


def main(args: argparse.Namespace) -> int:
    if args.out is not None and args.out.is_dir():
        raise UnlearnkitError(f"--out {args.out} is a folder; give a file name")
    if args.dump is not None:
        if args.dump.suffix != ".jsonl" or args.dump.is_dir():
            raise UnlearnkitError(f"--dump {args.dump}: give a file name ending in .jsonl")
        cells = dump_store(args.store, args.dump)
        print(f"{cells} cell(s) of {args.store} written to {args.dump}", file=sys.stderr)
        return 0
    with open_store(args.store) as store:
        where, keys = _rows(args, store)
        if args.summary:
            from ..bench.reports import markdown_leaderboard, summaries

            rows = store.result_rows(keys, where)
            if args.format == "json":
                text = json.dumps(to_jsonable(summaries(rows)), indent=2)
            else:
                text = markdown_leaderboard(summaries(rows))
            return _emit(args, text)
        if args.runs:
            records = [{k: v for k, v in r.items() if k not in ("rows", "config")} for r in store.runs(keys, where=where)]
            for r in records:
                r["params"] = json.dumps(r["params"], sort_keys=True) if args.format != "json" else r["params"]
        else:
            records = _only_metrics(store.result_rows(keys, where), args.metrics)
            for r in records:
                if args.format != "json":
                    r["params"] = json.dumps(r["params"], sort_keys=True)
            percent = (args.units or ("fraction" if args.format in ("csv", "json") else "percent")) == "percent"
            records = _in_units(records, percent, label=args.format != "json")
        return _emit(args, _format(records, args.format))


def _only_metrics(records: list[dict], names: str | None) -> list[dict]:
    """Drop every registered metric not in ``names`` (unknown names raise, listing the valid ones)."""
    if not names:
        return records
    keep = {METRICS.get(n.strip()).name for n in names.split(",") if n.strip()}
    drop = {m.name for m in METRICS.ordered()} - keep
    return [{k: v for k, v in r.items() if k not in drop} for r in records]


def _in_units(records: list[dict], percent: bool, label: bool) -> list[dict]:
    """Rates (metrics whose unit is %) as percent or fractions; with ``label`` the column name says
    which (``forget_acc [%]`` / ``forget_acc [fraction]``). JSON keeps plain names: its unit is
    the one ``--units`` chose (fractions by default)."""
    rates = {m.name for m in METRICS.ordered() if m.unit == "%"}
    suffix = " [%]" if percent else " [fraction]"
    out = []
    for r in records:
        out.append({(k + suffix if label and k in rates else k):
                    (100 * v if percent and k in rates and isinstance(v, (int, float)) else v)
                    for k, v in r.items()})
    return out


def _format(records: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(to_jsonable(records), indent=2)
    # metrics in the registry's order, whatever unit suffix the column carries
    first = IDENTITY_FIELDS + [m.name + suffix for m in METRICS.ordered() for suffix in ("", " [%]", " [fraction]")]
    cols: list[str] = [c for c in first if any(c in r for r in records)]
    for r in records:
        cols += [k for k in r if k not in cols]
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in records:
            w.writerow({k: _cell(r.get(k)) for k in cols})
        return buf.getvalue()
    if fmt == "markdown":
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(_cell(r.get(k)).replace("|", "\\|") for k in cols) + " |" for r in records]
        return "\n".join(lines) + "\n"
    widths = {k: max([len(k)] + [len(_cell(r.get(k))) for r in records]) for k in cols}
    lines = ["  ".join(k.ljust(widths[k]) for k in cols)]
    lines += ["  ".join(_cell(r.get(k)).ljust(widths[k]) for k in cols) for r in records]
    return "\n".join(lines) + "\n"


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _emit(args, text: str) -> int:
    if args.out:
        atomic_write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return 0
