"""`/v1/audit-log` used as documented: one entry per committed change of features, rules, plans,
entitlements, companies, subscriptions, overrides and webhook endpoints, with the actor
(`key:<id>`), the resource, and the resource before and after; nothing for a change that
changes nothing or fails; filters, pages, environments, and no secret ever in it."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta, timezone
from typing import Any

import httpx

from tests.conftest import SettableClock
from tests.support.api import create_feature, create_plan, error_of, rfc3339
from tierkit.server.services.api_keys import KeyKind
from tierkit.server.services.container import Services

ClientFactory = Callable[..., httpx.Client]


# Reading the log


def audit_log(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    """Every entry the filters select, newest first (one page of up to 500)."""
    response = api.get("/v1/audit-log", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    entries: list[dict[str, Any]] = response.json()["data"]
    return entries


def only_entry(api: httpx.Client, action: str, **params: Any) -> dict[str, Any]:
    """The one entry of `action` (there must be exactly one)."""
    entries = audit_log(api, action=action, **params)
    assert len(entries) == 1, entries
    return entries[0]


def actor_of(client: httpx.Client, services: Services) -> str:
    """`key:<id>` of the key the client holds."""
    secret = client.headers["Authorization"].removeprefix("Bearer ")
    return f"key:{services.api_keys.authenticate(secret).key_id}"


def changes_by(api: httpx.Client, actor: str) -> list[tuple[str, str]]:
    """(action, resource key) of the actor's entries, oldest first."""
    return [(e["action"], e["resource_key"]) for e in reversed(audit_log(api, actor=actor))]


# Catalog and customers through the API


def put_company(api: httpx.Client, key: str = "acme", **fields: Any) -> httpx.Response:
    response = api.put(f"/v1/companies/{key}", json=fields)
    assert response.status_code in (200, 201), response.text
    return response


def subscribe(api: httpx.Client, plan: str, company: str = "acme", **fields: Any) -> str:
    response = api.post(f"/v1/companies/{company}/subscriptions", json={"plan": plan, **fields})
    assert response.status_code == 201, response.text
    subscription_id: str = response.json()["id"]
    return subscription_id


def create_endpoint(api: httpx.Client, url: str = "https://example.com/hooks") -> dict[str, Any]:
    response = api.post("/v1/webhooks", json={"url": url})
    assert response.status_code == 201, response.text
    endpoint: dict[str, Any] = response.json()
    return endpoint


# Features and their rules


def test_audit_log__feature_created_then_deleted__after_then_before_with_the_key_as_actor(
    api: httpx.Client, services: Services, clock: SettableClock
) -> None:
    # Given a secret key of development
    actor = actor_of(api, services)

    # When it creates a feature, and deletes it an hour later
    create_feature(api, "sso", name="SSO")
    created_at = clock.now
    clock.advance(hours=1)
    assert api.delete("/v1/features/sso").status_code == 204

    # Then feature.created says who created what, with nothing before it
    created = only_entry(api, "feature.created")
    assert (created["actor"], created["resource_type"], created["resource_key"]) == (
        actor,
        "feature",
        "sso",
    )
    assert created["id"].startswith("aud_")
    assert created["created_at"] == rfc3339(created_at)
    assert created["before"] is None
    assert created["after"]["feature"]["key"] == "sso"
    assert created["after"]["feature"]["name"] == "SSO"
    assert created["after"]["feature"]["type"] == "boolean"
    # and feature.deleted holds what it was, with nothing after it
    deleted = only_entry(api, "feature.deleted")
    assert (deleted["actor"], deleted["resource_type"], deleted["resource_key"]) == (
        actor,
        "feature",
        "sso",
    )
    assert deleted["created_at"] == rfc3339(clock.now)
    assert deleted["before"] == created["after"]
    assert deleted["after"] is None


def test_audit_log__feature_patched__name_before_and_after(
    api: httpx.Client, services: Services
) -> None:
    # Given a feature
    create_feature(api, "sso", name="SSO")

    # When its name changes
    response = api.patch("/v1/features/sso", json={"name": "Single sign-on"})
    assert response.status_code == 200, response.text

    # Then feature.updated holds both names and nothing else moved
    entry = only_entry(api, "feature.updated")
    assert (entry["actor"], entry["resource_key"]) == (actor_of(api, services), "sso")
    assert entry["before"]["feature"]["name"] == "SSO"
    assert entry["after"]["feature"]["name"] == "Single sign-on"
    assert {k: v for k, v in entry["before"]["feature"].items() if k != "name"} == {
        k: v for k, v in entry["after"]["feature"].items() if k != "name"
    }


