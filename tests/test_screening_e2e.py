"""Prompt screening end to end: refused before anything is reserved or sent to a provider.

The blocklist is set with the admin command; the evasions are test_moderation's
generated corpus, each sent as ``/hailuo text`` through the real bot.
"""

from __future__ import annotations

import asyncio

import pytest

from tests import media
from tests.discord_sim import DiscordSimulator, SimAttachment
from tests.e2e import SimSetup, all_settled, private_reply, running_bot
from tests.moderation_e2e import ADMIN, admin, count, generate, moderated_guild, said
from tests.test_moderation import BLOCKED, CONTEXTS, CORPUS, NEAR_MISSES

pytestmark = pytest.mark.timeout(120)

REFUSAL = "Your prompt breaks this server's rule: {}. Reword it and try again."


async def _blocklist(sim: DiscordSimulator) -> None:
    for word in BLOCKED:
        label = "violence" if word == "kill" else ""
        inter = await admin(
            sim, ["blocklist", "add"], {"kind": "word", "text": word, "label": label}
        )
        assert "added" in said(inter)


@pytest.fixture
def sim_setup() -> SimSetup:
    return SimSetup.held([moderated_guild()])


async def test_every_evasion_is_refused_before_anything_is_reserved(
    discord_sim, minimax, env
) -> None:
    async with running_bot(env) as app:
        await _blocklist(discord_sim)
        db = app.bot.services.db
        prompts = [
            (word, CONTEXTS[n % len(CONTEXTS)].format(evasion))
            for n, (word, evasion) in enumerate(CORPUS)
        ]
        assert len(prompts) > 200
        for batch in range(0, len(prompts), 50):
            chunk = prompts[batch : batch + 50]
            answers = await asyncio.gather(
                *(
                    generate(discord_sim, prompt, user_id=9_000_000 + i)
                    for i, (_, prompt) in enumerate(chunk)
                )
            )
            for (word, prompt), inter in zip(chunk, answers, strict=True):
                assert inter.ephemeral, prompt
                label = "violence" if word == "kill" else "server word list"
                assert said(inter) == REFUSAL.format(label), prompt
                # The member learns the rule, never the word.
                assert word not in said(inter).lower().replace("server word list", "")
        # Nothing reserved, nothing stored, nothing sent.
        assert await count(db, "ledger") == 0
        assert await count(db, "jobs") == 0
        assert minimax.submits == []
        # An animate request's prompt is screened before the image is even downloaded.
        downloads = len(discord_sim.find_calls(method="GET", path_regex=r"/cdn/"))
        inter = await discord_sim.send_slash(
            ["hailuo", "animate"],
            {"prompt": "the ｋｉｌｌ scene"},
            attachments={
                "image": SimAttachment(
                    media.make_image("PNG", 800, 800), "a.png", "image/png", 800, 800
                )
            },
        )
        await inter.wait_response()
        assert inter.ephemeral and said(inter) == REFUSAL.format("violence")
        assert len(discord_sim.find_calls(method="GET", path_regex=r"/cdn/")) == downloads
        assert await count(db, "ledger") == 0
        # Screening refusals are not strikes (only a provider's refusal is).
        assert await count(db, "strikes") == 0


async def test_near_misses_are_allowed(discord_sim, minimax, env) -> None:
    words = sorted({w for group in NEAR_MISSES.values() for w in group.split()})
    guild = discord_sim.guilds[0]
    async with running_bot(env) as app:
        await _blocklist(discord_sim)
        policies = app.bot.services.policies
        assert policies is not None
        await policies.set_limits(guild.id, ADMIN, member_jobs=10, server_jobs=500)
        answers = await asyncio.gather(
            *(
                generate(discord_sim, f"a {word} in the rain", user_id=9_100_000 + i)
                for i, word in enumerate(words)
            )
        )
        # A burst answers first and writes the jobs after: wait for every outcome.
        await all_settled(discord_sim, answers)
        refused = [private_reply(inter) for inter in answers if private_reply(inter)]
        assert refused == []
        assert sum((await app.bot.desk.jobs.count_by_status()).values()) == len(words)
