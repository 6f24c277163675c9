"""Credits: grants of a credit type, and the order in which debits burn them.

A grant counts from its creation until it expires (at that instant) or is voided. A debit burns
grants with the lowest `priority` first, then the earliest expiry (grants that never expire
last), then the oldest, and never takes a grant below zero: it is all or nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class GrantSource(StrEnum):
    PLAN = "plan"
    PURCHASE = "purchase"
    PROMO = "promo"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class Grant:
    """What is left of one grant of a credit type to a company."""

    id: str
    credit: str
    remaining: float
    created_at: datetime
    priority: int = 0
    expires_at: datetime | None = None
    voided: bool = False

    def counts_at(self, now: datetime) -> bool:
        return not self.voided and (self.expires_at is None or now < self.expires_at)


def _burn_key(grant: Grant) -> tuple[int, int, datetime, datetime, str]:
    never = grant.expires_at is None
    expiry = grant.created_at if grant.expires_at is None else grant.expires_at
    return grant.priority, int(never), expiry, grant.created_at, grant.id


def burn_order(grants: Iterable[Grant], credit: str, now: datetime) -> list[Grant]:
    """The grants of `credit` that count at `now` and have something left, in burn order."""
    usable = [g for g in grants if g.credit == credit and g.remaining > 0 and g.counts_at(now)]
    return sorted(usable, key=_burn_key)


def balance(grants: Iterable[Grant], credit: str, now: datetime) -> float:
    return float(sum(g.remaining for g in burn_order(grants, credit, now)))


def balances(grants: Sequence[Grant], now: datetime) -> dict[str, float]:
    """Each credit type's balance at `now` (types with grants only)."""
    return {credit: balance(grants, credit, now) for credit in sorted({g.credit for g in grants})}


def plan_debit(
    grants: Iterable[Grant], credit: str, amount: float, now: datetime
) -> list[tuple[Grant, float]] | None:
    """What to take from which grant to debit `amount`, or None when the balance cannot
    cover it (nothing is taken then)."""
    if amount <= 0:
        return []
    taken = []
    left = amount
    # Fractional credits: a shortfall within float rounding of the amount is no shortfall.
    tolerance = 1e-9 * max(1.0, abs(amount))
    for grant in burn_order(grants, credit, now):
        take = min(grant.remaining, left)
        taken.append((grant, take))
        left -= take
        if left <= tolerance:
            return taken
    return None
