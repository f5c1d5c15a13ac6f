"""Every text a member reads, keyed by a stable code and rendered from the rule's own numbers.

One entry per code; the parameters come from the raised error (the rule's
limit and the member's value), so no copy of a number can drift from the
rule. ``render`` falls back to English for a locale without a translation
and to a generic text (never an exception's words) for an unknown code.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence

FALLBACK_LOCALE = "en"
_SPEC = re.compile(r"\{(\w+):[^}]*\}")

CATALOG: dict[str, dict[str, str]] = {
    "en": {
        # request checks
        "prompt.empty": "Your prompt is empty: write at least {minimum} character.",
        "prompt.too_long": (
            "Your prompt is {actual} characters long; the limit is {maximum} "
            "(camera commands count as they are sent)."
        ),
        "spec.model": "The model {model} is not offered here. Choose one of: {allowed}.",
        "spec.mode": "{model} cannot make this kind of video ({mode}).",
        "spec.resolution": (
            "{model} does not offer {resolution} for this kind of video. Choose one of: {allowed}."
        ),
        "spec.duration": (
            "{model} at {resolution} makes videos of {allowed} seconds only, not {duration}."
        ),
        "camera.unknown": "[{command}] is not a camera command. Did you mean: {suggestions}?",
        "camera.empty": "An empty [ ] in your prompt: put a camera command inside or remove it.",
        "camera.unbalanced": (
            "A bracket in your prompt is not closed or not opened (at character {position})."
        ),
        "image.declared_type": (
            "The attachment is not an image (it is {actual}). Attach a JPG, PNG or WebP picture."
        ),
        "image.format": (
            "The image must be {allowed} (judged by its content, not its name); yours is {actual}."
        ),
        "image.too_big": (
            "The image must be smaller than {limit:,} bytes; yours is {actual:,} bytes."
        ),
        "image.short_edge": (
            "The image's shorter side must be at least {minimum} pixels; yours is {actual}."
        ),
        "image.aspect": (
            "The image's width:height must be between {minimum} and {maximum} (both excluded); "
            "yours is {width}×{height} ({actual})."
        ),
        "image.corrupt": "The image could not be read; it may be damaged or cut short.",
        "image.animated": (
            "Animated images are not accepted (yours has {frames} frames): attach a still picture."
        ),
        "image.too_many_pixels": (
            "The image has {actual:,} pixels; the limit is {maximum:,}. Attach a smaller picture."
        ),
        "image.too_large_after_prepare": (
            "The image stays larger than {limit:,} bytes even when compressed: "
            "attach a smaller picture."
        ),
        # money
        "quota.credits": (
            "This video costs {cost} credit(s) and you have {remaining} left of {allowance} "
            "today. Your credits renew <t:{renews_at}:R>."
        ),
        "quota.member_in_flight": (
            "You already have {maximum} videos in the making; wait for one to finish."
        ),
        "quota.guild_in_flight": (
            "This server already has {maximum} videos in the making; try again in a few minutes."
        ),
        # provider outcomes
        "provider.moderation": "The provider refused the content of this request.",
        "provider.invalid_request": "The provider refused the request's parameters.",
        "provider.rate_limited": "The provider is busy; your video is waiting in line.",
        "provider.unavailable": "The provider could not make this video.",
        "provider.auth": "The provider refused the bot's key; the server's admins must fix it.",
        "provider.balance": "The provider account is out of balance; the admins are told.",
        "provider.not_found": "The provider lost track of this task.",
        "provider.bad_reply": "The provider gave an answer the bot could not read.",
        "provider.unknown_outcome": "The provider did not answer in time.",
        "provider.expired": "The provider's file link expired before it could be fetched.",
        "provider.failed": "The provider could not make this video.",
        "job.interrupted_submit": (
            "Interrupted while being submitted; not sent again, so you are not charged twice."
        ),
        "job.provider_timeout": "The provider took too long; the bot stopped waiting.",
        "job.no_provider": "No provider could take this video right now.",
        "job.delivery_failed": "The video was made but could not be posted here.",
        # status message
        "status.checking_image": "Checking your image…",
        "status.queued": "Queued",
        "status.queued_at": "Queued (position {position})",
        "status.submitting": "Sending to the provider…",
        "status.submitted": "Accepted by the provider; waiting to start",
        "status.running": "Generating…",
        "status.running_progress": "Generating… {progress}%",
        "status.succeeded": "Done; posting the video…",
        "status.delivered": "Delivered",
        "status.failed": "Failed: {reason} Your {cost} credit(s) were refunded.",
        "status.delivery_failed": "Failed: {reason} Your {cost} credit(s) were refunded.",
        "status.cancelled": "Cancelled",
        "status.rejected": "Rejected by a moderator. Your {cost} credit(s) were refunded.",
        "status.expired": "Nobody approved it in time. Your {cost} credit(s) were refunded.",
        "status.awaiting_approval": "Waiting for a moderator's approval",
        "status.title": "Hailuo video #{job_id}",
        "status.field.prompt": "Prompt",
        "status.field.settings": "Settings",
        "status.field.cost": "Cost",
        "status.settings": "{mode} · {resolution} · {duration} s · {model}",
        "status.cost": "{cost} credit(s)",
        # delivery
        "delivery.posted": "<@{user_id}> your video is ready (job #{job_id}).",
        "delivery.link": (
            "<@{user_id}> your video is ready (job #{job_id}), but {reason} "
            "Download it here; the link expires in a few hours: {url}"
        ),
        "delivery.too_large": "it is larger than this channel's upload limit.",
        "delivery.too_large_to_fetch": "it is too large for the bot to fetch.",
        # account
        "quota.summary": (
            "You have **{remaining}** of {allowance} credits left today "
            "({reserved} held by videos in the making). They renew <t:{renews_at}:R>."
        ),
        "quota.costs": "Costs: {costs}.",
        # errors without a rule
        "error.unexpected": (
            "Something went wrong on our side (incident {incident}). Nothing was charged."
        ),
        "error.guild_only": "Use this command in a server channel.",
    },
}


def render(code: str, locale: str | None = None, /, **params: object) -> str:
    """The text for ``code`` in ``locale`` (or English), filled from ``params``."""
    table = CATALOG.get(_language(locale), CATALOG[FALLBACK_LOCALE])
    template = table.get(code) or CATALOG[FALLBACK_LOCALE].get(code)
    if template is None:
        return CATALOG[FALLBACK_LOCALE]["error.unexpected"].format(incident=code)
    values = _Params({k: _display(v) for k, v in params.items()})
    try:
        return template.format_map(values)
    except (ValueError, TypeError):
        # A value of the wrong type for its format spec (e.g. "?" for ``{limit:,}``):
        # drop the specs rather than fail in front of a member.
        return _SPEC.sub(r"{\1}", template).format_map(values)


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _language(locale: str | None) -> str:
    if not locale:
        return FALLBACK_LOCALE
    if locale in CATALOG:
        return locale
    return locale.split("-")[0] if locale.split("-")[0] in CATALOG else FALLBACK_LOCALE


def _display(value: object) -> object:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return ", ".join(str(v) for v in value) or "—"
    return value


class _Params(dict[str, object]):
    """Missing parameters render as '?' rather than raising in front of a member."""

    def __missing__(self, key: str) -> object:
        return "?"

    def __init__(self, values: Mapping[str, object]) -> None:
        super().__init__(values)
