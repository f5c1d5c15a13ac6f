"""Worst-case prompt screening at the blocklist's caps, on RE2; prints JSON.

A server's blocklist is filled to its caps (``MAX_PATTERNS`` regexes, each one of
the classic catastrophic-backtracking shapes or a DFA-blowing one, and the rest
of ``MAX_ENTRIES`` as words and phrases of up to ``MAX_ENTRY_CHARS``), then each
adversarial prompt of 2,000 characters is screened ``--rounds`` times. Reported
per prompt: the slowest and the median screening in milliseconds (folding,
every view, every rule); one screening blocks the event loop for that long.

    .venv/bin/python -m bench.screening [--rounds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

from hailuo.moderation.screening import (
    MAX_ENTRIES,
    MAX_ENTRY_CHARS,
    MAX_PATTERNS,
    Blocklist,
    validate_entry,
)
from storage.blocklist import BlocklistEntry, BlocklistKind

PROMPT_CHARS = 2000
# Catastrophic on a backtracking engine; each ends in "_", which no folded text holds,
# so every rule runs over every view: the worst case is a prompt that passes.
PATTERNS = (
    r"(\w+){,}_",
    r"\w*\w*\w*\w*_",
    "(a+)+_",
    "(a|aa)*_",
    r"(\w+\s?)*_",
    "(x+x+)+_",
    "(.*a){20}_",
    "[a-q][^u-z]{13}_",
    r"(\w|\d)*_",
    "(a|a?)+_",
)
PROMPTS = {
    "one letter": "a" * (PROMPT_CHARS - 1) + "!",
    "word chars": "x" * PROMPT_CHARS,
    "letters apart": "a b " * (PROMPT_CHARS // 4),
    "runs and words": "aa b c dd e " * (PROMPT_CHARS // 12),
    "look-alikes": "кіll " * (PROMPT_CHARS // 5),
    "expanding ligatures": "\ufdfa" * PROMPT_CHARS,  # NFKC: 18 letters each (not screened)
    "expanding numerals": "\u2177" * PROMPT_CHARS,  # NFKC: "viii", the longest kept
    "stretched": ("k" + "i" * 5 + "1" * 5 + "l") * (PROMPT_CHARS // 12),
}


def entries() -> list[BlocklistEntry]:
    made: list[BlocklistEntry] = []
    for n in range(MAX_PATTERNS):
        pattern = PATTERNS[n % len(PATTERNS)] + "_" * (n // len(PATTERNS))
        validate_entry(BlocklistKind.REGEX, pattern)
        made.append(BlocklistEntry(n, 1, BlocklistKind.REGEX, pattern, "", None, 0.0))
    words = ("kilt", "i1lx", "aaaa bq", "self harmq", "abcdefghij " * 18)
    for n in range(MAX_PATTERNS, MAX_ENTRIES):
        text = f"{words[n % len(words)]} {n}"[:MAX_ENTRY_CHARS]
        made.append(BlocklistEntry(n, 1, BlocklistKind.PHRASE, text, "", None, 0.0))
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="two rounds")
    args = parser.parse_args()
    quick = args.quick or os.environ.get("BENCH_QUICK", "") not in ("", "0")
    rounds = 2 if quick else args.rounds
    started = time.perf_counter()
    blocklist = Blocklist.compile(entries())
    compile_ms = (time.perf_counter() - started) * 1000
    results: dict[str, dict[str, float | bool]] = {}
    for name, prompt in PROMPTS.items():
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            matched = blocklist.match(prompt)
            times.append((time.perf_counter() - started) * 1000)
        results[name] = {
            "passed": matched is None,
            "max_ms": round(max(times), 2),
            "median_ms": round(statistics.median(times), 2),
        }
    report = {
        "python": platform.python_version(),
        "rules": len(blocklist.rules),
        "max_patterns": MAX_PATTERNS,
        "max_entries": MAX_ENTRIES,
        "prompt_chars": PROMPT_CHARS,
        "compile_ms": round(compile_ms, 1),
        "screening": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
