"""Simplified Chinese names and descriptions of the slash commands, for Discord's ``zh-CN``.

``HailuoTranslator`` is set on the tree in ``HailuoBot.setup_hook`` before the
command hash is taken, so discord.py puts these strings into the sync payload's
``name_localizations``/``description_localizations`` (and into choice names), and
a changed translation changes the hash and is synced. Only the command surface
comes through here: replies are rendered from ``hailuo.i18n.messages`` by
``interaction.locale``.

The tables are keyed by the English text as written in the cogs' decorators, by
where it appears (command, option or choice names, descriptions). A string with
no entry stays English; ``tests/test_translator.py`` walks the tree and fails on
one, and checks Discord's rules for names (lowercase, 1-32 letters, digits, ``-``
or ``_``; Chinese characters are letters) and the 100-character limits.
"""

from __future__ import annotations

from collections.abc import Mapping

import discord
from discord import app_commands

from hailuo.model import camera
from hailuo.model.capability import DEFAULT_RULES
from hailuo.model.spec import MODEL_RULES, RESOLUTIONS

LOCALE = discord.Locale.chinese  # "zh-CN"; zh-TW keeps the English names

#: Command and group names, at every level (``/海螺 文生视频``).
COMMAND_NAMES: Mapping[str, str] = {
    "hailuo": "海螺",
    "hailuo-admin": "海螺管理",
    # /hailuo
    "text": "文生视频",
    "animate": "图生视频",
    "cancel": "取消",
    "help": "帮助",
    "quota": "额度",
    "jobs": "我的视频",
    "settings": "设置",
    "results": "结果位置",
    # /hailuo-admin
    "blocklist": "屏蔽词",
    "add": "添加",
    "remove": "移除",
    "list": "列表",
    "moderation": "审核设置",
    "channels": "创作频道",
    "roles": "创作身份组",
    "audit": "审计日志",
    "allowance": "每人额度",
    "tier": "身份组额度",
    "budget": "预算",
    "timezone": "时区",
    "limits": "并发限制",
    "cost": "价格",
    "price": "服务商价格",
    "prices": "价格表",
    "channel": "通知频道",
    "grant": "发放积分",
    "take": "收回积分",
    "reset": "重置积分",
    "block": "封禁",
    "unblock": "解封",
    "usage": "用量",
    "policy": "当前设置",
}

_IMAGE_RULES = DEFAULT_RULES

#: Command and group descriptions.
DESCRIPTIONS: Mapping[str, str] = {
    "Make short AI videos with MiniMax Hailuo-02": "用 MiniMax 海螺 02 生成 AI 短视频",
    "Make a video from a text prompt": "根据文字提示词生成视频",
    "Bring an image to life": "让图片动起来",
    "Cancel one of your videos in the making": "取消一个正在制作的视频",
    "Camera commands, resolutions, costs, images": "运镜指令、分辨率、价格和图片要求",
    "How many credits you have left": "查看你还剩多少积分",
    "How you are told that a video is ready": "视频做好时如何通知你",
    "Post results in the channel or a thread": "结果发在频道中还是子区中",
    "Your recent videos and their states": "你最近的视频及其状态",
    "Run this server's Hailuo credits, budgets and members": "管理本服务器的海螺积分、预算和成员",
    "Words, phrases and patterns refused in prompts": "提示词中禁止出现的词语、短语和模式",
    "Refuse prompts with a word, phrase or pattern": "添加一个禁止的词语、短语或模式",
    "Remove a blocklist entry by its number": "按编号删除一条屏蔽条目",
    "This server's blocklist": "本服务器的屏蔽列表",
    "Moderation settings: show them all, or change some": "审核设置：查看全部，或修改其中几项",
    "Where videos may be made (default: all)": "可以制作视频的频道（默认：全部）",
    "Who may make videos, and trusted roles": "谁可以制作视频，以及受信任的身份组",
    "Who did what: the moderation and admin log": "谁做了什么：审核和管理日志",
    "Credits each member gets per period": "每位成员每个周期获得的积分",
    "Give a role its own allowance (highest wins)": "为身份组设置单独的额度（取最高者）",
    "The whole server's credits (or US dollars) per day/month": (
        "整个服务器每天/每月的积分（或美元）预算"
    ),
    "What one video costs you at a provider": "每个视频在某个服务商的实际花费",
    "The price table: one video per provider": "价格表：各服务商每个视频的价格",
    "Where midnight is for renewals": "额度在哪个时区的午夜恢复",
    "Jobs in flight and the cool-down": "同时进行的任务数和冷却时间",
    "What a video costs in this server": "本服务器中视频的价格",
    "Where budget notices go": "预算通知发到哪里",
    "Give a member extra credits this period": "本周期给成员额外积分",
    "Take credits back from a member": "从成员那里收回积分",
    "Give a member their full allowance again": "把成员的积分恢复为完整额度",
    "Stop a member from making videos here": "禁止成员在这里制作视频",
    "Let a blocked member make videos again": "允许被封禁的成员重新制作视频",
    "Spend per day (30 days) and top members": "每日用量（30 天）和用得最多的成员",
    "This server's settings, all in one place": "本服务器的全部设置",
}

