"""The loopback simulator, proven against the real discord.py 2.7.1 client over TCP.

Each test starts a real ``commands.Bot`` pointed at the simulator (Route.BASE and
DEFAULT_GATEWAY are patched and restored by fixtures), drives it as a user would, and checks
both sides: what discord.py raised or returned, and what the simulator recorded. Time-based
rules are exercised by advancing the injected clock, never by sleeping.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field

import discord
import pytest
import yarl
from discord import app_commands
from discord.ext import commands

from tests.discord_sim import DiscordSimulator, SimAttachment
from tests.support import OffsetClock

MIB = 1024 * 1024
PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


@dataclass
class Probe:
    """What the bot saw, handed to the test through awaitables rather than shared sleeps."""

    errors: asyncio.Queue[Exception] = field(default_factory=asyncio.Queue)
    reads: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    # Message ids of responses the bot has fully processed (views/modals are stored by then).
    responded: asyncio.Queue[int | None] = field(default_factory=asyncio.Queue)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def next_error(self) -> Exception:
        return await asyncio.wait_for(self.errors.get(), timeout=10)

    async def next_response(self) -> int | None:
        return await asyncio.wait_for(self.responded.get(), timeout=10)


class AskModal(discord.ui.Modal, title="Question"):
    answer: discord.ui.TextInput[AskModal] = discord.ui.TextInput(
        label="Answer", custom_id="answer"
    )

    def __init__(self) -> None:
        super().__init__(custom_id="demo:ask")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"got {self.answer.value}")


class PressView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="OK", custom_id="demo:ok")
    async def ok(
        self, interaction: discord.Interaction, button: discord.ui.Button[PressView]
    ) -> None:
        await interaction.response.edit_message(content="pressed", view=None)


def build_bot(probe: Probe) -> commands.Bot:
    """A tiny bot with a ``/demo`` group covering the paths the simulator must support."""
    bot = commands.Bot(
        command_prefix=commands.when_mentioned,
        intents=discord.Intents.default(),
        guild_ready_timeout=0.1,
    )
    demo = app_commands.Group(name="demo", description="Simulator demo")

    async def guarded(call: Awaitable[object]) -> None:
        """Hand HTTP errors to the test; anything else fails the command loudly."""
        try:
            await call
        except discord.HTTPException as exc:
            await probe.errors.put(exc)

    @demo.command(name="echo", description="type-4 answer")
    async def echo(interaction: discord.Interaction, text: str) -> None:
        await guarded(interaction.response.send_message(f"echo: {text}"))

    @demo.command(name="inspect", description="read an attachment from the CDN")
    async def inspect(interaction: discord.Interaction, image: discord.Attachment) -> None:
        data = await image.read()
        await probe.reads.put(data)
        text = f"{image.filename} {len(data)}B limit={interaction.filesize_limit}"
        await interaction.response.send_message(text, ephemeral=True)

    @demo.command(name="upload", description="channel.send a file of `size` bytes")
    async def upload(interaction: discord.Interaction, size: int) -> None:
        await interaction.response.send_message("uploading")
        assert isinstance(interaction.channel, discord.TextChannel)
        payload = discord.File(io.BytesIO(b"\0" * size), filename="out.mp4")
        await guarded(interaction.channel.send(file=payload))

    @demo.command(name="slow", description="answers only when the test opens the gate")
    async def slow(interaction: discord.Interaction) -> None:
        await probe.gate.wait()
        await guarded(interaction.response.send_message("too late"))

    @demo.command(name="later", description="defer, a followup, then an @original edit")
    async def later(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        await guarded(interaction.followup.send("done"))
        await guarded(interaction.edit_original_response(content="done!"))

    @demo.command(name="status", description="public status message")
    async def status(interaction: discord.Interaction) -> None:
        response = await interaction.response.send_message("queued")
        await probe.responded.put(response.message_id)

    @demo.command(name="buttons", description="a message with a button")
    async def buttons(interaction: discord.Interaction) -> None:
        response = await interaction.response.send_message("press it", view=PressView())
        await probe.responded.put(response.message_id)

    @demo.command(name="ask", description="open a modal")
    async def ask(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(AskModal())
        await probe.responded.put(None)

    bot.tree.add_command(demo)

    @bot.event
    async def on_ready() -> None:
        probe.ready.set()

    return bot


@pytest.fixture
def clock() -> OffsetClock:
    return OffsetClock()


@pytest.fixture
async def sim(clock: OffsetClock) -> AsyncIterator[DiscordSimulator]:
    async with DiscordSimulator(clock=clock) as simulator:
        yield simulator
        assert simulator.internal_errors == []


@pytest.fixture
def discord_urls(sim: DiscordSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point discord.py at the simulator; monkeypatch restores both class attributes."""
    monkeypatch.setattr(discord.http.Route, "BASE", sim.api_base)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(sim.gateway_url)
    )


