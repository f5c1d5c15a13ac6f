"""Every text a member reads, keyed by a stable code and rendered from the rule's own numbers.

One entry per code; the parameters come from the raised error (the rule's
limit and the member's value), so no copy of a number can drift from the
rule. ``render`` falls back to English for a locale without a translation
and to a generic text (never an exception's words) for an unknown code.
A word chosen before the reader is known (a mode, a job's state, "or") is
passed as a ``Term`` or an ``Either`` and rendered in the reader's language.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping, Sequence

from hailuo.i18n.messages_zh import ZH_CN

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
        "spec.model_mode": (
            "{model} cannot make {mode} videos; it makes {allowed} only. "
            "For {mode}, choose one of: {models}."
        ),
        # what the server's providers offer (hailuo.jobs.capabilities)
        "capability.model": (
            "{model} is not offered by {providers}, the providers this server uses; "
            "choose {allowed}."
        ),
        "capability.mode": (
            "{providers}, the providers this server uses, do not make {mode} videos; "
            "they make {allowed}."
        ),
        "capability.resolution": (
            "{resolution} is not offered for {mode} by {providers}, the providers this "
            "server uses; choose {allowed}."
        ),
        "capability.duration": (
            "{resolution} videos of {duration} seconds are not offered by {providers}, the "
            "providers this server uses; choose {allowed} seconds."
        ),
        "capability.option": (
            "The {option} option is not offered by {providers}, the providers this server "
            "uses; set it to {default} or leave it out."
        ),
        # words that fill other texts (hailuo.i18n.messages.Term, Either): the reader's language
        "mode.t2v": "text-to-video",
        "mode.i2v": "image-to-video",
        "mode.fl2v": "first+last frame",
        "list.separator": ", ",
        "list.or": "{items} or {last}",
        "camera.unknown": "[{command}] is not a camera command. Did you mean: {suggestions}?",
        "camera.empty": "An empty [ ] in your prompt: put a camera command inside or remove it.",
        "camera.unbalanced": (
            "A bracket in your prompt is not closed or not opened (at character {position})."
        ),
        "camera.push_out_alias": (
            "Note: [{written}] is not one of the camera commands; it was read as [{meaning}]."
        ),
        "camera.too_many_in_group": (
            "Note: camera bracket {group} holds {count} commands; at most {maximum} are "
            "recommended, so some may be ignored."
        ),
        # one per camera command (hailuo.model.camera.CameraCommand.key), for /hailuo help
        "camera.describe.truck_left": "The camera slides sideways to the left.",
        "camera.describe.truck_right": "The camera slides sideways to the right.",
        "camera.describe.pan_left": "The camera turns to the left from where it stands.",
        "camera.describe.pan_right": "The camera turns to the right from where it stands.",
        "camera.describe.push_in": "The camera moves forward, toward the subject.",
        "camera.describe.pull_out": "The camera moves back, away from the subject.",
        "camera.describe.pedestal_up": "The camera rises straight up.",
        "camera.describe.pedestal_down": "The camera sinks straight down.",
        "camera.describe.tilt_up": "The camera tips upward from where it stands.",
        "camera.describe.tilt_down": "The camera tips downward from where it stands.",
        "camera.describe.zoom_in": "The lens zooms in; the camera stays put.",
        "camera.describe.zoom_out": "The lens zooms out; the camera stays put.",
        "camera.describe.shake": "The camera shakes, as if handheld.",
        "camera.describe.tracking_shot": "The camera follows the moving subject.",
        "camera.describe.static_shot": "The camera does not move at all.",
        "image.declared_type": (
            "The attachment is not an image (it is {actual}). Attach a JPG, PNG or WebP picture."
        ),
        "image.format": (
            "The image must be {allowed} (judged by its content, not its name); yours is {actual}."
        ),
        "image.too_big": ("The image must be smaller than {limit:MB}; yours is {actual:MB}."),
        "image.too_big_streamed": (
            "The image must be smaller than {limit:MB}; yours is larger than that."
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
            "The image stays larger than {limit:MB} even when compressed: attach a smaller picture."
        ),
        "image.last_frame": "The last frame: {reason}",
        # money
        "quota.credits": (
            "This video costs {cost:@credit} and you have {remaining} left of {allowance} "
            "today. Your credits renew <t:{renews_at}:R>."
        ),
        "quota.member_in_flight": (
            "You already have {maximum} videos in the making; wait for one to finish."
        ),
        "quota.guild_in_flight": (
            "This server already has {maximum} videos in the making; try again in a few minutes."
        ),
        "quota.credits_week": (
            "This video costs {cost:@credit} and you have {remaining} left of {allowance} "
            "this week. Your credits renew <t:{renews_at}:R>."
        ),
        "quota.cooldown": (
            "This server allows one video every {seconds} seconds per member; "
            "try again <t:{retry_at}:R>."
        ),
        "quota.budget_day": (
            "This server's budget for today cannot cover this video ({spent} of {budget} "
            "credits used; this video costs {cost}). It renews <t:{renews_at}:R>."
        ),
        "quota.budget_month": (
            "This server's budget for this month cannot cover this video ({spent} of {budget} "
            "credits used; this video costs {cost}). It renews <t:{renews_at}:R>."
        ),
        "notice.budget_day_80": (
            "Hailuo: this server has used {spent} of its {budget} credits for today "
            "({percent} %). The budget renews <t:{renews_at}:R>."
        ),
        "notice.budget_day_100": (
            "Hailuo: this server's budget for today is used up ({spent} of {budget} "
            "credits); videos that do not fit are refused until it renews <t:{renews_at}:R>."
        ),
        "notice.budget_month_80": (
            "Hailuo: this server has used {spent} of its {budget} credits for this month "
            "({percent} %). The budget renews <t:{renews_at}:R>."
        ),
        "notice.budget_month_100": (
            "Hailuo: this server's budget for this month is used up ({spent} of {budget} "
            "credits); videos that do not fit are refused until it renews <t:{renews_at}:R>."
        ),
        "notice.money_budget_day_80": (
            "Hailuo: this server has spent about {spent} of its {budget} money budget for "
            "today ({percent} %, at the price table's estimates). It renews <t:{renews_at}:R>."
        ),
        "notice.money_budget_day_100": (
            "Hailuo: this server's money budget for today is used up (about {spent} of "
            "{budget}); videos that do not fit are refused until it renews <t:{renews_at}:R>."
        ),
        "notice.money_budget_month_80": (
            "Hailuo: this server has spent about {spent} of its {budget} money budget for "
            "this month ({percent} %, at the price table's estimates). It renews "
            "<t:{renews_at}:R>."
        ),
        "notice.money_budget_month_100": (
            "Hailuo: this server's money budget for this month is used up (about {spent} of "
            "{budget}); videos that do not fit are refused until it renews <t:{renews_at}:R>."
        ),
        # provider outcomes
        "provider.moderation": "The provider refused the content of this request.",
        "provider.invalid_request": "The provider refused the request's parameters.",
        "provider.rate_limited": "The provider is busy; your video is waiting in line.",
        "provider.unavailable": "The provider could not make this video.",
        "provider.auth": (
            "The bot cannot reach its video service right now: the provider refused its key."
        ),
        "provider.balance": (
            "The bot cannot reach its video service right now: its account there is empty."
        ),
        "provider.unsupported": "The provider does not take this request as it stands.",
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
        # a direct message to the member (hailuo.jobs.failures.STRIKE_NOTICE)
        "moderation.strike_notice": (
            "The provider refused the content of your video #{job_id}. That counts as a "
            "strike: you have {count} of {threshold} within {days:@day}; at {threshold} you "
            "cannot make videos in this server for a while. Your credits for it were refunded."
        ),
        "moderation.strike_blocked": (
            "The provider refused the content of your video #{job_id}. That was strike "
            "{count} of {threshold} within {days:@day}, so you are blocked from making videos "
            "in this server until a moderator lifts the block. Your credits for it were "
            "refunded. To appeal, ask this server's moderators."
        ),
        "job.service_unreachable": "The bot cannot reach its video service right now.",
        "job.tier_not_offered": (
            "{provider} no longer makes {resolution} videos and no other provider here can; "
            "the bot never switches to another resolution on its own. Try another resolution."
        ),
        "job.image_not_taken": (
            "{provider} would not take your image as the bot sends it, and no other provider "
            "here takes images."
        ),
        # to the server's log channel, once per incident (hailuo.jobs.resilience.AccountAlerts)
        "notice.provider_auth": (
            "The video service {provider} refused the bot's API key. Members' videos go to "
            "another provider if there is one, otherwise they fail and are refunded. The bot's "
            "operator must set a valid key (the bot's log says which setting)."
        ),
        "notice.provider_balance": (
            "The {provider} account is out of balance. Members' videos go to another provider "
            "if there is one, otherwise they fail and are refunded, until the account is "
            "topped up."
        ),
        "job.queue_timeout": (
            "No provider took this video within {minutes} minutes ({providers}: busy or down)."
        ),
        "job.delivery_failed": "The video was made but could not be posted here.",
        "job.delivery_unreachable": (
            "The video was made, but the bot can no longer post in that channel "
            "and your direct messages are closed to it."
        ),
        "job.result_expired": (
            "The video was made, but the provider keeps it only about {hours} h "
            "and it could not be posted in that time."
        ),
        # moderation
        "moderation.blocklist": (
            "Your prompt breaks this server's rule: {rule}. Reword it and try again."
        ),
        "moderation.default_label": "server word list",
        "moderation.channel_not_allowed": "Videos can be made only in {channels} here.",
        "moderation.role_required": "You need one of these roles to make videos here: {roles}.",
        "moderation.blocked": (
            "You are blocked from making videos on this server. To appeal, ask its moderators."
        ),
        "moderation.blocked_until": (
            "You are blocked from making videos on this server until <t:{until}:f>. "
            "To appeal sooner, ask its moderators."
        ),
        "moderation.approval_needs_channel": (
            "Approval needs a log channel first: that is where moderators are asked, with the "
            "member's image, and never a public channel. Set log_channel in the same command."
        ),
        "moderation.entry_empty": "That blocklist entry is empty once spaces and symbols go.",
        "moderation.entry_too_long": (
            "A blocklist entry may be {maximum} characters long; yours is {actual}."
        ),
        "moderation.pattern_invalid": "That pattern is not a valid regular expression: {error}.",
        "moderation.pattern_unsupported": (
            "That pattern uses {feature}, which the blocklist's pattern engine (RE2, which "
            "never runs long) does not support. Rewrite the pattern without it."
        ),
        "moderation.re2.backreference": "a backreference (\\1 or (?P=name))",
        "moderation.re2.lookaround": "a lookahead or lookbehind ((?=…), (?!…), (?<=…), (?<!…))",
        "moderation.re2.group": (
            "a group or flag it does not know, such as (?x) or (?#…) (it knows (…), (?:…), "
            "(?P<name>…) and the flags i, m, s and U)"
        ),
        "moderation.re2.repeat": "a quantifier on a quantifier (such as a++ or a*+)",
        "moderation.re2.size": (
            "repeats too large for it (a count above 1000, or counts that multiply "
            "into a program of more than 1000 steps, such as [a-z]{{200}})"
        ),
        "moderation.pattern_matches_everything": (
            "That pattern matches an empty prompt, so it would refuse every prompt."
        ),
        "moderation.blocklist_busy": (
            "This server's blocklist is being changed right now; try again in a moment."
        ),
        "moderation.too_many_entries": (
            "This server's blocklist holds at most {maximum} entries; remove one first."
        ),
        "moderation.too_many_patterns": (
            "This server's blocklist holds at most {maximum} regular expressions; "
            "remove one first, or add a word or phrase instead."
        ),
        "moderation.setting_too_small": "{setting} must be at least {minimum}, not {value}.",
        "moderation.setting_choice": "{setting} must be one of: {allowed} (not {value}).",
        # /hailuo-admin moderation settings, blocklist and audit (cogs/moderation.py)
        "modadmin.title": "Moderation settings",
        "modadmin.changed": "Changed: {settings}.",
        "modadmin.unchanged": "Nothing changed.",
        "modadmin.channels": "Channels for videos",
        "modadmin.channels_all": "all channels",
        "modadmin.roles": "Roles that may make videos",
        "modadmin.roles_all": "everyone",
        "modadmin.moderator": "Moderator role",
        "modadmin.log_channel": "Log channel",
        "modadmin.approval": "Approval",
        "modadmin.approval.off": "off: no job waits for a moderator",
        "modadmin.approval.new_members": (
            "jobs of members who joined less than {days:@day} ago wait for a moderator"
        ),
        "modadmin.approval.untrusted": (
            "jobs of members who joined less than {days:@day} ago, or who hold none of "
            "{roles}, wait for a moderator"
        ),
        "modadmin.approval.everyone": "every job waits for a moderator",
        "modadmin.expiry": "A waiting job expires after {hours} h",
        "modadmin.strikes": "Strikes",
        "modadmin.strikes_value": ("blocked after {threshold:@refusal} within {days:@day}"),
        "modadmin.blocklist": "Blocklist",
        "modadmin.blocklist_value": "{count:@entry}; /hailuo-admin blocklist list shows them",
        "modadmin.none": "none",
        "modadmin.role_not_listed": "{role} is not in that list.",
        "modadmin.channel_needed": "Name a channel for this action.",
        "modadmin.role_needed": "Name a role for this action.",
        "blocklist.added": "Blocklist entry #{id} added ({kind}); members are told: {label}.",
        "blocklist.removed": "Blocklist entry #{id} removed.",
        "blocklist.missing": "This server has no blocklist entry #{id}.",
        "blocklist.title": "Blocklist: {count:@entry}",
        "blocklist.empty": "The blocklist is empty.",
        "blocklist.line": "#{id} · {kind} · `{text}` · {label}",
        "blocklist.kind.word": "word",
        "blocklist.kind.phrase": "phrase",
        "blocklist.kind.regex": "regex",
        "audit.title": "Audit log",
        "audit.empty": "No audit entries match.",
        "audit.line": "`#{id}` <t:{at}:f> **{action}** by {actor}{target}{job}",
        "audit.target": " · member {user}",
        "audit.job": " · job #{job_id}",
        "audit.bot": "the bot",
        "audit.by": "By",
        "audit.member": "Member",
        "audit.job_field": "Job",
        "audit.details": "Details",
        "audit.older": "Older",
        "audit.newer": "Newer",
        "audit.action.approve": "Job approved",
        "audit.action.reject": "Job rejected",
        "audit.action.expire": "Approval expired",
        "audit.action.block": "Member blocked",
        "audit.action.unblock": "Member unblocked",
        "audit.action.strike": "Strike",
        "audit.action.grant": "Credits granted",
        "audit.action.reset": "Credits reset",
        "audit.action.setting_changed": "Setting changed",
        "audit.action.video_deleted": "Video deleted",
        "audit.action.cancel": "Job cancelled",
        # status message
        "status.checking_image": "Checking your image…",
        "status.checking_request": "Checking your request…",
        "status.queued": "Queued",
        "status.queued_at": "Queued (position {position})",
        "status.queued_eta": "Queued (position {position}, about {minutes} min)",
        "status.queued_soon": "Queued (position {position}, under a minute)",
        "status.submitting": "Sending to the provider…",
        "status.submitted": "Accepted by the provider; waiting to start",
        "status.running": "Generating…",
        "status.running_progress": "Generating… {progress}%",
        "status.succeeded": "Done; posting the video…",
        "status.delivered": "Delivered",
        "status.elapsed": "Started <t:{since}:R>",
        "status.eta": "Expected ready <t:{at}:R>",
        "status.video_link": "[Jump to the video]({url})",
        "status.failed": "Failed: {reason} {cost:@credit} refunded to you.",
        "status.delivery_failed": "Failed: {reason} {cost:@credit} refunded to you.",
        "status.cancelled": "Cancelled",
        "status.rejected": "Rejected by a moderator. {cost:@credit} refunded to you.",
        "status.expired": "Nobody approved it in time. {cost:@credit} refunded to you.",
        "status.awaiting_approval": "Waiting for a moderator's approval",
        "status.title": "Hailuo video #{job_id}",
        "status.no_card": (
            "<@{user_id}> here is where your video #{job_id} stands: my first answer about it "
            "may not have reached you."
        ),
        "job.first_answer_missed": (
            "Discord did not show my first answer in time, so this request was withdrawn and "
            "refunded."
        ),
        "request.duplicate": (
            "This request already made video #{job_id}; it is not made, or charged, twice."
        ),
        "status.field.prompt": "Prompt",
        "status.field.settings": "Settings",
        "status.field.cost": "Cost",
        "status.settings": "{mode} · {resolution} · {duration} s · {model}",
        "status.cost": "{cost:@credit}",
        # where results go (cogs/results.py)
        "results.thread_name": "Video #{job_id}",
        "results.place.channel": "in the channel",
        "results.place.thread": "in a thread per job",
        "results.notify.mention": "mention me",
        "results.notify.dm": "send me a direct message",
        "results.notify.quiet": "quiet (no mention)",
        "results.set": "Results are now posted {place}.",
        "results.notify_now": "When your video is ready: {notify}.",
        "results.policy": "Results: {place}. Your notifications: {notify}.",
        "delivery.posted_quiet": "Your video is ready (job #{job_id}).",
        "delivery.dm_notice": "Your video is ready (job #{job_id}): {url}",
        "delivery.dm_closed": (
            "<@{user_id}> your video is ready (job #{job_id}). You asked to be told by direct "
            "message, but your direct messages are closed to this bot: open them, or choose "
            "another way with `/hailuo settings`."
        ),
        "permission.create_public_threads": "Create Public Threads",
        "permission.send_messages_in_threads": "Send Messages in Threads",
        # delivery
        "delivery.posted": "<@{user_id}> your video is ready (job #{job_id}).",
        "delivery.link": (
            "<@{user_id}> your video is ready (job #{job_id}), but {reason} "
            "Download it here; the link expires in a few hours: {url}"
        ),
        "delivery.too_large": (
            "it is {size_mb} MB, over this channel's {limit_mb} MB upload limit, "
            "and could not be compressed to fit."
        ),
        "delivery.too_large_to_fetch": "it is too large for the bot to fetch.",
        "delivery.cannot_attach": "the bot may not attach files in this channel.",
        "delivery.direct": (
            "You asked for this video in <#{channel_id}>, but the bot can no longer post "
            "there, so it comes to you here."
        ),
        # a video over the upload limit, re-encoded to fit (hailuo/media/shrink.py)
        "delivery.compressed": (
            "<@{user_id}> your video is ready (job #{job_id}). It was compressed to fit "
            "this channel's {limit_mb} MB upload limit; the original ({size_mb} MB) is here "
            "for a few hours: <{url}>"
        ),
        # account
        "quota.summary": (
            "You have **{remaining}** of {allowance} credits left today "
            "({reserved} held by videos in the making). They renew <t:{renews_at}:R>."
        ),
        "quota.costs": "Costs: {costs}.",
        "cost.model": "{model}: {items}",
        "cost.item": "{resolution} {duration} s = {credits}",
        "quota.summary_week": (
            "You have **{remaining}** of {allowance} credits left this week "
            "({reserved} held by videos in the making). They renew <t:{renews_at}:R>."
        ),
        "quota.adjusted": "Admins adjusted your credits by {amount:+d} this period.",
        "quota.recent": "Recent:",
        "ledger.reserve": "<t:{at}:R> −{amount} held for video #{job_id}",
        "ledger.charge": "<t:{at}:R> video #{job_id} delivered: its credits are spent",
        "ledger.charge_cancelled": (
            "<t:{at}:R> video #{job_id} stopped after the provider took it: its credits are spent"
        ),
        "ledger.refund": "<t:{at}:R> +{amount} back from video #{job_id}: {why}",
        "ledger.grant": "<t:{at}:R> +{amount} granted by <@{actor_id}>{note}",
        "ledger.take": "<t:{at}:R> −{amount} taken back by <@{actor_id}>{note}",
        "ledger.reset": "<t:{at}:R> reset to the full allowance by <@{actor_id}> ({amount:+d})",
        "ledger.expire": "<t:{at}:R> {amount:+d} expired",
        "ledger.why.cancelled": "cancelled",
        "ledger.why.rejected": "a moderator rejected it",
        "ledger.why.expired": "nobody approved it in time",
        "ledger.why.failed": "it failed",
        "ledger.why.delivery_failed": "it could not be posted",
        "jobs.none": "You have made no videos in this server yet.",
        "jobs.line": (
            "#{job_id} · {state} · {resolution} {duration} s · {cost:@credit} · <t:{at}:R>"
        ),
        "state.awaiting_approval": "waiting for approval",
        "state.queued": "queued",
        "state.submitting": "sending",
        "state.submitted": "accepted",
        "state.running": "generating",
        "state.succeeded": "posting",
        "state.delivered": "delivered",
        "state.rejected": "rejected",
        "state.expired": "expired",
        "state.cancelled": "cancelled",
        "state.failed": "failed",
        "state.delivery_failed": "not posted",
        # admins
        "admin.manage_guild": "Only members with the Manage Server permission can use this.",
        "admin.timezone": "{name} is not a time zone name. Use an IANA name such as {examples}.",
        "admin.range.credits": "Credits must be from {minimum} to {maximum}, not {value}.",
        "admin.range.budget": (
            "A budget must be from {minimum} to {maximum} credits (0 removes it), not {value}."
        ),
        "admin.range.jobs": "A job cap must be from {minimum} to {maximum}, not {value}.",
        "admin.range.cooldown": (
            "A cool-down must be from {minimum} to {maximum} seconds (0 turns it off), not {value}."
        ),
        "admin.cost_key": (
            "{model} has no {resolution} {duration} s videos. Costs exist for: {allowed}."
        ),
        "admin.take_too_many": (
            "Cannot take back {amount:@credit}: the member has only {remaining} left."
        ),
        "admin.period.day": "a day",
        "admin.period.week": "a week (renewing on Mondays)",
        "admin.none": "none",
        "admin.off": "off",
        "admin.allowance.done": "Each member now gets {credits} credits {period}.",
        "admin.tier.done": "Members with <@&{role_id}> now get {credits} credits per period.",
        "admin.tier.removed": "<@&{role_id}> no longer has its own allowance.",
        "admin.budget.done": "Server budget: {daily} a day, {monthly} a month.",
        "admin.timezone.done": (
            "Allowances and budgets now renew at midnight in {name}; "
            "next renewal <t:{renews_at}:R>."
        ),
        "admin.limits.done": (
            "Jobs in flight: at most {member_jobs} per member and {server_jobs} for the server; "
            "cool-down: {cooldown}."
        ),
        "admin.cost.done": ("{model} {resolution} {duration} s now costs {credits:@credit} here."),
        "admin.channel.done": "Budget notices now go to <#{channel_id}>.",
        "admin.grant.done": "<@{user_id}> got {amount:@credit}; {remaining} left this period.",
        "admin.take.done": (
            "{amount:@credit} taken back from <@{user_id}>; {remaining} left this period."
        ),
        "admin.reset.done": "<@{user_id}> is back to {remaining:@credit} this period.",
        "admin.block.done": "<@{user_id}> can no longer make videos here.",
        "admin.unblock.done": "<@{user_id}> can make videos here again.",
        "admin.unblock.none": "<@{user_id}> was not blocked.",
        "admin.usage.summary": (
            "Spent today: {today} (budget: {daily}). This month: {month} (budget: {monthly}). "
            "Days are counted in {timezone}."
        ),
        "admin.usage.top": "Top members over the last 30 days:",
        "admin.usage.top_line": "{rank}. <@{user_id}> · {credits:@credit}",
        "admin.usage.nobody": "Nobody has spent credits in the last 30 days.",
        "admin.usage.chart_title": "Credits spent per day, last 30 days ({timezone})",
        "quota.money_budget_day": (
            "This server's money budget for today cannot cover this "
            "video ({spent} of {budget} spent; this video costs up to "
            "{cost}). Nothing was charged. It renews <t:{renews_at}:R>."
        ),
        "quota.money_budget_month": (
            "This server's money budget for this month cannot cover "
            "this video ({spent} of {budget} spent; this video costs "
            "up to {cost}). Nothing was charged. It renews <t:{renews_at}:R>."
        ),
        "admin.usd_invalid": (
            "Write an amount in US dollars such as 0.28 (0 to 1000000, "
            "at most 6 decimals), not {value}."
        ),
        "admin.price_provider": "{provider} is not one of this bot's providers: {allowed}.",
        "admin.price.done": (
            "{provider}: {model} {resolution} {duration} s now costs {price} a video here."
        ),
        "admin.price.unknown": "unknown",
        "admin.prices.title": (
            "Price of one video at each provider (estimates in USD; * set by this server):"
        ),
        "admin.prices.line": "{provider} · {model} {resolution} {duration} s · {price}{mark}",
        "admin.money_budget.done": "Server money budget: {daily} a day, {monthly} a month.",
        "admin.policy_money": (
            "Money budget: {daily} a day, {monthly} a month (estimated at the price table's "
            "prices: `/hailuo-admin prices`)."
        ),
        "admin.prices.unknown_hint": (
            "A price shown as unknown counts as nothing in the money figures and budgets: "
            "set it with `/hailuo-admin price provider:… resolution:… duration:… usd:…`."
        ),
        "admin.usage.money": (
            "Money (estimated from the price table): today {today} (budget: "
            "{daily}); this month {month} (budget: {monthly})."
        ),
        "admin.usage.money_provider": (
            "{provider}: {money} over the last 30 days ({videos} delivered)"
        ),
        "admin.usage.money_unpriced": (
            "Delivered videos at a price nobody set, not counted: {count}. "
            "Set prices with /hailuo-admin price."
        ),
        "admin.usage.money_none": "No delivered video with a known price in the last 30 days.",
        "admin.usage.money_chart_title": (
            "Estimated USD per day and provider, last 30 days ({timezone})"
        ),
        "admin.policy": (
            "Allowance: {allowance} credits {period} (time zone {timezone}). Tiers: {tiers}. "
            "Budget: {daily} a day, {monthly} a month. Jobs in flight: {member_jobs} per member, "
            "{server_jobs} for the server. Cool-down: {cooldown}. Notices: {channel}. "
            "Costs: {costs}."
        ),
        "admin.seconds": "{seconds} s",
        # the approval queue (hailuo/moderation/approval.py, cogs/approvals.py)
        "approval.title": "Approval needed: video #{job_id}",
        "approval.own_job": (
            "You cannot approve your own video #{job_id}: another moderator must decide."
        ),
        "approval.pending": "Waiting for a moderator; it expires <t:{expires_at}:R>.",
        "approval.field.member": "Member",
        "approval.button.approve": "Approve",
        "approval.button.reject": "Reject",
        "approval.modal.title": "Reject video #{job_id}",
        "approval.modal.reason": "Reason (the member reads it)",
        "approval.decided.approved": "Approved by <@{by}>.",
        "approval.decided.rejected": "Rejected by <@{by}>: {reason}",
        "approval.decided.expired": "Expired: nobody decided in time. Refunded.",
        "approval.decided.cancelled": "Withdrawn by the member. Refunded.",
        "approval.done.approved": "You approved video #{job_id}; it is queued now.",
        "approval.done.rejected": (
            "You rejected video #{job_id}; the member is refunded and sees your reason."
        ),
        "approval.not_moderator": (
            "Only members with Manage Messages can approve or reject videos here."
        ),
        "approval.not_moderator_role": (
            "Only moderators ({role}, or members with Manage Messages) can approve or reject "
            "videos here."
        ),
        "approval.unknown": "Video #{job_id} is not waiting for a moderator.",
        "approval.reason_empty": "Give a reason: the member reads it.",
        "approval.member_blocked": (
            "<@{user_id}> is blocked from making videos now, so video #{job_id} cannot be "
            "approved. Reject it instead."
        ),
        "approval.member_in_flight": (
            "<@{user_id}> already has {maximum:@video} in the making; approve video #{job_id} "
            "once one of them is done."
        ),
        "approval.guild_in_flight": (
            "This server already has {maximum} videos in the making; approve video #{job_id} "
            "once one of them is done."
        ),
        "approval.already_approved": "<@{by}> already approved video #{job_id} <t:{at}:R>.",
        "approval.already_rejected": (
            "<@{by}> already rejected video #{job_id} <t:{at}:R>: {reason}"
        ),
        "approval.already_expired": "Video #{job_id} expired <t:{at}:R>: nobody decided in time.",
        "approval.already_cancelled": "The member withdrew video #{job_id} <t:{at}:R>.",
        "approval.rejected": "{reason}",
        "status.field.reason": "Moderator's reason",
        # the member's controls on the status card (hailuo/jobs/controls.py, cogs/controls.py)
        "control.button.cancel": "Cancel",
        "control.button.confirm_cancel": "Stop it anyway",
        "control.button.reroll": "Re-roll",
        "control.button.extend": "Extend",
        "control.button.confirm_extend": "Extend for {cost:@credit}",
        "extend.modal.title": "Extend video #{job_id}",
        "extend.modal.prompt": "What happens next?",
        "extend.confirm": (
            "Video #{job_id} continues from its last frame. This costs {cost:@credit}; "
            "press the button to start."
        ),
        "extend.started": "Video #{new_id} continues video #{job_id}; its card is in the channel.",
        "extend.expired": "Extending video #{job_id} timed out: press Extend again.",
        "extend.not_delivered": (
            "Video #{job_id} has not been delivered, so it cannot be extended."
        ),
        "extend.no_frame": "The last frame of video #{job_id} could not be read.",
        "extend.video_gone": (
            "Video #{job_id} is no longer available (its post and the provider's file are gone), "
            "so it cannot be extended."
        ),
        "control.button.confirm_reroll": "Re-roll for {cost:@credit}",
        "control.button.delete": "Delete video",
        "control.button.info": "Info",
        "control.unknown_job": "There is no video #{job_id} in this server.",
        "control.cancel.not_yours": (
            "Only the member who asked for video #{job_id}, or a moderator, can cancel it."
        ),
        "control.cancel.submitting": (
            "Video #{job_id} is being sent to the provider at this very moment, so it cannot "
            "be cancelled now; try again in a few seconds."
        ),
        "control.cancel.succeeded": (
            "Video #{job_id} is already made and being posted; it can no longer be cancelled."
        ),
        "control.cancel.finished": "Video #{job_id} is {state} already; nothing to cancel.",
        "control.cancel.confirm": (
            "The provider has already accepted video #{job_id} and offers no way to stop it, so "
            "it stays charged ({cost:@credit}). Cancelling only stops the bot from following it "
            "and posting it. Stop it anyway?"
        ),
        "control.cancel.needs_confirm": (
            "The provider has just accepted video #{job_id}; press Cancel again to see what "
            "stopping it costs."
        ),
        "control.cancel.done_refund": (
            "Video #{job_id} is cancelled; refunded to you: {cost:@credit}."
        ),
        "control.cancel.done_charged": (
            "Video #{job_id} is cancelled: the bot stopped following it. It stays charged "
            "({cost:@credit})."
        ),
        "control.cancel.choice": "#{job_id} · {state} · {prompt}",
        "control.reroll.not_yours": "Only the member who asked for video #{job_id} can re-roll it.",
        "control.reroll.rejected": "A moderator rejected video #{job_id}; it cannot be re-rolled.",
        "control.reroll.not_finished": "Video #{job_id} is {state}; re-roll it once it is done.",
        "control.reroll.images_gone": (
            "The image of video #{job_id} is no longer kept (images are deleted a while "
            "after a video ends); start a new /hailuo animate with the image instead."
        ),
        "control.reroll.confirm": (
            "Make video #{job_id} again, with the same request and images? It costs "
            "{cost:@credit}; you have {remaining} left."
        ),
        "control.reroll.done": "Re-rolled video #{job_id} as #{new_id}.",
        "control.delete.not_yours": (
            "Only the member who asked for video #{job_id}, or a moderator, can delete its video."
        ),
        "control.delete.no_video": "Video #{job_id} has no posted video to delete.",
        "control.delete.gone": "The video of #{job_id} was already removed.",
        "control.delete.failed": "The video of #{job_id} could not be removed; try again later.",
        "control.delete.done": "The video of #{job_id} is removed.",
        "control.button.fresh_link": "Fresh link",
        "control.fresh.done": "A fresh link to the video of #{job_id}; it expires too: {url}",
        "control.fresh.no_video": "Video #{job_id} has no finished video to link.",
        "control.fresh.failed": (
            "The provider gave no fresh link to the video of #{job_id} just now; "
            "try again in a minute."
        ),
        "control.info.title": "**Video #{job_id}** · {state} · asked by <@{user_id}>",
        "control.info.request": "Request: {mode} · {resolution} · {duration} s · {model}",
        "control.info.prompt": "Prompt: {prompt}",
        "control.info.provider": "Provider: {provider} · task id: {task_id}",
        "control.info.times": "Asked {created} · accepted {submitted} · finished {finished}",
        "control.info.credits": "Credits: {cost} · {state}",
        "control.info.none": "—",
        "control.credits.held": "held until it ends",
        "control.credits.spent": "spent",
        "control.credits.refunded": "refunded",
        # /hailuo help
        "help.title": "How to ask for a Hailuo video",
        "help.camera": (
            "**Camera commands**: write them in square brackets in your prompt, in English or "
            "Chinese. Several in one bracket act together (at most {maximum} recommended); "
            "brackets in a row act in order. The camera option adds one at the end. "
            "A bracket that is no camera command stays in your prompt as text "
            '("a sign saying [OPEN]"); write \\\\[ and \\\\] for a bracket that '
            "should stay text even though it reads like a command."
        ),
        "help.offers": "What this server offers",
        "help.offer_line": "{mode}: {resolutions} (models: {models})",
        "help.resolution": "{resolution} ({durations} s)",
        "help.camera_line": "[{english}] / [{chinese}]: {description}",
        "help.costs_title": "Credits",
        "help.costs": "{costs}. /hailuo quota shows what you have left.",
        "help.images_title": "Images",
        "help.images": (
            "{formats}, still, smaller than {max_bytes:MB} and at most {max_pixels:,} "
            "pixels; shorter side at least {min_short_edge} px; width:height between "
            "{aspect_min} and {aspect_max} (both excluded). Sent re-encoded as {send_formats}."
        ),
        # errors without a rule
        "error.unexpected": (
            "Something went wrong on our side (incident {incident}). Nothing was charged."
        ),
        "error.unexpected_job": (
            "Something went wrong on our side (incident {incident}), after your video "
            "#{job_id} was made: it is {state} and holds {cost:@credit}. It goes on; if it "
            "fails, the credits come back. /hailuo jobs shows it."
        ),
        "error.guild_only": "Use this command in a server channel.",
        # the bot's own permissions where a job would live (hailuo/jobs/access.py)
        "access.bot_missing": (
            "I cannot make videos in this channel: I am missing these permissions here: "
            "{permissions}. Ask an admin to give my role these permissions in this "
            "channel. Nothing was charged."
        ),
        "permission.view_channel": "View Channel",
        "permission.send_messages": "Send Messages",
        "permission.attach_files": "Attach Files",
        "permission.embed_links": "Embed Links",
        "permission.read_message_history": "Read Message History",
        # a number with its noun: {cost:@credit} picks plural.credit.one or .other
        # (hailuo.i18n.messages.plural_category); {limit:MB} renders unit.megabytes
        "plural.credit.one": "{count} credit",
        "plural.credit.other": "{count} credits",
        "plural.day.one": "{count} day",
        "plural.day.other": "{count} days",
        "plural.refusal.one": "{count} provider refusal",
        "plural.refusal.other": "{count} provider refusals",
        "plural.entry.one": "{count} entry",
        "plural.entry.other": "{count} entries",
        "plural.video.one": "{count} video",
        "plural.video.other": "{count} videos",
        "unit.megabytes": "{amount} MB",
    },
}
# Simplified Chinese; zh-TW and other variants fall back to English.
CATALOG["zh-CN"] = ZH_CN


def render(code: str, locale: str | None = None, /, **params: object) -> str:
    """The text for ``code`` in ``locale`` (or English), filled from ``params``.

    A parameter that is a :class:`Term` or an :class:`Either` is rendered in
    ``locale`` too, so a word chosen long before (a mode, a state) reads in the
    language of the text it fills.
    """
    table = CATALOG.get(_language(locale), CATALOG[FALLBACK_LOCALE])
    template = table.get(code) or CATALOG[FALLBACK_LOCALE].get(code)
    if template is None:
        return CATALOG[FALLBACK_LOCALE]["error.unexpected"].format(incident=code)
    template = expand_words(template, params, locale)
    values = _Params({k: _display(v, locale) for k, v in params.items()})
    try:
        return template.format_map(values)
    except (ValueError, TypeError):
        # A value of the wrong type for its format spec (e.g. "?" for ``{limit:,}``):
        # drop the specs rather than fail in front of a member.
        return _SPEC.sub(r"{\1}", template).format_map(values)


#: ``{cost:@credit}``: the number with its noun in the right plural form, from the
#: catalog's ``plural.credit.one`` / ``plural.credit.other``; ``{limit:MB}``: a byte
#: count shown in megabytes ("20 MB", never "20,000,000 bytes").
_WORD_SPEC = re.compile(r"\{(\w+):(@[\w]+|MB)\}")


def plural_category(count: object, locale: str | None) -> str:
    """The plural form ``count`` takes in ``locale``: ``one`` or ``other``.

    The catalog's own rules, the two CLDR categories its languages use:
    English says "1 credit" and "2 credits" (``one`` is exactly 1); Chinese
    has no plural form (always ``other``). Anything not a number is ``other``.
    """
    if _language(locale) == "zh-CN":
        return "other"
    is_one = isinstance(count, int) and not isinstance(count, bool) and count == 1
    return "one" if is_one else "other"


def megabytes(size: object) -> str:
    """A byte count as megabytes (10^6), at most two decimals: 20000000 -> "20"."""
    if not isinstance(size, int | float) or isinstance(size, bool):
        return str(size)
    return f"{size / 1_000_000:.2f}".rstrip("0").rstrip(".")


def expand_words(template: str, params: Mapping[str, object], locale: str | None) -> str:
    """``template`` with its ``{n:@noun}`` and ``{n:MB}`` fields written out for ``locale``."""
    return _WORD_SPEC.sub(lambda m: _word(m, params, locale), template)


def _word(match: re.Match[str], params: Mapping[str, object], locale: str | None) -> str:
    name, spec = match.group(1), match.group(2)
    value = params.get(name, "?")
    if spec == "MB":
        return render("unit.megabytes", locale, amount=megabytes(value))
    noun = spec[1:]
    return render(f"plural.{noun}.{plural_category(value, locale)}", locale, count=value)


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _language(locale: str | None) -> str:
    if not locale:
        return FALLBACK_LOCALE
    if locale in CATALOG:
        return locale
    return locale.split("-")[0] if locale.split("-")[0] in CATALOG else FALLBACK_LOCALE


class Term(str):
    """A catalog word passed as a parameter (``Term("mode.t2v")``, ``Term("state.queued")``).

    :func:`render` renders it in the language of the text it fills; anywhere else
    (a log line, ``str()``, a comparison, JSON) it is its English words.
    """

    code: str

    def __new__(cls, code: str) -> Term:
        term = super().__new__(cls, render(code))
        term.code = code
        return term

    def __repr__(self) -> str:
        return f"Term({self.code!r})"


class Either(str):
    """A choice among items: ``A``, ``A or B``, ``A, B or C``, joined in the reader's language.

    Like :class:`Term`, it is its English text outside :func:`render`.
    """

    items: tuple[object, ...]

    def __new__(cls, items: Iterable[object]) -> Either:
        listed = tuple(items)
        either = super().__new__(cls, _either(listed, FALLBACK_LOCALE))
        either.items = listed
        return either

    def __repr__(self) -> str:
        return f"Either({self.items!r})"


def _either(items: Sequence[object], locale: str | None) -> str:
    words = [str(_display(item, locale)) for item in items]
    if not words:
        return "—"
    if len(words) == 1:
        return words[0]
    items_text = render("list.separator", locale).join(words[:-1])
    return render("list.or", locale, items=items_text, last=words[-1])


def _display(value: object, locale: str | None) -> object:
    if isinstance(value, Term):
        return render(value.code, locale)
    if isinstance(value, Either):
        return _either(value.items, locale)
    if isinstance(value, Sequence) and not isinstance(value, str):
        separator = render("list.separator", locale)
        return separator.join(str(_display(v, locale)) for v in value) or "—"
    return value


class _Params(dict[str, object]):
    """Missing parameters render as '?' rather than raising in front of a member."""

    def __missing__(self, key: str) -> object:
        return "?"

    def __init__(self, values: Mapping[str, object]) -> None:
        super().__init__(values)