#: Option names; the same English name means the same thing in every command.
OPTION_NAMES: Mapping[str, str] = {
    "prompt": "提示词",
    "duration": "时长",
    "resolution": "分辨率",
    "model": "模型",
    "camera": "运镜",
    "prompt_optimizer": "提示词优化",
    "fast_pretreatment": "快速预处理",
    "image": "图片",
    "last_frame": "尾帧",
    "job": "视频编号",
    "kind": "类型",
    "text": "内容",
    "label": "规则说明",
    "entry": "条目编号",
    "moderator": "版主身份组",
    "log_channel": "日志频道",
    "approval": "审核",
    "new_member_days": "新成员天数",
    "approval_hours": "审核时限",
    "strikes": "警告次数",
    "strike_days": "警告天数",
    "clear": "清除",
    "action": "操作",
    "channel": "频道",
    "which": "名单",
    "role": "身份组",
    "member": "成员",
    "before": "早于",
    "credits": "积分",
    "period": "周期",
    "notify": "通知",
    "place": "位置",
    "daily": "每日",
    "monthly": "每月",
    "name": "时区名称",
    "member_jobs": "每人任务数",
    "server_jobs": "全服任务数",
    "cooldown": "冷却",
    "reason": "原因",
    "provider": "服务商",
    "usd": "美元",
    "daily_usd": "每日美元",
    "monthly_usd": "每月美元",
}

#: Option descriptions.
OPTION_DESCRIPTIONS: Mapping[str, str] = {
    "What should happen in the video (camera commands like [Pan left] allowed)": (
        "视频里发生什么（可使用 [左摇] 这样的运镜指令）"
    ),
    "Length in seconds (1080P is 6 s only)": "时长（秒；1080P 只有 6 秒）",
    "Video resolution": "视频分辨率",
    "Mention me (default), DM me, or quiet": "提及我（默认）、私信我或安静",
    "In the channel (default) or in a thread per job": "在频道中（默认）或每个任务一个子区",
    "Video resolution (512P: image to video only)": "视频分辨率（512P 仅限图生视频）",
    "Which Hailuo model (default MiniMax-Hailuo-02)": "海螺模型（默认 MiniMax-Hailuo-02）",
    "A camera command added at the end of the prompt (see /hailuo help)": (
        "添加到提示词末尾的运镜指令（见 /海螺 帮助）"
    ),
    "Let the provider rewrite your prompt for better results (default on)": (
        "让服务商改写提示词以获得更好的效果（默认开启）"
    ),
    "Shorten the prompt optimizer's time (default off)": "缩短提示词优化的耗时（默认关闭）",
    (
        f"A {', '.join(sorted(_IMAGE_RULES.formats))} picture "
        f"(shorter side at least {_IMAGE_RULES.min_short_edge} px)"
    ): (
        f"{'、'.join(sorted(_IMAGE_RULES.formats))} 图片"
        f"（短边至少 {_IMAGE_RULES.min_short_edge} 像素）"
    ),
    "What should happen (optional)": "视频里发生什么（可选）",
    "An image the video should end on (first + last frame; not at 512P)": (
        "视频结束时的画面（首尾帧；512P 不支持）"
    ),
    "The video to cancel (your open videos are suggested)": "要取消的视频（会列出你进行中的视频）",
    "word or phrase (evasions folded), or a regular expression": (
        "词语或短语（会识别变体写法），或正则表达式"
    ),
    "What to refuse (members never see it)": "要禁止的内容（成员看不到）",
    "The rule members are told instead, e.g. 'violence' (default: server word list)": (
        "告诉成员的规则名称，例如“暴力”（默认：服务器屏蔽词）"
    ),
    "The entry's number (#) from /hailuo-admin blocklist list": (
        "条目编号（#），见 /海螺管理 屏蔽词 列表"
    ),
    "The role whose members approve jobs (and are never held or gated)": (
        "负责审核任务的身份组（其成员的任务不受审核和限制）"
    ),
    "Where every moderation and admin action is logged": "记录所有审核和管理操作的频道",
    "Which jobs wait for a moderator before anything is spent": "哪些任务在扣费前需要等待版主审核",
    "Members who joined fewer days ago than this count as new": "加入天数少于此值的成员算作新成员",
    "Hours a waiting job waits before it expires (refunded)": (
        "等待审核的任务多少小时后过期（退还积分）"
    ),
    "Provider refusals that block a member": "被服务商拒绝多少次后封禁成员",
    "Days within which those refusals count": "在多少天内累计拒绝次数",
    "Unset the moderator role or the log channel": "取消设置版主身份组或日志频道",
    "Add a channel, remove one, or allow all channels again": "添加或移除频道，或重新允许所有频道",
    "The channel (default: this one); a thread counts as its channel": (
        "频道（默认：当前频道）；子区视同其所在频道"
    ),
    "generate: roles that may make videos (none: everyone); trusted: skip approval": (
        "创作：可以制作视频的身份组（为空则所有人）；受信任：免审核"
    ),
    "Add a role, remove one, or empty the list": "添加或移除身份组，或清空名单",
    "The role": "身份组",
    "Only entries about this member (or by them)": "只看与该成员相关（或由其操作）的记录",
    "Only this kind of entry": "只看这类记录",
    "Only entries older than this entry number": "只看编号早于此值的记录",
    "Credits per member": "每位成员的积分",
    "Renew every day or every Monday": "每天恢复，或每周一恢复",
    "The role (e.g. Creators, Server Booster)": "身份组（例如创作者、服务器助力者）",
    "Leave empty to remove": "留空则移除",
    "Credits a day (0 removes)": "每天的积分（0 表示取消）",
    "Credits a month (0 removes)": "每月的积分（0 表示取消）",
    "US dollars a day at the providers' prices, e.g. 5 (0 removes)": (
        "按服务商价格计算的每日美元，例如 5（0 表示取消）"
    ),
    "US dollars a month at the providers' prices, e.g. 100 (0 removes)": (
        "按服务商价格计算的每月美元，例如 100（0 表示取消）"
    ),
    "One of this bot's providers": "本机器人的一个服务商",
    "US dollars per video, e.g. 0.28 (leave empty for the provider's declared price)": (
        "每个视频的美元价格，例如 0.28（留空则使用服务商公布的价格）"
    ),
    "An IANA time zone, e.g. Europe/Paris": "IANA 时区，例如 Asia/Shanghai",
    "Jobs in flight per member": "每位成员同时进行的任务数",
    "Jobs in flight for the server": "全服务器同时进行的任务数",
    "Seconds between two videos of a member (0 turns it off)": (
        "同一成员两次生成之间的秒数（0 表示关闭）"
    ),
    "Leave empty for the default": "留空则使用默认值",
    "Default: Hailuo-02": "默认：Hailuo-02",
    "Leave empty for this channel": "留空则使用当前频道",
}