@pytest.fixture
def probe() -> Probe:
    return Probe()


async def start_bot(bot: commands.Bot, token: str, ready: asyncio.Event) -> asyncio.Task[None]:
    """Start the bot and wait for on_ready, surfacing a startup failure instead of hanging."""
    task = asyncio.create_task(bot.start(token))
    ready_wait = asyncio.create_task(ready.wait())
    done, _ = await asyncio.wait(
        {task, ready_wait}, timeout=10, return_when=asyncio.FIRST_COMPLETED
    )
    if task in done:
        ready_wait.cancel()
        task.result()
    assert ready_wait in done, "bot did not become ready"
    return task


@pytest.fixture
async def bot(
    sim: DiscordSimulator, discord_urls: None, probe: Probe
) -> AsyncIterator[commands.Bot]:
    client = build_bot(probe)
    task = await start_bot(client, sim.token, probe.ready)
    try:
        yield client
    finally:
        await client.close()
        await task


def channel_id(sim: DiscordSimulator) -> int:
    return sim.guilds[0].channels[0].id


async def test_login_and_gateway_handshake(sim: DiscordSimulator, bot: commands.Bot) -> None:
    routes = [c.route for c in sim.calls]
    assert routes[:2] == ["GET /users/@me", "GET /oauth2/applications/@me"]
    assert sim.identifies == 1 and sim.heartbeats >= 1
    assert bot.user is not None and bot.user.id == sim.application_id
    assert bot.application_id == sim.application_id
    guild = bot.get_guild(sim.guilds[0].id)
    assert guild is not None and guild.get_channel(channel_id(sim)) is not None
    assert guild.me is not None and guild.filesize_limit == 10 * MIB
    sent = [f.t for f in sim.gateway_log if f.direction == "sent" and f.op == 0]
    assert sent[:2] == ["READY", "GUILD_CREATE"]


async def test_slash_command_gets_type4_answer(sim: DiscordSimulator, bot: commands.Bot) -> None:
    inter = await sim.send_slash(["demo", "echo"], {"text": "hi"})
    call = await inter.wait_response()
    assert call.status == 200 and call.query == {"with_response": "1"}
    assert inter.response_type == 4 and inter.response_data is not None
    assert inter.response_data["content"] == "echo: hi" and not inter.ephemeral
    assert inter.original_message is not None
    assert [m.content for m in sim.channel_messages(channel_id(sim))] == ["echo: hi"]


async def test_attachment_option_is_read_from_cdn(
    sim: DiscordSimulator, bot: commands.Bot, probe: Probe
) -> None:
    image = SimAttachment(PNG_1X1, "in.png", "image/png", width=1, height=1)
    inter = await sim.send_slash(
        ["demo", "inspect"], {}, attachments={"image": image}, attachment_size_limit=25 * MIB
    )
    assert await asyncio.wait_for(probe.reads.get(), 10) == PNG_1X1
    await inter.wait_response()
    assert inter.ephemeral and inter.response_data is not None
    assert inter.response_data["content"] == f"in.png {len(PNG_1X1)}B limit={25 * MIB}"
    cdn = sim.find_calls("GET", r"^/cdn/attachments/.*/in\.png$")
    assert len(cdn) == 1 and cdn[0].status == 200


async def test_cdn_fault_reaches_the_command(sim: DiscordSimulator, bot: commands.Bot) -> None:
    sim.inject_fault("GET", r"^/cdn/", status=403)
    image = SimAttachment(PNG_1X1, "in.png", "image/png")
    inter = await sim.send_slash(["demo", "inspect"], {}, attachments={"image": image})
    await sim.wait_for(lambda: sim.find_calls("GET", r"^/cdn/"))
    assert sim.find_calls("GET", r"^/cdn/")[0].status == 403
    assert inter.callbacks == []  # image.read() raised Forbidden before any answer


