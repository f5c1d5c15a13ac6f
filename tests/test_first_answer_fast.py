"""The first answer at the bare client's speed (issue 13): ``-k first_answer``.

``/hailuo text`` checks from memory what this process knows (the server's gate, its
blocklist, where results go) and reads nothing else before it answers while other jobs
are being written: the answer is a card "checking your request", and the job, with its
reservation and the card's ids, is one write after. The tests prove it by holding the
database's write lock while a burst arrives: every command answered behind the first
one ran no SQL statement before its answer. The caches that make this possible are
proven against every way a change reaches the stored values.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import discord
import pytest

from hailuo.clock import Clock
from hailuo.jobs.cards import FirstAnswers
from hailuo.jobs.desk import JobDesk, JobRequest
from hailuo.model.errors import ModerationBlocked, QuotaExceeded, UserInputError
from hailuo.model.moderation import ModerationSettings
from hailuo.model.spec import JobSpec, Mode
from hailuo.moderation.admin import ModerationAdmin
from hailuo.moderation.audit import AuditLog
from hailuo.money.quotas import AllowancePeriod, QuotaPolicy
from storage.blocklist import BlocklistKind, BlocklistRepository
from storage.committing import GroupCommit, Tx
from storage.db import Database
from storage.moderation import ModerationSettingsRepository
from tests import media
from tests.discord_sim import DiscordSimulator, SimAttachment, SimInteraction
from tests.e2e import CHECKING, SimSetup, all_settled, private_reply, running_bot
from tests.support import FakeClock, RecordingNotifier

pytestmark = pytest.mark.timeout(60)

MEMBER = 6_100_000
GUILD, CHANNEL = 1, 10
LAKE = JobSpec(mode=Mode.TEXT, prompt="a quiet lake")


@pytest.fixture
def sim_setup() -> SimSetup:
    return SimSetup.held()


class StatementLog:
    """Every SQL statement the bot's connection runs, with the task that ran it, and the
    moment each command's task sent its first answer."""

    def __init__(self) -> None:
        self.statements: list[tuple[asyncio.Task[Any] | None, str]] = []
        self.answered: dict[asyncio.Task[Any] | None, int] = {}

    def before_answer(self, task: asyncio.Task[Any] | None) -> list[str]:
        """The statements ``task`` ran before its first answer."""
        end = self.answered[task]
        return [sql for owner, sql in self.statements[:end] if owner is task]


