"""A zh-CN member end to end: the real bot, the Discord and MiniMax simulators, Chinese replies.

Runtime replies come from ``hailuo.i18n.messages`` by the interaction's locale (the job
keeps it for the worker's later edits and posts); the command names come from
``cogs.translator`` through the sync payload.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from cogs import translator
from tests.e2e import channel, private_answer, running_bot
from tests.test_translator import localization_problems

pytestmark = pytest.mark.timeout(60)

ZH = "zh-CN"
CJK = re.compile(r"[\u4e00-\u9fff]")


def button_labels(components: list[dict[str, Any]]) -> list[str]:
    return [b["label"] for row in components for b in row.get("components", []) if "label" in b]


async def test_a_zh_cn_member_reads_every_reply_of_a_job_in_chinese(
    discord_sim, minimax, env
) -> None:
    async with running_bot(env):
        # a refusal, privately, from the tree's error map
        refused = await discord_sim.send_slash(
            ["hailuo", "text"], {"prompt": "猫" * 2001}, locale=ZH
        )
        text = await private_answer(discord_sim, refused)
        assert text.startswith("提示词长度为 2001 个字符，上限为 2000")
        # the same refusal for an en-US member in the same run stays English
        english = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "x" * 2001})
        assert "Your prompt is 2001 characters long" in await private_answer(discord_sim, english)
        assert minimax.requests_to("submit") == []

        # the job: its public status card, queued first
        inter = await discord_sim.send_slash(
            ["hailuo", "text"], {"prompt": "一只猫在冲浪"}, locale=ZH
        )
        await inter.wait_response()
        assert inter.response_type == 4 and not inter.ephemeral
        card = inter.response_data["embeds"][0]
        assert card["title"].startswith("海螺视频 #")
        assert card["description"].split("\n")[0] == "排队中"
        assert "开始于 <t:" in card["description"]  # the elapsed time, a Discord timestamp
        fields = {f["name"]: f["value"] for f in card["fields"]}
        assert fields["提示词"] == "一只猫在冲浪"
        assert fields["费用"] == "1 积分"
        assert " 秒 · " in fields["设置"]
        assert button_labels(inter.response_data["components"]) == ["取消", "详情"]

        # the delivery, posted by the worker with the job's stored locale
        videos = await discord_sim.wait_for(lambda: channel(discord_sim).videos() or None)
        job_id = card["title"].removeprefix("海螺视频 #")
        assert videos[0].content == f"<@{inter.user_id}> 你的视频做好了 (job #{job_id})。"
        assert videos[0].attachments[0].data == minimax.video

        # and the card, edited through the channel, ends delivered
        message = inter.original_message
        await discord_sim.wait_for(
            lambda: (
                message.embeds
                and str(message.embeds[0].get("description")).startswith("已送达\n[查看视频](")
            )
        )
        assert message.embeds[0]["title"] == f"海螺视频 #{job_id}"
        states = [
            embed.get("description", "")
            for edit in message.edits
            for embed in edit.changes.get("embeds") or []
        ]
        assert states and all(CJK.search(state) for state in states), states
        assert button_labels(message.components) == ["重新生成", "删除视频", "详情"]


async def test_a_video_too_large_to_upload_is_linked_in_chinese(discord_sim, minimax, env) -> None:
    discord_sim.upload_limit = 1000
    async with running_bot(env):
        inter = await discord_sim.send_slash(
            ["hailuo", "text"], {"prompt": "大视频"}, locale=ZH, attachment_size_limit=1000
        )
        await inter.wait_response()
        link = await discord_sim.wait_for(
            lambda: next(
                (m for m in channel(discord_sim).bot_messages() if "/download/" in m.content), None
            )
        )
    assert link.content.startswith(f"<@{inter.user_id}> 你的视频做好了 (job #")
    assert "超过了本频道 0.00095 MB 的上传上限，且无法压缩到上限以内。" in link.content
    assert "。请在这里下载，链接几小时后失效：http" in link.content


async def test_the_sync_carries_zh_cn_names_and_a_changed_translation_resyncs(
    discord_sim, minimax, env, monkeypatch
) -> None:
    async with running_bot(env):
        pass
    assert len(discord_sim.command_syncs) == 1
    body = discord_sim.command_syncs[0].json
    assert localization_problems(body) == []
    hailuo = next(c for c in body if c["name"] == "hailuo")
    assert hailuo["name_localizations"][ZH] == "海螺"
    assert hailuo["description_localizations"][ZH] == "用 MiniMax 海螺 02 生成 AI 短视频"
    text = next(o for o in hailuo["options"] if o["name"] == "text")
    assert text["name_localizations"] == {ZH: "文生视频"}

    async with running_bot(env):  # nothing changed: no second sync
        pass
    assert len(discord_sim.command_syncs) == 1

    # A translation is part of the hash: changing one syncs again, with the new text.
    monkeypatch.setitem(translator.DESCRIPTIONS, "Bring an image to life", "让静态图片动起来")
    async with running_bot(env):
        pass
    assert len(discord_sim.command_syncs) == 2
    hailuo = next(c for c in discord_sim.command_syncs[1].json if c["name"] == "hailuo")
    animate = next(o for o in hailuo["options"] if o["name"] == "animate")
    assert animate["description_localizations"] == {ZH: "让静态图片动起来"}
