"""Kickplan's accounts facade under `/api`: Kickplan's documented example works as written, an
account is a company underneath, and errors come in Kickplan's shape."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

import httpx
import pytest

from tests.conftest import SettableClock
from tierkit.server.services.api_keys import KeyKind

ClientFactory = Callable[..., httpx.Client]

# Kickplan's curl example, byte for byte (its doc shows the JSON on one line).
SEED_CREATE: Final = (
    b'{"key":"acme","name":"Acme","custom_fields":{"salesforce_id":"12345"},'
    b'"account_plans":[{"plan_key":"essentials"}],'
    b'"feature_overrides":[{"feature_key":"metrics","variant_key":"true"},'
    b'{"feature_key":"chat","variant_key":"off"}]}'
)
# Kickplan's Ruby example of `accounts.update("acme", {...})`, as the SDK sends it.
SEED_UPDATE: Final[dict[str, Any]] = {
    "name": "Acme, Inc.",
    "account_plans": [{"plan_key": "professional"}],
    "custom_fields": {"salesforce_id": "12345"},
    "feature_overrides": [
        {"feature_key": "metrics", "variant_key": "false"},
        {"feature_key": "chat", "variant_key": "on"},
    ],
}
CURL_HEADERS: Final = {"Accept": "application/json", "Content-Type": "application/json"}
ACCOUNT_FIELDS: Final = {"key", "name", "plans", "feature_overrides", "inserted_at", "updated_at"}
RFC3339_UTC: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")


def parse_utc(timestamp: object) -> datetime:
    """The instant of an RFC 3339 UTC timestamp as the API writes them (`...Z`)."""
    assert isinstance(timestamp, str)
    assert RFC3339_UTC.match(timestamp), timestamp
    return datetime.fromisoformat(timestamp)


def create_catalog(api: httpx.Client) -> None:
    """The seed's catalog: `metrics` (boolean), `chat` (enum `on`/`off`), base plans
    `essentials` and `professional`; and `seats` (numeric) and add-on `extra_seats`."""
    features: list[dict[str, Any]] = [
        {"key": "metrics", "name": "Metrics", "type": "boolean"},
        {
            "key": "chat",
            "name": "Chat",
            "type": "enum",
            "options": [{"key": "on", "name": "On"}, {"key": "off", "name": "Off"}],
        },
        {"key": "seats", "name": "Seats", "type": "numeric", "unit": "seat"},
    ]
    plans: list[dict[str, Any]] = [
        {"key": "essentials", "name": "Essentials"},
        {"key": "professional", "name": "Professional"},
        {"key": "extra_seats", "name": "Extra seats", "type": "add_on", "group": "extras"},
    ]
    for body in features:
        assert api.post("/v1/features", json=body).status_code == 201
    for body in plans:
        assert api.post("/v1/plans", json=body).status_code == 201


@pytest.fixture
def kickplan(api: httpx.Client) -> httpx.Client:
    """`api` over the seed's catalog, with no accounts yet."""
    create_catalog(api)
    return api


def create_seed_account(api: httpx.Client) -> dict[str, Any]:
    response = api.post("/api/accounts", content=SEED_CREATE, headers=CURL_HEADERS)
    assert response.status_code == 200, response.text
    account: dict[str, Any] = response.json()
    return account


def put_account(api: httpx.Client, key: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.put(f"/api/accounts/{key}", json=body, headers=CURL_HEADERS)
    assert response.status_code == 200, response.text
    account: dict[str, Any] = response.json()
    return account


def native_state(api: httpx.Client, key: str = "acme") -> tuple[Any, ...]:
    """Everything the native API shows of the account's company (and the companies list)."""
    responses = [
        api.get("/v1/companies", params={"limit": 500}),
        api.get(f"/v1/companies/{key}"),
        api.get(f"/v1/companies/{key}/subscriptions"),
        api.get(f"/v1/companies/{key}/overrides", params={"include_expired": "true"}),
    ]
    return tuple((r.status_code, r.json()) for r in responses)


def overrides_of(api: httpx.Client, key: str = "acme") -> dict[str, Any]:
    """The company's overrides in force, as feature -> value (`"unlimited"` when unlimited)."""
    response = api.get(f"/v1/companies/{key}/overrides")
    assert response.status_code == 200, response.text
    return {
        o["feature"]: "unlimited" if o["unlimited"] else o["value"] for o in response.json()["data"]
    }


def kickplan_error(response: httpx.Response) -> dict[str, Any]:
    """The body of a Kickplan error reply, checked for Kickplan's shape."""
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"message", "type", "errors"}, body
    assert isinstance(body["message"], str)
    assert body["message"]
    assert isinstance(body["type"], str)
    for item in body["errors"]:
        assert set(item) == {"field", "message", "type"}, item
    return body


