"""``python -m bench --quick`` prints one JSON object with every key issue 13 compares.

The figures themselves are never asserted (speed goals live in the JSON, not in
tests); what is checked is that each benchmark still runs, in its own process, and
still reports the keys by which one run is compared with the next. Quick mode runs
the smallest sizes, so this stays well under a minute of CPU.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench._simhost import padded_mp4
from bench.scale import weighted_lag

ROOT = Path(__file__).resolve().parent.parent

BY_BURST = ("1", "50", "200")
BY_WRITERS = ("1", "10", "50")
BY_DURATION = ("60", "120", "240")

#: benchmark -> key -> the sub-keys it is reported by (empty: a single number).
EXPECTED: dict[str, dict[str, tuple[str, ...]]] = {
    "ledger": {
        "ops_per_s": BY_WRITERS,
        "reserve_p99_ms": BY_WRITERS,
        "sqlite_limit_ops_per_s": (),
        "ops_per_s_100k_history": (),
    },
    "answer": {
        "p50_ms": BY_BURST,
        "p99_ms": BY_BURST,
        "max_ms": BY_BURST,
        "missed": (),
        "bare_p99_ms": BY_BURST,
    },
    "scale": {
        "open_jobs": (),
        "rss_mb": (),
        "rss_mb_idle": (),
        "loop_lag_p99_ms": (),
        "loop_lag_max_ms": (),
        "recovery_s": (),
        "status_calls_per_s": (),
    },
    "polling": {
        "calls_per_job": BY_DURATION,
        "lag_p50_s": BY_DURATION,
        "lag_p95_s": BY_DURATION,
        "anchor_calls_per_job": BY_DURATION,
    },
    "delivery": {"peak_rss_growth_mb": ()},
    "shrink": {"seconds": (), "bytes": ()},
}


def number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@pytest.mark.timeout(600)
def test_bench_quick_prints_every_key() -> None:
    chosen = sorted(EXPECTED)
    env = {**os.environ, "BENCH_QUICK": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", *chosen],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=570,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    figures = json.loads(proc.stdout)
    for bench, keys in EXPECTED.items():
        for key, subkeys in keys.items():
            value = figures[bench][key]
            if subkeys:
                assert sorted(value) == sorted(subkeys), (bench, key, value)
                assert all(number(v) for v in value.values()), (bench, key, value)
            else:
                assert number(value), (bench, key, value)
    callbacks = figures["polling"]["with_callbacks"]
    for key in ("calls_per_job", "lag_p50_s", "lag_p95_s"):
        assert sorted(callbacks[key]) == sorted(BY_DURATION)
    assert figures["scale"]["recovered_jobs"] == figures["scale"]["open_jobs"]
    assert figures["delivery"]["posted_bytes"] == figures["delivery"]["result_mb"] * 10**6
    assert figures["machine"]["quick"] is True


def test_bench_loop_lag_is_weighted_by_time() -> None:
    """One 1 s stall in 10 s is late by over 900 ms during 1 % of the time; a hundred
    prompt probes around it do not hide it (a per-sample p99 would say 0)."""
    assert weighted_lag([1.0] + [0.0] * 100, wall=10.0) == pytest.approx(0.9, abs=1e-6)
    assert weighted_lag([0.0005] * 100, wall=10.0) == 0.0
    # Ten stalls of 50 ms in 10 s: 0.5 s late in all, over 40 ms for 0.1 s of it.
    assert weighted_lag([0.05] * 10, wall=10.0) == pytest.approx(0.04, abs=1e-6)


def test_bench_padded_result_is_an_mp4_of_the_size_asked() -> None:
    video = padded_mp4(3_000_000)
    assert len(video) == 3_000_000
    assert video[4:8] == b"ftyp"
    box = video.rindex(b"free") - 4  # the padding box runs to the end of the file
    assert int.from_bytes(video[box : box + 4], "big") == len(video) - box


@pytest.mark.timeout(300)
async def test_bench_ledger_on_postgresql_reports_the_same_keys(pg_server) -> None:
    """``python -m bench.ledger --database URL`` measures on that server: SQLite's keys
    (its ceiling as ``postgresql_limit_ops_per_s``), each level on a scratch database
    that is dropped after the run."""
    import asyncpg

    async def databases() -> set[str]:
        conn = await asyncpg.connect(pg_server.admin_url)
        try:
            return {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
        finally:
            await conn.close()

    before = await databases()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.ledger", "--database", pg_server.admin_url,
        "--ops", "30", "--history", "300",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 280)
    assert proc.returncode == 0, err.decode()[-3000:]
    ledger = json.loads(out)["ledger"]
    assert ledger["engine"] == "postgresql" and ledger["postgresql"]
    for key, subkeys in EXPECTED["ledger"].items():
        key = key.replace("sqlite_", "postgresql_")
        value = ledger[key]
        if subkeys:
            assert sorted(value) == sorted(subkeys) and all(map(number, value.values())), key
        else:
            assert number(value), key
    assert ledger["history_jobs"] == 300
    assert await databases() == before  # the scratch databases are gone