@contextmanager
def watching(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[StatementLog]:
    log = StatementLog()

    def note(args: tuple[Any, ...]) -> None:
        """Log the SQL of one hop: a statement, or each statement of a batch."""
        if args and isinstance(args[0], str):
            texts = [args[0]]
        elif args and isinstance(args[0], list | tuple):
            texts = [step[0] for step in args[0]]
        else:
            texts = []
        for sql in texts:
            log.statements.append((asyncio.current_task(), " ".join(sql.split())))

    run = Tx._run

    async def counted(self: Tx, fn: Any, *args: Any) -> Any:  # a unit of work's statements
        note(args)
        return await run(self, fn, *args)

    def counting(name: str) -> None:  # the engine's own reads of the committed state
        read = getattr(GroupCommit, name)

        async def counted_read(self: GroupCommit, *args: Any) -> Any:
            note(args)
            return await read(self, *args)

        monkeypatch.setattr(GroupCommit, name, counted_read)

    for name in ("fetch_one", "fetch_all", "batch"):
        counting(name)

    send_message = discord.InteractionResponse.send_message

    async def answer(self: discord.InteractionResponse, *args: Any, **kwargs: Any) -> Any:
        log.answered.setdefault(asyncio.current_task(), len(log.statements))
        return await send_message(self, *args, **kwargs)

    monkeypatch.setattr(Tx, "_run", counted)
    monkeypatch.setattr(discord.InteractionResponse, "send_message", answer)
    yield log


def card_text(inter: SimInteraction) -> str:
    return str((inter.response_data or {}).get("embeds"))


async def burst(
    sim: DiscordSimulator, size: int, user: Callable[[int], int]
) -> list[SimInteraction]:
    return list(
        await asyncio.gather(
            *(
                sim.send_slash(["hailuo", "text"], {"prompt": f"clip {n}"}, user_id=user(n))
                for n in range(size)
            )
        )
    )


async def test_first_answer_in_a_burst_runs_no_statement_and_the_gate_once(
    discord_sim, minimax, env, monkeypatch
) -> None:
    async with running_bot(env) as app:
        db = app.bot.services.db
        warm = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "warm"}, user_id=MEMBER)
        await warm.wait_response()
        assert not warm.ephemeral and CHECKING not in card_text(warm)  # alone: its job's card
        gate = app.bot.desk.gate
        runs = gate.gate_runs
        with watching(db, monkeypatch) as log:
            async with db.transaction():  # nobody may write until the burst is answered
                inters = await burst(discord_sim, 6, lambda n: MEMBER + 1 + n)
                await discord_sim.wait_for(lambda: sum(i.acknowledged for i in inters) == 5)
                first = [inter for inter in inters if inter.acknowledged]
                # Five answered while the write lock was held; the sixth, alone when it
                # came, writes its job first and waits for the lock.
                assert all(CHECKING in card_text(inter) for inter in first)
                assert not any(inter.ephemeral for inter in first)
            await all_settled(discord_sim, inters)
        tasks = list(log.answered)
        assert len(tasks) == 6
        early = [task for task in tasks if log.before_answer(task) == []]
        assert len(early) == 5  # no read, no write before the answer
        (alone,) = set(tasks) - set(early)
        writes = [s for s in log.before_answer(alone) if s.startswith("INSERT INTO jobs")]
        assert len(writes) == 1  # one write before its answer: the job with its reservation
        reads = [s for s in log.before_answer(alone) if "FROM guild_settings" in s]
        # The policy read once at most, never twice (the server's settings, read by the
        # warm-up command, may still be in the repository's cache: then not at all).
        assert len(reads) <= 1
        # What the look screened is settled under the write by the server's moderation
        # version (migration 012): read once there; the blocklist itself, known, not at all.
        assert sum("FROM moderation_versions" in s for s in log.before_answer(alone)) == 1
        assert sum("FROM blocklist" in s for s in log.before_answer(alone)) == 0
        # The channel and role gate ran once per command, not again under the write.
        assert gate.gate_runs - runs == 6
        jobs = await app.bot.desk.jobs.count_by_status()
        assert sum(jobs.values()) == 7
        # Every card answered first now shows its job, with its ids stored by the one write.
        for inter in first:
            job = await app.bot.desk.made_by(inter.id)
            assert job is not None and job.status_message_id == inter.original_message.id
            assert f"#{job.id}" in str(inter.original_message.embeds)


async def one_credit_spent(app: Any, sim: DiscordSimulator) -> None:
    """The server's allowance is one credit a day, and ``MEMBER`` spent it on a first video."""
    policies = app.bot.services.policies
    assert policies is not None
    await policies.set_allowance(sim.guilds[0].id, 1, AllowancePeriod.DAY, 1)
    spent = await sim.send_slash(["hailuo", "text"], {"prompt": "one"}, user_id=MEMBER)
    await spent.wait_response()
    assert not spent.ephemeral


async def test_first_answer_refused_under_the_write_withdraws_the_card_and_names_the_rule(
    discord_sim, minimax, env
) -> None:
    guild = discord_sim.guilds[0]
    async with running_bot(env) as app:
        db = app.bot.services.db
        await one_credit_spent(app, discord_sim)
        async with db.transaction():
            inters = await burst(discord_sim, 3, lambda n: MEMBER)
            await discord_sim.wait_for(lambda: sum(i.acknowledged for i in inters) == 2)
        await all_settled(discord_sim, inters)
        for inter in inters:
            text = private_reply(inter)
            assert text is not None and "you have 0 left of 1" in text, text
            # Answered first: the card is withdrawn; alone: the refusal is the answer itself.
            assert inter.ephemeral or inter.original_message.deleted
        assert sum(1 for inter in inters if not inter.ephemeral) == 2
        balance = await app.bot.desk.balance(guild.id, MEMBER)
        assert balance.reserved == 1  # only the first request's
        assert sum((await app.bot.desk.jobs.count_by_status()).values()) == 1
    assert len(minimax.submits) <= 1