async def test_upload_within_limit_and_too_large(
    sim: DiscordSimulator, bot: commands.Bot, probe: Probe
) -> None:
    small = await sim.send_slash(["demo", "upload"], {"size": 1024})
    posted = await sim.wait_for(
        lambda: [m for m in sim.channel_messages(channel_id(sim)) if m.attachments]
    )
    attachment = posted[0].attachments[0]
    assert (attachment.filename, attachment.content_type, len(attachment.data)) == (
        "out.mp4",
        "video/mp4",
        1024,
    )
    assert small.response_type == 4

    await sim.send_slash(["demo", "upload"], {"size": 10 * MIB + 1})
    error = await probe.next_error()
    assert isinstance(error, discord.HTTPException)
    assert (error.status, error.code) == (413, 40005)
    rejected = sim.find_calls("POST", r"^/channels/\d+/messages$")[-1]
    assert rejected.status == 413 and rejected.files[0].filename == "out.mp4"


async def test_second_callback_is_40060(
    sim: DiscordSimulator, bot: commands.Bot, probe: Probe
) -> None:
    inter = await sim.send_slash(["demo", "echo"], {"text": "once"})
    await inter.wait_response()
    await sim.redeliver(inter)  # same interaction delivered twice: the second answer is refused
    error = await probe.next_error()
    assert isinstance(error, discord.HTTPException) and error.code == 40060
    assert [c.status for c in inter.callbacks] == [200, 400]


async def test_callback_after_3s_is_10062(
    sim: DiscordSimulator, bot: commands.Bot, probe: Probe, clock: OffsetClock
) -> None:
    inter = await sim.send_slash(["demo", "slow"], {})
    clock.advance(3.5)
    probe.gate.set()
    call = await inter.wait_response()
    assert (call.status, call.code) == (404, 10062)
    error = await probe.next_error()
    assert isinstance(error, discord.NotFound) and error.code == 10062
    assert not inter.acknowledged


async def test_followup_on_16_minute_old_interaction_is_50027(
    sim: DiscordSimulator, bot: commands.Bot, probe: Probe
) -> None:
    inter = await sim.send_slash(["demo", "later"], {}, age_seconds=16 * 60)
    assert (await inter.wait_response()).status == 200  # the 3 s clock started at dispatch
    for _ in ("followup", "@original edit"):
        error = await probe.next_error()
        assert isinstance(error, discord.HTTPException)
        assert (error.status, error.code) == (401, 50027)
    assert [c.code for c in inter.webhook_calls] == [50027, 50027] and inter.followups == []


async def test_first_followup_after_defer_replaces_thinking_message(
    sim: DiscordSimulator, bot: commands.Bot
) -> None:
    inter = await sim.send_slash(["demo", "later"], {})
    await sim.wait_for(lambda: inter.original_edits)
    original = inter.original_message
    assert original is not None and inter.response_type == 5
    assert inter.followups == [original] and not original.loading
    assert original.content == "done!"
    assert [e.before["content"] for e in original.edits] == ["", "done"]


async def test_channel_message_edit_and_delete_with_bot_token(
    sim: DiscordSimulator, bot: commands.Bot, probe: Probe
) -> None:
    await sim.send_slash(["demo", "status"], {})
    cid, mid = channel_id(sim), await probe.next_response()
    assert mid is not None
    partial = bot.get_partial_messageable(cid).get_partial_message(mid)
    edited = await partial.edit(content="running 50%")
    assert edited.content == "running 50%"
    stored = sim.messages[mid]
    assert [e.before["content"] for e in stored.edits] == ["queued"]
    history = [m async for m in bot.get_partial_messageable(cid).history(limit=10)]
    assert [m.id for m in history] == [mid]
    await partial.delete()
    assert stored.deleted
    with pytest.raises(discord.NotFound) as missing:
        await partial.edit(content="gone")
    assert missing.value.code == 10008


async def test_ephemeral_message_is_invisible_to_bot_token(
    sim: DiscordSimulator, bot: commands.Bot, probe: Probe
) -> None:
    inter = await sim.send_slash(
        ["demo", "inspect"], {}, attachments={"image": SimAttachment(PNG_1X1, "a.png")}
    )
    await inter.wait_response()
    assert inter.original_message is not None and inter.original_message.ephemeral
    partial = bot.get_partial_messageable(inter.channel_id).get_partial_message(
        inter.original_message.id
    )
    with pytest.raises(discord.NotFound) as missing:
        await partial.edit(content="nope")
    assert missing.value.code == 10008


