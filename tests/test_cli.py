"""The operator CLI: ``doctor`` against the MiniMax simulator, ``generate`` with the demo."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hailuo.cli import GenerateRequest, generate
from hailuo.doctor import doctor
from hailuo.settings import Settings, load_settings
from tests import media
from tests.discord_sim import DiscordSimulator
from tests.sims.minimax import MiniMaxSimulator

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def sim() -> AsyncIterator[MiniMaxSimulator]:
    async with MiniMaxSimulator() as simulator:
        yield simulator


def settings_for(tmp_path: Path, **env: str) -> Settings:
    return load_settings(
        environ={"HAILUO_DATABASE": str(tmp_path / "bot.sqlite3"), **env},
        dotenv_path=None,
        require_discord=False,
    )


def row(output: str, provider: str) -> list[str]:
    [line] = [line for line in output.splitlines() if line.startswith(provider + " ")]
    return [cell for cell in line.split("  ") if cell.strip()]


async def test_doctor_with_a_good_key(
    sim: MiniMaxSimulator, discord_sim: DiscordSimulator, tmp_path: Path
) -> None:
    settings = settings_for(
        tmp_path,
        MINIMAX_API_KEY=sim.api_key,
        MINIMAX_BASE_URL=sim.base_url,
        DISCORD_TOKEN=discord_sim.token,
        DISCORD_API_BASE_URL=discord_sim.api_base,
    )
    out = io.StringIO()
    assert await doctor(settings, out) == 0
    text = out.getvalue()
    assert [c.strip() for c in row(text, "minimax")] == [
        "minimax",
        "yes",
        "yes",
        "yes",
        "not reported",
    ]
    assert [c.strip() for c in row(text, "freepik")][:2] == ["freepik", "no"]
    assert "database   ok" in text and "DISCORD_TOKEN set and accepted" in text
    assert sim.api_key not in text and discord_sim.token not in text
    assert sim.requests_to("submit") == []  # nothing that costs money
    assert len(sim.requests_to("query")) == 1


async def test_doctor_with_a_bad_key(sim: MiniMaxSimulator, tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path, MINIMAX_API_KEY="mm-wrong-key-123", MINIMAX_BASE_URL=sim.base_url
    )
    out = io.StringIO()
    assert await doctor(settings, out) == 1
    text = out.getvalue()
    assert [c.strip() for c in row(text, "minimax")][:3] == ["minimax", "yes", "yes"]
    assert row(text, "minimax")[3].startswith("NO (rejected: ")  # the provider's reason
    assert "mm-wrong-key-123" not in text
    assert "DISCORD_TOKEN NOT SET" in text


async def test_doctor_with_an_unreachable_provider(sim: MiniMaxSimulator, tmp_path: Path) -> None:
    url = sim.base_url
    await sim.close()  # nothing listens there any more
    settings = settings_for(tmp_path, MINIMAX_API_KEY="k", MINIMAX_BASE_URL=url)
    out = io.StringIO()
    assert await doctor(settings, out) == 1
    assert [c.strip() for c in row(out.getvalue(), "minimax")][2] == "NO"


async def test_doctor_in_demo_mode_checks_ffmpeg(
    discord_sim: DiscordSimulator, tmp_path: Path
) -> None:
    out = io.StringIO()
    env = {"DISCORD_TOKEN": discord_sim.token, "DISCORD_API_BASE_URL": discord_sim.api_base}
    assert await doctor(settings_for(tmp_path, **env), out) == 0
    assert "demo mode" in out.getvalue()
    assert [c.strip() for c in row(out.getvalue(), "demo")][:3] == ["demo", "yes", "yes"]


async def test_generate_writes_an_mp4_through_the_demo(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, HAILUO_POLL_SECONDS="0.05")
    out = tmp_path / "video.mp4"
    stream = io.StringIO()
    code = await generate(
        settings, GenerateRequest(prompt="a lighthouse at night", out=out), stream
    )
    assert code == 0, stream.getvalue()
    info = media.probe_video(out.read_bytes())
    assert (info.codec, info.pix_fmt) == ("h264", "yuv420p")
    assert "100%" in stream.getvalue() and f"wrote {out}" in stream.getvalue()
    assert not (tmp_path / "bot.sqlite3").exists()  # a throw-away database, not the bot's


async def test_generate_refuses_a_spec_the_model_cannot_make(tmp_path: Path) -> None:
    stream = io.StringIO()
    request = GenerateRequest(prompt="x", out=tmp_path / "v.mp4", duration=10, resolution="1080P")
    assert await generate(settings_for(tmp_path), request, stream) == 2
    assert "1080P" in stream.getvalue()


async def run_module(tmp_path: Path, *args: str, **env: str) -> tuple[int, str, str]:
    """``python -m hailuo ...`` in a clean environment (no keys, no .env), awaited."""
    clean = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_TOKEN"))}
    clean.update(PYTHONPATH=str(ROOT), HAILUO_DATABASE=str(tmp_path / "db.sqlite3"), **env)
    clean.pop("HAILUO_PROVIDERS", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hailuo",
        *args,
        cwd=tmp_path,
        env=clean,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, stdout.decode(), stderr.decode()


async def test_python_m_hailuo_generate(tmp_path: Path) -> None:
    code, _, err = await run_module(
        tmp_path, "generate", "--prompt", "hello", "--out", "v.mp4", HAILUO_POLL_SECONDS="0.05"
    )
    assert code == 0, err
    assert media.probe_video((tmp_path / "v.mp4").read_bytes()).codec == "h264"


async def test_python_m_hailuo_reports_a_bad_setting_in_one_sentence(tmp_path: Path) -> None:
    code, out, err = await run_module(tmp_path, "doctor", MINIMAX_BASE_URL="not a url")
    assert code == 2 and out == ""
    assert err.startswith("hailuo: MINIMAX_BASE_URL") and "Traceback" not in err


@pytest.mark.parametrize("database", ["/proc/x.sqlite3", "/dev/null/x.sqlite3"])
async def test_a_bad_database_path_is_one_sentence_and_exit_2(
    tmp_path: Path, database: str
) -> None:
    """A database the bot cannot open is a bad setting: one sentence, exit 2, no traceback."""
    clean = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_TOKEN"))}
    clean.update(
        PYTHONPATH=str(ROOT),
        DISCORD_TOKEN="unused-token",
        HAILUO_DATABASE=database,
        DISCORD_API_BASE_URL="http://127.0.0.1:9/api/v10",
        HAILUO_HTTP_PORT="0",
    )
    clean.pop("HAILUO_PROVIDERS", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bot.py"),
        cwd=tmp_path,
        env=clean,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, raw = await proc.communicate()
    err = raw.decode()
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.strip()]
    assert line.startswith(f"hailuo: cannot open the database {database}")
    assert line.endswith("check HAILUO_DATABASE.")


async def test_doctor_names_a_database_it_cannot_open(tmp_path: Path) -> None:
    out = io.StringIO()
    settings = load_settings(
        environ={"HAILUO_DATABASE": "/proc/x.sqlite3"}, dotenv_path=None, require_discord=False
    )
    assert await doctor(settings, out) != 0
    assert "CANNOT OPEN: cannot open the database /proc/x.sqlite3" in out.getvalue()


async def test_doctor_on_postgresql_shows_the_database_without_its_password(
    sim: MiniMaxSimulator, pg_url: str, tmp_path: Path
) -> None:
    secret_url = pg_url.replace("postgres@", "postgres:hunter2@")  # trust auth ignores it
    settings = settings_for(
        tmp_path, HAILUO_DATABASE=secret_url, MINIMAX_API_KEY=sim.api_key,
        MINIMAX_BASE_URL=sim.base_url,
    )  # fmt: skip
    out = io.StringIO()
    await doctor(settings, out)
    text = out.getvalue()
    assert "database   ok: postgresql://postgres:***@" in text and "hunter2" not in text
