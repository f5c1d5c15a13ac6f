"""Run every benchmark and print ONE JSON object: ``{"ledger": {...}, "shrink": {...}, ...}``.

Each ``bench/<name>.py`` still runs alone (``python -m bench.<name>``) and prints its
own JSON; here each runs in its own process, one after another (so none measures
another's leftovers), and its output is nested under its name. A script that
already nests its figures under its own name (``{"shrink": {...}}``) is not nested
twice. A script that fails is reported under its name with its exit code and the
end of its stderr, and the run exits non-zero.

    .venv/bin/python -m bench [--quick] [NAME ...]   # every benchmark, or only those named
    .venv/bin/python -m bench --postgresql [NAME ...]  # the same on a throwaway PostgreSQL
    .venv/bin/python -m bench --database postgresql://… [NAME ...]

``--postgresql`` / ``--database`` (``HAILUO_BENCH_DATABASE`` for the scripts, see
``bench/_pg.py``) run the benchmarks that have a PostgreSQL side (``ON_POSTGRESQL``);
naming another one then is an error.

``--quick`` sets ``BENCH_QUICK=1`` for every script: the same keys from the smallest
sizes and fewest samples (CI checks the keys this way). The machine's load average
before and after the run is reported under ``machine``: the figures of a busy
machine are not comparable with those of an idle one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from bench._pg import ENV, START

HERE = Path(__file__).resolve().parent
#: The benchmarks that measure the database and run on PostgreSQL too.
ON_POSTGRESQL = ("answer", "ledger", "scale")


def names() -> list[str]:
    """Every ``bench/<name>.py`` but this runner, in a stable order."""
    return sorted(p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_"))


def run(name: str, quick: bool = False, database: str | None = None) -> tuple[object, bool]:
    """One benchmark's figures (or its failure), and whether it succeeded."""
    env = dict(os.environ)
    if quick:
        env["BENCH_QUICK"] = "1"
    if database:
        env[ENV] = database
    proc = subprocess.run(
        [sys.executable, "-m", f"bench.{name}"],
        cwd=HERE.parent,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}", "stderr": proc.stderr[-2000:]}, False
    try:
        figures = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {"error": "output is not JSON", "stdout": proc.stdout[-2000:]}, False
    if isinstance(figures, dict) and list(figures) == [name]:
        figures = figures[name]
    return figures, True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: {names()})")
    parser.add_argument("--quick", action="store_true", help="smallest sizes, same keys")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--database", metavar="URL", help="a PostgreSQL server to measure on")
    group.add_argument("--postgresql", action="store_true", help="start a throwaway one")
    args = parser.parse_args(argv)
    database = args.database or (START if args.postgresql else os.environ.get(ENV) or None)
    chosen = args.names or (list(ON_POSTGRESQL) if database else names())
    unknown = sorted(set(chosen) - set(names()))
    if unknown:
        parser.error(f"no such benchmark: {', '.join(unknown)}")
    if database and set(chosen) - set(ON_POSTGRESQL):
        parser.error(f"on PostgreSQL only: {', '.join(ON_POSTGRESQL)}")
    merged: dict[str, object] = {}
    ok = True
    load_before = os.getloadavg()
    for name in chosen:
        print(f"running bench.{name}", file=sys.stderr, flush=True)
        merged[name], succeeded = run(name, args.quick, database)
        ok = ok and succeeded
    merged["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "quick": args.quick,
        "engine": "postgresql" if database else "sqlite",
        "load_avg_1m_before": round(load_before[0], 2),
        "load_avg_1m_after": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(merged, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
