"""End to end: a bracket that is no camera command reaches the provider as the member wrote it.

Through the real bot, the Discord simulator and the MiniMax simulator: "a sign saying [OPEN]"
is a prompt, not a refusal; a near-miss of a command is still refused with its suggestion, and
``/hailuo help`` says how to keep a bracket as text.
"""

from __future__ import annotations

import pytest

from tests.e2e import channel, private_answer, running_bot

pytestmark = pytest.mark.timeout(60)


async def test_bracket_literal_kept_and_sent(discord_sim, minimax, env) -> None:
    async with running_bot(env):
        inter = await discord_sim.send_slash(
            ["hailuo", "text"], {"prompt": r"a sign saying [OPEN] \[Zoom in\] [Pan left]"}
        )
        await inter.wait_response()
        assert inter.response_type == 4 and not inter.ephemeral
        await discord_sim.wait_for(lambda: channel(discord_sim).videos())
    assert minimax.submits[0]["prompt"] == "a sign saying [OPEN] [Zoom in] [Pan left]"


async def test_bracket_near_a_command_refused_and_help_tells_the_escape(
    discord_sim, minimax, env
) -> None:
    async with running_bot(env):
        inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "a cat [Pan lft]"})
        text = await private_answer(discord_sim, inter)
        assert "Pan left" in text
        helped = await discord_sim.send_slash(["hailuo", "help"])
        await helped.wait_response()
        assert r"\\[" in str(helped.response_data["embeds"][0])
    assert minimax.submits == []
