"""Log lines for people (``text``) or for log collectors (``json``, ``HAILUO_LOG_FORMAT``).

In JSON each line is one object: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
``message``, ``exception`` (the traceback, when there is one) and the job's context
fields: ``job_id``, ``guild_id``, ``channel_id``, ``provider``, ``status``. Those come
from the step the line was written in (the worker runs each job's step with them bound,
``run_for_job``) or from a call's ``extra=``, so a collector can follow one job across
processes without parsing the message. Never a prompt (the fields are ids and states);
and the token and the provider keys the settings hold are blanked out of every string,
as a second guard behind ``Secret`` never printing itself.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import json
import logging
from collections.abc import Coroutine, Iterable, Mapping
from typing import Any, TypeVar

from hailuo.model.job import Job
from hailuo.settings import Settings

T = TypeVar("T")

#: The context fields, in the order a line shows them.
CONTEXT_FIELDS = ("job_id", "guild_id", "channel_id", "provider", "status")
REDACTED = "[redacted]"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_job_fields: contextvars.ContextVar[Mapping[str, object] | None] = contextvars.ContextVar(
    "hailuo_job_fields", default=None
)


def job_fields(job: Job) -> dict[str, object]:
    """A job's context fields: ids and states only."""
    return {
        "job_id": job.id,
        "guild_id": job.guild_id,
        "channel_id": job.channel_id,
        "provider": job.provider,
        "status": job.status.value,
    }


def run_for_job(job: Job, step: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """Run one job's step as a task whose log lines carry the job's context fields."""
    context = contextvars.copy_context()
    context.run(_job_fields.set, job_fields(job))
    return asyncio.get_running_loop().create_task(step, context=context)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, secrets blanked out."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Longest first, so a secret containing another is blanked whole; a secret of a
        # character or two would blank half the words of every line.
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        bound = _job_fields.get() or {}
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, bound.get(name))
            if value is not None:
                entry[name] = value
        if record.exc_info:
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(
            {key: self._redact(value) for key, value in entry.items()},
            ensure_ascii=False,
            default=str,
        )

    def _redact(self, value: object) -> object:
        if not isinstance(value, str):
            return value
        for secret in self._secrets:
            value = value.replace(secret, REDACTED)
        return value


def secrets_of(settings: Settings) -> list[str]:
    """Every secret the settings hold: what a JSON line must never carry."""
    found = [settings.discord_token.reveal()]
    found += [p.api_key.reveal() for p in settings.providers if p.api_key is not None]
    if settings.freepik_webhook_secret is not None:
        found.append(settings.freepik_webhook_secret.reveal())
    return found


def formatter_for(settings: Settings) -> logging.Formatter:
    """``HAILUO_LOG_FORMAT``'s formatter."""
    if settings.log_format == "json":
        return JsonFormatter(secrets_of(settings))
    return logging.Formatter(TEXT_FORMAT)


def configure_logging(settings: Settings) -> None:
    """The root logger at ``HAILUO_LOG_LEVEL``, writing to stderr in ``HAILUO_LOG_FORMAT``."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter_for(settings))
    logging.basicConfig(level=settings.log_level, handlers=[handler])
