"""A member's request for a new job, as the desk receives it from a command."""

from __future__ import annotations

from dataclasses import dataclass, field

from hailuo.model.job import NewJob
from hailuo.model.spec import JobSpec
from hailuo.model.status import JobStatus


@dataclass(frozen=True)
class JobRequest:
    guild_id: int
    channel_id: int
    user_id: int
    spec: JobSpec
    interaction_id: int | None = None
    status_message_id: int | None = None
    locale: str = "en-US"
    attachment_limit: int | None = None
    images: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    roles: frozenset[int] = frozenset()  # the member's role ids: their allowance tier
    parent_channel_id: int | None = None  # a thread's channel: the gate allows it like its own
    joined_at: float | None = None  # when the member joined the server, if known

    def new_job(
        self, cost: int, period: str, *, held: bool = False, notify: str | None = "mention"
    ) -> NewJob:
        """The job this request becomes once admitted (held for approval, or in line)."""
        return NewJob(
            guild_id=self.guild_id,
            channel_id=self.channel_id,
            user_id=self.user_id,
            spec=self.spec,
            cost=cost,
            period=period,
            status=JobStatus.AWAITING_APPROVAL if held else JobStatus.QUEUED,
            interaction_id=self.interaction_id,
            status_message_id=self.status_message_id,
            locale=self.locale,
            attachment_limit=self.attachment_limit,
            images=self.images,
            notify=notify,
        )
