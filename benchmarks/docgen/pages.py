"""Fill the page templates: prose with ``{{ directive args }}`` (alone on a line: a block such as a
table; inside a sentence: a number), each directive reading one or more records.

Directives (RECORD = a folder name under results/; GROUP = an experiment label as the rows carry it,
or ``-`` when the record holds one experiment):

    {{ provenance RECORD }}                     how, where, when and from which commit it was made
    {{ leaderboard RECORD GROUP [methods=a,b] }} one experiment's leaderboard
    {{ leaderboards RECORD }}                   every experiment of the record, each under a heading
    {{ value RECORD GROUP METHOD FIELD [digits=N] }}  avg_gap, speedup, n_seeds or a metric's mean
    {{ ranks RECORD[:GROUP] ... [methods=a,b] }} avg gap and rank per method across experiments
    {{ requests RECORD [GROUP] }}               a stream of requests, request by request
    {{ scaling RECORD MODEL SCENARIO }}         time, gap and speedup against the data-set size
    {{ audit RECORD }}                          the per-example audit's table
    {{ failures RECORD }}                       the cells that ended in an error
    {{ guarded RECORD }}                        runs the divergence guard restarted, rows flagged
                                                as over-forgetting
    {{ figure KIND RECORD ARGS... file=NAME }}   KIND tradeoff (GROUP), requests (GROUP), scaling
                                                (MODEL SCENARIO): writes img/NAME.svg, inserts it
    {{ headline RECORD[:GROUP][,...] ... [flagship=RECORD] [audit=RECORD] [stream=RECORD] }}
                                                every method across benchmarks: mean ranks, the
                                                flagship's gap and speedup, U-LiRA, a stream's gap
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import figures, tables
from .records import Record, RecordError

DIRECTIVE = re.compile(r"\{\{\s*(.*?)\s*\}\}")
OPTION = re.compile(r"^[A-Za-z_]\w*=")  # key=value; a group label such as "x(a=1)/m/s" is positional


@dataclass
class Context:
    results: Path
    page: Path                      # where the page goes in the repository (links are relative to it)
    images: Path                    # folder the figures are written to
    images_link: Path               # ... and where they go in the repository
    records: dict[str, Record] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)

    def record(self, name: str) -> Record:
        if name not in self.records:
            self.records[name] = Record.load(self.results, name)
        return self.records[name]

    def rows(self, name: str, group: str | None, methods: str | None = None) -> list[dict]:
        chosen = methods.split(",") if methods else None
        return self.record(name).rows_of(None if group in (None, "-") else group, chosen)


def short_label(group: str) -> str:
    """``mnist1d(n_samples=5000)/mlp/random(forget_size=0.1)`` -> ``mnist1d/mlp random``."""
    dataset, model, scenario = group.split("/", 2)
    return f"{dataset.split('(')[0]}/{model.split('(')[0]} {scenario.split('(')[0]}"


def experiment_labels(groups: list[str]) -> list[str]:
    """Column labels for ``groups``: the short label, or, where two groups would share it, the dataset and
    model with their options (``mnist1d/mlp(hidden=128) random``)."""
    short = [short_label(g) for g in groups]
    full = [f"{g.split('/', 2)[0]}/{g.split('/', 2)[1]} {g.split('/', 2)[2].split('(')[0]}" for g in groups]
    return [f if short.count(s) > 1 else s for s, f in zip(short, full)]


def provenance(ctx: Context, name: str) -> str:
    rec = ctx.record(name)
    lines = []
    for inv in rec.meta["invocations"]:
        m = inv["machine"]
        load = inv.get("load_before")
        lines.append(f"- `{inv['command']}` — commit `{inv['commit'][:10]}`{' (uncommitted changes)' if inv['dirty'] else ''}, "
                     f"{inv['started'][:16].replace('T', ' ')}–{inv['finished'][11:16]} UTC, {inv['wall_s']:,.0f} s wall, "
                     f"exit status {inv['exit_status']}; {m['cores']} cores ({m['cpu'] or m['system']}), "
                     f"{m['memory_gib']} GiB, Python {m['python']}, torch {m['torch']}"
                     + (f"; load average {load[0]:.2f} before" if load else ""))
    return (f"Results: [`results/{name}/`]({os.path.relpath(rec.folder, ctx.page.parent)}), from:\n\n"
            + "\n".join(lines) + "\n")


def _leaderboards(ctx: Context, name: str) -> str:
    parts = []
    for group in ctx.record(name).groups():
        parts += [f"### {group}", "", tables.leaderboard(ctx.rows(name, group))]
    return "\n".join(parts)


def _ranks(ctx: Context, *targets: str, methods: str | None = None) -> str:
    return tables.ranks(_experiments(ctx, ",".join(targets)), methods.split(",") if methods else None)


def _experiments(ctx: Context, targets: str) -> list[tuple[str, list[dict]]]:
    chosen = []
    for target in targets.split(","):
        name, _, group = target.partition(":")
        chosen += [(name, g) for g in ([group] if group else ctx.record(name).groups())]
    labels = experiment_labels([g for _, g in chosen])
    return [(label, ctx.rows(name, g)) for label, (name, g) in zip(labels, chosen)]


def _headline(ctx: Context, *rank_sets: str, flagship: str | None = None, audit: str | None = None,
              stream: str | None = None) -> str:
    """One set of experiments to rank over per positional ``RECORD[:GROUP][,...]``, labelled by it."""
    sets = [(targets.split(":")[0], _experiments(ctx, targets)) for targets in rank_sets]
    return tables.headline(sets, ctx.rows(flagship, None) if flagship else None,
                           ctx.rows(audit, None) if audit else None, ctx.rows(stream, None) if stream else None)


def _figure(ctx: Context, kind: str, name: str, *args: str, file: str) -> str:
    path = ctx.images / f"{file}.svg"
    if kind == "tradeoff":
        figures.tradeoff(ctx.rows(name, args[0]), path, short_label(ctx.rows(name, args[0])[0]["grp"]))
    elif kind == "requests":
        rows = ctx.rows(name, args[0] if args else None)
        figures.requests(rows, path, short_label(rows[0]["grp"]))
    elif kind == "scaling":
        figures.scaling(tables.scaling_summary(ctx.record(name).runs), args[0], args[1], path)
    else:
        raise RecordError(f"unknown figure kind {kind!r}: use tradeoff, requests or scaling")
    ctx.written.append(path)
    return f"![{kind}: {file}]({os.path.relpath(ctx.images_link / path.name, ctx.page.parent)})\n"


DIRECTIVES: dict[str, Callable[..., str]] = {
    "provenance": provenance,
    "leaderboard": lambda ctx, name, group="-", methods=None: tables.leaderboard(ctx.rows(name, group, methods)),
    "leaderboards": _leaderboards,
    "value": lambda ctx, name, group, method, fld, digits="1": tables.value(ctx.rows(name, group), method, fld,
                                                                              int(digits)),
    "ranks": _ranks,
    "requests": lambda ctx, name, group="-": tables.requests(ctx.rows(name, group)),
    "scaling": lambda ctx, name, model, scenario: tables.scaling(tables.scaling_summary(ctx.record(name).runs),
                                                                 model, scenario),
    "audit": lambda ctx, name: tables.audit(ctx.rows(name, None)),
    "failures": lambda ctx, name: tables.failures(ctx.record(name).runs),
    "guarded": lambda ctx, name: tables.guarded(ctx.record(name).rows),
    "figure": _figure,
    "headline": _headline,
}


def expand(text: str, ctx: Context, source: str) -> str:
    """``text`` with every directive replaced; an error names the template line."""
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        def run(match: re.Match) -> str:
            words = shlex.split(match.group(1))
            if not words or words[0] not in DIRECTIVES:
                raise RecordError(f"{source}:{n}: unknown directive {words[:1]}; known: {', '.join(DIRECTIVES)}")
            positional = [w for w in words[1:] if not OPTION.match(w)]
            options = dict(w.split("=", 1) for w in words[1:] if OPTION.match(w))
            try:
                return DIRECTIVES[words[0]](ctx, *positional, **options)
            except (RecordError, ValueError, KeyError, TypeError) as exc:
                raise RecordError(f"{source}:{n}: {match.group(0)}: {exc}") from None

        out.append(DIRECTIVE.sub(run, line).rstrip("\n") if DIRECTIVE.search(line) else line)
    return "\n".join(out).rstrip("\n") + "\n"