#: Choice names (the values the bot receives stay English).
CHOICE_NAMES: Mapping[str, str] = {
    "6": "6 秒",
    "10": "10 秒",
    **{command.english: command.chinese for command in camera.COMMANDS},
    # /hailuo settings notify, /hailuo-admin results place
    "mention": "提及我",
    "dm": "私信我",
    "quiet": "安静",
    "channel": "在频道中",
    "thread": "每个任务一个子区",
    # /hailuo-admin blocklist add kind
    "word": "词语",
    "phrase": "短语",
    "regex": "正则表达式",
    # /hailuo-admin moderation approval, clear
    "off": "关闭",
    "new_members": "新成员",
    "everyone": "所有人",
    "moderator": "版主身份组",
    "log_channel": "日志频道",
    # /hailuo-admin channels|roles action, roles which
    "add": "添加",
    "remove": "移除",
    "all": "全部频道",
    "clear": "清空",
    "generate": "创作",
    "trusted": "受信任",
    # /hailuo-admin audit action
    "approve": "批准",
    "reject": "拒绝",
    "expire": "过期",
    "block": "封禁",
    "unblock": "解封",
    "strike": "警告",
    "grant": "发放积分",
    "reset": "重置积分",
    "setting_changed": "设置更改",
    "video_deleted": "删除视频",
    "cancel": "取消任务",
    # /hailuo-admin allowance period
    "day": "每天",
    "week": "每周",
}

#: Strings that read the same in Chinese (resolutions, model names, the "…" of an
#: option without a description): no localization is sent, Discord shows the default.
UNCHANGED: frozenset[str] = frozenset({*RESOLUTIONS, *MODEL_RULES, "…"})

_TABLES: Mapping[app_commands.TranslationContextLocation, Mapping[str, str]] = {
    app_commands.TranslationContextLocation.command_name: COMMAND_NAMES,
    app_commands.TranslationContextLocation.group_name: COMMAND_NAMES,
    app_commands.TranslationContextLocation.command_description: DESCRIPTIONS,
    app_commands.TranslationContextLocation.group_description: DESCRIPTIONS,
    app_commands.TranslationContextLocation.parameter_name: OPTION_NAMES,
    app_commands.TranslationContextLocation.parameter_description: OPTION_DESCRIPTIONS,
    app_commands.TranslationContextLocation.choice_name: CHOICE_NAMES,
}


def chinese(location: app_commands.TranslationContextLocation, english: str) -> str | None:
    """The zh-CN text for ``english`` at ``location``, or None to keep the English."""
    table = _TABLES.get(location)
    return table.get(english) if table is not None else None


class HailuoTranslator(app_commands.Translator):
    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        if locale is not LOCALE:
            return None
        return chinese(context.location, string.message)
