"""A member's credits in a server: what is left this period, and the admins' changes to it.

Everything here is derived from or written to the append-only ledger: a
balance is read from it, and an admin's grant, take-back or reset is one
ledger entry plus its audit row in one transaction, so every credit stays
explainable. Reservations and settlements belong to the job's life
(``jobs.py`` and the worker), not here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

from hailuo.clock import Clock
from hailuo.model.errors import UserInputError
from hailuo.money.quotas import MAX_CREDITS, Balance, QuotaPolicy, current_period
from storage.audit import AuditAction
from storage.ledger import LedgerEntryKind
from storage.port import AuditStore, LedgerStore, Storage, UnitOfWork

#: Each server's quota policy, by guild id.
PolicySource = Callable[[int], Awaitable[QuotaPolicy]]


@dataclass(frozen=True)
class Credits:
    """Members' balances, and the admins' grants, take-backs and resets."""

    db: Storage
    ledger: LedgerStore
    audit: AuditStore
    clock: Clock
    policy: PolicySource

    async def balance(
        self,
        guild_id: int,
        user_id: int,
        *,
        roles: Collection[int] = (),
        tx: UnitOfWork | None = None,
        policy: QuotaPolicy | None = None,
    ) -> Balance:
        policy = policy or await self.policy(guild_id)
        period = current_period(self.clock(), policy.timezone, policy.period)
        usage = await self.ledger.usage(guild_id, user_id, period.key, tx)
        return Balance(
            allowance=policy.allowance_for(roles),
            used=usage.used,
            reserved=usage.reserved,
            renews_at=period.renews_at,
            adjusted=usage.adjusted,
        )

    async def grant(
        self,
        guild_id: int,
        user_id: int,
        amount: int,
        *,
        actor_id: int,
        reason: str = "",
        roles: Collection[int] = (),
    ) -> Balance:
        """Give ``amount`` credits for this period, or take them back (negative, never below 0)."""
        if amount == 0 or abs(amount) > MAX_CREDITS:
            raise UserInputError(
                "admin.range.credits", value=amount, minimum=1, maximum=MAX_CREDITS
            )
        policy = await self.policy(guild_id)
        now = self.clock()
        period = current_period(now, policy.timezone, policy.period)
        async with self.db.transaction() as tx:
            balance = await self.balance(guild_id, user_id, roles=roles, tx=tx, policy=policy)
            if -amount > balance.remaining:
                raise UserInputError(
                    "admin.take_too_many", amount=-amount, remaining=balance.remaining
                )
            await self.ledger.append(
                tx,
                guild_id=guild_id,
                user_id=user_id,
                job_id=None,
                kind=LedgerEntryKind.GRANT,
                delta=amount,
                period=period.key,
                actor_id=actor_id,
                reason=reason[:200],
                now=now,
            )
            await self.audit.append(
                guild_id,
                AuditAction.GRANT,
                actor_id=actor_id,
                now=now,
                target_user_id=user_id,
                details={"credits": amount, "period": period.key, "reason": reason[:200]},
                tx=tx,
            )
            return await self.balance(guild_id, user_id, roles=roles, tx=tx, policy=policy)

    async def reset(
        self, guild_id: int, user_id: int, *, actor_id: int, roles: Collection[int] = ()
    ) -> Balance:
        """Back to the full allowance for this period, less what open jobs still hold."""
        policy = await self.policy(guild_id)
        now = self.clock()
        period = current_period(now, policy.timezone, policy.period)
        async with self.db.transaction() as tx:
            balance = await self.balance(guild_id, user_id, roles=roles, tx=tx, policy=policy)
            target = max(0, balance.allowance - balance.reserved)
            delta = target - (balance.allowance + balance.adjusted - balance.used)
            if delta:
                await self.ledger.append(
                    tx,
                    guild_id=guild_id,
                    user_id=user_id,
                    job_id=None,
                    kind=LedgerEntryKind.RESET,
                    delta=delta,
                    period=period.key,
                    actor_id=actor_id,
                    reason="reset by an admin",
                    now=now,
                )
            await self.audit.append(
                guild_id,
                AuditAction.RESET,
                actor_id=actor_id,
                now=now,
                target_user_id=user_id,
                details={"credits": delta, "period": period.key},
                tx=tx,
            )
            return await self.balance(guild_id, user_id, roles=roles, tx=tx, policy=policy)
