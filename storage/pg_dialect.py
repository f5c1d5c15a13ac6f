"""SQLite's dialect, as the repositories write it, turned into PostgreSQL's: in one place.

The repositories hold one text of each statement (``:name`` or ``?``
parameters, SQLite's functions). Most of it is standard SQL that PostgreSQL
reads as is; what differs is handled here, so no repository carries a second
copy of its SQL:

- parameters: ``:name`` and ``?`` become ``$1, $2, …`` (text inside quotes is left
  alone, and so is PostgreSQL's own ``::type`` cast);
- ``Tx.insert`` returns the new row's id: ``RETURNING id`` is appended;
- the few statements whose SQL really differs (SQLite's ``json_extract``) have a
  PostgreSQL text of their own in ``variants()``, keyed by the SQLite text, so the
  repository still names one constant.

A test prepares every statement constant of ``storage/`` on a real PostgreSQL
server (``tests/test_postgres.py``), so a statement that PostgreSQL cannot read
fails there, not in production.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from storage.engine import Params

#: A quoted string or identifier or a comment (skipped), a ``::`` cast (kept), or a parameter.
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|::|:([A-Za-z_]\w*)|\?")


def _variants() -> dict[str, str]:
    from storage import audit, guilds, jobs_sql, ledger

    # An optional filter (``:member IS NULL OR …``) leaves PostgreSQL no type to infer.
    typed = {
        ":member IS NULL": ":member::bigint IS NULL",
        ":action IS NULL": ":action::text IS NULL",
        ":before IS NULL": ":before::bigint IS NULL",
    }

    def with_types(sql: str) -> str:
        for old, new in typed.items():
            sql = sql.replace(old, new)
        return sql

    return {
        audit.PAGE_AUDIT: with_types(audit.PAGE_AUDIT),
        audit.PAGE_AUDIT_AFTER: with_types(audit.PAGE_AUDIT_AFTER),
        # ``json_extract`` is SQLite's; ``->>`` reads a field of a JSON text as text.
        jobs_sql.SELECT_RECENT_RUNS: """
SELECT spec, (provider_meta::jsonb ->> 'succeeded_at')::double precision - submitted_at
    AS seconds FROM jobs
WHERE status = 'delivered' AND submitted_at IS NOT NULL
AND (provider_meta::jsonb ->> 'succeeded_at') IS NOT NULL
ORDER BY id DESC LIMIT :limit
""",
        # SQLite's ``json_each`` over an array is PostgreSQL's ``json_array_elements``; its
        # ``->> '$[n]'`` paths are ``->> n``, and each field is cast to its column's type.
        jobs_sql.RECORD_POLLS: """
UPDATE jobs SET status = r.to_status, polls = r.polls, next_poll_at = r.next_poll_at,
    progress = COALESCE(r.progress, jobs.progress), updated_at = r.now,
    revision = jobs.revision + 1
FROM (
    SELECT (value ->> 0)::bigint AS id, value ->> 1 AS status, value ->> 2 AS to_status,
        (value ->> 3)::bigint AS polls, (value ->> 4)::double precision AS next_poll_at,
        (value ->> 5)::bigint AS progress, (value ->> 6)::double precision AS now
    FROM json_array_elements(:records::json)
) AS r
WHERE jobs.id = r.id AND jobs.status = r.status
RETURNING jobs.id
""",
        jobs_sql.SET_CARDS_SEEN: """
UPDATE jobs SET card_seen = s.value ->> 1, revision = jobs.revision + 1
FROM json_array_elements(:seen::json) AS s WHERE jobs.id = (s.value ->> 0)::bigint
RETURNING jobs.id
""",
        # PostgreSQL's CAST rounds where SQLite's truncates: the slot is floor()'s.
        ledger.REBUILD_RUNNING_BALANCES[3]: ledger.REBUILD_RUNNING_BALANCES[3].replace(
            "CAST(r.created_at / 900 AS INTEGER)", "floor(r.created_at / 900)::bigint"
        ),
        guilds.SELECT_PRICED_JOBS: """
SELECT id, status, provider, created_at,
       spec::jsonb ->> 'model' AS model,
       spec::jsonb ->> 'resolution' AS resolution,
       (spec::jsonb ->> 'duration')::bigint AS duration
FROM jobs WHERE guild_id = :guild AND created_at >= :start AND created_at < :end
""",
    }


@functools.cache
def variants() -> dict[str, str]:
    """SQLite text -> PostgreSQL text, for the statements whose SQL differs."""
    return _variants()


@functools.lru_cache(maxsize=1024)
def _translate(sql: str) -> tuple[str, tuple[str | int, ...]]:
    """PostgreSQL's text of ``sql`` and, per ``$n``, the name (or position) it reads."""
    sql = variants().get(sql, sql)
    order: list[str | int] = []
    numbers: dict[str, int] = {}
    positional = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal positional
        part = match.group(0)
        if part[0] in "'\"-" or part == "::":
            return part
        if part == "?":
            order.append(positional)
            positional += 1
            return f"${len(order)}"
        name = match.group(1)
        if name not in numbers:
            order.append(name)
            numbers[name] = len(order)
        return f"${numbers[name]}"

    return _TOKEN.sub(replace, sql), tuple(order)


def postgres_text(sql: str) -> str:
    """The PostgreSQL text of ``sql`` alone (to prepare it, or to read it)."""
    return _translate(sql)[0]


def translate(sql: str, params: Params = ()) -> tuple[str, list[Any]]:
    """The PostgreSQL statement and its positional arguments."""
    text, order = _translate(sql)
    if isinstance(params, Mapping):
        try:
            args = [params[str(name)] for name in order]
        except KeyError as missing:
            raise ValueError(f"no value for the parameter :{missing.args[0]}") from None
    else:
        args = [params[int(index)] for index in order]
    return text, args


def returning_id(sql: str) -> str:
    """An ``INSERT`` that answers the new row's id (SQLite's ``lastrowid``)."""
    return sql.rstrip().rstrip(";") + " RETURNING id"
