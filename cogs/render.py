"""Jobs rendered as Discord embeds: the public status card and its words."""

from __future__ import annotations

import discord

from hailuo.i18n.messages import render
from hailuo.i18n.status_text import status_line
from hailuo.i18n.terms import MODE_LABELS
from hailuo.jobs.controls import JobInfo
from hailuo.model.job import Job
from hailuo.model.spec import JobSpec
from hailuo.model.status import JobStatus

_COLOURS = {
    JobStatus.DELIVERED: discord.Colour.green(),
    JobStatus.FAILED: discord.Colour.red(),
    JobStatus.DELIVERY_FAILED: discord.Colour.red(),
    JobStatus.REJECTED: discord.Colour.dark_red(),
    JobStatus.EXPIRED: discord.Colour.dark_grey(),
    JobStatus.CANCELLED: discord.Colour.dark_grey(),
}


def status_embed(
    job: Job, position: int | None = None, eta: float | None = None, done_at: float | None = None
) -> discord.Embed:
    locale = job.locale
    spec = job.spec
    embed = discord.Embed(
        title=render("status.title", locale, job_id=job.id),
        description="\n".join([status_line(job, position, eta), *live_lines(job, done_at)]),
        colour=_COLOURS.get(job.status, discord.Colour.blurple()),
    )
    if spec.prompt:
        embed.add_field(
            name=render("status.field.prompt", locale), value=clip(spec.prompt, 1000), inline=False
        )
    add_settings_field(embed, spec, locale)
    embed.add_field(
        name=render("status.field.cost", locale), value=render("status.cost", locale, cost=job.cost)
    )
    reason = job.failure_params.get("reason") if job.status is JobStatus.REJECTED else None
    if reason:
        embed.add_field(
            name=render("status.field.reason", locale), value=clip(str(reason), 1000), inline=False
        )
    return embed


def live_lines(job: Job, done_at: float | None) -> list[str]:
    """The card's clock: since when the job runs and when its video is expected, as Discord
    timestamps (they tick on the member's screen with no edit); once delivered, a link to
    the video's message."""
    locale = job.locale
    if job.status is JobStatus.DELIVERED and job.delivered_message_id is not None:
        url = message_url(job.guild_id, job.results_channel_id, job.delivered_message_id)
        return [render("status.video_link", locale, url=url)]
    if job.status.terminal:
        return []
    lines = [render("status.elapsed", locale, since=int(job.created_at))]
    if done_at is not None and job.status is not JobStatus.SUCCEEDED:
        lines.append(render("status.eta", locale, at=int(done_at)))
    return lines


def message_url(guild_id: int, channel_id: int, message_id: int) -> str:
    """A message's jump link."""
    return f"https://discord.com/channels/{guild_id}/{channel_id}/{message_id}"


def add_settings_field(embed: discord.Embed, spec: JobSpec, locale: str | None) -> None:
    """An inline field: the request's mode, resolution, duration and model."""
    embed.add_field(
        name=render("status.field.settings", locale),
        value=render("status.settings", locale, **request_params(spec)),
    )


def request_params(spec: JobSpec) -> dict[str, object]:
    """What a message says of a request: its mode, resolution, duration and model."""
    return {
        "mode": MODE_LABELS[spec.mode],
        "resolution": spec.resolution,
        "duration": spec.duration,
        "model": spec.model,
    }


def checking_embed(locale: str, rule: str = "status.checking_image") -> discord.Embed:
    """The card of a request still being checked (its image, or its credits)."""
    return discord.Embed(description=render(rule, locale), colour=discord.Colour.blurple())


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def info_text(info: JobInfo, locale: str | None) -> str:
    job = info.job
    spec = job.spec
    none = render("control.info.none", locale)

    def at(ts: float | None) -> str:
        return f"<t:{int(ts)}:T>" if ts else none

    lines = [
        render(
            "control.info.title",
            locale,
            job_id=job.id,
            state=render(f"state.{job.status.value}", locale),
            user_id=job.user_id,
        ),
        render("control.info.request", locale, **request_params(spec)),
    ]
    if spec.prompt:
        lines.append(render("control.info.prompt", locale, prompt=clip(spec.prompt, 900)))
    lines += [
        render(
            "control.info.provider",
            locale,
            provider=job.provider or none,
            task_id=job.provider_task_id or none,
        ),
        render(
            "control.info.times",
            locale,
            created=at(job.created_at),
            submitted=at(job.submitted_at),
            finished=at(job.finished_at),
        ),
        render(
            "control.info.credits",
            locale,
            cost=job.cost,
            state=render(f"control.credits.{info.credits}", locale),
        ),
    ]
    return "\n".join(lines)