def test_audit_log__feature_rules_put__feature_updated_with_the_rules_and_none_for_a_repeat(
    api: httpx.Client, services: Services
) -> None:
    # Given a feature without rules
    create_feature(api, "beta")
    rule = {
        "name": "gold",
        "value": True,
        "conditions": [[{"type": "trait", "trait": "tier", "op": "eq", "value": "gold"}]],
    }

    # When its rules are replaced, replaced by the same again, then cleared
    for rules in ([rule], [rule], []):
        response = api.put("/v1/features/beta/rules", json=rules)
        assert response.status_code == 200, response.text

    # Then two feature.updated entries of `beta` hold the rules before and after, by the key
    cleared, added = audit_log(api, action="feature.updated")
    assert {cleared["actor"], added["actor"]} == {actor_of(api, services)}
    assert {cleared["resource_key"], added["resource_key"]} == {"beta"}
    assert added["before"]["rules"] == []
    assert [r["name"] for r in added["after"]["rules"]] == ["gold"]
    [[condition]] = added["after"]["rules"][0]["conditions"]
    assert (condition["trait"], condition["op"], condition["value"]) == ("tier", "eq", "gold")
    assert cleared["before"]["rules"] == added["after"]["rules"]
    assert cleared["after"]["rules"] == []


# Plans and their entitlements


def test_audit_log__plan_created_then_deleted__after_then_before_hold_it(
    api: httpx.Client, services: Services
) -> None:
    # Given a feature
    create_feature(api, "projects", "numeric")

    # When a plan entitling it is created, then deleted
    create_plan(api, "pro", [{"feature": "projects", "value": 10}], name="Pro")
    assert api.delete("/v1/plans/pro").status_code == 204

    # Then plan.created holds the plan, and plan.deleted what it was
    actor = actor_of(api, services)
    created = only_entry(api, "plan.created")
    deleted = only_entry(api, "plan.deleted")
    for entry in (created, deleted):
        assert (entry["actor"], entry["resource_type"], entry["resource_key"]) == (
            actor,
            "plan",
            "pro",
        )
    assert created["before"] is None
    assert created["after"]["plan"]["name"] == "Pro"
    assert [(e["feature"], e["value"]) for e in created["after"]["plan"]["entitlements"]] == [
        ("projects", 10)
    ]
    assert (deleted["before"], deleted["after"]) == (created["after"], None)


def test_audit_log__plan_updated__before_and_after_with_the_key_as_actor(
    api: httpx.Client, services: Services, clock: SettableClock
) -> None:
    # Given a plan
    created = create_plan(api, "pro", name="Pro")

    # When its name and trial change an hour later
    clock.advance(hours=1)
    response = api.patch("/v1/plans/pro", json={"name": "Professional", "trial_days": 14})
    assert response.status_code == 200, response.text

    # Then plan.updated holds them before and after
    entry = only_entry(api, "plan.updated")
    assert (entry["actor"], entry["resource_type"], entry["resource_key"]) == (
        actor_of(api, services),
        "plan",
        "pro",
    )
    before, after = entry["before"]["plan"], entry["after"]["plan"]
    assert (before["name"], before["trial_days"]) == ("Pro", None)
    assert (after["name"], after["trial_days"]) == ("Professional", 14)
    assert entry["before"]["updated_at"] == created["updated_at"]
    assert entry["after"]["updated_at"] == entry["created_at"] == rfc3339(clock.now)


def test_audit_log__entitlement_put_and_deleted__plan_updated_with_entitlements(
    api: httpx.Client, services: Services
) -> None:
    # Given a plan without entitlements and a numeric feature
    create_feature(api, "projects", "numeric")
    create_plan(api, "pro")

    # When an entitlement is put, changed, then deleted
    for value in (5, 10):
        response = api.put("/v1/plans/pro/entitlements/projects", json={"value": value})
        assert response.status_code == 200, response.text
    assert api.delete("/v1/plans/pro/entitlements/projects").status_code == 204

    # Then each is a plan.updated of `pro` with the entitlements before and after
    deleted, changed, added = audit_log(api, action="plan.updated")

    def values(side: dict[str, Any] | None) -> list[tuple[str, Any]]:
        assert side is not None
        return [(e["feature"], e["value"]) for e in side["plan"]["entitlements"]]

    assert {e["resource_key"] for e in (deleted, changed, added)} == {"pro"}
    assert {e["actor"] for e in (deleted, changed, added)} == {actor_of(api, services)}
    assert (values(added["before"]), values(added["after"])) == ([], [("projects", 5)])
    assert (values(changed["before"]), values(changed["after"])) == (
        [("projects", 5)],
        [("projects", 10)],
    )
    assert (values(deleted["before"]), values(deleted["after"])) == ([("projects", 10)], [])