def fields_of(body: dict[str, Any]) -> list[str]:
    return [item["field"] for item in body["errors"]]


# The seed example


def test_kickplan_create_account__seed_example__replies_as_documented(
    kickplan: httpx.Client,
) -> None:
    # When Kickplan's curl example is sent as written
    response = kickplan.post("/api/accounts", content=SEED_CREATE, headers=CURL_HEADERS)

    # Then the reply has Kickplan's fields and values
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    account = response.json()
    assert set(account) == ACCOUNT_FIELDS
    assert account["key"] == "acme"
    assert account["name"] == "Acme"
    assert account["plans"] == ["essentials"]
    assert account["feature_overrides"] == ["metrics/true", "chat/off"]
    assert parse_utc(account["inserted_at"]) == parse_utc(account["updated_at"])


def test_kickplan_create_account__seed_example__timestamps_are_the_server_clock(
    kickplan: httpx.Client, clock: SettableClock
) -> None:
    # When the account is created
    account = create_seed_account(kickplan)

    # Then both timestamps are the instant of the request, in UTC
    assert parse_utc(account["inserted_at"]) == clock.now
    assert parse_utc(account["updated_at"]) == clock.now


def test_kickplan_update_account__seed_example__replaces_plans_and_overrides(
    kickplan: httpx.Client, clock: SettableClock
) -> None:
    # Given the seed's account, created a day ago
    created = create_seed_account(kickplan)
    update_instant = clock.advance(days=1)

    # When the seed's update is sent
    updated = put_account(kickplan, "acme", SEED_UPDATE)

    # Then the account holds the new plan and overrides, inserted_at is kept
    assert set(updated) == ACCOUNT_FIELDS
    assert updated["key"] == "acme"
    assert updated["name"] == "Acme, Inc."
    assert updated["plans"] == ["professional"]
    assert updated["feature_overrides"] == ["metrics/false", "chat/on"]
    assert updated["inserted_at"] == created["inserted_at"]
    assert parse_utc(updated["updated_at"]) == update_instant
    assert parse_utc(updated["updated_at"]) >= parse_utc(updated["inserted_at"])


def test_kickplan_update_account__seed_example__native_api_agrees(
    kickplan: httpx.Client, clock: SettableClock
) -> None:
    # Given the seed's account, updated a day after it was created
    created = create_seed_account(kickplan)
    update_instant = clock.advance(days=1)
    put_account(kickplan, "acme", SEED_UPDATE)

    # When the native API reads the company
    company = kickplan.get("/v1/companies/acme").json()
    history = kickplan.get("/v1/companies/acme/subscriptions").json()["data"]

    # Then the custom fields are traits, professional is the plan, essentials ended then
    assert company["name"] == "Acme, Inc."
    assert company["traits"] == {"salesforce_id": "12345"}
    assert company["plan"] == "professional"
    assert company["plan_is_default"] is False
    assert [(s["plan"], s["status"]) for s in history] == [
        ("essentials", "ended"),
        ("professional", "active"),
    ]
    essentials, professional = history
    assert parse_utc(essentials["started_at"]) == parse_utc(created["inserted_at"])
    assert parse_utc(essentials["ends_at"]) == update_instant
    assert parse_utc(professional["started_at"]) == update_instant
    assert professional["ends_at"] is None
    assert [(o["feature"], o["value"]) for o in company["overrides"]] == [
        ("chat", "on"),
        ("metrics", False),
    ]
    assert all(o["expires_at"] is None for o in company["overrides"])


