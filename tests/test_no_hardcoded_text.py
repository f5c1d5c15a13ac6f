"""A zh-CN member reads no English words that are the bot's own (issue: mixed languages).

Words that stay as they are in every language are stripped first: model names,
resolutions, image formats, provider names, task ids, the English spelling of the
camera commands (a member may type either) and Discord markup. Whatever Latin word is
left is a text that bypassed the catalog. The units, mode names, camera descriptions,
"or" and the default blocklist label moved into ``hailuo.i18n.messages``; they are also
named one by one, so a failure says which.
"""

from __future__ import annotations

import re
from typing import Any

import discord
import pytest

from cogs.account import cost_list
from cogs.approvals import approval_embed
from cogs.help import describe, help_embed, help_lines
from cogs.render import info_text, status_embed
from hailuo.i18n.messages import CATALOG, render
from hailuo.jobs import capabilities
from hailuo.jobs.controls import JobInfo, cancel_plan
from hailuo.model import camera
from hailuo.model.errors import ModerationBlocked, UserInputError
from hailuo.model.job import Job
from hailuo.model.spec import MODEL_RULES, RESOLUTIONS, JobSpec, Mode
from hailuo.model.status import JobStatus
from hailuo.moderation.approval import ActionRefused, Actor
from hailuo.moderation.screening import DEFAULT_LABEL, Blocklist, compile_entry, screen_prompt
from hailuo.money.quotas import QuotaPolicy
from hailuo.settings import PROVIDER_NAMES
from providers.registry import TABLE
from storage.approvals import ApprovalRequest
from storage.blocklist import BlocklistEntry, BlocklistKind
from tests.e2e import SimSetup, card_shows, running_bot

ZH = "zh-CN"
EN = CATALOG["en"]

#: The English texts this change moved into the catalog, and the forms they had before.
LEFTOVERS = (
    *(EN[f"mode.{mode.value}"] for mode in Mode),
    "text to video",
    "image to video",
    "first + last frame",
    *(EN[f"camera.describe.{c.key}"] for c in camera.COMMANDS),
    EN["moderation.default_label"],
    " or ",
)
_UNIT = re.compile(r"\d s\b")  # "6 s", "10 s)", "6 s ="
_RAW_MODE = re.compile(r"\b(?:t2v|i2v|fl2v)\b")
#: Words that read the same in every language.
_KEPT = sorted(
    {
        *MODEL_RULES,
        *RESOLUTIONS,
        *(c.english for c in camera.COMMANDS),
        *PROVIDER_NAMES,
        "JPEG",
        "PNG",
        "WEBP",
        "ID",  # 任务 ID
        "MB",  # 20 MB
    },
    key=len,
    reverse=True,
)
_MARKUP = re.compile(r"<(?:@|@&|#|t:)[0-9]+(?::\w)?>")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def english_left(text: str, *kept: str) -> list[str]:
    """The bot's own English in ``text``: leftovers by name, then any remaining Latin word."""
    found = [word for word in LEFTOVERS if word in text]
    found += _UNIT.findall(text) + _RAW_MODE.findall(text)
    text = _MARKUP.sub(" ", text)
    for word in (*kept, *_KEPT):
        text = text.replace(word, " ")
    return found + _LATIN_WORD.findall(text)


def embed_text(embed: discord.Embed | dict[str, Any]) -> str:
    data = embed.to_dict() if isinstance(embed, discord.Embed) else embed
    parts = [str(data.get("title", "")), str(data.get("description", ""))]
    for field in data.get("fields", []):
        parts += [str(field["name"]), str(field["value"])]
    return "\n".join(parts)


def job(mode: Mode, status: JobStatus = JobStatus.QUEUED, locale: str = ZH) -> Job:
    return Job(
        id=7,
        guild_id=1,
        channel_id=2,
        user_id=3,
        interaction_id=None,
        status_message_id=None,
        status=status,
        spec=JobSpec(mode=mode, prompt="一只猫在冲浪" if mode is Mode.TEXT else ""),
        cost=2,
        period="2025-01-01",
        locale=locale,
        attachment_limit=None,
        provider="minimax",
        provider_task_id="task123",
        provider_meta={},
        submit_attempts=1,
        next_attempt_at=0.0,
        progress=None,
        polls=0,
        next_poll_at=0.0,
        result_locator=None,
        failure_rule=None,
        failure_params={},
        delivery_attempts=0,
        next_delivery_at=0.0,
        delivered_message_id=None,
        delivery_kind=None,
        delivery_bytes=None,
        created_at=1_700_000_000.0,
        updated_at=1_700_000_000.0,
        submitted_at=1_700_000_010.0,
        finished_at=None,
    )


def test_the_checker_finds_the_old_english() -> None:
    assert english_left("text to video · 768P · 6 s · MiniMax-Hailuo-02")
    assert english_left("请求：t2v · 768P")
    assert english_left("发送前会重新编码为 JPEG or PNG。")
    assert english_left("[Pan left] / [左摇]: The camera turns to the left from where it stands.")
    assert english_left("你的提示词违反了本服务器的规则：server word list。")
    assert english_left("文生视频 · 768P · 6 秒 · MiniMax-Hailuo-02") == []


