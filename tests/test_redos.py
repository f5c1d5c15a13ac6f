"""Admin-supplied patterns cannot stall the bot (issue 11, finding 1).

The patterns that bypassed the old backtracking guard, and the classic ones,
are either refused when added (naming the rule, in both languages) or run on
RE2, which cannot backtrack; a server's blocklist is capped in count, length
and program size; and screening never runs under the database's write lock
nor on the event loop, which a watchdog proves while the worst blocklist
screens 2,000-character prompts.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hailuo.i18n.messages import Term, render
from hailuo.jobs.desk import JobDesk, JobRequest
from hailuo.model.errors import ModerationBlocked, UserInputError
from hailuo.model.spec import JobSpec, Mode
from hailuo.moderation.gating import Screening
from hailuo.moderation.screening import (
    MAX_ENTRIES,
    MAX_ENTRY_CHARS,
    MAX_PATTERNS,
    Blocklist,
    check_room,
    compile_entry,
    validate_entry,
)
from hailuo.money.quotas import QuotaPolicy
from storage.blocklist import BlocklistEntry, BlocklistKind, BlocklistRepository
from storage.db import Database
from tests.e2e import SimSetup, running_bot
from tests.moderation_e2e import admin, moderated_guild, said
from tests.support import FakeClock

pytestmark = pytest.mark.timeout(60)

GUILD, OTHER_GUILD, CHANNEL, MEMBER = 1, 2, 10, 42
#: The guard's bypasses from the issue, then the classic catastrophic shapes.
BYPASSES = (r"(\w+){,}_", r"(?x)(\w+) +_", r"\w*\w*\w*\w*_")
CLASSICS = ("(a+)+$", "(a|aa)*b", r"(\w+\s?)*_", "(x+x+)+y", "(a|a?)+_", "(.*a){20}_")
WORST = BYPASSES + CLASSICS
#: Prompts that made the old engine backtrack: 26 characters took 9 s, x4 per two more.
ADVERSARIAL = (
    "a" * 26 + "!",
    "a" * 1999 + "!",
    "ab " * 666,
    "x" * 2000,
    "a" * 1000 + "b" * 999 + "!",
)


def entry(n: int, text: str, kind: BlocklistKind = BlocklistKind.REGEX) -> BlocklistEntry:
    return BlocklistEntry(n, GUILD, kind, text, "", None, 0.0)


@pytest.mark.parametrize("pattern", WORST)
def test_redos_patterns_are_refused_naming_the_rule_or_run_on_re2(pattern: str) -> None:
    try:
        validate_entry(BlocklistKind.REGEX, pattern)
    except UserInputError as refused:
        assert pattern == r"(?x)(\w+) +_"  # RE2 has no verbose mode: refused, not run
        assert refused.rule == "moderation.pattern_unsupported"
        feature = refused.params["feature"]
        assert isinstance(feature, Term) and feature.code == "moderation.re2.group"
        assert "(?x)" in render(refused.rule, "en", **refused.params)
        assert "(?x)" in render(refused.rule, "zh-CN", **refused.params)
        return
    rule = compile_entry(entry(1, pattern))
    assert type(rule.bounded).__module__ == "re2"  # no backtracking engine anywhere
    blocklist = Blocklist([rule])
    results = [blocklist.match(prompt) for prompt in ADVERSARIAL]
    # The folded text holds no "_": those patterns never match; the others do where meant.
    expected = {"(a+)+$": [1, 1, 0, 0, 0], "(a|aa)*b": [0, 0, 1, 0, 1]}
    assert [r is not None for r in results] == [
        bool(x) for x in expected.get(pattern, [False] * len(ADVERSARIAL))
    ]


def test_redos_the_patterns_of_the_old_guard_run_in_linear_time_on_long_prompts() -> None:
    """Every worst pattern at once on the adversarial prompts: the old engine never returned."""
    accepted = []
    for n, pattern in enumerate(WORST):
        try:
            accepted.append(compile_entry(entry(n, pattern)))
        except UserInputError:
            continue
    assert len(accepted) == len(WORST) - 1
    blocklist = Blocklist(accepted)
    for prompt in ADVERSARIAL:
        blocklist.match(prompt)
    assert blocklist.match("x" * 1999 + "y") is not None  # (x+x+)+y still finds its match


def test_redos_programs_too_large_for_linear_time_to_stay_fast_are_refused() -> None:
    """RE2 is linear in the text times the program: ``[a-z]{1000}`` would be 80 ms a prompt."""
    for pattern in ("[a-z]{1000}", r"(\w+\s?){999}", ".{0,999}x"):
        with pytest.raises(UserInputError) as refused:
            validate_entry(BlocklistKind.REGEX, pattern)
        assert refused.value.rule == "moderation.pattern_unsupported"
        assert getattr(refused.value.params["feature"], "code", "") == "moderation.re2.size"
    assert validate_entry(BlocklistKind.REGEX, "[a-z]{100}x") == "[a-z]{100}x"


def test_redos_caps_on_count_and_length_are_stated_in_the_refusal() -> None:
    words = [entry(n, f"word{n}", BlocklistKind.WORD) for n in range(MAX_ENTRIES - 1)]
    check_room(BlocklistKind.WORD, words)
    with pytest.raises(UserInputError) as full:
        check_room(BlocklistKind.WORD, [*words, entry(MAX_ENTRIES, "one more", BlocklistKind.WORD)])
    assert full.value.rule == "moderation.too_many_entries"
    assert full.value.params == {"maximum": MAX_ENTRIES}
    patterns = [entry(n, f"p{n}x") for n in range(MAX_PATTERNS)]
    check_room(BlocklistKind.WORD, patterns)  # words still fit beside a full set of patterns
    with pytest.raises(UserInputError) as too_many:
        check_room(BlocklistKind.REGEX, patterns)
    assert too_many.value.rule == "moderation.too_many_patterns"
    for locale in ("en", "zh-CN"):
        assert str(MAX_ENTRIES) in render(full.value.rule, locale, **full.value.params)
        assert str(MAX_PATTERNS) in render(too_many.value.rule, locale, **too_many.value.params)
    with pytest.raises(UserInputError) as long:
        validate_entry(BlocklistKind.REGEX, "a" * (MAX_ENTRY_CHARS + 1))
    assert long.value.params == {"maximum": MAX_ENTRY_CHARS, "actual": MAX_ENTRY_CHARS + 1}


def test_redos_stored_entries_past_the_caps_are_not_compiled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Entries stored before the caps (or by a race of two adds) cost nothing past them."""
    stored = [entry(n, f"p{n}x") for n in range(MAX_PATTERNS + 5)]
    stored += [entry(1000 + n, f"word{n}", BlocklistKind.WORD) for n in range(MAX_ENTRIES)]
    with caplog.at_level(logging.WARNING, logger="hailuo.moderation.screening"):
        compiled = Blocklist.compile(stored)
    assert len(compiled.rules) == MAX_ENTRIES
    assert sum(r.kind is BlocklistKind.REGEX for r in compiled.rules) == MAX_PATTERNS
    assert "too_many_patterns" in caplog.text and "too_many_entries" in caplog.text