# --- what the first look knows, and how a change reaches it ---------------------------------


class Counting:
    """A store that counts its reads (the settings' ``get``, the blocklist's ``entries``)."""

    def __init__(self, inner: Any, method: str) -> None:
        self.inner = inner
        self.method = method
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name != self.method:
            return attr

        async def read(*args: Any, **kwargs: Any) -> Any:
            self.reads += 1
            return await attr(*args, **kwargs)

        return read


def _desk(db: Database, clock: Clock) -> tuple[JobDesk, Counting, Counting, ModerationAdmin]:
    async def policy(guild_id: int) -> QuotaPolicy:
        return QuotaPolicy()

    settings = Counting(ModerationSettingsRepository(db), "get")
    desk = JobDesk(db, clock=clock, policy=policy, on_created=lambda: None, moderation=settings)  # type: ignore[arg-type]
    entries = Counting(desk.gate.entries, "entries")
    desk.gate.entries = entries  # type: ignore[assignment]
    admin = ModerationAdmin(
        db,
        settings=settings,  # type: ignore[arg-type]
        audit=AuditLog(db, RecordingNotifier(), clock=clock),
        clock=clock,
        on_change=desk.gate.forget,
    )
    return desk, settings, entries, admin


async def look(desk: JobDesk, spec: JobSpec = LAKE, roles: tuple[int, ...] = ()) -> Any:
    return await desk.first_look(GUILD, spec, roles=roles, channel_id=CHANNEL)


async def test_first_answer_look_reads_storage_once_per_server(
    db: Database, clock: FakeClock
) -> None:
    desk, settings, entries, _ = _desk(db, clock)
    for _ in range(3):
        await look(desk)
    assert (settings.reads, entries.reads) == (1, 1)
    job = await desk.create(JobRequest(GUILD, CHANNEL, 42, LAKE), await look(desk))
    assert job.status_message_id is None
    # The create reads the stored values once, under its transaction, to settle the look.
    assert (settings.reads, entries.reads) == (2, 2)


async def test_first_answer_admin_changes_are_seen_at_once(db: Database, clock: FakeClock) -> None:
    desk, _, _, admin = _desk(db, clock)
    await look(desk)
    await admin.add_entry(GUILD, BlocklistKind.WORD, "lake", label="no lakes", actor_id=1)
    with pytest.raises(ModerationBlocked) as refused:
        await look(desk)
    assert refused.value.params == {"rule": "no lakes"}
    entry = (await admin.entries(GUILD))[0]
    await admin.remove_entry(GUILD, entry.id, actor_id=1)
    await look(desk)
    await admin.update(GUILD, {"allowed_role_ids": {77}}, actor_id=1)
    with pytest.raises(ModerationBlocked) as gated:
        await look(desk)
    assert gated.value.rule == "moderation.role_required"
    await look(desk, roles=(77,))