@pytest.mark.parametrize("mode", list(Mode))
def test_status_card_info_and_approval_card(mode: Mode) -> None:
    card = embed_text(status_embed(job(mode)))
    assert english_left(card) == [], card
    assert render(f"mode.{mode.value}", ZH) in card
    info = info_text(JobInfo(job(mode), ()), ZH)
    assert english_left(info, "task123") == [], info
    request = ApprovalRequest(7, 1, 3, None, None, 0.0, 3600.0, None, None, "", None)
    approval = embed_text(approval_embed(job(mode), request, ZH))
    assert english_left(approval) == [], approval


def test_the_info_reply_is_in_the_pressers_language_not_the_jobs() -> None:
    english_job = job(Mode.IMAGE, JobStatus.RUNNING, locale="en-US")
    info = info_text(JobInfo(english_job, ()), ZH)
    assert english_left(info, "task123") == [], info
    assert render("state.running", ZH) in info


def test_a_refusal_names_the_state_in_the_pressers_language() -> None:
    english_job = job(Mode.TEXT, JobStatus.DELIVERED, locale="en-US")
    with pytest.raises(ActionRefused) as refused:
        cancel_plan(english_job, Actor(user_id=3, role_ids=frozenset()), moderator=False)
    error = refused.value
    text = render(error.rule, ZH, **error.params)
    assert render("state.delivered", ZH) in text and "delivered" not in text, text
    assert render(error.rule, "en-US", **error.params).endswith(
        "is delivered already; nothing to cancel."
    )


def test_help_and_costs() -> None:
    costs = cost_list(QuotaPolicy(), ZH)
    assert english_left(costs) == [], costs
    assert "秒 = " in costs
    text = embed_text(help_embed(PROVIDER_NAMES, ZH, costs))
    assert english_left(text) == [], text
    for command in camera.COMMANDS:
        assert describe(command, ZH) in text
    # English members keep the English lines, units and "or"
    english = embed_text(help_embed(PROVIDER_NAMES, "en-US", cost_list(QuotaPolicy())))
    assert all(line in english for line in help_lines())
    assert "768P (6/10 s)" in english and "JPEG or PNG" in english


def test_refusals_name_modes_and_choices_in_the_readers_language() -> None:
    with pytest.raises(UserInputError) as refused:
        capabilities.validate(
            JobSpec(mode=Mode.FIRST_LAST, model="MiniMax-Hailuo-2.3"), ["minimax"], TABLE
        )
    error = refused.value
    text = render(error.rule, ZH, **error.params)
    assert english_left(text) == [], text
    assert "first+last frame" in render(error.rule, "en-US", **error.params)


def test_the_default_blocklist_label_is_rendered_when_shown() -> None:
    entry = BlocklistEntry(1, 1, BlocklistKind.WORD, "kill", "", 0, 0.0)
    with pytest.raises(ModerationBlocked) as blocked:
        screen_prompt("kill it", Blocklist([compile_entry(entry)]))
    params = blocked.value.params
    assert params == {"rule": DEFAULT_LABEL}
    assert render("moderation.blocklist", ZH, **params) == render(
        "moderation.blocklist", ZH, rule=render("moderation.default_label", ZH)
    )
    assert "server word list" in render("moderation.blocklist", "en-US", **params)
    labelled = BlocklistEntry(2, 1, BlocklistKind.WORD, "gore", "violence", 0, 0.0)
    with pytest.raises(ModerationBlocked) as blocked:
        screen_prompt("gore", Blocklist([compile_entry(labelled)]))
    assert "violence" in render("moderation.blocklist", ZH, **blocked.value.params)


# -- end to end: the real bot, the Discord and MiniMax simulators --------------------------


@pytest.fixture
def sim_setup() -> SimSetup:
    return SimSetup.held()  # tasks run until completed


@pytest.mark.timeout(60)
async def test_a_zh_cn_members_card_help_and_info_hold_no_english(
    discord_sim, minimax, env
) -> None:
    async with running_bot(env):
        inter = await discord_sim.send_slash(
            ["hailuo", "text"], {"prompt": "一只猫在冲浪"}, locale=ZH
        )
        await inter.wait_response()
        card = inter.original_message
        assert card is not None
        await card_shows(discord_sim, card, "生成中")
        card_text = embed_text(card.embeds[0])
        assert english_left(card_text) == [], card_text
        assert "文生视频 · 768P · 6 秒 · MiniMax-Hailuo-02" in card_text

        job_id = int(card_text.split("#", 1)[1].split()[0])
        info = await discord_sim.send_component(
            f"hailuo:info:{job_id}", message_id=card.id, user_id=inter.user_id, locale=ZH
        )
        await info.wait_response()
        assert info.ephemeral
        info_reply = str(info.response_data["content"])
        task_id = next(iter(minimax.tasks))
        assert english_left(info_reply, task_id) == [], info_reply
        assert "请求：文生视频" in info_reply

        help_inter = await discord_sim.send_slash(["hailuo", "help"], locale=ZH)
        await help_inter.wait_response()
        help_text = embed_text(help_inter.response_data["embeds"][0])
        assert english_left(help_text) == [], help_text
        assert all(line in help_text for line in help_lines(ZH))
        minimax.complete(task_id)
