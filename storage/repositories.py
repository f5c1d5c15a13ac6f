"""One repository of each kind, built on first use: the same classes serve both engines.

Both engines (``storage.db.Database``, ``storage.postgres.PostgresDatabase``)
inherit this, so a repository added here exists on each of them at once.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from storage.approvals import ApprovalRepository
    from storage.audit import AuditRepository
    from storage.blocklist import BlocklistRepository
    from storage.delivery import DeliveryPrefsRepository
    from storage.engine import Engine
    from storage.guilds import GuildRepository
    from storage.jobs import JobRepository
    from storage.leases import LeaseRepository
    from storage.ledger import LedgerRepository
    from storage.limits import ProviderLimitRepository
    from storage.moderation import BlockRepository, ModerationSettingsRepository, StrikeRepository


class Repositories:
    """The repositories of an engine (``self`` is the engine they run their SQL on)."""

    # Imported here: the repository modules import the engine surface.

    @functools.cached_property
    def jobs(self) -> JobRepository:
        from storage.jobs import JobRepository

        return JobRepository(cast("Engine", self))

    @functools.cached_property
    def ledger(self) -> LedgerRepository:
        from storage.ledger import LedgerRepository

        return LedgerRepository(cast("Engine", self))

    @functools.cached_property
    def leases(self) -> LeaseRepository:
        from storage.leases import LeaseRepository

        return LeaseRepository(cast("Engine", self))

    @functools.cached_property
    def limits(self) -> ProviderLimitRepository:
        from storage.limits import ProviderLimitRepository

        return ProviderLimitRepository(cast("Engine", self))

    @functools.cached_property
    def guilds(self) -> GuildRepository:
        from storage.guilds import GuildRepository

        return GuildRepository(cast("Engine", self))

    @functools.cached_property
    def approvals(self) -> ApprovalRepository:
        from storage.approvals import ApprovalRepository

        return ApprovalRepository(cast("Engine", self))

    @functools.cached_property
    def audit(self) -> AuditRepository:
        from storage.audit import AuditRepository

        return AuditRepository(cast("Engine", self))

    @functools.cached_property
    def blocklist(self) -> BlocklistRepository:
        from storage.blocklist import BlocklistRepository

        return BlocklistRepository(cast("Engine", self))

    @functools.cached_property
    def moderation(self) -> ModerationSettingsRepository:
        """With no defaults of the owner's: the core passes its own (``HAILUO_APPROVAL``)."""
        from storage.moderation import ModerationSettingsRepository

        return ModerationSettingsRepository(cast("Engine", self))

    @functools.cached_property
    def blocks(self) -> BlockRepository:
        from storage.moderation import BlockRepository

        return BlockRepository(cast("Engine", self))

    @functools.cached_property
    def strikes(self) -> StrikeRepository:
        from storage.moderation import StrikeRepository

        return StrikeRepository(cast("Engine", self))

    @functools.cached_property
    def delivery(self) -> DeliveryPrefsRepository:
        from storage.delivery import DeliveryPrefsRepository

        return DeliveryPrefsRepository(cast("Engine", self))