def test_kickplan_create_account__without_key__kickplan_400_exactly(
    kickplan: httpx.Client,
) -> None:
    # Given the seed's body without its key
    body = SEED_CREATE.replace(b'"key":"acme",', b"")

    # When it is sent
    response = kickplan.post("/api/accounts", content=body, headers=CURL_HEADERS)

    # Then the reply is Kickplan's documented 400, word for word, and nothing is stored
    assert response.status_code == 400
    assert response.json() == {
        "message": "Invalid input",
        "type": "invalid_input",
        "errors": [{"field": "key", "message": "is required", "type": "invalid"}],
    }
    assert kickplan.get("/v1/companies").json()["data"] == []


# Bad plans and variants change nothing


def test_kickplan_create_account__unknown_plan_key__400_and_nothing_stored(
    kickplan: httpx.Client,
) -> None:
    # Given the seed's body naming a plan that does not exist
    body = SEED_CREATE.replace(b'"plan_key":"essentials"', b'"plan_key":"enterprise"')

    # When it is sent
    response = kickplan.post("/api/accounts", content=body, headers=CURL_HEADERS)

    # Then it is a 400 at the plan's field, and no company was created
    assert response.status_code == 400, response.text
    error = kickplan_error(response)
    assert (error["message"], error["type"]) == ("Invalid input", "invalid_input")
    assert fields_of(error) == ["account_plans.0.plan_key"]
    assert "enterprise" in error["errors"][0]["message"]
    assert kickplan.get("/v1/companies").json()["data"] == []
    assert kickplan.get("/v1/companies/acme").status_code == 404


def test_kickplan_update_account__unknown_plan_key_after_a_good_one__400_and_unchanged(
    kickplan: httpx.Client, clock: SettableClock
) -> None:
    # Given the seed's account
    create_seed_account(kickplan)
    clock.advance(hours=1)
    before = native_state(kickplan)

    # When an update names professional and then a plan that does not exist
    response = kickplan.put(
        "/api/accounts/acme",
        json=SEED_UPDATE
        | {"account_plans": [{"plan_key": "professional"}, {"plan_key": "enterprise"}]},
    )

    # Then it is a 400 at the second plan, and nothing of the update was kept
    assert response.status_code == 400, response.text
    assert fields_of(kickplan_error(response)) == ["account_plans.1.plan_key"]
    assert native_state(kickplan) == before


def test_kickplan_update_account__enum_variant_not_an_option__400_and_unchanged(
    kickplan: httpx.Client, clock: SettableClock
) -> None:
    # Given the seed's account
    create_seed_account(kickplan)
    clock.advance(hours=1)
    before = native_state(kickplan)

    # When the update asks for a `chat` variant the feature does not have
    body = SEED_UPDATE | {
        "feature_overrides": [
            {"feature_key": "metrics", "variant_key": "false"},
            {"feature_key": "chat", "variant_key": "maybe"},
        ]
    }
    response = kickplan.put("/api/accounts/acme", json=body)

    # Then it is a 400 at that variant, and neither the plan nor the overrides changed
    assert response.status_code == 400, response.text
    error = kickplan_error(response)
    assert fields_of(error) == ["feature_overrides.1.variant_key"]
    assert "maybe" in error["errors"][0]["message"]
    assert native_state(kickplan) == before


@pytest.mark.parametrize(
    ("feature_key", "variant_key", "field"),
    [
        ("metrics", "maybe", "feature_overrides.0.variant_key"),
        ("metrics", "2", "feature_overrides.0.variant_key"),
        ("metrics", "unlimited", "feature_overrides.0.variant_key"),
        ("seats", "many", "feature_overrides.0.variant_key"),
        ("seats", "-1", "feature_overrides.0.variant_key"),
        ("seats", "1e400", "feature_overrides.0.variant_key"),
        ("seats", "nan", "feature_overrides.0.variant_key"),
        ("seats", "9007199254740993", "feature_overrides.0.variant_key"),
        ("chat", "On", "feature_overrides.0.variant_key"),
        ("chat", "", "feature_overrides.0.variant_key"),
        ("sso", "true", "feature_overrides.0.feature_key"),
        ("Metrics", "true", "feature_overrides.0.feature_key"),
    ],
)
def test_kickplan_update_account__bad_override__400_at_its_field_and_unchanged(
    kickplan: httpx.Client, feature_key: str, variant_key: str, field: str
) -> None:
    # Given the seed's account
    create_seed_account(kickplan)
    before = native_state(kickplan)

    # When an override names a bad feature or variant
    body = {"feature_overrides": [{"feature_key": feature_key, "variant_key": variant_key}]}
    response = kickplan.put("/api/accounts/acme", json=body)

    # Then it is a 400 at that field and nothing changed
    assert response.status_code == 400, response.text
    error = kickplan_error(response)
    assert (error["message"], error["type"]) == ("Invalid input", "invalid_input")
    assert fields_of(error) == [field]
    assert error["errors"][0]["type"] == "invalid"
    assert native_state(kickplan) == before


