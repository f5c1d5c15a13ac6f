"""Shrink to fit (``hailuo/media/shrink.py``) with the real bundled ffmpeg on real files.

The input is a real H.264 + AAC clip made noisy so it cannot compress for free;
the output is probed by ffmpeg itself. Failures use a corrupt file, or a stand-in
ffmpeg script that describes any input and then fails or hangs its encode, so the
clean-up on every path is seen on disk.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from hailuo.media.shrink import (
    AUDIO_BPS,
    HEADROOM,
    MIN_VIDEO_BPS,
    EncodePlan,
    Shrinker,
    ShrinkFailed,
    parse_probe,
    plan_encode,
    retry_plan,
)
from tests.media import noisy_mp4, probe_video

MIB = 1024 * 1024
LIMIT = 10 * MIB

pytestmark = pytest.mark.timeout(120)


def big_clip() -> bytes:
    """A real ~15 MB H.264 + AAC video of 4 s (low resolution: the point is its size)."""
    return noisy_mp4(4, 640, 360, 28_000_000)


def fake_ffmpeg(folder: Path, encode: str) -> str:
    """An ffmpeg stand-in: ``-i`` alone reports a 4 s video; an encode runs ``encode``.

    The encode first writes a partial output file, as a real ffmpeg does, so the test
    sees whether the shrinker deletes it.
    """
    script = folder / "ffmpeg"
    script.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        '  *movflags*) for last; do :; done; printf partial > "$last"; ' + encode + ";;\n"
        '  *) echo "  Duration: 00:00:04.00, start: 0.000000" >&2; exit 1;;\n'
        "esac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


async def test_shrink_a_15mb_h264_video_to_one_file_under_10mib(tmp_path: Path, work: Path) -> None:
    source = tmp_path / "big.mp4"
    source.write_bytes(big_clip())
    assert 14 * MIB < source.stat().st_size < 17 * MIB
    shrinker = Shrinker(directory=work)
    before = await shrinker.probe(source)

    shrunk = await shrinker.shrink(source, LIMIT)

    assert list(work.iterdir()) == [shrunk.path]  # the one result, no leftovers
    assert shrunk.size == shrunk.path.stat().st_size <= LIMIT
    data = shrunk.path.read_bytes()
    assert probe_video(data).codec == "h264"
    after = await shrinker.probe(shrunk.path)
    assert after.duration == pytest.approx(before.duration, abs=0.1)  # duration kept
    assert after.has_audio and "Audio: aac" in probe_video(data).raw
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart: the index comes first
    shrunk.discard()
    assert list(work.iterdir()) == []


async def test_shrink_of_a_corrupt_file_fails_and_leaves_nothing(
    tmp_path: Path, work: Path
) -> None:
    source = tmp_path / "corrupt.mp4"
    source.write_bytes(b"<html>not a video</html>" * 50_000)
    with pytest.raises(ShrinkFailed, match="no duration"):
        await Shrinker(directory=work).shrink(source, LIMIT)
    assert list(work.iterdir()) == []


async def test_shrink_when_the_encode_fails_deletes_its_partial_output(
    tmp_path: Path, work: Path
) -> None:
    source = tmp_path / "big.mp4"
    source.write_bytes(big_clip())
    ffmpeg = fake_ffmpeg(tmp_path, "echo 'encoder exploded' >&2; exit 1")
    with pytest.raises(ShrinkFailed, match="exited 1: encoder exploded"):
        await Shrinker(ffmpeg, directory=work).shrink(source, LIMIT)
    assert list(work.iterdir()) == []


async def test_shrink_past_its_timeout_kills_ffmpeg_and_deletes_its_output(
    tmp_path: Path, work: Path
) -> None:
    source = tmp_path / "big.mp4"
    source.write_bytes(big_clip())
    ffmpeg = fake_ffmpeg(tmp_path, "exec sleep 60")
    with pytest.raises(ShrinkFailed, match="took over"):
        await Shrinker(ffmpeg, timeout=1, directory=work).shrink(source, LIMIT)
    assert list(work.iterdir()) == []


async def test_shrink_cancelled_mid_encode_kills_ffmpeg_and_deletes_its_output(
    tmp_path: Path, work: Path
) -> None:
    """A shutdown cancels the delivery: no encode and no half-written file outlives it."""
    source = tmp_path / "big.mp4"
    source.write_bytes(big_clip())
    started = tmp_path / "started"
    os.mkfifo(started)
    ffmpeg = fake_ffmpeg(tmp_path, f"echo $$ > {started}; exec sleep 60")
    task = asyncio.create_task(Shrinker(ffmpeg, directory=work).shrink(source, LIMIT))
    pid = int(await asyncio.to_thread(started.read_text))  # the encode is running
    assert len(list(work.iterdir())) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert list(work.iterdir()) == []
    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(pid, 0)


async def test_shrink_without_an_ffmpeg_binary_fails_cleanly(tmp_path: Path, work: Path) -> None:
    source = tmp_path / "big.mp4"
    source.write_bytes(b"x")
    missing = str(tmp_path / "no-such-ffmpeg")
    with pytest.raises(ShrinkFailed, match="did not start"):
        await Shrinker(missing, directory=work).shrink(source, LIMIT)


async def test_shrink_refuses_what_cannot_fit_without_encoding(tmp_path: Path, work: Path) -> None:
    source = tmp_path / "big.mp4"
    source.write_bytes(big_clip())
    # 4 s in 50 KB is 100 kbit/s: under the floor, so no encode is even tried.
    ffmpeg = fake_ffmpeg(tmp_path, "exit 0")
    with pytest.raises(ShrinkFailed, match="cannot fit"):
        await Shrinker(ffmpeg, directory=work).shrink(source, 50_000)
    assert list(work.iterdir()) == []


async def test_shrink_runs_one_encode_at_a_time(tmp_path: Path, work: Path) -> None:
    """Two deliveries at once: the second encode starts only when the first is over."""
    source = tmp_path / "big.mp4"
    source.write_bytes(big_clip())
    log = tmp_path / "log"
    # Each encode notes its start and end around a short wait; overlap would interleave.
    ffmpeg = fake_ffmpeg(tmp_path, f"echo start >> {log}; sleep 0.3; echo end >> {log}; exit 1")
    shrinker = Shrinker(ffmpeg, directory=work, concurrency=1)
    results = await asyncio.gather(
        shrinker.shrink(source, LIMIT), shrinker.shrink(source, LIMIT), return_exceptions=True
    )
    assert all(isinstance(r, ShrinkFailed) for r in results)
    assert log.read_text().split() == ["start", "end", "start", "end"]


# -- the plan: pure arithmetic ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "seconds", "audio", "height"),
    [
        (10 * MIB, 6, True, None),  # 1080p 6 s into 10 MiB: ~12 Mbit/s, full size
        (10 * MIB, 10, False, None),
        (2 * MIB, 10, True, 720),  # ~1.4 Mbit/s: 720p at most
        (1 * MIB, 10, True, 480),  # ~0.66 Mbit/s
        (MIB // 2, 10, True, 360),  # ~0.28 Mbit/s
        (25 * MIB, 10, True, None),
    ],
)
def test_shrink_plan_fills_the_headroom_and_no_more(
    limit: int, seconds: float, audio: bool, height: int | None
) -> None:
    plan = plan_encode(limit, seconds, has_audio=audio)
    assert plan is not None
    assert plan.audio_bps == (AUDIO_BPS if audio else 0)
    total_bytes = (plan.video_bps + plan.audio_bps) * seconds / 8
    assert limit * HEADROOM * 0.99 <= total_bytes <= limit * HEADROOM
    assert plan.max_height == height


def test_shrink_plan_refuses_what_cannot_fit() -> None:
    assert plan_encode(100_000, 10, has_audio=True) is None  # 72 kbit/s in all
    assert plan_encode(LIMIT, 0, has_audio=False) is None  # no duration
    floor = MIN_VIDEO_BPS * 10 / 8 / HEADROOM
    assert plan_encode(int(floor) + 1000, 10, has_audio=False) is not None


def test_shrink_second_attempt_aims_lower_by_the_overshoot() -> None:
    first = EncodePlan(video_bps=12_000_000, audio_bps=AUDIO_BPS, max_height=None)
    second = retry_plan(first, got=int(LIMIT * 1.1), limit=LIMIT)
    assert second is not None
    assert second.video_bps < first.video_bps * 0.92 / 1.1 + 1
    assert retry_plan(EncodePlan(200_000, 0, 360), got=LIMIT * 3, limit=LIMIT) is None


def test_shrink_probe_reads_duration_and_audio() -> None:
    text = (
        "  Duration: 01:02:03.50, start: 0.000000, bitrate: 800 kb/s\n"
        "  Stream #0:0[0x1](und): Video: h264 (High), yuv420p, 1920x1080\n"
        "  Stream #0:1[0x2](und): Audio: aac (LC), 44100 Hz, stereo\n"
    )
    probe = parse_probe(text)
    assert probe.duration == pytest.approx(3723.5)
    assert probe.has_audio
    assert not parse_probe(text.split("\n  Stream #0:1")[0]).has_audio
    with pytest.raises(ShrinkFailed):
        parse_probe("Invalid data found when processing input")


def test_shrink_bench_runs_under_python_m_bench() -> None:
    """``python -m bench`` finds every script, this one among them, and only scripts."""
    from bench.__main__ import names

    assert {"answer", "ledger", "shrink"} <= set(names())
    assert "__main__" not in names()
