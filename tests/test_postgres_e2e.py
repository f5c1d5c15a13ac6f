"""End to end on PostgreSQL: the real bot (discord.py against the Discord simulator, the
MiniMax simulator) with ``HAILUO_DATABASE=postgresql://…``.

A command ends in one video and one charge; a restart syncs no commands (the hash is in
PostgreSQL); and a bot moved from SQLite by ``python -m hailuo migrate`` finishes the jobs
that were open at the move.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from hailuo.cli import migrate
from hailuo.jobs.desk import JobDesk, JobRequest
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from hailuo.money.quotas import QuotaPolicy
from storage.db import Database
from tests.e2e import bot_env, card_shows, channel, minimax_env, running_bot
from tests.pg_server import PgServer

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def pg_env(discord_sim, minimax, pg_url: str, tmp_path: Path, monkeypatch) -> dict[str, str]:
    # Downloads go in ./data/tmp beside no file: the test's own folder.
    monkeypatch.chdir(tmp_path)
    return bot_env(discord_sim, pg_url, **minimax_env(minimax))  # type: ignore[arg-type]


async def test_postgresql_bot_delivers_one_video_and_charges_once(
    discord_sim, minimax, pg_env
) -> None:
    async with running_bot(pg_env) as app:
        inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "a cat surfing"})
        await inter.wait_response()
        room = channel(discord_sim)
        videos = await discord_sim.wait_for(lambda: room.videos() or None)
        assert videos[0].attachments[0].data == minimax.video and len(minimax.submits) == 1
        await card_shows(discord_sim, inter.original_message, "Delivered")
        guild = discord_sim.guilds[0].id
        [job] = await app.bot.desk.jobs.recent_for_member(guild, inter.user_id)
        assert job.status is JobStatus.DELIVERED
        balance = await app.bot.desk.balance(guild, inter.user_id)
        assert balance.remaining == 9
    async with running_bot(pg_env):
        pass
    assert len(discord_sim.command_syncs) == 1  # the restart found the hash in PostgreSQL


async def test_postgresql_a_moved_bot_finishes_the_jobs_open_at_the_move(
    discord_sim, minimax, pg_server: PgServer, tmp_path: Path, monkeypatch
) -> None:
    source = tmp_path / "before.sqlite3"
    room = channel(discord_sim)
    guild = discord_sim.guilds[0].id
    lite = await Database.open(source)

    async def policy(_: int) -> QuotaPolicy:
        return QuotaPolicy()

    desk = JobDesk(lite, clock=lambda: discord_sim.clock(), policy=policy, on_created=lambda: None)
    spec = JobSpec(mode=Mode.TEXT, prompt="a boat")
    queued = await desk.create(JobRequest(guild, room.channel_id, 77, spec))
    ended = await desk.create(JobRequest(guild, room.channel_id, 78, spec))
    await desk.jobs.transition(ended, JobStatus.CANCELLED, discord_sim.clock(), reason="x")
    await lite.close()
    name, url = await pg_server.create_empty_database()
    try:
        out = io.StringIO()
        assert await migrate(source, url, out) == 0, out.getvalue()
        monkeypatch.chdir(tmp_path)
        env = bot_env(discord_sim, url, **minimax_env(minimax))  # type: ignore[arg-type]
        async with running_bot(env) as app:
            await discord_sim.wait_for(lambda: room.videos() or None)
            for _ in range(200):
                found = await app.bot.desk.jobs.get(queued.id)
                if found is not None and found.status is JobStatus.DELIVERED:
                    break
                await app.bot.worker.tick()
            assert found is not None and found.status is JobStatus.DELIVERED
            entries = await app.bot.services.db.ledger.for_job(queued.id)
            assert [e.kind.value for e in entries] == ["reserve", "charge"]
        assert len(minimax.submits) == 1  # the open job, once; the cancelled one never
        assert len(room.videos()) == 1
    finally:
        await pg_server.drop_database(name)