@pytest.mark.parametrize(
    ("account_plans", "field"),
    [
        ([{"plan_key": "enterprise"}], "account_plans.0.plan_key"),
        ([{"plan_key": "essentials"}, {"plan_key": "legacy"}], "account_plans.1.plan_key"),
        (
            [{"plan_key": "essentials"}, {"plan_key": "professional"}],
            "account_plans.1.plan_key",
        ),
        ([{"plan_key": "Essentials"}], "account_plans.0.plan_key"),
        ([{"plan": "essentials"}], "account_plans.0.plan_key"),
        ([{"plan_key": 3}], "account_plans.0.plan_key"),
        ({"plan_key": "essentials"}, "account_plans"),
        (["essentials"], "account_plans.0"),
    ],
)
def test_kickplan_update_account__bad_account_plans__400_at_its_field_and_unchanged(
    kickplan: httpx.Client, account_plans: object, field: str
) -> None:
    # Given the seed's account, and an archived plan `legacy`
    create_seed_account(kickplan)
    assert kickplan.post("/v1/plans", json={"key": "legacy", "name": "Legacy"}).status_code == 201
    assert kickplan.patch("/v1/plans/legacy", json={"status": "archived"}).status_code == 200
    before = native_state(kickplan)

    # When an update names a plan that does not exist, is archived, or is not a plan key
    response = kickplan.put("/api/accounts/acme", json={"account_plans": account_plans})

    # Then it is a 400 at that field and nothing changed
    assert response.status_code == 400, response.text
    error = kickplan_error(response)
    assert (error["message"], error["type"]) == ("Invalid input", "invalid_input")
    assert fields_of(error) == [field]
    assert native_state(kickplan) == before


@pytest.mark.parametrize(
    ("path", "field"),
    [(f"/api/accounts/{'a' * 256}", "key"), ("/api/accounts/ac%07me", "key")],
    ids=["256_characters", "control_character"],
)
def test_kickplan_update_account__bad_key_in_path__400_at_key(
    kickplan: httpx.Client, path: str, field: str
) -> None:
    # When an update names an account key that no company may have
    response = kickplan.put(path, json={"name": "Acme"})

    # Then it is a 400 at `key`, and nothing is stored
    assert response.status_code == 400, response.text
    assert fields_of(kickplan_error(response)) == [field]
    assert kickplan.get("/v1/companies").json()["data"] == []


def test_kickplan_create_account__body_not_json__400_in_kickplan_shape(
    kickplan: httpx.Client,
) -> None:
    # When the body is cut short
    response = kickplan.post("/api/accounts", content=SEED_CREATE[:40], headers=CURL_HEADERS)

    # Then it is Kickplan's 400 about the body, and nothing is stored
    assert response.status_code == 400, response.text
    error = kickplan_error(response)
    assert (error["message"], error["type"]) == ("Invalid input", "invalid_input")
    assert fields_of(error) == ["body"]
    assert kickplan.get("/v1/companies").json()["data"] == []


# Variants by feature type


