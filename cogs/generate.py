"""``/hailuo text`` and ``/hailuo animate``: parse, check, reserve, answer inside 3 seconds.

The order is the design's "first answer": checks that need no download run
at once and a broken rule is answered ephemerally; for ``text`` the job (with
its reservation) is created and the public status card is the response; for
``animate`` the card ("checking your image") is the response, the image is
downloaded and checked, and only then is the job created. If that fails, the
card is deleted and the member is told privately; nothing is reserved.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from cogs.access import check_channel_access
from cogs.account import member_roles
from cogs.answers import answer_and_create, catch_up, edit_card, refused_after_answer
from cogs.choices import suggestions
from cogs.controls import attachment_limit, controls_view, joined_at, parent_channel
from cogs.errors import describe
from cogs.render import checking_embed, status_embed
from cogs.results import check_thread_access, start_thread
from hailuo.i18n.messages import render
from hailuo.jobs import capabilities
from hailuo.jobs.desk import JobRequest
from hailuo.media.intake import ImageIntake
from hailuo.model import camera
from hailuo.model.capability import DEFAULT_RULES
from hailuo.model.errors import UserInputError
from hailuo.model.spec import DEFAULT_MODEL, JobSpec, Mode
from hailuo.moderation.gating import Screening
from providers.registry import TABLE

if TYPE_CHECKING:
    from bot import HailuoBot

log = logging.getLogger(__name__)

_IMAGE_MODES = (Mode.IMAGE, Mode.FIRST_LAST)


def _choices(values: Iterable[str]) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=value, value=value) for value in values]


def build_spec(
    mode: Mode,
    prompt: str,
    duration: int,
    resolution: str,
    *,
    order: Sequence[str],
    model: str = DEFAULT_MODEL,
    camera_command: str | None = None,
    prompt_optimizer: bool = True,
    fast_pretreatment: bool = False,
) -> tuple[JobSpec, list[str]]:
    """The spec of the options, checked against every rule (model, camera, providers).

    Returns the spec and the providers of ``order`` that can serve it; raises the
    broken rule before anything is charged or sent.
    """
    text = prompt.strip()
    if camera_command:
        text = camera.append_command(text, camera_command)
    spec = JobSpec(
        mode=mode,
        prompt=text,
        model=model,
        duration=duration,
        resolution=resolution,
        prompt_optimizer=prompt_optimizer,
        fast_pretreatment=fast_pretreatment,
    )
    return spec, capabilities.serving_providers(spec, order, TABLE)


async def _tell_camera_notes(interaction: discord.Interaction, spec: JobSpec) -> None:
    """Accepted camera commands worth a word (``[Push out]`` read as ``[Pull out]``, ...)."""
    warnings = camera.parse_prompt(spec.prompt).warnings
    if not warnings:
        return
    locale = str(interaction.locale)
    text = "\n".join(render(w.code, locale, **w.params) for w in warnings)
    try:
        await interaction.followup.send(text, ephemeral=True)
    except discord.HTTPException as exc:
        log.warning("could not send camera notes: %s", exc.status)


def _guild_ids(interaction: discord.Interaction) -> tuple[int, int]:
    """The server and channel of the request; refuses a channel the bot cannot work in."""
    if interaction.guild_id is None or interaction.channel_id is None:
        raise UserInputError("error.guild_only")
    check_channel_access(interaction)
    return interaction.guild_id, interaction.channel_id


async def _first_look(
    bot: HailuoBot, interaction: discord.Interaction, spec: JobSpec, guild_id: int, channel_id: int
) -> Screening:
    """What a command checks before its first answer: the thread it runs in, and the
    channel, role and prompt rules this process knows of the server (no storage read once
    the server is known). Hand the result to ``create``."""
    await check_thread_access(bot, interaction)
    return await bot.desk.first_look(
        guild_id,
        spec,
        roles=member_roles(interaction),
        channel_id=channel_id,
        parent_channel_id=parent_channel(interaction),
    )


def _request(
    interaction: discord.Interaction,
    spec: JobSpec,
    guild_id: int,
    channel_id: int,
    *,
    status_message_id: int | None = None,
    images: dict[str, tuple[str, bytes]] | None = None,
) -> JobRequest:
    """The job of this interaction, with what the member and the channel tell of it."""
    return JobRequest(
        guild_id=guild_id,
        channel_id=channel_id,
        user_id=interaction.user.id,
        spec=spec,
        interaction_id=interaction.id,
        status_message_id=status_message_id,
        locale=str(interaction.locale),
        attachment_limit=attachment_limit(interaction),
        images=images or {},
        roles=member_roles(interaction),
        parent_channel_id=parent_channel(interaction),
        joined_at=joined_at(interaction),
    )


async def text(bot: HailuoBot, interaction: discord.Interaction, spec: JobSpec) -> None:
    """The rules this process knows by heart first (no storage read), then the job and its
    first answer in the order the moment allows (``cogs.answers.answer_and_create``)."""
    started = time.monotonic()
    answers = bot.services.first_answers
    answers.arrived(interaction.id)
    try:
        guild_id, channel_id = _guild_ids(interaction)
        screened = await _first_look(bot, interaction, spec, guild_id, channel_id)
        request = _request(interaction, spec, guild_id, channel_id)
        job = await answer_and_create(bot, interaction, request, screened, started)
    finally:
        answers.answered(interaction.id)  # refused, failed or answered: no longer waited for
    if job is None:
        return
    await start_thread(bot, job, job.status_message_id)
    bot.desk.wake()
    await catch_up(bot, job)
    await _tell_camera_notes(interaction, spec)


@contextlib.contextmanager
def _frame(role: str, locale: str) -> Iterator[None]:
    """Checks of one attachment; a refusal of the last frame says which image it is about."""
    try:
        yield
    except discord.HTTPException as exc:
        log.warning("could not read the %s attachment: %s", role, exc.status)
        error = UserInputError("image.corrupt")
    except UserInputError as exc:
        error = exc
    else:
        return
    if role == "last":
        raise UserInputError("image.last_frame", reason=describe(error, locale)) from None
    raise error


async def animate(
    bot: HailuoBot,
    interaction: discord.Interaction,
    spec: JobSpec,
    image: discord.Attachment,
    last_frame: discord.Attachment | None = None,
    *,
    serving: Sequence[str] | None = None,
) -> None:
    """``serving``: the providers that may receive the images (their rules apply)."""
    started = time.monotonic()
    guild_id, channel_id = _guild_ids(interaction)
    locale = str(interaction.locale)
    intake = bot.services.intake
    plan = intake.plan(bot.settings.provider_names if serving is None else serving)
    frames = {"first": image} if last_frame is None else {"first": image, "last": last_frame}
    for role, attachment in frames.items():
        with _frame(role, locale):
            intake.check_declared(
                plan,
                content_type=attachment.content_type,
                size=attachment.size,
                width=attachment.width,
                height=attachment.height,
            )
    # Before the first answer only what this process knows by heart, as for ``text``.
    screened = await _first_look(bot, interaction, spec, guild_id, channel_id)
    await _check_images(bot, intake, interaction, spec, plan, frames, started, screened)


async def _check_images(
    bot: HailuoBot,
    intake: ImageIntake,
    interaction: discord.Interaction,
    spec: JobSpec,
    plan: capabilities.ImagePlan,
    frames: dict[str, discord.Attachment],
    started: float,
    screened: Screening,
) -> None:
    """Answer "checking your image", look at the stored rules (a member who may not make
    the video waits for no download), fetch and check the images, then create the job."""
    guild_id, channel_id = _guild_ids(interaction)
    locale = str(interaction.locale)
    callback = await interaction.response.send_message(embed=checking_embed(locale))
    bot.metrics.interaction_answered(time.monotonic() - started)
    message_id = callback.message_id
    try:
        # Counted against the in-flight caps until the job's row exists; refused before any
        # download.
        async with intake.checking(guild_id, interaction.user.id):
            await bot.desk.precheck(
                guild_id,
                interaction.user.id,
                spec,
                roles=member_roles(interaction),
                screened=screened,
            )
            stored: dict[str, tuple[str, bytes]] = {}
            for role, attachment in frames.items():
                with _frame(role, locale):
                    prepared = await intake.prepared(attachment.url, plan)
                stored[role] = (prepared.mime, prepared.data)
            request = _request(
                interaction, spec, guild_id, channel_id, status_message_id=message_id, images=stored
            )
            job = await bot.desk.create(request, screened)
    except Exception as exc:
        await refused_after_answer(bot, interaction, channel_id, message_id, exc)
        return
    if message_id is not None:
        await edit_card(bot, channel_id, message_id, status_embed(job), controls_view(job))
    await start_thread(bot, job, message_id)
    bot.desk.wake()
    await _tell_camera_notes(interaction, spec)


#: The descriptions of the options ``text`` and ``animate`` share.
_OPTION_HELP = {
    "duration": "Length in seconds (1080P is 6 s only)",
    "model": "Which Hailuo model (default MiniMax-Hailuo-02)",
    "camera": "A camera command added at the end of the prompt (see /hailuo help)",
    "prompt_optimizer": "Let the provider rewrite your prompt for better results (default on)",
    "fast_pretreatment": "Shorten the prompt optimizer's time (default off)",
}
_IMAGE_HELP = (
    f"A {', '.join(sorted(DEFAULT_RULES.formats))} picture "
    f"(shorter side at least {DEFAULT_RULES.min_short_edge} px)"
)


class GenerateCommands(commands.Cog):
    """``/hailuo text`` and ``/hailuo animate``; mixed into the one ``/hailuo`` group cog."""

    bot: HailuoBot

    @app_commands.command(name="text", description="Make a video from a text prompt")
    @app_commands.describe(
        prompt="What should happen in the video (camera commands like [Pan left] allowed)",
        resolution="Video resolution",
        **_OPTION_HELP,
    )
    @app_commands.choices(camera=_choices(camera.CHOICES))
    async def text(
        self,
        interaction: discord.Interaction,
        prompt: str,
        duration: Literal[6, 10] = 6,
        resolution: str = "768P",
        model: str = DEFAULT_MODEL,
        camera: str | None = None,
        prompt_optimizer: bool = True,
        fast_pretreatment: bool = False,
    ) -> None:
        spec, _ = build_spec(
            Mode.TEXT,
            prompt,
            duration,
            resolution,
            order=self.bot.settings.provider_names,
            model=model,
            camera_command=camera,
            prompt_optimizer=prompt_optimizer,
            fast_pretreatment=fast_pretreatment,
        )
        await text(self.bot, interaction, spec)

    @app_commands.command(name="animate", description="Bring an image to life")
    @app_commands.describe(
        image=_IMAGE_HELP,
        prompt="What should happen (optional)",
        last_frame="An image the video should end on (first + last frame; not at 512P)",
        resolution="Video resolution (512P: image to video only)",
        **_OPTION_HELP,
    )
    @app_commands.choices(camera=_choices(camera.CHOICES))
    async def animate(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        prompt: str = "",
        last_frame: discord.Attachment | None = None,
        duration: Literal[6, 10] = 6,
        resolution: str = "768P",
        model: str = DEFAULT_MODEL,
        camera: str | None = None,
        prompt_optimizer: bool = True,
        fast_pretreatment: bool = False,
    ) -> None:
        spec, serving = build_spec(
            Mode.IMAGE if last_frame is None else Mode.FIRST_LAST,
            prompt,
            duration,
            resolution,
            order=self.bot.settings.provider_names,
            model=model,
            camera_command=camera,
            prompt_optimizer=prompt_optimizer,
            fast_pretreatment=fast_pretreatment,
        )
        await animate(self.bot, interaction, spec, image, last_frame, serving=serving)

    @text.autocomplete("model")
    async def _text_model(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return suggestions(
            interaction, current, "model", self.bot.settings.provider_names, Mode.TEXT
        )

    @text.autocomplete("resolution")
    async def _text_resolution(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return suggestions(
            interaction, current, "resolution", self.bot.settings.provider_names, Mode.TEXT
        )

    @animate.autocomplete("model")
    async def _animate_model(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return suggestions(
            interaction, current, "model", self.bot.settings.provider_names, *_IMAGE_MODES
        )

    @animate.autocomplete("resolution")
    async def _animate_resolution(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return suggestions(
            interaction, current, "resolution", self.bot.settings.provider_names, *_IMAGE_MODES
        )
