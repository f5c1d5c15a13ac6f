"""Shards: the simulator splits guilds by Discord's formula, and the real bot runs sharded.

Simulator level: ``GET /gateway/bot`` recommends the configured count, an IDENTIFY with
``[shard_id, shard_count]`` gets READY and GUILD_CREATE for its guilds only, and every
event (interactions included) reaches only the session of its guild's shard.
End to end: the real bot as ``AutoShardedBot`` on two shards in one process delivers
jobs from guilds on both; two bot instances (shard 0 and shard 1 of 2, one database)
each receive only their own guilds' interactions, and the commands are synced once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot import App
from storage.db import Database
from tests.discord_sim import DiscordSimulator, SimGuild, guild_id_on_shard, shard_of
from tests.e2e import Channel, bot_env, minimax_env, running_bot

pytestmark = pytest.mark.timeout(60)

DISPATCH, IDENTIFY, HELLO = 0, 2, 10


def guilds_on_shards(count: int) -> list[SimGuild]:
    """One guild on each shard of ``count``."""
    now = time.time()
    return [SimGuild(name=f"shard {n}", id=guild_id_on_shard(n, count, now)) for n in range(count)]


def test_shard_guild_ids_land_on_the_shard_asked_for() -> None:
    for count in (1, 2, 3, 16):
        for shard in range(count):
            assert shard_of(guild_id_on_shard(shard, count, time.time()), count) == shard


# -- the simulator alone, over a raw websocket ----------------------------------------------


class RawSession:
    """A bare gateway client: IDENTIFY with a shard, then read what Discord sends."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def frame(self) -> dict[str, Any]:
        message = await self.ws.receive()
        assert message.type is aiohttp.WSMsgType.TEXT, message
        frame: dict[str, Any] = json.loads(message.data)
        return frame

    async def dispatch(self) -> tuple[str, dict[str, Any]]:
        frame = await self.frame()
        assert frame["op"] == DISPATCH, frame
        return frame["t"], frame["d"]


@contextlib.asynccontextmanager
async def raw_session(
    sim: DiscordSimulator, shard: list[int] | None, http: aiohttp.ClientSession
) -> AsyncIterator[RawSession]:
    async with http.ws_connect(sim.gateway_url) as ws:
        session = RawSession(ws)
        assert (await session.frame())["op"] == HELLO
        identify: dict[str, Any] = {"token": sim.token, "intents": 0, "properties": {}}
        if shard is not None:
            identify["shard"] = shard
        await ws.send_str(json.dumps({"op": IDENTIFY, "d": identify}))
        yield session


async def test_shard_gateway_bot_recommends_the_configured_count() -> None:
    async with DiscordSimulator(shard_count=3) as sim, aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bot {sim.token}"}
        async with http.get(f"{sim.api_base}/gateway/bot", headers=headers) as resp:
            body = await resp.json()
        assert body["shards"] == 3
        assert body["url"] == sim.gateway_url
        assert body["session_start_limit"]["max_concurrency"] >= 1


async def test_shard_identify_gets_ready_and_guild_create_for_its_guilds_only() -> None:
    guilds = guilds_on_shards(2) + guilds_on_shards(2)
    async with (
        DiscordSimulator(guilds=guilds, shard_count=2) as sim,
        aiohttp.ClientSession() as http,
    ):
        for shard in (0, 1):
            mine = {str(g.id) for g in guilds if shard_of(g.id, 2) == shard}
            assert len(mine) == 2
            async with raw_session(sim, [shard, 2], http) as session:
                event, ready = await session.dispatch()
                assert event == "READY"
                assert ready["shard"] == [shard, 2]
                assert {g["id"] for g in ready["guilds"]} == mine
                created = {(await session.dispatch())[1]["id"] for _ in mine}
                assert created == mine
        assert [p["shard"] for p in sim.identify_payloads] == [[0, 2], [1, 2]]