# Companies


def test_audit_log__company_put_new_changed_then_deleted__created_updated_deleted(
    api: httpx.Client, services: Services
) -> None:
    # Given a company created with a name and a trait
    assert put_company(api, name="Acme", traits={"seats": 3}).status_code == 201

    # When a trait changes, then the company is deleted
    assert put_company(api, traits={"seats": 5, "tier": "gold"}).status_code == 200
    assert api.delete("/v1/companies/acme").status_code == 204

    # Then three entries of resource `company` hold it before and after, by the key
    entries = audit_log(api, resource_type="company")
    assert [(e["action"], e["resource_key"]) for e in entries] == [
        ("company.deleted", "acme"),
        ("company.updated", "acme"),
        ("company.created", "acme"),
    ]
    assert {e["actor"] for e in entries} == {actor_of(api, services)}
    deleted, updated, created = entries
    assert created["before"] is None
    assert created["after"]["company"] == {"key": "acme", "name": "Acme", "traits": {"seats": 3}}
    assert updated["before"] == created["after"]
    assert updated["after"]["company"] == {
        "key": "acme",
        "name": "Acme",
        "traits": {"seats": 5, "tier": "gold"},
    }
    assert (deleted["before"], deleted["after"]) == (updated["after"], None)


def test_audit_log__company_put_twice_identically__second_records_nothing(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given a company
    body = {"name": "Acme", "traits": {"seats": 3}}
    put_company(api, **body)
    entries = audit_log(api)

    # When the same PUT comes again later
    clock.advance(minutes=5)
    assert put_company(api, **body).status_code == 200

    # Then the log is as it was
    assert audit_log(api) == entries
    assert audit_log(api, action="company.updated") == []


# Subscriptions


def test_audit_log__subscription_created_patched_canceled__before_and_after(
    api: httpx.Client, services: Services, clock: SettableClock
) -> None:
    # Given a company and an add-on
    create_plan(api, "seats", type="add_on")
    put_company(api)

    # When it subscribes to 2, changes to 5, then cancels an hour later
    subscription_id = subscribe(api, "seats", quantity=2)
    path = f"/v1/companies/acme/subscriptions/{subscription_id}"
    response = api.patch(path, json={"quantity": 5})
    assert response.status_code == 200, response.text
    clock.advance(hours=1)
    assert api.delete(f"{path}?at=now").status_code == 200

    # Then three entries of resource `subscription` keyed by its id, by the key
    entries = audit_log(api, resource_type="subscription")
    assert [(e["action"], e["resource_key"]) for e in entries] == [
        ("subscription.canceled", subscription_id),
        ("subscription.updated", subscription_id),
        ("subscription.created", subscription_id),
    ]
    assert {e["actor"] for e in entries} == {actor_of(api, services)}
    canceled, updated, created = entries
    # created: nothing before; after, the company, plan and quantity
    assert created["before"] is None
    assert created["after"]["company"] == "acme"
    assert created["after"]["subscription"]["plan"] == "seats"
    assert created["after"]["subscription"]["quantity"] == 2
    # updated: the quantity before and after
    assert updated["before"]["subscription"]["quantity"] == 2
    assert updated["after"]["subscription"]["quantity"] == 5
    # canceled: its end and cancellation, now
    before, after = canceled["before"]["subscription"], canceled["after"]["subscription"]
    assert (before["ends_at"], before["canceled_at"]) == (None, None)
    assert (after["ends_at"], after["canceled_at"]) == (rfc3339(clock.now), rfc3339(clock.now))


def test_audit_log__new_base_plan__old_subscription_updated_and_new_created(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given a company on `starter`
    create_plan(api, "starter")
    create_plan(api, "pro")
    put_company(api)
    old = subscribe(api, "starter")

    # When it moves to `pro` a day later
    clock.advance(days=1)
    new = subscribe(api, "pro")

    # Then `starter`'s subscription is updated to end now, and `pro`'s is created
    ended = only_entry(api, "subscription.updated")
    assert ended["resource_key"] == old
    assert ended["before"]["subscription"]["ends_at"] is None
    assert ended["after"]["subscription"]["ends_at"] == rfc3339(clock.now)
    created = audit_log(api, action="subscription.created")
    assert [e["resource_key"] for e in created] == [new, old]
    assert created[0]["after"]["subscription"]["plan"] == "pro"


# Overrides


def test_audit_log__override_put_twice_then_deleted__created_updated_deleted(
    api: httpx.Client, services: Services
) -> None:
    # Given a company and a numeric feature
    create_feature(api, "projects", "numeric")
    put_company(api)

    # When an override is put, changed, then deleted
    for value in (20, 50):
        response = api.put("/v1/companies/acme/overrides/projects", json={"value": value})
        assert response.status_code == 200, response.text
    assert api.delete("/v1/companies/acme/overrides/projects").status_code == 204

    # Then three entries of resource `override` keyed `<company>/<feature>`
    entries = audit_log(api, resource_type="override")
    assert [(e["action"], e["resource_key"]) for e in entries] == [
        ("override.deleted", "acme/projects"),
        ("override.updated", "acme/projects"),
        ("override.created", "acme/projects"),
    ]
    deleted, updated, created = entries
    assert {e["actor"] for e in entries} == {actor_of(api, services)}
    assert created["before"] is None
    assert created["after"]["company"] == "acme"
    assert created["after"]["override"]["entitlement"]["value"] == 20
    assert updated["before"]["override"]["entitlement"]["value"] == 20
    assert updated["after"]["override"]["entitlement"]["value"] == 50
    assert deleted["before"]["override"]["entitlement"]["value"] == 50
    assert deleted["after"] is None


# Webhook endpoints


def test_audit_log__webhook_endpoint_lifecycle__created_updated_rotated_deleted(
    api: httpx.Client, services: Services
) -> None:
    # Given an endpoint
    endpoint = create_endpoint(api, "https://example.com/one")
    path = f"/v1/webhooks/{endpoint['id']}"

    # When its URL changes, its secret is rotated, and it is deleted
    assert api.patch(path, json={"url": "https://example.com/two"}).status_code == 200
    assert api.post(f"{path}/rotate-secret").status_code == 200
    assert api.delete(path).status_code == 204

    # Then four entries of resource `webhook_endpoint`, keyed by its id, by the key
    entries = audit_log(api, resource_type="webhook_endpoint")
    assert [(e["action"], e["resource_key"]) for e in entries] == [
        ("webhook_endpoint.deleted", endpoint["id"]),
        ("webhook_endpoint.secret_rotated", endpoint["id"]),
        ("webhook_endpoint.updated", endpoint["id"]),
        ("webhook_endpoint.created", endpoint["id"]),
    ]
    deleted, rotated, updated, created = entries
    assert {e["actor"] for e in entries} == {actor_of(api, services)}
    assert (created["before"], created["after"]["url"]) == (None, "https://example.com/one")
    assert updated["before"]["url"] == "https://example.com/one"
    assert updated["after"]["url"] == "https://example.com/two"
    assert (rotated["before"], rotated["after"]) == (None, None)
    assert (deleted["before"]["url"], deleted["after"]) == ("https://example.com/two", None)


def test_audit_log__webhook_endpoint_secrets__never_appear_in_any_entry(
    api: httpx.Client,
) -> None:
    # Given an endpoint created, changed and rotated twice (three secrets shown)
    created = create_endpoint(api)
    path = f"/v1/webhooks/{created['id']}"
    api.patch(
        path, json={"description": "orders", "event_types": ["plan.created"]}
    ).raise_for_status()
    secrets = [created["secret"]]
    for _ in range(2):
        rotated = api.post(f"{path}/rotate-secret")
        assert rotated.status_code == 200, rotated.text
        secrets.append(rotated.json()["secret"])
    assert api.delete(path).status_code == 204

    # When the whole log is read
    text = json.dumps(audit_log(api))

    # Then no secret and no `whsec_` is in it
    assert len(audit_log(api, resource_type="webhook_endpoint")) == 5
    assert "whsec_" not in text
    assert not [secret for secret in secrets if secret.removeprefix("whsec_") in text]


# Filters and pages


def test_audit_log__filter_by_action_or_resource__only_those_entries(api: httpx.Client) -> None:
    # Given two plans and two features (one keyed like a plan), some changed
    create_feature(api, "pro")
    create_feature(api, "sso")
    create_plan(api, "pro")
    create_plan(api, "team")
    api.patch("/v1/plans/pro", json={"name": "Pro 2"}).raise_for_status()
    api.patch("/v1/plans/team", json={"name": "Team 2"}).raise_for_status()
    api.patch("/v1/features/sso", json={"name": "SSO 2"}).raise_for_status()

    def changes(**params: Any) -> list[tuple[str, str]]:
        return [(e["action"], e["resource_key"]) for e in audit_log(api, **params)]

    # When the log is filtered, then only those entries, newest first
    assert changes(action="feature.created") == [
        ("feature.created", "sso"),
        ("feature.created", "pro"),
    ]
    assert changes(action="feature.updated") == [("feature.updated", "sso")]
    assert changes(action="feature.deleted") == []
    assert changes(resource_type="plan", resource_key="pro") == [
        ("plan.updated", "pro"),
        ("plan.created", "pro"),
    ]
    assert changes(resource_key="pro") == [
        ("plan.updated", "pro"),
        ("plan.created", "pro"),
        ("feature.created", "pro"),
    ]
    assert [key for _, key in changes(resource_type="plan")] == ["team", "pro", "team", "pro"]
    assert changes(action="plan.updated", resource_key="team") == [("plan.updated", "team")]


def test_audit_log__filter_by_actor__only_that_keys_changes(
    api: httpx.Client, make_client: ClientFactory, services: Services
) -> None:
    # Given two secret keys of development, each making changes
    other = make_client()
    create_feature(api, "sso")
    create_feature(other, "beta")
    create_plan(api, "pro")
    other.patch("/v1/features/sso", json={"name": "SSO 2"}).raise_for_status()

    # When the log is filtered by each actor
    mine = changes_by(api, actor_of(api, services))
    theirs = changes_by(api, actor_of(other, services))

    # Then each key's own changes, and the keys' creation was the system's
    assert mine == [("feature.created", "sso"), ("plan.created", "pro")]
    assert theirs == [("feature.created", "beta"), ("feature.updated", "sso")]
    assert {e["action"] for e in audit_log(api, actor="system")} == {"api_key.created"}
    assert audit_log(api, actor="key:key_nobody") == []


def test_audit_log__filter_from_and_to__at_or_after_from_and_before_to(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given features created a day apart
    clock.advance(days=1)
    first = clock.now
    create_feature(api, "one")
    second = clock.advance(days=1)
    create_feature(api, "two")
    third = clock.advance(days=1)
    create_feature(api, "three")

    def keys(**params: Any) -> list[str]:
        return [e["resource_key"] for e in audit_log(api, action="feature.created", **params)]

    # When the log is filtered by time
    # Then `from` includes its instant and `to` excludes its own
    assert keys(**{"from": rfc3339(second)}) == ["three", "two"]
    assert keys(to=rfc3339(second)) == ["one"]
    assert keys(**{"from": rfc3339(second), "to": rfc3339(third)}) == ["two"]
    assert keys(**{"from": rfc3339(first), "to": rfc3339(first)}) == []
    assert keys(**{"from": rfc3339(first)}) == ["three", "two", "one"]
    # and an instant with another offset is the same instant
    plus_two = timezone(timedelta(hours=2))
    assert keys(**{"from": second.astimezone(plus_two).isoformat()}) == ["three", "two"]


def test_audit_log__naive_from_or_to__400_naming_the_param(api: httpx.Client) -> None:
    # Given a change in the log
    create_feature(api, "sso")

    # When `from` or `to` has no offset (an ambiguous instant); each on its own connection,
    # as the server drops a connection after a 500
    close = {"Connection": "close"}
    responses = {
        param: api.get("/v1/audit-log", params={param: "2026-01-01T00:00:00"}, headers=close)
        for param in ("from", "to")
    }

    # Then a 400 in the envelope naming it, as other time filters answer (not a 500)
    assert {p: r.status_code for p, r in responses.items()} == {"from": 400, "to": 400}, [
        r.text for r in responses.values()
    ]
    for param, response in responses.items():
        error = error_of(response)
        assert (error["type"], error["param"]) == ("invalid_request", param)


def test_audit_log__limit_2__pages_cover_every_entry_once_in_order(api: httpx.Client) -> None:
    # Given seven entries (the key's creation and six changes)
    for key in ("a", "b", "c", "d", "e"):
        create_feature(api, key)
    api.patch("/v1/features/c", json={"name": "C 2"}).raise_for_status()
    everything = audit_log(api)
    assert len(everything) == 7

    # When the log is read two at a time
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = api.get("/v1/audit-log", params=params)
        assert response.status_code == 200, response.text
        pages.append(response.json()["data"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break

    # Then the pages hold every entry once, newest first, with no gap
    assert [len(page) for page in pages] == [2, 2, 2, 1]
    assert [e for page in pages for e in page] == everything
    seqs = [int(e["id"].removeprefix("aud_")) for e in everything]
    assert seqs == sorted(seqs, reverse=True)
    # and a filter pages over its own entries only
    first = api.get("/v1/audit-log", params={"limit": 2, "action": "feature.created"}).json()
    rest = api.get(
        "/v1/audit-log",
        params={"limit": 2, "action": "feature.created", "cursor": first["next_cursor"]},
    ).json()
    assert [e["resource_key"] for e in first["data"]] == ["e", "d"]
    assert [e["resource_key"] for e in rest["data"]] == ["c", "b"]
    # and a cursor the API did not return is refused
    response = api.get("/v1/audit-log", params={"cursor": "not-a-cursor"})
    assert response.status_code == 400
    assert (error_of(response)["code"], error_of(response)["param"]) == ("invalid_cursor", "cursor")


# Environments and keys


def test_audit_log__another_environments_entries_and_publishable_keys__see_nothing(
    api: httpx.Client, production: httpx.Client, make_client: ClientFactory, services: Services
) -> None:
    # Given changes in development and in production
    create_feature(api, "sso")
    create_plan(production, "pro")
    create_endpoint(production)

    # When each environment reads its log
    development_log = audit_log(api)
    production_log = audit_log(production)

    # Then each sees its own changes only
    assert [(e["action"], e["resource_key"]) for e in development_log] == [
        ("feature.created", "sso"),
        ("api_key.created", actor_of(api, services).removeprefix("key:")),
    ]
    assert [e["action"] for e in production_log] == [
        "webhook_endpoint.created",
        "plan.created",
        "api_key.created",
    ]
    assert {e["actor"] for e in production_log[:2]} == {actor_of(production, services)}
    assert audit_log(api, actor=actor_of(production, services)) == []
    assert audit_log(api, resource_key="pro") == []
    # and a publishable key may not read the log at all
    response = make_client(kind=KeyKind.PUBLISHABLE).get("/v1/audit-log")
    assert response.status_code == 403
    assert error_of(response)["code"] == "secret_key_required"


# Failed changes


def test_audit_log__refused_changes__409_and_400__record_and_announce_nothing(
    api: httpx.Client, services: Services
) -> None:
    # Given a plan a company is subscribed to, and every event so far fanned out
    create_plan(api, "pro")
    put_company(api, plan="pro")
    entries = audit_log(api)
    services.webhooks.fan_out()

    # When changes are refused: a plan in use, validation, the services' own checks
    in_use = api.delete("/v1/plans/pro")
    refused = [
        api.patch("/v1/plans/pro", json={"type": "add_on"}),
        api.post("/v1/features", json={"key": "sso", "name": "SSO", "type": "nope"}),
        api.patch("/v1/plans/pro", json={"trial_days": "soon"}),
        api.put("/v1/plans/pro/entitlements/nope", json={"value": 1}),
        api.post("/v1/webhooks", json={"url": "ftp://example.com/hooks"}),
    ]

    # Then each is an error, the log is as it was, and no webhook event was written
    assert (in_use.status_code, error_of(in_use)["code"]) == (409, "plan_in_use")
    assert [r.status_code for r in refused] == [409, 400, 400, 404, 400]
    assert audit_log(api) == entries
    assert services.webhooks.fan_out() == 0


def test_audit_log__company_put_with_unknown_plan__rolled_back_with_the_company(
    api: httpx.Client, services: Services
) -> None:
    # Given no company `acme`, and every event so far fanned out
    entries = audit_log(api)
    services.webhooks.fan_out()

    # When a PUT creates it on a plan that does not exist (the company is written first)
    response = api.put("/v1/companies/acme", json={"name": "Acme", "plan": "nope"})

    # Then the request fails whole: no company, no entry, no event
    assert response.status_code == 400, response.text
    assert (error_of(response)["code"], error_of(response)["param"]) == ("plan_not_found", "plan")
    assert api.get("/v1/companies/acme").status_code == 404
    assert audit_log(api) == entries
    assert services.webhooks.fan_out() == 0
