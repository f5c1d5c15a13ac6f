"""What a video costs the owner in money: each provider's price per model x resolution x duration.

Why a table of its own: credits are what members spend; money is what the providers
bill the owner. Each provider declares its list price once, in its capability
(``providers/<name>.py``, dated in README.md; a price no reference states is left out,
read as *unknown*); a server's admins may set their own (``/hailuo-admin price``),
since contracts, currencies and price changes differ. Money is an integer of
micro-dollars so sums are exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Final

from hailuo.model.capability import Table
from hailuo.model.errors import UserInputError

#: (provider, model, resolution, duration in seconds)
PriceKey = tuple[str, str, str, int]

MICROS_PER_USD: Final = 1_000_000
#: The highest price or money budget an admin may type (a typo guard, not a policy).
MAX_USD: Final = 1_000_000


def default_prices(table: Table, providers: Iterable[str]) -> dict[PriceKey, int]:
    """The list prices the configured providers declare, keyed for the policy."""
    prices: dict[PriceKey, int] = {}
    for name in providers:
        capability = table.get(name)
        if capability is None:
            continue
        for (model, resolution, duration), micros in capability.prices.items():
            prices[(name, model, resolution, duration)] = micros
    return prices


def price_of(
    prices: Mapping[PriceKey, int], provider: str, model: str, resolution: str, duration: int
) -> int | None:
    """One video's price at ``provider``; ``None`` when nobody stated it."""
    return prices.get((provider, model, resolution, duration))


def estimate(
    prices: Mapping[PriceKey, int],
    providers: Iterable[str],
    model: str,
    resolution: str,
    duration: int,
) -> int | None:
    """What a job not yet at a provider will cost at most: the dearest known price among
    the providers it may fail over to (a budget must hold whichever one takes it)."""
    known = [
        price
        for name in providers
        if (price := price_of(prices, name, model, resolution, duration)) is not None
    ]
    return max(known) if known else None


def usd(micros: int) -> str:
    """``$0.28``; a price below a cent keeps its digits (``$0.0045``)."""
    amount = Decimal(micros) / MICROS_PER_USD
    text = f"{amount:.2f}"
    if Decimal(text) != amount:
        text = f"{amount.normalize():f}"
    return f"${text}"


def parse_usd(text: str) -> int:
    """An admin's ``0.28`` or ``$1.5`` as micro-dollars; a sentence when it is not one."""
    cleaned = text.strip().removeprefix("$").replace(",", ".").strip()
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise UserInputError("admin.usd_invalid", value=text[:40]) from None
    if not amount.is_finite() or amount < 0 or amount > MAX_USD:
        raise UserInputError("admin.usd_invalid", value=text[:40])
    micros = amount * MICROS_PER_USD
    if micros != micros.to_integral_value():
        raise UserInputError("admin.usd_invalid", value=text[:40])
    return int(micros)