async def test_first_answer_a_change_made_elsewhere_still_applies_under_the_write(
    db: Database, clock: FakeClock
) -> None:
    """A change this process was not told of: the look passes on what it knew, the create
    refuses on the stored values with nothing reserved, and the next look knows it."""
    desk, _, entries, _ = _desk(db, clock)
    screened = await look(desk)
    await BlocklistRepository(db).add(
        GUILD, BlocklistKind.WORD, "lake", label="no lakes", added_by=1, now=clock()
    )
    with pytest.raises(ModerationBlocked):
        await desk.create(JobRequest(GUILD, CHANNEL, 42, LAKE), screened)
    assert await desk.jobs.count_by_status() == {}
    assert (await desk.balance(GUILD, 42)).reserved == 0
    reads = entries.reads
    with pytest.raises(ModerationBlocked):
        await look(desk)  # known now: refused, and confirmed on the stored list
    assert entries.reads == reads + 1
    # Settings changed elsewhere: the create runs the gate again on the stored ones.
    screened = await look(desk, LAKE_FREE)
    await ModerationSettingsRepository(db).update(
        GUILD, {"allowed_role_ids": {77}}, actor_id=1, now=clock()
    )
    with pytest.raises(ModerationBlocked) as gated:
        await desk.create(JobRequest(GUILD, CHANNEL, 42, LAKE_FREE), screened)
    assert gated.value.rule == "moderation.role_required"
    assert await desk.jobs.count_by_status() == {}


LAKE_FREE = JobSpec(mode=Mode.TEXT, prompt="a quiet river")


async def test_first_answer_a_refusal_on_known_values_is_confirmed_on_the_stored_ones(
    db: Database, clock: FakeClock
) -> None:
    """A removal made elsewhere: what the process knew refuses, the stored list does not."""
    desk, _, _, _ = _desk(db, clock)
    repo = BlocklistRepository(db)
    entry = await repo.add(GUILD, BlocklistKind.WORD, "lake", label="lakes", added_by=1, now=0)
    with pytest.raises(ModerationBlocked):
        await look(desk)
    await repo.remove(GUILD, entry.id)
    screened = await look(desk)  # not refused on the stale list
    assert screened.entries == ()
    job = await desk.create(JobRequest(GUILD, CHANNEL, 42, LAKE), screened)
    assert job.cost == 1


async def test_first_answer_a_read_begun_before_a_change_is_not_kept(
    db: Database, clock: FakeClock
) -> None:
    desk, settings, _, _ = _desk(db, clock)
    real_get = settings.inner.get

    async def get_then_change(guild_id: int, tx: Any = None) -> ModerationSettings:
        value = await real_get(guild_id, tx)
        desk.gate.forget(guild_id)  # an admin's change lands while the read is under way
        return value

    settings.inner.get = get_then_change
    await look(desk)
    settings.inner.get = real_get
    reads = settings.reads
    await look(desk)
    assert settings.reads == reads + 1  # the first read was not kept


async def test_first_answer_results_place_is_kept_until_changed(
    db: Database, clock: FakeClock
) -> None:
    desk, _, _, _ = _desk(db, clock)
    assert await desk.results_in(GUILD) == "channel"
    await desk.set_results_in(GUILD, "thread", actor_id=1)
    assert await desk.results_in(GUILD) == "thread"
    await db.delivery.set_place(GUILD, "channel", actor_id=1, now=clock())  # elsewhere
    assert await desk.results_in(GUILD) == "thread"  # known here until told ...
    assert await desk.results_in(GUILD, fresh=True) == "channel"  # ... or asked afresh
    assert await desk.results_in(GUILD) == "channel"


async def test_first_answer_blocklist_busy_still_refuses_after_three_screenings(
    db: Database, clock: FakeClock
) -> None:
    """The screened result handed to create is used once; a changing list is screened again."""
    desk, _, _, _ = _desk(db, clock)
    repo = BlocklistRepository(db)
    screened = await look(desk, LAKE_FREE)
    real_screen = desk.gate.screen
    words = iter(["boat", "fish", "tree", "bird"])

    async def racing(guild_id: int, prompt: str, **how: Any) -> Any:
        result = await real_screen(guild_id, prompt, **how)
        await repo.add(guild_id, BlocklistKind.WORD, next(words), added_by=1, now=0)
        return result

    await repo.add(GUILD, BlocklistKind.WORD, "cloud", added_by=1, now=0)
    desk.gate.screen = racing  # type: ignore[method-assign]
    with pytest.raises(UserInputError) as busy:
        await desk.create(JobRequest(GUILD, CHANNEL, 42, LAKE_FREE), screened)
    assert busy.value.rule == "moderation.blocklist_busy"
    assert await desk.jobs.count_by_status() == {}


