"""Plan versions over real HTTP on both databases: a plan edited under its subscribers keeps
their decisions (grandfathered) while new subscribers get the new version; a plan without
subscribers is edited in place; a migration's dry run names exactly the companies that lose
access or go over a new limit and changes nothing; a real migration runs in batches, resumes
after an interruption, and moves every subscription once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import SettableClock
from tests.support.api import create_feature, create_plan, error_of, rfc3339

PRO_V1 = [
    {"feature": "sso", "value": True},
    {"feature": "seats", "value": 10},
    {"feature": "api_calls", "value": 100},
]
PRO_V2 = [
    {"feature": "sso", "value": False},
    {"feature": "seats", "value": 20},
    {"feature": "api_calls", "value": 50},
]


def _catalog(api: httpx.Client) -> None:
    """`sso` (boolean), `seats` (numeric), `api_calls` (metered: the sum of `api_call`
    quantities); plan `pro` at PRO_V1; plan `team` with seats only."""
    create_feature(api, "sso")
    create_feature(api, "seats", "numeric")
    create_feature(api, "api_calls", "metered", meter={"event": "api_call", "aggregation": "sum"})
    create_plan(api, "pro", PRO_V1)
    create_plan(api, "team", [{"feature": "seats", "value": 3}])


def _subscribe(api: httpx.Client, company: str, plan: str = "pro", **fields: Any) -> dict[str, Any]:
    api.put(f"/v1/companies/{company}", json={}).raise_for_status()
    response = api.post(f"/v1/companies/{company}/subscriptions", json={"plan": plan, **fields})
    assert response.status_code == 201, response.text
    subscription: dict[str, Any] = response.json()
    return subscription


def _value(api: httpx.Client, company: str, feature: str) -> Any:
    response = api.post("/v1/check", json={"company": company, "feature": feature})
    assert response.status_code == 200, response.text
    return response.json()["value"]


def _versions(api: httpx.Client, plan: str = "pro") -> dict[int, dict[str, Any]]:
    response = api.get(f"/v1/plans/{plan}/versions")
    assert response.status_code == 200, response.text
    return {v["version"]: v for v in response.json()["data"]}


def _migrate(api: httpx.Client, plan: str = "pro", **body: Any) -> dict[str, Any]:
    response = api.post(f"/v1/plans/{plan}/migrations", json=body)
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()
    return reply


def _use(api: httpx.Client, company: str, quantity: int) -> None:
    events = [{"event": "api_call", "company": company, "quantity": quantity}]
    response = api.post("/v1/events", json={"events": events})
    assert response.status_code == 202, response.text


def test_plan_edit__with_subscribers__keeps_their_decisions_until_migrated(
    api: httpx.Client,
) -> None:
    # Given acme on pro version 1
    _catalog(api)
    acme = _subscribe(api, "acme")
    assert acme["plan_version"] == 1
    assert (_value(api, "acme", "seats"), _value(api, "acme", "sso")) == (10, True)

    # When pro's entitlements change
    response = api.patch("/v1/plans/pro", json={"entitlements": PRO_V2})
    assert response.status_code == 200, response.text

    # Then pro is at version 2, acme keeps version 1's decisions, and a new subscriber gets 2
    assert response.json()["version"] == 2
    assert api.get("/v1/plans/pro").json()["version"] == 2
    assert (_value(api, "acme", "seats"), _value(api, "acme", "sso")) == (10, True)
    assert _subscribe(api, "globex")["plan_version"] == 2
    assert (_value(api, "globex", "seats"), _value(api, "globex", "sso")) == (20, False)
    versions = _versions(api)
    assert {n: (v["subscribers"], v["current"]) for n, v in versions.items()} == {
        2: (1, True),
        1: (1, False),
    }
    assert [(e["feature"], e["value"]) for e in versions[1]["entitlements"]] == [
        ("sso", True),
        ("seats", 10),
        ("api_calls", 100),
    ]

    # And once migrated, acme has version 2's
    assert _migrate(api, from_version=1, to_version=2)["migrated"] == 1
    assert (_value(api, "acme", "seats"), _value(api, "acme", "sso")) == (20, False)
    subscription = api.get(f"/v1/companies/acme/subscriptions/{acme['id']}").json()
    assert subscription["plan_version"] == 2


def test_plan_edits__each_versioned_writer__makes_a_version_only_under_subscribers(
    api: httpx.Client,
) -> None:
    # Given pro with no subscribers
    _catalog(api)
    api.post("/v1/credits", json={"key": "tokens", "name": "Tokens"}).raise_for_status()

    # When its entitlements change: edited in place, still version 1
    response = api.put("/v1/plans/pro/entitlements/seats", json={"value": 12})
    assert response.status_code == 200, response.text
    assert api.get("/v1/plans/pro").json()["version"] == 1
    assert [e["value"] for e in _versions(api)[1]["entitlements"]] == [True, 12, 100]

    # Given a subscriber on version 1
    _subscribe(api, "acme")
    edits = [
        lambda: api.put("/v1/plans/pro/entitlements/seats", json={"value": 15}),
        lambda: api.patch(
            "/v1/plans/pro",
            json={"prices": [{"interval": "month", "currency": "usd", "amount": 900}]},
        ),
        lambda: api.delete("/v1/plans/pro/entitlements/sso"),
        lambda: api.patch(
            "/v1/plans/pro", json={"credit_grants": [{"credit": "tokens", "amount": 100}]}
        ),
    ]
    for number, edit in enumerate(edits, start=2):
        # When a versioned part changes: a new version, which the next company subscribes to
        response = edit()
        assert response.status_code in (200, 204), response.text
        assert api.get("/v1/plans/pro").json()["version"] == number
        _subscribe(api, f"company-{number}")

    # And unversioned fields (name, sort order) and an unchanged PUT make no version
    api.patch("/v1/plans/pro", json={"name": "Pro plus", "sort_order": 3}).raise_for_status()
    api.put("/v1/plans/pro/entitlements/seats", json={"value": 15}).raise_for_status()
    assert api.get("/v1/plans/pro").json()["version"] == 5

    # Then every version keeps what it had, with its subscriber
    versions = _versions(api)
    assert sorted(versions) == [1, 2, 3, 4, 5]
    assert {n: v["subscribers"] for n, v in versions.items()} == dict.fromkeys(range(1, 6), 1)
    assert [e["value"] for e in versions[1]["entitlements"]] == [True, 12, 100]
    assert [e["value"] for e in versions[2]["entitlements"]] == [True, 15, 100]
    assert versions[2]["prices"] == []
    assert [p["amount"] for p in versions[3]["prices"]] == [900]
    assert [e["feature"] for e in versions[4]["entitlements"]] == ["seats", "api_calls"]
    assert versions[4]["credit_grants"] == []
    assert [g["credit"] for g in versions[5]["credit_grants"]] == ["tokens"]
    assert (_value(api, "acme", "seats"), _value(api, "acme", "sso")) == (12, True)
    assert (_value(api, "company-3", "sso"), _value(api, "company-4", "sso")) == (True, False)


def test_plan_edit__only_ended_subscriptions__edits_in_place(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given pro whose only subscription has ended
    _catalog(api)
    now = clock()
    _subscribe(
        api,
        "acme",
        started_at=rfc3339(now - timedelta(days=60)),
        ends_at=rfc3339(now - timedelta(days=30)),
    )

    # When its entitlements change
    api.put("/v1/plans/pro/entitlements/seats", json={"value": 99}).raise_for_status()

    # Then the version is edited in place
    versions = _versions(api)
    assert list(versions) == [1]
    assert [e["value"] for e in versions[1]["entitlements"]] == [True, 99, 100]


def _report_companies(api: httpx.Client, clock: SettableClock) -> None:
    """alpha: pro, no usage. bravo: pro, an sso override, 20 used. charlie: pro, an sso
    override, 80 used. delta: pro, an sso override, exactly 50 used. echo: team only.
    foxtrot: a pro subscription that has ended. pro then moves to PRO_V2."""
    _catalog(api)
    for company in ("alpha", "bravo", "charlie", "delta"):
        _subscribe(api, company)
    for company in ("bravo", "charlie", "delta"):
        api.put(f"/v1/companies/{company}/overrides/sso", json={"value": True}).raise_for_status()
    _subscribe(api, "echo", "team")
    now = clock()
    _subscribe(
        api,
        "foxtrot",
        started_at=rfc3339(now - timedelta(days=60)),
        ends_at=rfc3339(now - timedelta(days=1)),
    )
    for company, used in (("bravo", 20), ("charlie", 80), ("delta", 50), ("echo", 500)):
        _use(api, company, used)
    api.patch("/v1/plans/pro", json={"entitlements": PRO_V2}).raise_for_status()


def test_dry_run__names_exactly_the_companies_that_lose_access_or_go_over_a_limit(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given four companies on pro version 1 with different usage and overrides
    _report_companies(api, clock)

    # When the move to version 2 is dry-run
    report = _migrate(api, from_version=1, to_version=2, dry_run=True)

    # Then it names exactly who loses access and who would be over the new limit of 50
    assert report["dry_run"] is True
    assert (report["companies"], report["subscriptions"]) == (4, 4)
    assert report["losing_access"] == ["alpha", "charlie", "delta"]
    assert report["over_limit"] == ["charlie"]
    impact = {i["company"]: i for i in report["impact"]}
    assert sorted(impact) == ["alpha", "bravo", "charlie", "delta"]
    assert impact["charlie"]["over_limit"] == [{"feature": "api_calls", "used": 80, "limit": 50}]
    alpha = {c["feature"]: c for c in impact["alpha"]["changes"]}
    assert alpha["sso"] == {
        "feature": "sso",
        "effect": "loss",
        "before": {"allowed": True, "value": True, "unlimited": False},
        "after": {"allowed": False, "value": False, "unlimited": False},
    }
    assert (alpha["seats"]["effect"], alpha["seats"]["after"]["value"]) == ("gain", 20)
    assert (alpha["api_calls"]["effect"], alpha["api_calls"]["after"]["value"]) == ("loss", 50)
    bravo = {c["feature"]: c["effect"] for c in impact["bravo"]["changes"]}
    assert bravo == {"seats": "gain", "api_calls": "loss"}
    assert impact["bravo"]["loses_access"] is False

    # And nothing changed: everyone is still on version 1 with its decisions
    assert {n: v["subscribers"] for n, v in _versions(api).items()} == {2: 0, 1: 4}
    assert _value(api, "alpha", "sso") is True
    checked = api.post("/v1/check", json={"company": "charlie", "feature": "api_calls"}).json()
    assert (checked["allowed"], checked["usage"]["limit"]) == (True, 100)


def test_real_migration__in_batches__interrupted_and_resumed__moves_everyone_once(
    api: httpx.Client,
) -> None:
    # Given seven companies on pro version 1, and pro moved on to version 2
    _catalog(api)
    companies = [f"c{i}" for i in range(7)]
    for company in companies:
        _subscribe(api, company)
    api.patch("/v1/plans/pro", json={"entitlements": PRO_V2}).raise_for_status()

    # When a migration runs one batch of 3, stops, and a new company subscribes meanwhile
    first = _migrate(api, from_version=1, to_version=2, batch_size=3)
    assert (first["migrated"], first["remaining"], first["done"]) == (3, 4, False)
    _subscribe(api, "late")

    # Then running it again picks up where it stopped, until done
    second = _migrate(api, from_version=1, to_version=2, batch_size=3)
    third = _migrate(api, from_version=1, to_version=2, batch_size=3)
    again = _migrate(api, from_version=1, to_version=2, batch_size=3)
    assert [(r["migrated"], r["remaining"], r["done"]) for r in (second, third, again)] == [
        (3, 1, False),
        (1, 0, True),
        (0, 0, True),
    ]
    assert {n: v["subscribers"] for n, v in _versions(api).items()} == {2: 8, 1: 0}
    assert {company: _value(api, company, "seats") for company in companies} == dict.fromkeys(
        companies, 20
    )

    # And each subscription was moved exactly once, audited with its versions
    entries = api.get(
        "/v1/audit-log", params={"action": "subscription.updated", "limit": 100}
    ).json()["data"]
    moved = [(e["before"]["subscription"], e["after"]["subscription"]) for e in entries]
    assert sorted(after["id"] for _, after in moved) == sorted(
        s["id"]
        for company in companies
        for s in api.get(f"/v1/companies/{company}/subscriptions").json()["data"]
    )
    assert {(before["plan_version"], after["plan_version"]) for before, after in moved} == {(1, 2)}


def test_migration__back_to_an_older_version__is_a_rollback(api: httpx.Client) -> None:
    # Given acme migrated from version 1 to 2
    _catalog(api)
    _subscribe(api, "acme")
    api.patch("/v1/plans/pro", json={"entitlements": PRO_V2}).raise_for_status()
    _migrate(api, from_version=1, to_version=2)

    # When it is migrated back
    reply = _migrate(api, from_version=2, to_version=1)

    # Then it has version 1's decisions again
    assert (reply["migrated"], reply["done"]) == (1, True)
    assert _value(api, "acme", "seats") == 10


BadMigration = tuple[str, dict[str, Any], int, str | None, str | None]
"""The plan, the body, and the reply's status, error code (None: any) and param."""


