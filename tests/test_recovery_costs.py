"""What 10,000 open jobs cost at each poll after a restart, kept small without changing
what a member sees: a card whose only change is its expected end (gone once past) is
edited without storing its unchanged digest again, and a job read from a whole stored
row is the same record ``Job(...)`` builds. On an injected clock; no timing asserted."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from hailuo.jobs.cards import StatusCards, seen_digest
from hailuo.jobs.durations import DurationBook
from hailuo.jobs.notify import StatusView
from hailuo.model.job import Job
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from storage.db import Database
from tests.support import FakeClock
from tests.test_live_card_e2e import Shown, _job


async def test_recovery_an_eta_only_change_is_shown_without_a_digest_write() -> None:
    clock = FakeClock()
    shown = Shown()
    book = DurationBook()
    spec = JobSpec(mode=Mode.TEXT, prompt="p")
    for seconds in (60.0, 60.0, 60.0):
        book.record(spec, seconds)
    stored: list[tuple[int, str]] = []

    async def remember(job_id: int, digest: str) -> None:
        stored.append((job_id, digest))

    cards = StatusCards(
        shown,  # type: ignore[arg-type]
        clock,
        edit_interval=10.0,
        old_card_age=3600.0,
        remember=remember,
        durations=book,
    )
    running = _job(clock, JobStatus.RUNNING, submitted_at=clock() - 30)
    await cards.show(running)
    assert shown.views[-1].done_at == running.submitted_at + 60.0
    assert stored == [(running.id, seen_digest((JobStatus.RUNNING, None, None, None, None)))]

    clock.advance(45)  # the expected end has passed: the card drops it (an edit)
    await cards.show(running)
    assert len(shown.views) == 2 and shown.views[-1].done_at is None
    assert len(stored) == 1  # what a restart compares is unchanged: not written again

    clock.advance(15)
    await cards.show(replace(running, progress=40))  # a change the digest holds
    assert len(shown.views) == 3 and stored[-1][1] == "-|-|40|running"


async def test_recovery_a_card_edit_still_on_its_way_is_not_remembered() -> None:
    """What a card shows is stored once its edit went out (the notifier awaits
    ``view.shown``), not when the edit was only queued: an edit dropped on its way (the
    outbox's lanes stop with the bot) leaves the old digest, so the next process edits that
    card instead of taking it for shown."""
    clock = FakeClock()
    queued: list[StatusView] = []

    class Queueing:
        async def show_status(self, view: StatusView) -> None:
            queued.append(view)  # on its way, as the Discord outbox holds it

    stored: list[tuple[int, str]] = []

    async def remember(job_id: int, digest: str) -> None:
        stored.append((job_id, digest))

    cards = StatusCards(
        Queueing(),  # type: ignore[arg-type]
        clock,
        edit_interval=10.0,
        old_card_age=3600.0,
        remember=remember,
        durations=DurationBook(),
    )
    running = _job(clock, JobStatus.RUNNING)
    await cards.show(running)
    assert len(queued) == 1 and stored == []  # queued: nothing remembered yet
    edit = queued[0].shown
    assert edit is not None
    await edit()  # the edit went out
    assert stored == [(running.id, seen_digest((JobStatus.RUNNING, None, None, None, None)))]


async def test_recovery_job_from_a_whole_row_is_the_dataclass_record(tmp_path: Path) -> None:
    path = tmp_path / "rows.sqlite3"
    db = await Database.open(path)
    await db.close()
    spec = JobSpec(mode=Mode.TEXT, prompt="p").to_json()
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        conn.execute(
            "INSERT INTO jobs (guild_id, channel_id, user_id, status, spec, cost, period,"
            " provider_meta, created_at, updated_at) VALUES"
            " (1, 2, 3, 'running', ?, 1, 'p', '{\"n\": 1}', 5.0, 6.0)",
            (spec,),
        )
        row = conn.execute("SELECT * FROM jobs").fetchone()
    whole = Job.from_row(row)
    built = Job(**vars(whole))  # through the dataclass's own ``__init__``
    assert whole == built and vars(whole) == vars(built)
    assert whole.status is JobStatus.RUNNING and whole.provider_meta == {"n": 1}
    assert replace(whole, polls=2) == replace(built, polls=2)
    # a changed copy is the one ``replace`` makes, and the original is untouched
    evolved = whole.evolved(status=JobStatus.SUCCEEDED, polls=3, progress=40)
    assert evolved == replace(whole, status=JobStatus.SUCCEEDED, polls=3, progress=40)
    assert vars(evolved) == vars(replace(whole, status=JobStatus.SUCCEEDED, polls=3, progress=40))
    assert whole.status is JobStatus.RUNNING and whole.polls == 0
    with pytest.raises(TypeError):
        whole.evolved(colour="red")
    # a partial row (no lease columns) takes the defaults of ``Job(...)``
    partial = {key: row[key] for key in row.keys() if not key.startswith("lease_")}  # noqa: SIM118
    assert Job.from_row(partial) == whole
    assert Job.from_row(partial).lease_holder is None
