"""The owner's first hour, as a newcomer meets it on a fresh clone: each bad input ends in
one sentence naming what to change, with the right exit status, never a traceback.

Subprocess runs of ``bot.py``, ``python -m hailuo`` and the scripts, in a clean
environment (no keys, no token unless given, no ``.env`` but the one a test writes).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.discord_sim import DiscordSimulator

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parent.parent


def clean_env(tmp_path: Path, **env: str) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DISCORD_", "HAILUO_", "MINIMAX_", "FREEPIK_", "NOVITA_"))
        and not k.startswith(("ODKKK_", "GPTGE_"))
    }
    base.update(
        PYTHONPATH=str(ROOT),
        HAILUO_DATABASE=str(tmp_path / "data" / "hailuo.sqlite3"),
        HAILUO_LOG_LEVEL="WARNING",
        **env,
    )
    return base


async def run(tmp_path: Path, *args: str, **env: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=tmp_path,
        env=clean_env(tmp_path, **env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def last_sentence(err: str) -> str:
    """The bot's own closing line (log lines may come before it), and no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("hailuo: ")]
    assert len(lines) == 1, err
    return lines[0]


# -- bot.py ------------------------------------------------------------------------------


async def test_first_hour_an_unresolvable_discord_names_its_url_and_the_setting(
    tmp_path: Path,
) -> None:
    code, _, err = await run(
        tmp_path,
        str(ROOT / "bot.py"),
        DISCORD_TOKEN="some-token",
        DISCORD_API_BASE_URL="http://discord.invalid/api/v10",
        HAILUO_HTTP_PORT="0",
    )
    assert code == 1
    assert last_sentence(err) == (
        "hailuo: could not start: cannot resolve discord.invalid, the host of Discord's URL "
        "http://discord.invalid/api/v10: check the network (DNS) or DISCORD_API_BASE_URL."
    )
    # discord.py's voice-support warnings (PyNaCl, davey) are not the owner's concern.
    assert "voice will NOT be supported" not in err


async def test_first_hour_a_busy_port_names_hailuo_http_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = await run(
            tmp_path,
            str(ROOT / "bot.py"),
            DISCORD_TOKEN="some-token",
            DISCORD_API_BASE_URL="http://127.0.0.1:9/api/v10",
            HAILUO_HTTP_PORT=str(port),
        )
    assert code == 1
    assert last_sentence(err) == (
        f"hailuo: could not start: the port is already in use: set HAILUO_HTTP_PORT ({port}) "
        "to a free port or stop the program that holds it."
    )


def test_first_hour_env_example_copied_unchanged_says_the_token_is_empty(tmp_path: Path) -> None:
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    env = clean_env(tmp_path)
    env.pop("HAILUO_DATABASE")  # exactly the copy's settings
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bot.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert last_sentence(proc.stderr).startswith(
        "hailuo: DISCORD_TOKEN is empty: paste the bot's token after DISCORD_TOKEN= in .env"
    )
    # Not set at all (no .env): the sentence says so instead.
    (tmp_path / ".env").unlink()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bot.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert last_sentence(proc.stderr).startswith("hailuo: DISCORD_TOKEN is not set")


async def test_first_hour_sync_only_syncs_and_exits_beside_a_running_bot(
    discord_sim: DiscordSimulator, tmp_path: Path
) -> None:
    before = len(discord_sim.command_syncs)
    code, _, err = await run(
        tmp_path,
        str(ROOT / "bot.py"),
        "--sync-only",
        DISCORD_TOKEN=discord_sim.token,
        DISCORD_API_BASE_URL=discord_sim.api_base,
        DISCORD_GATEWAY_URL=discord_sim.gateway_url,
    )
    assert code == 0, err
    assert last_sentence(err) == "hailuo: slash commands synced."
    assert len(discord_sim.command_syncs) == before + 1
    names = {command["name"] for command in discord_sim.command_syncs[-1].json}
    assert {"hailuo", "hailuo-admin"} <= names
    assert discord_sim.find_calls(method="GET", path_regex=r"/gateway") == []  # no session


# -- python -m hailuo --------------------------------------------------------------------


async def test_first_hour_doctor_fails_when_the_bot_could_not_start(tmp_path: Path) -> None:
    code, out, err = await run(tmp_path, "-m", "hailuo", "doctor")
    assert code == 1, err
    assert "discord    DISCORD_TOKEN NOT SET (the bot will not start)" in out
    code, out, _ = await run(
        tmp_path,
        "-m",
        "hailuo",
        "doctor",
        DISCORD_TOKEN="some-token",
        DISCORD_API_BASE_URL="http://discord.invalid/api/v10",
    )
    assert code == 1
    assert "Discord cannot be reached at http://discord.invalid/api/v10" in out
    assert "its host name does not resolve" in out and "some-token" not in out


async def test_first_hour_doctor_says_discord_refused_the_token(
    discord_sim: DiscordSimulator, tmp_path: Path
) -> None:
    code, out, _ = await run(
        tmp_path,
        "-m",
        "hailuo",
        "doctor",
        DISCORD_TOKEN="not-the-token",
        DISCORD_API_BASE_URL=discord_sim.api_base,
    )
    assert code == 1
    assert "DISCORD_TOKEN REFUSED by Discord (HTTP 401)" in out
    assert "not-the-token" not in out


async def test_first_hour_generate_with_a_missing_image_is_one_sentence(tmp_path: Path) -> None:
    code, out, err = await run(
        tmp_path, "-m", "hailuo", "generate", "--image", "nope.png", "--out", "v.mp4"
    )
    assert code == 2 and out == ""
    assert err.strip() == "hailuo: cannot read the image nope.png: No such file or directory."
    assert not (tmp_path / "v.mp4").exists()


