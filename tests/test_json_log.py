"""``HAILUO_LOG_FORMAT=json``: one JSON object per line, with the job's context, no secret.

The formatter alone (fields, exception text, redaction), then the real bot: a delivered
job and a refused one through the Discord and MiniMax simulators with every logger at
DEBUG, every line read back as JSON.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from hailuo.logs import JsonFormatter, configure_logging, formatter_for
from hailuo.settings import load_settings
from tests.e2e import card_shows, running_bot

pytestmark = pytest.mark.timeout(60)


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord(
        "hailuo.jobs.worker", logging.WARNING, __file__, 1, message, args, None
    )
    made.__dict__.update(extra)
    return made


def test_json_log_line_has_time_level_logger_message_and_fields() -> None:
    line = JsonFormatter().format(record("step %s", "failed", job_id=7, guild_id=9, provider=None))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "hailuo.jobs.worker"
    assert entry["message"] == "step failed"
    assert entry["time"].endswith("+00:00")
    assert (entry["job_id"], entry["guild_id"]) == (7, 9)
    assert "provider" not in entry  # unknown fields are left out, not null


def test_json_log_exception_text_is_one_field_and_secrets_are_blanked() -> None:
    secret = "sk-very-secret-key"
    formatter = JsonFormatter([secret, "ab"])
    try:
        raise RuntimeError(f"provider said no to {secret}")
    except RuntimeError:
        failed = record("calling with %s", secret)
        failed.exc_info = sys.exc_info()
    line = formatter.format(failed)
    assert secret not in line
    entry = json.loads(line)
    assert entry["message"] == "calling with [redacted]"
    assert "Traceback" in entry["exception"] and "RuntimeError" in entry["exception"]
    assert "provider said no to [redacted]" in entry["exception"]
    # A two-letter "secret" would blank every word it is part of: too short to redact.
    assert "calling" in entry["message"]


def test_json_log_format_is_chosen_by_the_setting() -> None:
    base = {"DISCORD_TOKEN": "discord-token-xyz", "MINIMAX_API_KEY": "mm-key-xyz"}
    text = load_settings(environ=base, dotenv_path=None)
    assert not isinstance(formatter_for(text), JsonFormatter)
    settings = load_settings(environ={**base, "HAILUO_LOG_FORMAT": "json"}, dotenv_path=None)
    formatter = formatter_for(settings)
    assert isinstance(formatter, JsonFormatter)
    line = formatter.format(record("keys %s %s", "discord-token-xyz", "mm-key-xyz"))
    assert json.loads(line)["message"] == "keys [redacted] [redacted]"


def test_json_log_configure_logging_writes_json_to_stderr(capsys) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers = []
    try:
        settings = load_settings(
            environ={"DISCORD_TOKEN": "discord-token-xyz", "HAILUO_LOG_FORMAT": "json"},
            dotenv_path=None,
        )
        configure_logging(settings)
        logging.getLogger("hailuo.test").info("hello %s", "discord-token-xyz")
    finally:
        root.handlers, root.level = saved
    entry = json.loads(capsys.readouterr().err.strip())
    assert entry["message"] == "hello [redacted]" and entry["logger"] == "hailuo.test"


@contextmanager
def json_lines(formatter: logging.Formatter) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_json_log_lines_of_the_real_bot_carry_the_job_and_no_secret(
    discord_sim, minimax, env
) -> None:
    env = {**env, "HAILUO_LOG_FORMAT": "json"}
    settings = load_settings(environ=env, dotenv_path=None)
    prompt = "a secret garden only I know about"
    with json_lines(formatter_for(settings)) as stream:
        async with running_bot(env) as app:
            done = await discord_sim.send_slash(["hailuo", "text"], {"prompt": prompt})
            await done.wait_response()
            await card_shows(discord_sim, done.original_message, "Delivered")
            minimax.inject("submit", "invalid_key")
            failed = await discord_sim.send_slash(["hailuo", "text"], {"prompt": prompt})
            await failed.wait_response()
            await card_shows(discord_sim, failed.original_message, "refunded")
            guild_id = discord_sim.guilds[0].id
            jobs = await app.bot.desk.jobs.recent_for_member(guild_id, done.user_id, 5)
    text = stream.getvalue()
    entries = [json.loads(line) for line in text.splitlines()]  # every line is one object
    assert len(entries) > 10
    for secret in (env["DISCORD_TOKEN"], minimax.api_key):
        assert secret not in text
    ours = [e for e in entries if e["logger"].split(".")[0] in {"hailuo", "providers", "cogs"}]
    assert all(prompt not in e["message"] for e in ours)
    by_job = {job.id: [e for e in ours if e.get("job_id") == job.id] for job in jobs}
    assert len(by_job) == 2 and all(by_job.values())
    channel_id = discord_sim.guilds[0].channels[0].id
    for lines in by_job.values():
        assert all(e["guild_id"] == guild_id and e["channel_id"] == channel_id for e in lines)
    # The creation is logged with the job's fields, and so are the worker's steps.
    delivered = min(jobs, key=lambda job: job.id)
    messages = {e["message"].split(" ")[0]: e for e in by_job[delivered.id]}
    assert messages["created"]["status"] == "queued"
    assert messages["delivered"]["provider"] == "minimax"
    assert {e["level"] for e in entries} >= {"INFO"}
