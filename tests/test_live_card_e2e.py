"""The live card: elapsed time and ETA as Discord timestamps, and the video tied to its card.

Through the real bot and discord.py client against the Discord simulator, with MiniMax's
simulator held so the test decides when a task ends, on a clock the test skips ahead:

- the first job's measured run time becomes the next job's ETA on its card
  (``<t:submitted + measured:R>``), next to ``<t:created:R>`` for the elapsed time;
- the video is posted as a reply to its card (message_reference) and the card links to it;
- the throttle: a queued job's ETA is its wait in line plus a measured run, and a card
  older than an hour is still edited (less often) while its job runs.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from hailuo.jobs.cards import StatusCards
from hailuo.jobs.durations import DurationBook, prior
from hailuo.jobs.notify import StatusView
from hailuo.model.job import Job
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from tests.discord_sim import DiscordSimulator
from tests.e2e import SimSetup, bot_env, card_shows, running_bot
from tests.sims.minimax import MiniMaxSimulator
from tests.sims.novita import NovitaSimulator
from tests.support import FakeClock, OffsetClock
from tests.test_delivery_e2e import finished_task, job_of, start_job, tick_until


@pytest.fixture
def clock() -> OffsetClock:
    return OffsetClock()


@pytest.fixture
def sim_setup() -> SimSetup:
    return SimSetup.held()


@pytest.fixture
async def minimax(sim_setup: SimSetup, clock: OffsetClock) -> AsyncIterator[MiniMaxSimulator]:
    async with MiniMaxSimulator(clock=clock, **sim_setup.minimax) as sim:
        yield sim
        assert sim.violations == []


async def test_eta_card_timestamps_from_measured_runs_and_video_replies_to_card(
    discord_sim: DiscordSimulator, minimax: MiniMaxSimulator, env, clock: OffsetClock
) -> None:
    async with running_bot(env, clock=clock) as app:
        card, job_id = await start_job(discord_sim)
        first = await job_of(app, job_id)
        await card_shows(discord_sim, card, f"<t:{int(first.created_at)}:R>")
        task = await finished_task(discord_sim, minimax, card)
        running = await job_of(app, job_id)
        assert running.submitted_at is not None
        # Never measured: the card's ETA is the prior, counted from the acceptance.
        expected_first = int(running.submitted_at + prior(running.spec))
        await card_shows(discord_sim, card, f"<t:{expected_first}:R>")
        clock.advance(700)  # a slow provider: this run takes 700+ s, far past the prior
        minimax.complete(task)
        done = await tick_until(app, clock, job_id, JobStatus.DELIVERED, JobStatus.DELIVERY_FAILED)
        assert done.status is JobStatus.DELIVERED
        video = discord_sim.messages[done.delivered_message_id]
        assert video.reference_id == card.id and video.type == 19
        assert any(a.filename.endswith(".mp4") for a in video.attachments)
        await card_shows(
            discord_sim,
            card,
            f"/channels/{done.guild_id}/{done.channel_id}/{done.delivered_message_id})",
        )

        book = app.bot.worker.durations
        measured = book.expected(done.spec)
        assert book.measured(done.spec) == 1 and measured >= 700

        card2, job2 = await start_job(discord_sim)
        # Accepted: its card expects it after the measured run (its first status query
        # waits for that long too, so the clock is not skipped past it here).
        second = await tick_until(
            app, clock, job2, JobStatus.SUBMITTED, JobStatus.RUNNING, step=1.0
        )
        assert second.submitted_at is not None
        await card_shows(discord_sim, card2, f"<t:{int(second.submitted_at + measured)}:R>")
        await card_shows(discord_sim, card2, f"<t:{int(second.created_at)}:R>")
        assert "Expected ready" in str(card2.embeds)
    # A restart keeps what was measured: the book is seeded from the delivered jobs.
    async with running_bot(env, clock=clock) as app:
        await app.bot.worker.tick()
        assert app.bot.worker.durations.measured(done.spec) == 1
        assert app.bot.worker.durations.expected(done.spec) == measured


class Shown:
    """A notifier that records what the card would show."""

    def __init__(self) -> None:
        self.views: list[StatusView] = []

    async def show_status(self, view: StatusView) -> None:
        self.views.append(view)
        if view.shown is not None:
            await view.shown()  # shown at once here


def _job(clock: FakeClock, status: JobStatus, **kw: object) -> Job:
    base = Job(
        id=1, guild_id=1, channel_id=2, user_id=3, interaction_id=None, status_message_id=4,
        status=status, spec=JobSpec(mode=Mode.TEXT, prompt="p"), cost=1, period="2026-12",
        locale="en-US", attachment_limit=None, provider="minimax", provider_task_id="t",
        provider_meta={}, submit_attempts=0, next_attempt_at=0.0, progress=None, polls=0,
        next_poll_at=0.0, result_locator=None, failure_rule=None, failure_params={},
        delivery_attempts=0, next_delivery_at=0.0, delivered_message_id=None,
        delivery_kind=None, delivery_bytes=None, created_at=clock(), updated_at=clock(),
        submitted_at=None, finished_at=None,
    )  # fmt: skip
    return replace(base, **kw)


async def test_eta_queued_is_wait_plus_measured_run_and_old_cards_keep_editing() -> None:
    clock = FakeClock()
    shown = Shown()
    book = DurationBook()
    spec = JobSpec(mode=Mode.TEXT, prompt="p")
    for seconds in (100.0, 300.0, 200.0, 99999.0):  # the last one is no plausible run
        book.record(spec, seconds)
    assert book.expected(spec) == 200.0
    cards = StatusCards(
        shown,  # type: ignore[arg-type]
        clock,
        edit_interval=10.0,
        old_card_age=3600.0,
        old_card_interval=300.0,
        durations=book,
    )
    queued = _job(clock, JobStatus.QUEUED)
    await cards.show(queued, position=3, eta=120.0)
    assert shown.views[-1].done_at == clock() + 120.0 + 200.0

    running = _job(clock, JobStatus.RUNNING, submitted_at=clock(), progress=10)
    clock.advance(30)
    await cards.show(running)
    assert len(shown.views) == 2
    # 10 % after 30 s: the provider's own pace says 300 s in all.
    assert shown.views[-1].done_at == pytest.approx(running.submitted_at + 300.0)

    # Past an hour the card is still edited while the job runs, at most every 300 s.
    clock.advance(3600)
    await cards.show(replace(running, progress=50))
    assert len(shown.views) == 3
    clock.advance(60)
    await cards.show(replace(running, progress=60))
    assert len(shown.views) == 3  # throttled
    clock.advance(300)
    await cards.show(replace(running, progress=70))
    assert len(shown.views) == 4 and shown.views[-1].job.progress == 70


async def test_eta_card_shows_the_provider_s_progress(
    discord_sim: DiscordSimulator, clock: OffsetClock, tmp_path
) -> None:
    """Novita reports how far a task is (``progress_percent``): the card says so, and its
    expected end follows the provider's pace; MiniMax and Freepik report none."""
    async with NovitaSimulator(clock=clock, polls_until_done=None) as novita:
        env = bot_env(
            discord_sim,
            tmp_path / "bot.sqlite3",
            HAILUO_PROVIDERS="novita",
            NOVITA_API_KEY=novita.api_key,
            NOVITA_BASE_URL=novita.base_url,
        )
        async with running_bot(env, clock=clock) as app:
            card, job_id = await start_job(discord_sim)
            await tick_until(app, clock, job_id, JobStatus.RUNNING, step=5.0)
            shown = None
            for _ in range(200):  # each poll moves the provider's progress on
                job = await job_of(app, job_id)
                if job.progress and "Generating… " in str(card.embeds):
                    shown = await discord_sim.wait_for(
                        lambda: str(card.embeds) if "%" in str(card.embeds) else None
                    )
                    break
                clock.advance(15.0)
                await app.bot.worker.tick()
            assert shown is not None, card.embeds
            job = await job_of(app, job_id)
        assert novita.violations == []
    assert job.status is JobStatus.RUNNING and job.progress
    assert re.search(r"Generating… \d+%", shown), shown
    assert "Expected ready" in shown