# -- the scripts -------------------------------------------------------------------------


def fake_python(path: Path, version: str) -> None:
    """A ``python`` that reports ``version``, answers the version check by it, and runs
    nothing else (``-m pytest`` only says it was asked)."""
    major, minor = version.split(".")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "-V" ]; then echo "Python {version}.0"; exit 0; fi\n'
        f'if [ "$1" = "-c" ]; then [ {major}{minor:0>2} -ge 311 ]; exit $?; fi\n'
        'if [ "$1" = "-m" ] && [ "$2" = "pytest" ]; then echo "pytest ran by $0"; exit 0; fi\n'
        'echo "unexpected: $*" >&2; exit 3\n'
    )
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def project_copy(tmp_path: Path, script: str) -> Path:
    """The script in a project of its own (no ``.venv``): it never touches this checkout."""
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / script, root / "scripts" / script)
    return root


def run_script(root: Path, script: str, bin_dir: Path, **env: str) -> subprocess.CompletedProcess:
    # Only the fakes and ``dirname`` on PATH: no real Python can be found by accident.
    bin_dir.mkdir(parents=True, exist_ok=True)
    if not (bin_dir / "dirname").exists():
        (bin_dir / "dirname").symlink_to(shutil.which("dirname") or "/usr/bin/dirname")
    return subprocess.run(
        ["/bin/bash", str(root / "scripts" / script)],
        env={"PATH": str(bin_dir), "HOME": str(root), **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("script", ["run", "test"])
def test_first_hour_scripts_refuse_a_python_older_than_3_11(tmp_path: Path, script: str) -> None:
    root = project_copy(tmp_path, script)
    bin_dir = tmp_path / "bin"
    fake_python(bin_dir / "python3", "3.10")
    proc = run_script(root, script, bin_dir)
    assert proc.returncode == 2, proc.stderr
    assert "Python 3.11 or newer is needed (python3 is Python 3.10.0)." in proc.stderr
    assert not (root / ".venv").exists()


def test_first_hour_scripts_test_ignores_another_projects_virtualenv(tmp_path: Path) -> None:
    root = project_copy(tmp_path, "test")
    other = tmp_path / "elsewhere" / "venv"
    fake_python(other / "bin" / "python", "3.12")
    ours = root / ".venv" / "bin" / "python"
    fake_python(ours, "3.11")
    (root / "requirements-dev.txt").write_text("")
    bin_dir = tmp_path / "bin"
    # pip is asked of our python only: the fake answers "unexpected" for anything but
    # pytest, so let it install nothing by making "-m pip" succeed too.
    ours.write_text(ours.read_text().replace('echo "unexpected', 'exit 0; echo "unexpected'))
    proc = run_script(root, "test", bin_dir, VIRTUAL_ENV=str(other))
    assert proc.returncode == 0, proc.stderr
    assert f"ignoring the active virtualenv {other} (not this project's)" in proc.stderr
    assert proc.stdout.strip() == f"pytest ran by {ours}"
    # The project's own (CI's .ci-venv) is used as it is.
    ci = root / ".ci-venv" / "bin" / "python"
    fake_python(ci, "3.11")
    proc = run_script(root, "test", bin_dir, VIRTUAL_ENV=str(root / ".ci-venv"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"pytest ran by {ci}"


# -- the files a fresh clone shows ------------------------------------------------------


def test_first_hour_dockerignore_keeps_secrets_venvs_and_databases_out() -> None:
    lines = set((ROOT / ".dockerignore").read_text().splitlines())
    assert {".env", ".venv/", ".ci-venv/", "*.sqlite3", "*.sqlite3-*", "data/", ".git"} <= lines


def test_first_hour_gitignore_ignores_the_ci_venv() -> None:
    assert ".ci-venv/" in (ROOT / ".gitignore").read_text().splitlines()


def test_first_hour_healthcheck_reads_the_configured_ports() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    [check] = [line for line in dockerfile.splitlines() if "healthz" in line]
    assert "HAILUO_HTTP_PORT" in check and "HAILUO_METRICS_PORT" in check
    assert "HAILUO_PUBLIC_URL" in check


def test_first_hour_readme_invites_the_bot_in_step_2_of_the_quick_start() -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Quick start")
    quick = readme[start : readme.index("\n## ", start + 1)]
    steps = [line for line in quick.splitlines() if line[:3] in {"1. ", "2. ", "3. "}]
    assert [step[:2] for step in steps] == ["1.", "2.", "3."]
    assert steps[1].startswith("2. Invite the bot")
    second = quick[quick.index(steps[1]) : quick.index(steps[2])]
    assert "permissions=117760" in second and "`117760`" in second
    for permission in ("View Channel", "Send Messages", "Embed Links", "Attach Files"):
        assert permission in second
    assert "Read Message History" in second
    assert "./scripts/run" in quick[quick.index(steps[2]) :]
    assert "## Inviting the bot" not in readme  # not a section after the quick start


def test_first_hour_readme_covers_operations() -> None:
    readme = (ROOT / "README.md").read_text()
    for needed in (
        "docker compose up -d --build",
        "docker compose exec hailuo python -m hailuo doctor",
        "docker compose exec hailuo python bot.py --sync-only",
        "### Where the data lives",
        "### Backing up while it runs",
        ".backup",
        "### Upgrading",
        "### Provider keys",
        "### What a video costs in money",
        "2-second clip",  # what the demo makes
    ):
        assert needed in readme, needed
