"""Run every benchmark and print ONE JSON object: ``{"ledger": {...}, "shrink": {...}, ...}``.

Each ``bench/<name>.py`` still runs alone (``python -m bench.<name>``) and prints its
own JSON; here each runs in its own process, one after another (so none measures
another's leftovers), and its output is nested under its name. A script that
already nests its figures under its own name (``{"shrink": {...}}``) is not nested
twice. A script that fails is reported under its name with its exit code and the
end of its stderr, and the run exits non-zero.

    .venv/bin/python -m bench [NAME ...]     # every benchmark, or only those named
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def names() -> list[str]:
    """Every ``bench/<name>.py`` but this runner, in a stable order."""
    return sorted(p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_"))


def run(name: str) -> tuple[object, bool]:
    """One benchmark's figures (or its failure), and whether it succeeded."""
    proc = subprocess.run(
        [sys.executable, "-m", f"bench.{name}"],
        cwd=HERE.parent,
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
    chosen = parser.parse_args(argv).names or names()
    unknown = sorted(set(chosen) - set(names()))
    if unknown:
        parser.error(f"no such benchmark: {', '.join(unknown)}")
    merged: dict[str, object] = {}
    ok = True
    for name in chosen:
        print(f"running bench.{name}", file=sys.stderr, flush=True)
        merged[name], succeeded = run(name)
        ok = ok and succeeded
    print(json.dumps(merged, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