# --- the event loop and the write lock ------------------------------------------------


class Watchdog:
    """Measures how long the event loop goes without running this task.

    A gap counts as a stall only as far as the process used the CPU during it
    (``process_time`` covers every thread, so a regex holding the GIL on another
    thread counts too); a machine busy with other processes cannot fail the test.
    """

    def __init__(self) -> None:
        self.stalls: list[float] = []
        self.stopped = asyncio.Event()

    async def run(self) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        while not self.stopped.is_set():
            await asyncio.sleep(0.001)
            now_wall, now_cpu = time.perf_counter(), time.process_time()
            self.stalls.append(min(now_wall - wall, now_cpu - cpu))
            wall, cpu = now_wall, now_cpu


def _desk(db: Database, clock: FakeClock) -> JobDesk:
    async def policy(guild_id: int) -> QuotaPolicy:
        return QuotaPolicy(daily_credits=1000, max_jobs_per_member=100, max_jobs_per_guild=100)

    return JobDesk(db, clock=clock, policy=policy, on_created=lambda: None)


async def _fill_to_the_caps(db: Database, clock: FakeClock) -> None:
    """The worst patterns, stored as they are (even those the admin command refuses now).

    Each ends in "_", which no folded prompt holds: every pattern runs over every view.
    """
    repo = BlocklistRepository(db)
    for n in range(MAX_PATTERNS):
        pattern = WORST[n % len(WORST)] + "_" * (1 + n // len(WORST))
        await repo.add(GUILD, BlocklistKind.REGEX, pattern, added_by=1, now=clock())
    for n in range(MAX_ENTRIES - MAX_PATTERNS - 1):
        phrase = f"{'abcdefghij ' * 17}{n}"[:MAX_ENTRY_CHARS]
        await repo.add(GUILD, BlocklistKind.PHRASE, phrase, added_by=1, now=clock())
    await repo.add(GUILD, BlocklistKind.WORD, "kill", label="violence", added_by=1, now=clock())


async def test_redos_watchdog_the_event_loop_never_stalls_while_the_worst_blocklist_screens(
    db: Database, clock: FakeClock
) -> None:
    await _fill_to_the_caps(db, clock)
    desk = _desk(db, clock)
    prompts = [p[:2000] for p in ADVERSARIAL[1:]] + ["кіll " * 400, "k i l l " * 250]
    watchdog = Watchdog()
    watching = asyncio.create_task(watchdog.run())
    refused = 0
    try:
        for round_ in range(3):
            for n, prompt in enumerate(prompts):
                spec = JobSpec(mode=Mode.TEXT, prompt=prompt)
                try:
                    await desk.precheck(GUILD, MEMBER, spec, channel_id=CHANNEL)
                    if round_ == 0:
                        await desk.create(JobRequest(GUILD, CHANNEL, MEMBER + n, spec))
                except ModerationBlocked as blocked:
                    assert blocked.params == {"rule": "violence"}
                    refused += 1
    finally:
        watchdog.stopped.set()
        await watching
    assert refused == 3 * 2  # the look-alike and the spelled-apart "kill", every round
    assert await desk.jobs.count_by_status() == {"queued": len(prompts) - 2}
    assert len(watchdog.stalls) > 10
    assert max(watchdog.stalls) < 0.1, sorted(watchdog.stalls)[-5:]


async def test_redos_no_prompt_is_matched_under_the_write_lock_or_on_the_loop(
    db: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await BlocklistRepository(db).add(GUILD, BlocklistKind.WORD, "kill", added_by=1, now=clock())
    desk = _desk(db, clock)
    seen: list[tuple[bool, str]] = []
    real_match = Blocklist.match

    def match(self: Blocklist, text: object) -> object:
        seen.append((db._lock.locked(), threading.current_thread().name))
        return real_match(self, text)  # type: ignore[arg-type]

    monkeypatch.setattr(Blocklist, "match", match)
    spec = JobSpec(mode=Mode.TEXT, prompt="a quiet lake")
    await desk.precheck(GUILD, MEMBER, spec, channel_id=CHANNEL)
    await desk.create(JobRequest(GUILD, CHANNEL, MEMBER, spec))
    with pytest.raises(ModerationBlocked):
        await desk.create(JobRequest(GUILD, CHANNEL, MEMBER, JobSpec(Mode.TEXT, "kіll it")))
    assert len(seen) == 3
    assert not any(locked for locked, _ in seen)
    assert all(name.startswith("screening") for _, name in seen)


async def test_redos_an_entry_added_between_screening_and_the_lock_is_screened_again(
    db: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = _desk(db, clock)
    repo = BlocklistRepository(db)
    real_screen = desk.gate.screen
    changes = iter(["lake", "boat", "fish", "tree"])
    added: list[str] = []

    def racing(every: bool) -> Callable[[int, str], object]:
        async def screen(guild_id: int, prompt: str, **how: Any) -> Screening:
            screened = await real_screen(guild_id, prompt, **how)
            if every or not added:  # an admin adds an entry right after the screening
                word = next(changes)
                added.append(word)
                await repo.add(guild_id, BlocklistKind.WORD, word, label=word, added_by=1, now=0)
            return screened

        return screen

    monkeypatch.setattr(desk.gate, "screen", racing(every=False))
    with pytest.raises(ModerationBlocked) as refused:
        await desk.create(JobRequest(GUILD, CHANNEL, MEMBER, JobSpec(Mode.TEXT, "a quiet lake")))
    assert refused.value.params == {"rule": "lake"}
    # An admin who keeps changing the list: the member is asked to try again, nothing reserved.
    monkeypatch.setattr(desk.gate, "screen", racing(every=True))
    with pytest.raises(UserInputError) as busy:
        await desk.create(JobRequest(GUILD, CHANNEL, MEMBER, JobSpec(Mode.TEXT, "a red car")))
    assert busy.value.rule == "moderation.blocklist_busy"
    assert await desk.jobs.count_by_status() == {}
    assert (await desk.balance(GUILD, MEMBER)).reserved == 0


def test_redos_the_readme_states_the_caps() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    stated = f"at most {MAX_ENTRIES} entries, {MAX_PATTERNS} of them patterns, each at most "
    assert stated + f"{MAX_ENTRY_CHARS} characters" in " ".join(readme.split())


@pytest.fixture
def sim_setup() -> SimSetup:
    return SimSetup.held([moderated_guild()])


async def test_redos_the_admin_command_refuses_past_the_caps_naming_them(
    discord_sim, minimax, env
) -> None:
    guild = discord_sim.guilds[0].id
    async with running_bot(env) as app:
        repo = BlocklistRepository(app.bot.services.db)
        for n in range(MAX_PATTERNS):
            await repo.add(guild, BlocklistKind.REGEX, f"p{n}x", added_by=1, now=0)
        inter = await admin(discord_sim, ["blocklist", "add"], {"kind": "regex", "text": "spam+"})
        assert said(inter) == (
            f"This server's blocklist holds at most {MAX_PATTERNS} regular expressions; "
            "remove one first, or add a word or phrase instead."
        )
        inter = await admin(discord_sim, ["blocklist", "add"], {"kind": "word", "text": "spam"})
        assert said(inter).startswith(f"Blocklist entry #{MAX_PATTERNS + 1} added")
        inter = await admin(
            discord_sim, ["blocklist", "add"], {"kind": "regex", "text": r"(?x)(\w+) +_"}
        )
        assert said(inter).startswith("That pattern uses a group or flag it does not know")
        assert len(await repo.entries(guild)) == MAX_PATTERNS + 1
