"""The credits engine: the order in which a debit burns a company's grants (lower priority, then
earliest expiry with never-expiring grants last, then the oldest), debits that are all or nothing
and never take a grant below zero, grants that stop counting at the instant they expire or once
voided, and the bookkeeping a sequence of grants and debits must keep."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tierkit.engine.credits import Grant, balance, balances, burn_order, plan_debit

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=10)

# Outside hypothesis' example database: these properties need no replay store in the tree.
properties = settings(database=None, deadline=None, max_examples=300)


def grant(
    id: str,
    remaining: float,
    *,
    created_day: int = 0,
    priority: int = 0,
    expires_day: int | None = None,
    voided: bool = False,
    credit: str = "ai",
) -> Grant:
    """A grant created `created_day` days after T0, expiring `expires_day` days after T0."""
    return Grant(
        id=id,
        credit=credit,
        remaining=remaining,
        created_at=T0 + timedelta(days=created_day),
        priority=priority,
        expires_at=None if expires_day is None else T0 + timedelta(days=expires_day),
        voided=voided,
    )


def ids(grants: list[Grant]) -> list[str]:
    return [g.id for g in grants]


def takes(plan: list[tuple[Grant, float]] | None) -> list[tuple[str, float]] | None:
    return None if plan is None else [(g.id, amount) for g, amount in plan]


# Burn order


def test_burn_order__three_priorities_and_expiries__priority_then_expiry_then_never() -> None:
    # Given grants listed oldest first, with different priorities and expiries
    grants = [
        grant("never_p0", 10, created_day=1),
        grant("late_p0", 10, created_day=2, expires_day=40),
        grant("soon_p1", 10, created_day=3, priority=1, expires_day=11),
        grant("soon_p0", 10, created_day=4, expires_day=20),
    ]

    # When they are put in burn order
    order = burn_order(grants, "ai", NOW)

    # Then priority 0 burns before priority 1 (whatever the expiry), earliest expiry first,
    # and the never-expiring grant after the expiring ones of its priority
    assert ids(order) == ["soon_p0", "late_p0", "never_p0", "soon_p1"]


def test_burn_order__lower_priority_value__burns_first_even_when_expiring_later() -> None:
    grants = [
        grant("p5_expiring_tomorrow", 10, priority=5, expires_day=11),
        grant("p_minus_1_never", 10, priority=-1),
        grant("p0_never", 10),
    ]

    order = burn_order(grants, "ai", NOW)

    assert ids(order) == ["p_minus_1_never", "p0_never", "p5_expiring_tomorrow"]


def test_burn_order__never_expiring__after_every_expiring_grant_of_its_priority() -> None:
    # Given an old grant that never expires and newer ones that expire far apart
    grants = [
        grant("never", 10, created_day=0),
        grant("in_a_year", 10, created_day=5, expires_day=375),
        grant("in_a_month", 10, created_day=6, expires_day=40),
    ]

    order = burn_order(grants, "ai", NOW)

    assert ids(order) == ["in_a_month", "in_a_year", "never"]


def test_burn_order__same_priority_and_expiry__oldest_grant_first() -> None:
    # Given grants that tie on priority and expiry, listed newest first
    grants = [
        grant("newest", 10, created_day=3, expires_day=30),
        grant("oldest", 10, created_day=1, expires_day=30),
        grant("middle", 10, created_day=2, expires_day=30),
        grant("never_newest", 10, created_day=3),
        grant("never_oldest", 10, created_day=1),
    ]

    order = burn_order(grants, "ai", NOW)

    assert ids(order) == ["oldest", "middle", "newest", "never_oldest", "never_newest"]


def test_burn_order__other_credit_or_nothing_left__left_out() -> None:
    grants = [
        grant("ai", 10),
        grant("storage", 10, credit="storage"),
        grant("used_up", 0),
    ]

    assert ids(burn_order(grants, "ai", NOW)) == ["ai"]
    assert ids(burn_order(grants, "storage", NOW)) == ["storage"]
    assert burn_order(grants, "unknown", NOW) == []


def test_burn_order__at_the_expiry_instant__expired_grant_no_longer_counts() -> None:
    # Given a grant expiring at NOW and one that never expires
    grants = [grant("expiring", 10, expires_day=10), grant("never", 7)]
    instant = T0 + timedelta(days=10)

    # Then it counts until the microsecond before, and not at the instant itself
    assert ids(burn_order(grants, "ai", instant - timedelta(microseconds=1))) == [
        "expiring",
        "never",
    ]
    assert ids(burn_order(grants, "ai", instant)) == ["never"]
    assert balance(grants, "ai", instant - timedelta(microseconds=1)) == 17
    assert balance(grants, "ai", instant) == 7
    assert balance(grants, "ai", instant + timedelta(days=1)) == 7


def test_burn_order__voided_grant__never_counts() -> None:
    grants = [grant("voided", 10, voided=True), grant("live", 3, expires_day=30)]

    assert ids(burn_order(grants, "ai", NOW)) == ["live"]
    assert balance(grants, "ai", NOW) == 3


# Balances


def test_balances__grants_of_two_credits__each_sums_what_counts() -> None:
    grants = [
        grant("a1", 10),
        grant("a2", 2.5, expires_day=30),
        grant("a3", 100, expires_day=5),  # expired before NOW
        grant("s1", 4, credit="storage"),
        grant("s2", 6, credit="storage", voided=True),
    ]

    assert balances(grants, NOW) == {"ai": 12.5, "storage": 4}
    assert list(balances(grants, NOW)) == ["ai", "storage"]


def test_balances__only_expired_grants__credit_listed_with_zero() -> None:
    grants = [grant("gone", 10, expires_day=5)]

    assert balances(grants, NOW) == {"ai": 0}


# Debits


def test_plan_debit__more_than_the_first_grant__spans_grants_in_burn_order() -> None:
    # Given 3 + 4 + 10 credits in burn order soon, late, never
    grants = [
        grant("never", 10),
        grant("late", 4, expires_day=40),
        grant("soon", 3, expires_day=20),
    ]

    # When 9 are debited
    plan = plan_debit(grants, "ai", 9, NOW)

    # Then the two expiring grants are emptied and the rest comes from the never-expiring one
    assert takes(plan) == [("soon", 3), ("late", 4), ("never", 2)]


def test_plan_debit__within_the_first_grant__takes_from_it_alone() -> None:
    grants = [grant("never", 10), grant("soon", 3, expires_day=20)]

    assert takes(plan_debit(grants, "ai", 2, NOW)) == [("soon", 2)]


def test_plan_debit__exactly_the_balance__takes_every_grant_to_zero() -> None:
    grants = [grant("a", 3, created_day=1), grant("b", 4, created_day=2)]

    plan = plan_debit(grants, "ai", 7, NOW)

    assert takes(plan) == [("a", 3), ("b", 4)]


def test_plan_debit__one_more_than_the_balance__none_and_nothing_taken() -> None:
    # Given 7 credits that count, plus expired, voided and other credits' grants
    grants = [
        grant("a", 3, created_day=1),
        grant("b", 4, created_day=2),
        grant("expired", 50, expires_day=5),
        grant("voided", 50, voided=True),
        grant("storage", 50, credit="storage"),
    ]

    # When 8 are debited, then nothing is planned: a debit is all or nothing
    assert plan_debit(grants, "ai", 8, NOW) is None
    # And the grants are untouched (they are values)
    assert balance(grants, "ai", NOW) == 7


def test_plan_debit__no_grants__none() -> None:
    assert plan_debit([], "ai", 1, NOW) is None


def test_plan_debit__zero__takes_nothing() -> None:
    assert plan_debit([grant("a", 3)], "ai", 0, NOW) == []
    assert plan_debit([], "ai", 0, NOW) == []


def test_plan_debit__expired_at_the_instant__not_taken_from() -> None:
    grants = [grant("expiring", 10, expires_day=10), grant("never", 3)]
    instant = T0 + timedelta(days=10)

    assert takes(plan_debit(grants, "ai", 5, instant - timedelta(microseconds=1))) == [
        ("expiring", 5)
    ]
    assert plan_debit(grants, "ai", 5, instant) is None
    assert takes(plan_debit(grants, "ai", 3, instant)) == [("never", 3)]


def test_plan_debit__fractional_grants_summing_exactly_to_the_amount__covers_it() -> None:
    # Given grants of 1.5 and 3.9: the balance is 5.4
    grants = [grant("a", 1.5, created_day=1), grant("b", 3.9, created_day=2)]
    assert balance(grants, "ai", NOW) >= 5.4

    # When 5.4 are debited (what a check allows, since the balance covers it)
    plan = plan_debit(grants, "ai", 5.4, NOW)

    # Then both grants are emptied: the debit is not refused for a rounding residue
    assert takes(plan) == [("a", 1.5), ("b", 3.9)]


# Properties


@dataclass(frozen=True)
class Step:
    """Grant `amount` (with `priority`, expiring `expires_in` days from now or never, voided
    or not), or debit `amount`; then move the clock `days` forward."""

    debit: bool
    amount: int
    priority: int
    expires_in: int | None
    voided: bool
    days: int


steps = st.lists(
    st.builds(
        Step,
        debit=st.booleans(),
        amount=st.integers(min_value=0, max_value=50),
        priority=st.integers(min_value=-2, max_value=2),
        expires_in=st.none() | st.integers(min_value=1, max_value=10),
        voided=st.booleans(),
        days=st.integers(min_value=0, max_value=3),
    ),
    max_size=40,
)


def apply(grants: list[Grant], plan: list[tuple[Grant, float]]) -> list[Grant]:
    """The grants after taking what `plan` says from each."""
    taken = {g.id: amount for g, amount in plan}
    return [replace(g, remaining=g.remaining - taken.get(g.id, 0)) for g in grants]


def check_debit(grants: list[Grant], amount: float, now: datetime) -> tuple[list[Grant], float]:
    """Debit `amount` at `now`, checking the plan against the balance: the grants after it and
    what was debited (0 when the balance could not cover it)."""
    before = balance(grants, "ai", now)
    plan = plan_debit(grants, "ai", amount, now)
    if amount > before:
        assert plan is None
        return grants, 0
    assert plan is not None
    counting = {g.id for g in burn_order(grants, "ai", now)}
    assert all(g.id in counting for g, _ in plan)
    assert all(0 < take <= g.remaining for g, take in plan)
    assert sum(take for _, take in plan) == amount
    # Taken in burn order: every grant before the last one taken from is emptied
    assert [g.id for g, _ in plan] == ids(burn_order(grants, "ai", now))[: len(plan)]
    assert all(take == g.remaining for g, take in plan[:-1])
    after = apply(grants, plan)
    assert balance(after, "ai", now) == before - amount
    return after, amount


@properties
@given(
    amounts=st.lists(
        st.tuples(st.booleans(), st.integers(min_value=1, max_value=100), st.integers(-2, 2)),
        max_size=50,
    )
)
def test_property__grants_and_debits__balance_is_granted_minus_debited(
    amounts: list[tuple[bool, int, int]],
) -> None:
    # Given a random sequence of grants and debits (grants that never expire)
    grants: list[Grant] = []
    granted = debited = 0.0
    for index, (is_debit, amount, priority) in enumerate(amounts):
        now = T0 + timedelta(hours=index)
        if is_debit:
            # When each debit is applied as planned
            plan = plan_debit(grants, "ai", amount, now)
            if plan is None:
                assert amount > granted - debited
                continue
            grants = apply(grants, plan)
            debited += amount
        else:
            grants.append(Grant(f"g{index}", "ai", float(amount), now, priority))
            granted += amount

        # Then the balance is what was granted less what was debited, and no grant is below 0
        assert balance(grants, "ai", now) == granted - debited
        assert all(g.remaining >= 0 for g in grants)


@properties
@given(steps=steps)
def test_property__grants_debits_expiries_and_voids__no_credit_is_lost_or_made(
    steps: list[Step],
) -> None:
    # Given a random sequence of grants (expiring or not, voided or not) and debits over time
    grants: list[Grant] = []
    granted = debited = 0.0
    now = T0
    for index, step in enumerate(steps):
        if step.debit:
            # When each debit is applied as planned (it is checked against the balance)
            grants, amount = check_debit(grants, step.amount, now)
            debited += amount
        elif step.amount > 0:
            expires_at = None if step.expires_in is None else now + timedelta(days=step.expires_in)
            grants.append(
                Grant(f"g{index}", "ai", step.amount, now, step.priority, expires_at, step.voided)
            )
            granted += step.amount
        now += timedelta(days=step.days)

        # Then no grant is below zero, what is left of all grants is what was granted less
        # what was debited, and the balance is what is left of the grants that still count
        assert all(g.remaining >= 0 for g in grants)
        assert sum(g.remaining for g in grants) == granted - debited
        lost = sum(g.remaining for g in grants if not g.counts_at(now))
        assert balance(grants, "ai", now) == granted - debited - lost
