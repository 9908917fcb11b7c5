"""Partner attribution: exact shares that sum to 100, exact revenue allocation."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_DOWN, Decimal

from domain.currencies import minor_units
from domain.errors import InvalidAttribution
from domain.values import Money

HUNDRED = Decimal(100)


def shares_must_sum_to_one_hundred(shares: Mapping[str, Decimal]) -> None:
    if not shares:
        return
    for partner, share in shares.items():
        if not isinstance(share, Decimal) or not share.is_finite():
            raise InvalidAttribution(f"share of {partner} must be an exact decimal")
        if share < 0:
            raise InvalidAttribution(f"share of {partner} must not be negative")
    total = sum(shares.values(), Decimal(0))
    if total != HUNDRED:
        raise InvalidAttribution(f"attribution shares must sum to exactly 100, not {total}")


def share_moves_to(
    shares: Mapping[str, Decimal], leaving: str, sourcing: str | None
) -> dict[str, Decimal]:
    """The shares after `leaving` is detached: its share goes to the sourcing
    partner, or else to the largest remaining holder (ties by partner code)."""
    remaining = {p: s for p, s in shares.items() if p != leaving}
    if not remaining:
        return {}
    freed = shares.get(leaving, Decimal(0))
    heir = (
        sourcing
        if sourcing in remaining
        else sorted(remaining, key=lambda p: (-remaining[p], p))[0]
    )
    remaining[heir] += freed
    return remaining


def allocate(amount: Money, shares: Mapping[str, Decimal]) -> dict[str, Money]:
    """Split `amount` by `shares` into currency minor units, summing exactly to it.

    Largest-remainder method: each partner gets the rounded-down part, then the
    leftover minor units go to the largest remainders (ties by partner code)."""
    shares_must_sum_to_one_hundred(shares)
    if not shares:
        return {}
    quantum = Decimal(1).scaleb(-minor_units(amount.currency))
    exact = {p: amount.amount * s / HUNDRED for p, s in shares.items()}
    floors = {p: v.quantize(quantum, rounding=ROUND_DOWN) for p, v in exact.items()}
    leftover = amount.amount - sum(floors.values(), Decimal(0))
    order = sorted(shares, key=lambda p: (-(exact[p] - floors[p]), p))
    i = 0
    while leftover >= quantum:
        floors[order[i % len(order)]] += quantum
        leftover -= quantum
        i += 1
    if leftover:
        # Amounts finer than the currency's minor unit stay with the top remainder,
        # so the allocation is still exact to the last digit given.
        floors[order[0]] += leftover
    return {p: Money(v, amount.currency) for p, v in floors.items()}