@pytest.mark.parametrize(
    "case",
    [
        ("nope", {"from_version": 1, "to_version": 2}, 404, "plan_not_found", None),
        ("pro", {"from_version": 1, "to_version": 1}, 400, "same_version", "to_version"),
        (
            "pro",
            {"from_version": 3, "to_version": 1},
            400,
            "plan_version_not_found",
            "from_version",
        ),
        ("pro", {"from_version": 1, "to_version": 9}, 400, "plan_version_not_found", "to_version"),
        ("pro", {"from_version": 1, "to_version": 9, "dry_run": True}, 400, None, "to_version"),
        ("pro", {"from_version": "1", "to_version": 2}, 400, None, "from_version"),
        ("pro", {"from_version": 0, "to_version": 2}, 400, None, "from_version"),
        ("pro", {"from_version": 1, "to_version": 2, "batch_size": 0}, 400, None, "batch_size"),
        ("pro", {"from_version": 1, "to_version": 2, "dry_run": "yes"}, 400, None, "dry_run"),
        ("pro", {"to_version": 2}, 400, None, "from_version"),
    ],
)
def test_migration__bad_request__clear_error_and_nothing_moved(
    api: httpx.Client, case: BadMigration
) -> None:
    plan, body, status, code, param = case
    # Given acme on pro version 1, and a version 2
    _catalog(api)
    _subscribe(api, "acme")
    api.patch("/v1/plans/pro", json={"entitlements": PRO_V2}).raise_for_status()

    # When a migration is asked for badly
    response = api.post(f"/v1/plans/{plan}/migrations", json=body)

    # Then the reply is the documented error, and acme is still on version 1
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    assert _versions(api)[1]["subscribers"] == 1


def test_versions__unknown_plan_and_pagination(api: httpx.Client) -> None:
    # Given pro at version 3 (a subscriber before each edit)
    _catalog(api)
    for seats in (11, 12):
        _subscribe(api, f"at-{seats}")
        api.put("/v1/plans/pro/entitlements/seats", json={"value": seats}).raise_for_status()

    # When its versions are listed two at a time
    first = api.get("/v1/plans/pro/versions", params={"limit": 2}).json()
    second = api.get(
        "/v1/plans/pro/versions", params={"limit": 2, "cursor": first["next_cursor"]}
    ).json()

    # Then they come newest first, and an unknown plan is 404
    assert [v["version"] for v in first["data"] + second["data"]] == [3, 2, 1]
    assert second["next_cursor"] is None
    assert error_of(api.get("/v1/plans/nope/versions"))["code"] == "plan_not_found"