async def test_enforce_nonce_returns_existing_message(
    sim: DiscordSimulator, bot: commands.Bot
) -> None:
    channel = bot.get_channel(channel_id(sim))
    assert isinstance(channel, discord.TextChannel)
    first = await channel.send("video ready", nonce="hl42v")
    second = await channel.send("video ready", nonce="hl42v")
    assert first.id == second.id
    assert len(sim.channel_messages(channel.id)) == 1
    assert len(sim.find_calls("POST", r"/messages$")) == 2


async def test_rate_limit_429_is_retried_with_same_nonce(
    sim: DiscordSimulator, bot: commands.Bot
) -> None:
    sim.inject_fault("POST", r"^/channels/\d+/messages$", status=429, body={"retry_after": 0.01})
    channel = bot.get_channel(channel_id(sim))
    assert isinstance(channel, discord.TextChannel)
    message = await channel.send("after a 429")
    posts = sim.find_calls("POST", r"^/channels/\d+/messages$")
    assert [c.status for c in posts] == [429, 200]
    assert posts[0].json["nonce"] == posts[1].json["nonce"]
    assert sim.messages[message.id].content == "after a 429"


async def test_component_limits_are_enforced(sim: DiscordSimulator, bot: commands.Bot) -> None:
    channel = bot.get_channel(channel_id(sim))
    assert isinstance(channel, discord.TextChannel)
    view = discord.ui.View()
    view.add_item(discord.ui.Button(label="x", custom_id="x" * 101))
    with pytest.raises(discord.HTTPException) as bad:
        await channel.send("too long", view=view)
    assert (bad.value.status, bad.value.code) == (400, 50035)


def _buttons(count: int) -> list[dict[str, object]]:
    return [{"type": 2, "style": 1, "label": str(i), "custom_id": f"b{i}"} for i in range(count)]


@pytest.mark.parametrize(
    "components",
    [
        [{"type": 1, "components": _buttons(6)}],  # six buttons in one row
        [{"type": 1, "components": _buttons(1)}] * 6,  # six rows
    ],
    ids=["6-buttons-per-row", "6-rows"],
)
async def test_component_layout_limits(
    sim: DiscordSimulator, bot: commands.Bot, components: list[dict[str, object]]
) -> None:
    """discord.py's View refuses these itself, so send the raw payload through its HTTP client."""
    route = discord.http.Route(
        "POST", "/channels/{channel_id}/messages", channel_id=channel_id(sim)
    )
    with pytest.raises(discord.HTTPException) as bad:
        await bot.http.request(route, json={"content": "x", "components": components})
    assert bad.value.code == 50035
    assert sim.channel_messages(channel_id(sim)) == []


async def test_user_message_and_direct_message(sim: DiscordSimulator, bot: commands.Bot) -> None:
    seen = asyncio.create_task(bot.wait_for("message", timeout=10))
    posted = await sim.post_user_message(channel_id(sim), "hello bot")
    message = await seen
    assert message.id == posted.id and message.author.id == sim.default_user.id
    user = await bot.fetch_user(sim.default_user.id)
    dm = await user.send("your video is ready")
    assert [m.content for m in sim.channel_messages(dm.channel.id)] == ["your video is ready"]


async def test_button_press_updates_message(
    sim: DiscordSimulator, bot: commands.Bot, probe: Probe
) -> None:
    inter = await sim.send_slash(["demo", "buttons"], {})
    await probe.next_response()  # the view is bound to the message only after the reply
    message = inter.original_message
    assert message is not None and message.components[0]["components"][0]["custom_id"] == "demo:ok"
    press = await sim.send_component("demo:ok", message_id=message.id)
    call = await press.wait_response()
    assert call.status == 200 and press.response_type == 7
    assert message.content == "pressed" and message.components == []


async def test_modal_round_trip(sim: DiscordSimulator, bot: commands.Bot, probe: Probe) -> None:
    ask = await sim.send_slash(["demo", "ask"], {})
    await probe.next_response()  # the modal is registered only after the callback returns
    assert ask.modal is not None and ask.modal["custom_id"] == "demo:ask"
    submit = await sim.send_modal_submit("demo:ask", {"answer": "42"})
    await submit.wait_response()
    assert submit.response_data is not None and submit.response_data["content"] == "got 42"


