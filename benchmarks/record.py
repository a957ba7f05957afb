"""Run a benchmark command and keep its results in the repository, as text, with their provenance.

    python benchmarks/record.py NAME --store bench-results/full.sqlite -- \\
        unlearnkit bench benchmarks/full.yaml --workers 1 --store bench-results/full.sqlite
    python benchmarks/record.py NAME --out runs/stream -- unlearnkit run ... --out runs/stream

runs the command (``OMP_NUM_THREADS=1`` unless set), then writes ``results/NAME/``:

* ``store.jsonl``: the text dump of the results store the command wrote (``--store``), or
  ``results.json``: the output folder's results (``--out``: ``run``, ``audit``, or a script that
  writes one), and
* ``record.json``: one entry per invocation (the command, the commit it ran on, start and end in
  UTC, wall time, exit status, the load average before and after) and the machine (cores, CPU,
  memory, Python, torch, NumPy).

A command that stops half-way (killed, or a bench with error cells) is recorded too, and running the
same command again resumes it: the store or folder keeps what was done, and a second invocation is
added to ``record.json``. A command whose store or folder does not exist yet is a fresh run: its
record replaces whatever ``results/NAME/`` held. The tracked code must be committed
(``--allow-dirty`` records the run as dirty instead), so that every result names the code that
produced it. ``make tables`` turns the records into the benchmark documents (``benchmarks/tables.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout.strip()


def code_state() -> tuple[str, bool]:
    """The commit checked out and whether tracked files differ from it."""
    return git("rev-parse", "HEAD"), bool(git("status", "--porcelain", "--untracked-files=no"))


def machine() -> dict:
    import numpy
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30 if hasattr(os, "sysconf") else None
    return {"cores": os.cpu_count(), "cpu": cpu, "memory_gib": None if mem is None else round(mem, 1),
            "system": f"{platform.system()} {platform.machine()}", "python": platform.python_version(),
            "torch": torch.__version__, "numpy": numpy.__version__}


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def save_results(folder: Path, store: Path | None, out: Path | None) -> None:
    """The command's results into ``folder``, as text."""
    if store is not None:
        if store.exists():
            from unlearnkit.bench.grid import dump_store

            dump_store(store, folder / "store.jsonl")
    elif (out / "results.json").exists():
        shutil.copyfile(out / "results.json", folder / "results.json")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("name", help="the record's name: results/NAME/")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--store", type=Path, help="the results store the command writes")
    where.add_argument("--out", type=Path, help="the output folder whose results.json the command writes")
    p.add_argument("--allow-dirty", action="store_true", help="record even though tracked files are not committed")
    p.add_argument("--results-dir", type=Path, default=RESULTS, help="where records go (default: results/)")
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        p.error("give the command to run after --")
    cut = argv.index("--")
    args, command = p.parse_args(argv[:cut]), argv[cut + 1:]
    commit, dirty = code_state()
    if dirty and not args.allow_dirty:
        print("record.py: tracked files have uncommitted changes; commit them so that the results name their code "
              "(or pass --allow-dirty)", file=sys.stderr)
        return 2
    folder = args.results_dir / args.name
    resuming = (args.store or args.out).exists()  # else a fresh run: earlier invocations are not its history
    if not resuming and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entry = {"command": " ".join(command), "commit": commit, "dirty": dirty, "started": now(),
             "load_before": load_average(), "machine": machine()}
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    start = time.perf_counter()
    try:
        status = subprocess.run(command, cwd=ROOT, env=env).returncode
    except KeyboardInterrupt:
        status = -2
    entry.update(finished=now(), wall_s=round(time.perf_counter() - start, 1), exit_status=status,
                 load_after=load_average())
    save_results(folder, args.store, args.out)
    record_path = folder / "record.json"
    record = (json.loads(record_path.read_text()) if resuming and record_path.exists()
              else {"name": args.name, "invocations": []})
    record["source"] = {"store": str(args.store)} if args.store else {"out": str(args.out)}
    record["invocations"].append(entry)
    record_path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"record.py: {args.name}: exit status {status}, {entry['wall_s']} s; results in {folder}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