async def test_shard_interactions_and_events_reach_only_their_shard() -> None:
    guilds = guilds_on_shards(2)
    async with (
        DiscordSimulator(guilds=guilds, shard_count=2) as sim,
        aiohttp.ClientSession() as http,
        raw_session(sim, [0, 2], http) as zero,
        raw_session(sim, [1, 2], http) as one,
    ):
        for session in (zero, one):
            assert (await session.dispatch())[0] == "READY"
            assert (await session.dispatch())[0] == "GUILD_CREATE"
        assert sim.shard_sessions() == {0: 1, 1: 1}
        for guild, session in ((guilds[1], one), (guilds[0], zero)):
            inter = await sim.send_slash(["hailuo", "help"], guild_id=guild.id)
            event, data = await session.dispatch()
            assert (event, data["id"]) == ("INTERACTION_CREATE", str(inter.id))
            assert data["guild_id"] == str(guild.id)
            assert sim.guild_sessions(guild.id) == 1
        # A user's message in shard 1's guild reaches shard 1; a DM (no guild) shard 0.
        assert await sim.post_user_message(guilds[1].channels[0].id, "hi") is not None
        assert (await one.dispatch())[0] == "MESSAGE_CREATE"
        assert await sim.dispatch("TYPING_START", {"channel_id": "1", "user_id": "2"}) == 1
        assert (await zero.dispatch())[0] == "TYPING_START"
        # Nothing else was sent to either: each one's next frame is a fresh marker.
        for session, guild in ((zero, guilds[0]), (one, guilds[1])):
            await sim.dispatch("GUILD_UPDATE", {"id": str(guild.id), "name": "marker"})
            assert await session.dispatch() == (
                "GUILD_UPDATE",
                {"id": str(guild.id), "name": "marker"},
            )


async def test_shard_an_unsharded_session_gets_every_guild_and_a_bad_shard_is_refused() -> None:
    guilds = guilds_on_shards(2)
    async with (
        DiscordSimulator(guilds=guilds, shard_count=2) as sim,
        aiohttp.ClientSession() as http,
    ):
        async with raw_session(sim, None, http) as whole:
            event, ready = await whole.dispatch()
            assert event == "READY" and len(ready["guilds"]) == 2
        async with raw_session(sim, [2, 2], http) as bad:
            closed = await bad.ws.receive()
            assert closed.type is aiohttp.WSMsgType.CLOSE
            assert closed.data == 4010  # Invalid shard, as Discord closes it


async def test_shard_an_interaction_for_a_shard_nobody_runs_is_an_error() -> None:
    guilds = guilds_on_shards(2)
    async with (
        DiscordSimulator(guilds=guilds, shard_count=2) as sim,
        aiohttp.ClientSession() as http,
        raw_session(sim, [0, 2], http) as zero,
    ):
        assert (await zero.dispatch())[0] == "READY"
        with pytest.raises(RuntimeError, match="no gateway session carries guild"):
            await sim.send_slash(["hailuo", "help"], guild_id=guilds[1].id)


# -- the real bot ---------------------------------------------------------------------------


@pytest.fixture
def sim_setup():
    from tests.e2e import SimSetup

    return SimSetup(guilds_on_shards(2))


async def run_jobs(sim: DiscordSimulator, minimax_video: bytes) -> None:
    """One ``/hailuo text`` per guild; each ends as one MP4 in its guild's channel."""
    inters = [
        await sim.send_slash(["hailuo", "text"], {"prompt": f"a cat {n}"}, guild_id=guild.id)
        for n, guild in enumerate(sim.guilds)
    ]
    for inter in inters:
        await inter.wait_response()
        assert inter.response_type == 4 and not inter.ephemeral
    for guild in sim.guilds:
        room = Channel(sim, guild.channels[0].id)
        videos = await sim.wait_for(lambda room=room: room.videos())
        assert len(videos) == 1
        assert videos[0].attachments[0].data == minimax_video


async def test_shard_one_process_runs_two_shards_and_delivers_jobs_from_both(
    discord_sim, minimax, env
) -> None:
    env = {**env, "HAILUO_SHARD_COUNT": "2"}
    async with running_bot(env, identify_spacing=0) as app:
        assert isinstance(app.bot, discord.AutoShardedClient)
        assert sorted(app.bot.shards) == [0, 1]
        assert sorted(p["shard"] for p in discord_sim.identify_payloads) == [[0, 2], [1, 2]]
        assert {g.id for g in app.bot.guilds} == {g.id for g in discord_sim.guilds}
        for guild in app.bot.guilds:
            assert guild.shard_id == shard_of(guild.id, 2)
        await run_jobs(discord_sim, minimax.video)
        assert len(minimax.submits) == 2
        await health_shows_both_shards(app)
    # The count came from the settings: Discord was not asked for a recommendation.
    assert discord_sim.find_calls("GET", "/gateway/bot$") == []


async def test_shard_reconnect_resumes_each_shard(discord_sim, minimax, env) -> None:
    env = {**env, "HAILUO_SHARD_COUNT": "2"}
    async with running_bot(env, identify_spacing=0):
        await discord_sim.reconnect_gateway()  # op 7: each shard comes back with RESUME
        await discord_sim.wait_for(lambda: discord_sim.resumes == 2)
        assert discord_sim.identifies == 2  # no new session: the shards resumed theirs
        for guild in discord_sim.guilds:
            inter = await discord_sim.send_slash(["hailuo", "quota"], guild_id=guild.id)
            await inter.wait_response()
            assert inter.ephemeral and "credits" in inter.response_data["content"]