async def test_first_answer_writes_wait_until_every_answer_was_taken() -> None:
    """``FirstAnswers.quiet``: a burst's writes wait for its answers, sent and taken."""
    answers = FirstAnswers()
    await answers.quiet()  # nothing on its way: at once
    answers.arrived(1)
    answers.arrived(2)
    assert answers.others_answering(1) and answers.others_answering(2)
    waiting = asyncio.create_task(answers.quiet(within=60))
    answers.answering(1)  # sent, not yet taken
    assert not answers.others_answering(2)  # a command alone now may write first
    answers.answered(2)  # refused before it answered
    await asyncio.sleep(0)
    assert not waiting.done()  # the first one's answer is still in flight
    answers.answered(1)
    await waiting
    answers.arrived(3)
    await answers.quiet(within=0)  # a steady stream never holds a write for longer
    answers.answered(3)
    answers.answered(3)  # twice (the command's own finally): harmless
    await answers.quiet()


async def test_first_answer_create_alone_refuses_a_full_money_budget(
    db: Database, clock: FakeClock
) -> None:
    """Without the old precheck before it, the create's own admission is the only one: a
    full money budget refuses there, with no job and nothing reserved."""
    key = ("minimax", LAKE.model, LAKE.resolution, LAKE.duration)

    async def policy(guild_id: int) -> QuotaPolicy:
        return QuotaPolicy(
            prices={key: 280_000}, priced_providers=("minimax",), daily_money_budget=500_000
        )

    desk = JobDesk(db, clock=clock, policy=policy, on_created=lambda: None)
    await desk.create(JobRequest(GUILD, CHANNEL, 42, LAKE))
    with pytest.raises(QuotaExceeded) as refused:
        await desk.create(JobRequest(GUILD, CHANNEL, 42, LAKE))
    assert refused.value.rule == "quota.money_budget_day"
    assert sum((await desk.jobs.count_by_status()).values()) == 1
    assert (await desk.balance(GUILD, 42)).reserved == 1


