"""A hypothesis property on both databases: after any sequence of grants, consumes, voids and
moves of the clock, a company's balance is the sum of its ledger, and no grant goes below 0."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SettableClock
from tests.support.api import create_feature, create_plan, rfc3339

Operation = tuple[str, Any]

OPERATIONS = st.lists(
    st.one_of(
        st.tuples(
            st.just("grant"),
            st.tuples(
                st.integers(1, 50),  # amount
                st.integers(-2, 2),  # priority
                st.one_of(st.none(), st.integers(1, 72)),  # hours until it expires
            ),
        ),
        st.tuples(st.just("consume"), st.integers(1, 4)),  # images of 5 credits each
        st.tuples(st.just("void"), st.integers(0, 9)),  # which grant, if there is one
        st.tuples(st.just("advance"), st.integers(1, 48)),  # hours
    ),
    max_size=12,
)
COMPANIES = itertools.count()


def _setup(api: httpx.Client) -> None:
    if api.get("/v1/credits/ai").status_code == 200:
        return
    api.post("/v1/credits", json={"key": "ai", "name": "AI credits"})
    create_feature(api, "image_gen")
    create_plan(
        api,
        "free",
        [{"feature": "image_gen", "value": True, "credit": "ai", "credit_cost": 5}],
        is_default=True,
    )


def _apply(api: httpx.Client, clock: SettableClock, company: str, op: Operation) -> None:
    kind, argument = op
    if kind == "grant":
        amount, priority, hours = argument
        body: dict[str, Any] = {"credit": "ai", "amount": amount, "priority": priority}
        if hours is not None:
            body["expires_at"] = rfc3339(clock.now + timedelta(hours=hours))
        response = api.post(f"/v1/companies/{company}/credit-grants", json=body)
        assert response.status_code == 201, response.text
    elif kind == "consume":
        body = {"company": company, "feature": "image_gen", "quantity": argument, "consume": True}
        response = api.post("/v1/check", json=body)
        assert response.status_code == 200, response.text
    elif kind == "void":
        grants = api.get(f"/v1/companies/{company}/credit-grants").json()["data"]
        if grants:
            grant = grants[argument % len(grants)]["id"]
            response = api.post(f"/v1/companies/{company}/credit-grants/{grant}/void")
            assert response.status_code == 200, response.text
    else:
        clock.advance(hours=argument)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=OPERATIONS)
def test_ledger__any_sequence_of_operations__sums_to_the_balance(
    api: httpx.Client, clock: SettableClock, operations: list[Operation]
) -> None:
    _setup(api)
    company = f"prop-{next(COMPANIES)}"
    assert api.put(f"/v1/companies/{company}", json={}).status_code in (200, 201)

    for op in operations:
        _apply(api, clock, company, op)

    balances = api.get(f"/v1/companies/{company}/credits").json()["data"]
    balance = balances[0]["balance"] if balances else 0
    ledger = api.get(f"/v1/companies/{company}/credits/ledger", params={"limit": 500}).json()
    assert sum(row["amount"] for row in ledger["data"]) == balance
    grants = api.get(f"/v1/companies/{company}/credit-grants").json()["data"]
    assert all(grant["remaining"] >= 0 for grant in grants)
    check = api.post("/v1/check", json={"company": company, "feature": "image_gen"}).json()
    assert check["credits"]["balance"] == balance
