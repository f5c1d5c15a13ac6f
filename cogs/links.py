"""The **Fresh link** button under a link delivery: a new result URL, told privately.

A video that could not be attached is posted as a link, and the provider's URL
expires within hours. The button's ``custom_id`` carries the job id
(``hailuo:fresh:42``) and is registered once in ``HailuoBot.setup_hook``, like the
card's controls, so it keeps working after a restart; each press asks the
provider again (``hailuo.jobs.links.fresh_url``) and answers the presser ephemerally.
"""

from __future__ import annotations

import discord

from cogs.controls import ControlsView, JobButton, guild_of, hailuo_bot
from hailuo.i18n.messages import render
from hailuo.model.job import Job

JOB = r"(?P<job>[0-9]{1,19})"


class FreshLinkButton(JobButton, template=rf"hailuo:fresh:{JOB}"):
    action = "fresh"
    label_code = "control.button.fresh_link"
    style = discord.ButtonStyle.secondary

    async def pressed(self, interaction: discord.Interaction) -> None:
        bot = hailuo_bot(interaction)
        url = await bot.services.links.fresh_url(guild_of(interaction), self.job_id)
        text = render("control.fresh.done", str(interaction.locale), job_id=self.job_id, url=url)
        await interaction.response.send_message(
            text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )


def fresh_link_view(job: Job) -> ControlsView:
    """The link message's one button."""
    view = ControlsView()
    view.add_item(FreshLinkButton(job.id, job.locale))
    return view