async def test_command_sync_is_recorded(sim: DiscordSimulator, bot: commands.Bot) -> None:
    assert sim.command_syncs == []  # a plain start syncs nothing
    synced = await bot.tree.sync()
    guild = discord.Object(sim.guilds[0].id)
    bot.tree.copy_global_to(guild=guild)
    await bot.tree.sync(guild=guild)
    assert [c.route for c in sim.command_syncs] == [
        "PUT /applications/{app_id}/commands",
        "PUT /applications/{app_id}/guilds/{guild_id}/commands",
    ]
    assert [c.name for c in synced] == ["demo"] and synced[0].id == int(sim.commands[None][0]["id"])
    fetched = await bot.tree.fetch_commands()
    assert [c.id for c in fetched] == [synced[0].id]


async def test_gateway_resume_after_reconnect(sim: DiscordSimulator, bot: commands.Bot) -> None:
    await sim.reconnect_gateway()
    await sim.wait_for(lambda: sim.resumes == 1)
    inter = await sim.send_slash(["demo", "echo"], {"text": "resumed"})
    assert (await inter.wait_response()).status == 200
    assert sim.identifies == 1


SUBPROCESS_BOT = """
import asyncio, os, discord, yarl
from discord.ext import commands

discord.http.Route.BASE = os.environ["DISCORD_API_BASE_URL"]
discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["DISCORD_GATEWAY_URL"])
bot = commands.Bot(command_prefix=commands.when_mentioned, intents=discord.Intents.default())

@bot.tree.command(name="ping", description="pong")
async def ping(interaction: discord.Interaction) -> None:
    await interaction.response.send_message("pong")

bot.run(os.environ["DISCORD_TOKEN"], log_handler=None)
"""


async def test_bot_in_a_subprocess(sim: DiscordSimulator) -> None:
    env = {
        **os.environ,
        "DISCORD_API_BASE_URL": sim.api_base,
        "DISCORD_GATEWAY_URL": sim.gateway_url,
        "DISCORD_TOKEN": sim.token,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SUBPROCESS_BOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        await sim.wait_for(lambda: any(f.t == "GUILD_CREATE" for f in sim.gateway_log), 30)
        inter = await sim.send_slash(["ping"], {})
        await inter.wait_response()
        assert inter.response_data is not None and inter.response_data["content"] == "pong"
    finally:
        proc.terminate()
        await proc.communicate()
    assert sim.identifies == 1


async def test_bad_token_is_rejected(sim: DiscordSimulator, discord_urls: None) -> None:
    client = commands.Bot(command_prefix=commands.when_mentioned, intents=discord.Intents.default())
    try:
        with pytest.raises(discord.LoginFailure):
            await client.login("wrong-token")
    finally:
        await client.close()
    assert (sim.calls[0].status, sim.calls[0].auth) == (401, "invalid")


async def test_read_routes_parse_in_discord_py(sim: DiscordSimulator, bot: commands.Bot) -> None:
    sim_guild = sim.guilds[0]
    guild = await bot.fetch_guild(sim_guild.id, with_counts=True)
    assert guild.name == sim_guild.name and guild.approximate_member_count == 2
    member = await guild.fetch_member(sim.default_user.id)
    assert member.name == "tester"
    assert [r.name for r in await guild.fetch_roles()] == ["@everyone", "SimBot"]  # the bot's
    assert [c.id for c in await guild.fetch_channels()] == [channel_id(sim)]
    channel = await bot.fetch_channel(channel_id(sim))
    assert isinstance(channel, discord.TextChannel)
    async with channel.typing():
        pass
    with pytest.raises(discord.NotFound) as missing:
        await guild.fetch_member(1)
    assert missing.value.code == 10007
    gateway = await bot.http.get_bot_gateway()
    assert gateway[:2] == (1, sim.gateway_url)


async def test_unknown_route_is_recorded(sim: DiscordSimulator, bot: commands.Bot) -> None:
    with pytest.raises(discord.NotFound):
        await bot.http.request(
            discord.http.Route("GET", "/channels/{channel_id}/pins", channel_id=1)
        )
    assert sim.calls[-1].path == "/channels/1/pins" and sim.calls[-1].route is None