async def test_first_answer_a_burst_on_a_new_server_reads_it_once(
    db: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commands arriving while the first read is under way share it: no stampede."""
    desk, settings, entries, _ = _desk(db, clock)
    await asyncio.gather(*(look(desk) for _ in range(20)))
    assert (settings.reads, entries.reads) == (1, 1)
    place = db.delivery.place
    reads: list[int] = []

    async def counted(guild_id: int) -> str:
        reads.append(guild_id)
        return await place(guild_id)

    monkeypatch.setattr(db.delivery, "place", counted)
    assert set(await asyncio.gather(*(desk.results_in(GUILD) for _ in range(20)))) == {"channel"}
    assert await desk.results_in(GUILD) == "channel"
    assert reads == [GUILD]


# --- /hailuo animate: answered before any storage read, refused before any download ---------


def picture() -> SimAttachment:
    png = media.make_image("PNG", 640, 480)
    return SimAttachment(png, "photo.png", "image/png", 640, 480, len(png))


def cdn_downloads(sim: DiscordSimulator) -> list[Any]:
    return sim.find_calls(method="GET", path_regex=r"^/cdn/attachments/")


async def test_first_answer_animate_reads_nothing_before_its_answer(
    discord_sim, minimax, env, monkeypatch
) -> None:
    async with running_bot(env) as app:
        warm = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "warm"}, user_id=MEMBER)
        await warm.wait_response()  # the server is known: its gate is in memory
        with watching(app.bot.services.db, monkeypatch) as log:
            inter = await discord_sim.send_slash(
                ["hailuo", "animate"], attachments={"image": picture()}, user_id=MEMBER + 1
            )
            await inter.wait_response()
            await discord_sim.wait_for(lambda: "#" in str(inter.original_message.embeds))
        (task,) = log.answered
        assert log.before_answer(task) == []  # the "checking your image" card came first
        assert not inter.ephemeral
        job = await app.bot.desk.made_by(inter.id)
        assert job is not None and job.status_message_id == inter.original_message.id
        assert len(cdn_downloads(discord_sim)) == 1


async def test_first_answer_animate_refused_by_credits_downloads_nothing(
    discord_sim, minimax, env
) -> None:
    guild = discord_sim.guilds[0]
    async with running_bot(env) as app:
        await one_credit_spent(app, discord_sim)
        inter = await discord_sim.send_slash(
            ["hailuo", "animate"], attachments={"image": picture()}, user_id=MEMBER
        )
        await discord_sim.wait_for(lambda: private_reply(inter) is not None)
        text = private_reply(inter)
        assert text is not None and "you have 0 left of 1" in text, text
        assert not inter.ephemeral  # answered at once, with the "checking your image" card
        await discord_sim.wait_for(lambda: inter.original_message.deleted)  # withdrawn
        assert cdn_downloads(discord_sim) == []  # refused before the image was fetched
        balance = await app.bot.desk.balance(guild.id, MEMBER)
        assert balance.reserved == 1  # only the first request's


async def test_first_answer_animate_fault_after_its_answer_withdraws_the_card(
    discord_sim, minimax, env, monkeypatch
) -> None:
    """A fault (the database's disk failing) in the checks after the "checking your image"
    card: the card goes, the member is told privately that nothing was charged, and no
    image is fetched; the next request works."""
    async with running_bot(env) as app:
        desk = app.bot.desk
        real = desk.precheck

        async def failing(*args: Any, **kwargs: Any) -> int:
            monkeypatch.setattr(desk, "precheck", real)  # once
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(desk, "precheck", failing)
        inter = await discord_sim.send_slash(
            ["hailuo", "animate"], attachments={"image": picture()}, user_id=MEMBER
        )
        await discord_sim.wait_for(lambda: private_reply(inter) is not None)
        assert not inter.ephemeral  # answered first, with its card
        assert "Nothing was charged" in str(private_reply(inter))
        await discord_sim.wait_for(lambda: inter.original_message.deleted)
        assert cdn_downloads(discord_sim) == []
        assert await desk.made_by(inter.id) is None
        again = await discord_sim.send_slash(
            ["hailuo", "animate"], attachments={"image": picture()}, user_id=MEMBER
        )
        await again.wait_response()
        await discord_sim.wait_for(lambda: "#" in str(again.original_message.embeds))
        assert await desk.made_by(again.id) is not None


async def test_first_answer_precheck_trusts_only_a_look_at_the_same_request(
    db: Database, clock: FakeClock
) -> None:
    """``precheck(screened=…)`` skips the channel, role and prompt rules only for a look at
    this very request: one of another prompt, or from a member with other roles, is not a
    pass for this one."""
    desk, _, _, admin = _desk(db, clock)
    await admin.add_entry(GUILD, BlocklistKind.WORD, "lake", label="no lakes", actor_id=1)
    river = await look(desk, LAKE_FREE)
    assert await desk.precheck(GUILD, 42, LAKE_FREE, channel_id=CHANNEL, screened=river) == 1
    with pytest.raises(ModerationBlocked) as refused:  # the river's look, a lake's prompt
        await desk.precheck(GUILD, 42, LAKE, channel_id=CHANNEL, screened=river)
    assert refused.value.params == {"rule": "no lakes"}
    await admin.update(GUILD, {"allowed_role_ids": {77}}, actor_id=1)
    member = await look(desk, LAKE_FREE, roles=(77,))
    with pytest.raises(ModerationBlocked) as gated:  # the same prompt, without the role
        await desk.precheck(GUILD, 42, LAKE_FREE, channel_id=CHANNEL, screened=member)
    assert gated.value.rule == "moderation.role_required"
    assert await desk.jobs.count_by_status() == {}