async def health_shows_both_shards(app: App) -> None:
    async with aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{app.health.bound_port}"
        async with http.get(f"{base}/healthz") as resp:
            body = await resp.json()
        assert resp.status == 200
        assert body["gateway"] is True and body["shards"] == {"0": True, "1": True}
        async with http.get(f"{base}/metrics") as resp:
            text = await resp.text()
    up = {
        s.labels["shard"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "hailuo_gateway_shard_up"
    }
    assert up == {"0": 1.0, "1": 1.0}


async def test_shard_unset_runs_every_shard_discord_recommends(discord_sim, minimax, env) -> None:
    discord_sim.shard_count = 2
    async with running_bot(env, identify_spacing=0) as app:
        assert app.bot.shard_count == 2
        assert sorted(app.bot.shards) == [0, 1]
        assert len(discord_sim.find_calls("GET", "/gateway/bot$")) == 1
        await run_jobs(discord_sim, minimax.video)


def recorder(into: list[int]) -> Any:
    async def on_interaction(interaction: discord.Interaction) -> None:
        into.append(interaction.guild_id or 0)

    return on_interaction


async def test_shard_two_bots_each_get_only_their_own_guilds_and_sync_once(
    discord_sim, minimax, tmp_path: Path
) -> None:
    database = tmp_path / "shared.sqlite3"
    await (await Database.open(database)).close()  # migrated once, before both start
    envs = [
        bot_env(
            discord_sim,
            database,
            HAILUO_SHARD_COUNT="2",
            HAILUO_SHARD_IDS=str(shard),
            **minimax_env(minimax),
        )
        for shard in (0, 1)
    ]
    seen: list[list[int]] = [[], []]
    async with contextlib.AsyncExitStack() as stack:
        apps = await asyncio.gather(
            *(stack.enter_async_context(running_bot(env, identify_spacing=0)) for env in envs)
        )
        for n, app in enumerate(apps):
            assert sorted(app.bot.shards) == [n]
            assert [g.id for g in app.bot.guilds] == [discord_sim.guilds[n].id]
            app.bot.add_listener(recorder(seen[n]), "on_interaction")
        for _ in range(2):
            for guild in discord_sim.guilds:
                inter = await discord_sim.send_slash(["hailuo", "quota"], guild_id=guild.id)
                await inter.wait_response()
                assert inter.ephemeral and "credits" in inter.response_data["content"]
    assert seen == [[discord_sim.guilds[0].id] * 2, [discord_sim.guilds[1].id] * 2]
    # Both started on one database at once: one synced, the other found the claim or the hash.
    assert len(discord_sim.command_syncs) == 1


# -- command sync across processes: the claim on the shared database ------------------------


class Rows:
    """The shared ``bot_state`` rows as the desk offers them, on one database handle."""

    def __init__(self, db: Database) -> None:
        from storage.jobs import JobRepository

        self.jobs = JobRepository(db)

    async def remembered(self, key: str) -> str | None:
        return await self.jobs.get_state(key)

    async def remember(self, key: str, value: str) -> None:
        await self.jobs.put_state(key, value)

    async def swap_remembered(self, key: str, expected: str | None, value: str) -> bool:
        return await self.jobs.swap_state(key, expected, value)


async def test_shard_sync_claim_is_won_by_exactly_one_process(tmp_path: Path) -> None:
    from hailuo.command_sync import COMMANDS_HASH_KEY, claim_sync, finish_sync

    path = tmp_path / "shared.sqlite3"
    handles = [await Database.open(path)]
    handles += [await Database.open(path) for _ in range(3)]
    try:
        rows = [Rows(db) for db in handles]
        claims = await asyncio.gather(*(claim_sync(r, "abc", 1000.0) for r in rows))
        winners = [c for c in claims if c is not None]
        assert len(winners) == 1
        await finish_sync(rows[0], winners[0], "abc", ok=True)
        assert await rows[3].remembered(COMMANDS_HASH_KEY) == "abc"
        # The same definition again: nobody syncs; a new one: one process does.
        assert await claim_sync(rows[1], "abc", 1001.0) is None
        claims = await asyncio.gather(*(claim_sync(r, "def", 1002.0) for r in rows))
        assert len([c for c in claims if c is not None]) == 1
    finally:
        for db in handles:
            await db.close()


async def test_shard_sync_claim_of_a_dead_or_failed_process_is_taken_over(db: Database) -> None:
    from hailuo.command_sync import CLAIM_SECONDS, COMMANDS_HASH_KEY, claim_sync, finish_sync

    rows = Rows(db)
    held = await claim_sync(rows, "abc", 1000.0)
    assert held is not None
    # While the claim holds, another process does not sync the same definition...
    assert await claim_sync(rows, "abc", 1000.0 + CLAIM_SECONDS - 1) is None
    # ...once it has lapsed (its process died mid-sync), the next one does.
    taken = await claim_sync(rows, "abc", 1000.0 + CLAIM_SECONDS + 1)
    assert taken is not None
    await finish_sync(rows, held, "abc", ok=True)  # the dead one's late word changes nothing
    assert (await rows.remembered(COMMANDS_HASH_KEY) or "").startswith("syncing:")
    await finish_sync(rows, taken, "abc", ok=False)
    assert await rows.remembered(COMMANDS_HASH_KEY) == "failed:abc"
    # A failed sync is tried again at the next start.
    assert await claim_sync(rows, "abc", 2000.0) is not None


# -- the settings ---------------------------------------------------------------------------

BASE_ENV = {"DISCORD_TOKEN": "discord-token-xyz", "MINIMAX_API_KEY": "mm-key-xyz"}


@pytest.mark.parametrize(
    ("env", "count", "ids"),
    [
        ({}, None, None),
        ({"HAILUO_SHARD_COUNT": "4"}, 4, None),
        ({"HAILUO_SHARD_COUNT": "4", "HAILUO_SHARD_IDS": "0-3"}, 4, (0, 1, 2, 3)),
        ({"HAILUO_SHARD_COUNT": "4", "HAILUO_SHARD_IDS": "2, 0"}, 4, (0, 2)),
        ({"HAILUO_SHARD_COUNT": "8", "HAILUO_SHARD_IDS": "0-1,4,6 - 7"}, 8, (0, 1, 4, 6, 7)),
    ],
)
def test_shard_settings_are_read(env: dict[str, str], count: int | None, ids: Any) -> None:
    from hailuo.settings import load_settings

    settings = load_settings(environ={**BASE_ENV, **env}, dotenv_path=None)
    assert (settings.shard_count, settings.shard_ids) == (count, ids)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"HAILUO_SHARD_IDS": "0"}, "HAILUO_SHARD_IDS needs HAILUO_SHARD_COUNT"),
        ({"HAILUO_SHARD_COUNT": "0"}, "HAILUO_SHARD_COUNT must be at least 1"),
        ({"HAILUO_SHARD_COUNT": "two"}, "HAILUO_SHARD_COUNT must be a whole number"),
        ({"HAILUO_SHARD_COUNT": "2", "HAILUO_SHARD_IDS": "2"}, "numbered 0 to 1"),
        ({"HAILUO_SHARD_COUNT": "2", "HAILUO_SHARD_IDS": "x"}, "ranges such as 0-3"),
        ({"HAILUO_SHARD_COUNT": "2", "HAILUO_SHARD_IDS": "1-0"}, "backwards"),
        ({"HAILUO_SHARD_COUNT": "3", "HAILUO_SHARD_IDS": "0-1,1"}, "at most once"),
        ({"HAILUO_SHARD_COUNT": "3", "HAILUO_SHARD_IDS": "0,,1"}, "HAILUO_SHARD_IDS"),
    ],
)
def test_shard_settings_mistakes_are_one_sentence_naming_the_setting(
    env: dict[str, str], words: str
) -> None:
    from hailuo.settings import SettingsError, load_settings

    with pytest.raises(SettingsError) as caught:
        load_settings(environ={**BASE_ENV, **env}, dotenv_path=None)
    message = str(caught.value)
    assert words in message
    assert message.endswith(".") and "\n" not in message


async def test_shard_too_few_shards_ends_in_one_sentence_naming_the_setting(
    tmp_path: Path,
) -> None:
    from tests.test_first_hour import ROOT, last_sentence, run

    async with DiscordSimulator(guilds=guilds_on_shards(2)) as sim:
        sim.max_guilds_per_session = 1  # Discord's 2,500, scaled down
        code, _, err = await run(
            tmp_path,
            str(ROOT / "bot.py"),
            DISCORD_TOKEN=sim.token,
            DISCORD_API_BASE_URL=sim.api_base,
            DISCORD_GATEWAY_URL=sim.gateway_url,
            HAILUO_HTTP_PORT="0",
            HAILUO_SHARD_COUNT="1",
        )
    assert code == 2, err
    assert last_sentence(err) == (
        "hailuo: Discord requires more shards for this many servers: raise "
        "HAILUO_SHARD_COUNT (and split the new range over the processes), or unset it to "
        "use Discord's recommendation."
    )