@pytest.mark.parametrize(
    ("feature_key", "variant_key", "value", "echoed"),
    [
        ("metrics", "true", True, "metrics/true"),
        ("metrics", "on", True, "metrics/true"),
        ("metrics", "false", False, "metrics/false"),
        ("metrics", "off", False, "metrics/false"),
        ("metrics", True, True, "metrics/true"),
        ("chat", "on", "on", "chat/on"),
        ("chat", "off", "off", "chat/off"),
        ("seats", "25", 25, "seats/25"),
        ("seats", "0", 0, "seats/0"),
        ("seats", 7, 7, "seats/7"),
        ("seats", "2.5", 2.5, "seats/2.5"),
        ("seats", "9007199254740992", 2**53, "seats/9007199254740992"),
        ("seats", "unlimited", "unlimited", "seats/unlimited"),
    ],
)
def test_kickplan_create_account__variant_of_each_feature_type__becomes_a_typed_override(
    kickplan: httpx.Client, feature_key: str, variant_key: object, value: object, echoed: str
) -> None:
    # When an account is created with one override
    response = kickplan.post(
        "/api/accounts",
        json={
            "key": "acme",
            "feature_overrides": [{"feature_key": feature_key, "variant_key": variant_key}],
        },
    )

    # Then the reply echoes the variant, and the company has the typed value
    assert response.status_code == 200, response.text
    assert response.json()["feature_overrides"] == [echoed]
    assert response.json()["plans"] == []
    assert overrides_of(kickplan) == {feature_key: value}


def test_kickplan_update_account__fewer_overrides__removes_the_others(
    kickplan: httpx.Client,
) -> None:
    # Given the seed's account with two overrides
    create_seed_account(kickplan)

    # When the update names only `chat`
    updated = put_account(
        kickplan, "acme", {"feature_overrides": [{"feature_key": "chat", "variant_key": "on"}]}
    )

    # Then `metrics` is no longer overridden
    assert updated["feature_overrides"] == ["chat/on"]
    assert overrides_of(kickplan) == {"chat": "on"}


# Plans


def test_kickplan_account__add_on_in_account_plans__held_with_quantity_1_until_dropped(
    kickplan: httpx.Client, clock: SettableClock
) -> None:
    # Given an account on essentials with the add-on
    body = {"account_plans": [{"plan_key": "essentials"}, {"plan_key": "extra_seats"}]}
    added = put_account(kickplan, "acme", body)
    held = kickplan.get("/v1/companies/acme/subscriptions").json()["data"]

    # When a later update lists the base plan only
    drop_instant = clock.advance(days=3)
    dropped = put_account(kickplan, "acme", {"account_plans": [{"plan_key": "essentials"}]})
    history = kickplan.get("/v1/companies/acme/subscriptions").json()["data"]

    # Then the add-on was held once, with quantity 1, and ended when it was dropped
    assert added["plans"] == ["essentials", "extra_seats"]
    assert [(s["plan"], s["plan_type"], s["quantity"]) for s in held] == [
        ("essentials", "base", 1),
        ("extra_seats", "add_on", 1),
    ]
    assert dropped["plans"] == ["essentials"]
    assert [(s["plan"], s["status"]) for s in history] == [
        ("essentials", "active"),
        ("extra_seats", "ended"),
    ]
    assert parse_utc(history[1]["ends_at"]) == drop_instant
    assert history[0]["ends_at"] is None


def test_kickplan_account__same_plans_again__keeps_the_subscriptions(
    kickplan: httpx.Client, clock: SettableClock
) -> None:
    # Given an account on essentials with the add-on
    body = {"account_plans": [{"plan_key": "essentials"}, {"plan_key": "extra_seats"}]}
    put_account(kickplan, "acme", body)
    before = kickplan.get("/v1/companies/acme/subscriptions").json()["data"]

    # When the same plans are sent again later
    clock.advance(days=1)
    again = put_account(kickplan, "acme", body)

    # Then no subscription was started or ended
    assert again["plans"] == ["essentials", "extra_seats"]
    assert kickplan.get("/v1/companies/acme/subscriptions").json()["data"] == before


def test_kickplan_account__empty_account_plans__ends_every_plan(
    kickplan: httpx.Client, clock: SettableClock
) -> None:
    # Given the seed's account on essentials
    create_seed_account(kickplan)

    # When an update sends an empty list of plans
    clock.advance(days=1)
    updated = put_account(kickplan, "acme", {"account_plans": []})

    # Then the account has no plan left
    assert updated["plans"] == []
    statuses = [
        s["status"] for s in kickplan.get("/v1/companies/acme/subscriptions").json()["data"]
    ]
    assert statuses == ["ended"]


