"""``unlearnkit results``: query the results store and export it (CSV, JSON, Markdown)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from ..bench.store import ResultStore
from ..errors import UnlearnkitError
from ..evaluation.registry import METRICS
from ..utils import to_jsonable

IDENTITY_FIELDS = ["grp", "dataset", "model", "scenario", "method", "seed", "request"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("results", help="query and export a benchmark results store",
                       description="List the result rows of a store (one per done cell, or per request), optionally "
                                   "filtered, as a table, CSV, JSON or Markdown; --runs lists cells with their "
                                   "status, hashes, code version and timings; --summary gives the leaderboard.")
    p.add_argument("store", type=Path, help="SQLite results store (e.g. bench-results/quick.sqlite)")
    p.add_argument("--spec", type=Path, default=None, help="only the cells of this spec")
    p.add_argument("--format", "-f", choices=("table", "csv", "json", "markdown"), default="table")
    p.add_argument("--out", "-o", type=Path, default=None, help="write to a file instead of stdout")
    for col in ("dataset", "model", "scenario", "method"):
        p.add_argument(f"--{col}", default=None, help=f"only this {col}")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--metrics", default=None, metavar="NAMES",
                   help="only these metric columns (comma-separated registered metric names, e.g. "
                        "forget_acc,mia_efficacy)")
    p.add_argument("--runs", action="store_true", help="one line per cell: status, hashes, version, timings")
    p.add_argument("--summary", action="store_true", help="mean ± std per method and scenario (leaderboard)")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=main)


def _rows(args, store: ResultStore):
    where = {c: getattr(args, c) for c in ("dataset", "model", "scenario", "method", "seed")
             if getattr(args, c) is not None}
    keys = None
    if args.spec:
        from ..bench.tune import load_spec_with_tuning

        keys = [c.key for c in load_spec_with_tuning(args.spec, store, tune=False).cells()]
    return where, keys


def main(args: argparse.Namespace) -> int:
    if not args.store.exists():
        raise UnlearnkitError(f"results store {args.store} does not exist (run `unlearnkit bench SPEC` first)")
    with ResultStore(args.store) as store:
        where, keys = _rows(args, store)
        if args.summary:
            from ..bench.leaderboard import markdown_leaderboard, summaries

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
        return _emit(args, _format(records, args.format))


def _only_metrics(records: list[dict], names: str | None) -> list[dict]:
    """Drop every registered metric not in ``names`` (unknown names raise, listing the valid ones)."""
    if not names:
        return records
    keep = {METRICS.get(n.strip()).name for n in names.split(",") if n.strip()}
    drop = {m.name for m in METRICS.ordered()} - keep
    return [{k: v for k, v in r.items() if k not in drop} for r in records]


def _format(records: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(to_jsonable(records), indent=2)
    first = IDENTITY_FIELDS + [m.name for m in METRICS.ordered()]  # metrics in the registry's order
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
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0
