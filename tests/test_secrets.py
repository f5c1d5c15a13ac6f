"""Secrets never reach a log line, a message or an exception text; prompts stay out of logs.

One delivered job and one failed job run through the real bot with every logger at DEBUG
(discord.py included); then every log record, every message the bot posted and every
request body Discord received are searched for the token and the provider key.
"""

from __future__ import annotations

import logging

from tests.e2e import card_shows, channel, running_bot


async def test_no_secret_anywhere_and_no_prompt_in_our_logs(
    discord_sim, minimax, env, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [env["DISCORD_TOKEN"], minimax.api_key]
    prompt = "a secret garden only I know about"
    async with running_bot(env):
        done = await discord_sim.send_slash(["hailuo", "text"], {"prompt": prompt})
        await done.wait_response()
        await card_shows(discord_sim, done.original_message, "Delivered")
        minimax.inject("submit", "invalid_key")
        failed = await discord_sim.send_slash(["hailuo", "text"], {"prompt": prompt})
        await failed.wait_response()
        await card_shows(discord_sim, failed.original_message, "refunded")

    logged = "\n".join(
        record.getMessage() + (f"\n{record.exc_text}" if record.exc_text else "")
        for record in caplog.records
    )
    posted = "\n".join(str(m.content) + str(m.embeds) for m in channel(discord_sim).bot_messages())
    bodies = "\n".join(str(call.json) for call in discord_sim.calls)
    for secret in secrets:
        assert secret not in logged
        assert secret not in posted
        assert secret not in bodies
    ours = [
        r
        for r in caplog.records
        if r.name.split(".")[0] in {"hailuo", "providers", "storage", "cogs"}
    ]
    assert ours, "the bot logged nothing: the test would prove nothing"
    assert all(prompt not in r.getMessage() for r in ours)