def test_kickplan_update_account__plans_and_overrides_omitted__keeps_them(
    kickplan: httpx.Client, clock: SettableClock
) -> None:
    # Given the seed's account
    create_seed_account(kickplan)
    subscriptions = kickplan.get("/v1/companies/acme/subscriptions").json()

    # When an update sends only a new name and another custom field
    clock.advance(days=1)
    updated = put_account(kickplan, "acme", {"name": "Acme, Inc.", "custom_fields": {"tier": 2}})

    # Then plans, overrides and the other custom fields are kept
    assert updated["name"] == "Acme, Inc."
    assert updated["plans"] == ["essentials"]
    assert sorted(updated["feature_overrides"]) == ["chat/off", "metrics/true"]
    assert kickplan.get("/v1/companies/acme/subscriptions").json() == subscriptions
    assert overrides_of(kickplan) == {"metrics": True, "chat": "off"}
    company = kickplan.get("/v1/companies/acme").json()
    assert company["traits"] == {"salesforce_id": "12345", "tier": 2}


def test_kickplan_update_account__unknown_account__creates_it(kickplan: httpx.Client) -> None:
    # When an update names an account that does not exist yet
    updated = put_account(kickplan, "globex", {"name": "Globex"})

    # Then it exists, as a company with no plan of its own
    assert updated["key"] == "globex"
    assert updated["plans"] == []
    assert kickplan.get("/v1/companies/globex").json()["name"] == "Globex"


# Auth


def test_kickplan_create_account__no_key__401_in_kickplan_shape(
    kickplan: httpx.Client, anonymous: httpx.Client
) -> None:
    # When the seed's example is sent without a key
    response = anonymous.post("/api/accounts", content=SEED_CREATE, headers=CURL_HEADERS)

    # Then it is a 401 in Kickplan's shape, and nothing is stored
    assert response.status_code == 401
    error = kickplan_error(response)
    assert error["errors"] == []
    assert error["type"] == "unauthorized"
    assert kickplan.get("/v1/companies").json()["data"] == []


def test_kickplan_create_account__publishable_key__403_in_kickplan_shape(
    kickplan: httpx.Client, make_client: ClientFactory
) -> None:
    # Given a publishable key of the same environment
    browser = make_client(kind=KeyKind.PUBLISHABLE)

    # When it sends the seed's example
    response = browser.post("/api/accounts", content=SEED_CREATE, headers=CURL_HEADERS)

    # Then it is a 403 in Kickplan's shape, and nothing is stored
    assert response.status_code == 403
    error = kickplan_error(response)
    assert error["errors"] == []
    assert error["type"] == "forbidden"
    assert kickplan.get("/v1/companies").json()["data"] == []


def test_kickplan_update_account__production_key__does_not_see_development_accounts(
    kickplan: httpx.Client, make_client: ClientFactory
) -> None:
    # Given the seed's account in development, and a production catalog with `metrics`
    create_seed_account(kickplan)
    development = native_state(kickplan)
    production = make_client(environment="production")
    create_catalog(production)

    # When production updates an account of the same key
    updated = put_account(
        production, "acme", {"feature_overrides": [{"feature_key": "metrics", "variant_key": "on"}]}
    )

    # Then production got a new account of its own; development's is untouched
    assert updated["name"] is None
    assert updated["plans"] == []
    assert updated["feature_overrides"] == ["metrics/true"]
    assert [c["key"] for c in production.get("/v1/companies").json()["data"]] == ["acme"]
    assert production.get("/v1/companies/acme").json()["traits"] == {}
    assert native_state(kickplan) == development


def test_kickplan_create_account__plan_only_in_another_environment__400(
    kickplan: httpx.Client, make_client: ClientFactory
) -> None:
    # Given a production key, whose environment has no plans
    production = make_client(environment="production")

    # When it creates the seed's account
    response = production.post("/api/accounts", content=SEED_CREATE, headers=CURL_HEADERS)

    # Then development's essentials is not found there, and nothing is stored anywhere
    assert response.status_code == 400, response.text
    assert fields_of(kickplan_error(response)) == ["account_plans.0.plan_key"]
    assert production.get("/v1/companies").json()["data"] == []
    assert kickplan.get("/v1/companies").json()["data"] == []
