"""The compatibility facades over real HTTP on both databases: each answers bad input and
domain errors with a 4xx in its service's envelope (Schematic's `{"error": "..."}`, Commet's
`{"success": false, "error": {...}}`), takes keys as those clients send them, and Salable's
plan features carry the fields of its docs for a demo plan."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.api import assert_is_a_sentence, create_feature, create_plan, error_of, used_of
from tierkit.server.demo import load_demo_catalog
from tierkit.server.services.api_keys import KeyKind
from tierkit.server.services.container import Services

SCHEMATIC = "/compat/schematic"
COMMET = "/compat/commet/api/v1"


@pytest.fixture
def catalog(api: httpx.Client) -> httpx.Client:
    create_feature(api, "sso")
    create_feature(api, "api_calls", "metered", meter={"event": "api_call", "aggregation": "sum"})
    create_plan(
        api, "pro", [{"feature": "sso", "value": True}, {"feature": "api_calls", "value": 10}]
    )
    api.put("/v1/companies/acme", json={"plan": "pro"}).raise_for_status()
    return api


def schematic_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "code", "details"}, body
    assert_is_a_sentence(body["error"])
    return body


def commet_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    error: dict[str, Any] = body["error"]
    assert set(error) == {"type", "code", "message", "param", "details", "doc_url"}
    assert_is_a_sentence(error["message"])
    return error


# Schematic


def test_schematic_auth__key_in_its_header__answers(
    catalog: httpx.Client, anonymous: httpx.Client, make_key: Any
) -> None:
    headers = {"X-Schematic-Api-Key": make_key()}
    body = {"company": {"id": "acme"}, "user": {"id": "someone-new"}, "preflight": None}

    reply = anonymous.post(f"{SCHEMATIC}/flags/sso/check", json=body, headers=headers)

    assert reply.status_code == 200, reply.text
    assert reply.json()["data"]["value"] is True
    assert reply.json()["params"] == {"company": {"id": "acme"}, "user": {"id": "someone-new"}}


def test_schematic_errors__missing_or_unknown_key__401_in_its_shape(
    anonymous: httpx.Client,
) -> None:
    missing = anonymous.post(f"{SCHEMATIC}/flags/check", json={})
    unknown = anonymous.post(
        f"{SCHEMATIC}/flags/check", json={}, headers={"X-Schematic-Api-Key": "tk_sec_unknown"}
    )

    assert schematic_error(missing, 401)["code"] == "missing_api_key"
    assert schematic_error(unknown, 401)["code"] != "missing_api_key"


def test_schematic_errors__bad_key_map_or_not_json__400_names_each_field(
    catalog: httpx.Client,
) -> None:
    reply = catalog.post(f"{SCHEMATIC}/flags/sso/check", json={"company": {"id": 5}, "user": "u1"})
    broken = catalog.post(
        f"{SCHEMATIC}/flags/check",
        content=b'{"company": ',
        headers={"Content-Type": "application/json"},
    )

    body = schematic_error(reply, 400)
    assert body["code"] == "validation_failed"
    assert {d["param"] for d in body["details"]} == {"company.id", "user"}
    assert schematic_error(broken, 400)["code"] == "invalid_json"


def test_schematic_errors__unknown_flag__404(catalog: httpx.Client) -> None:
    reply = catalog.post(f"{SCHEMATIC}/flags/nope/check", json={"company": {"id": "acme"}})

    assert schematic_error(reply, 404)["code"] == "feature_not_found"


def test_schematic_errors__publishable_key__checks_but_no_writes(
    catalog: httpx.Client, make_client: Any
) -> None:
    browser = make_client(kind=KeyKind.PUBLISHABLE)

    checked = browser.post(f"{SCHEMATIC}/flags/check", json={"company": {"id": "acme"}})
    upsert = browser.post(f"{SCHEMATIC}/companies", json={"keys": {"id": "acme"}})

    assert checked.status_code == 200
    assert schematic_error(upsert, 403)["code"] == "secret_key_required"


def test_schematic_batch__one_invalid_event__400_naming_it_and_nothing_stored(
    catalog: httpx.Client,
) -> None:
    events = [
        {"type": "track", "body": {"event": "api_call", "company": {"id": "acme"}}},
        {"type": "track", "body": {"event": "api_call", "user": {"id": "u1"}}},
        {"type": "shout", "body": {}},
    ]

    reply = catalog.post(f"{SCHEMATIC}/batch", json={"events": events})

    body = schematic_error(reply, 400)
    params = {d["param"] for d in body["details"]}
    assert "events.1.track.body.company" in params
    assert any(p.startswith("events.2") for p in params)
    assert used_of(catalog, "acme", "api_calls") == 0


def test_schematic_batch__empty_or_over_100__400(catalog: httpx.Client) -> None:
    empty = catalog.post(f"{SCHEMATIC}/batch", json={"events": []})
    over = catalog.post(f"{SCHEMATIC}/batch", json={"events": [{"type": "track"}] * 101})

    assert schematic_error(empty, 400)["details"][0]["param"] == "events"
    assert schematic_error(over, 400)["details"][0]["param"] == "events"


def test_schematic_batch__repeated_key_and_flag_checks__counted_once_and_ignored(
    catalog: httpx.Client,
) -> None:
    track = {
        "type": "track",
        "idempotency_key": "k-1",
        "body": {"event": "api_call", "company": {"id": "acme"}, "quantity": 3},
    }
    check = {"type": "flag_check", "body": {"flag_key": "sso"}}

    first = catalog.post(f"{SCHEMATIC}/batch", json={"events": [track, track, check]})
    again = catalog.post(f"{SCHEMATIC}/batch", json={"events": [track]})

    assert first.json() == {"accepted": 1, "duplicates": 1, "ignored": 1}
    assert again.json() == {"accepted": 0, "duplicates": 1, "ignored": 0}
    assert used_of(catalog, "acme", "api_calls") == 3


def test_schematic_batch__trusted_client_clock__event_counts_at_its_sent_at(
    catalog: httpx.Client,
) -> None:
    track = {"event": "api_call", "company": {"id": "acme"}}
    events = [
        {
            "type": "track",
            "sent_at": "2026-11-20T08:00:00",
            "trusted_client_clock": True,
            "body": track,
        },
        {"type": "track", "sent_at": "2026-11-20T08:00:00+02:00", "body": track},
    ]

    reply = catalog.post(f"{SCHEMATIC}/batch", json={"events": events})

    assert reply.status_code == 200, reply.text
    stored = catalog.get("/v1/events", params={"company": "acme"}).json()["data"]
    times = sorted(e["timestamp"] for e in stored)
    assert times[0] == "2026-11-20T08:00:00Z"
    assert times[1] != "2026-11-20T06:00:00Z"


def test_schematic_keys__several_keys__id_wins_else_first_name(catalog: httpx.Client) -> None:
    by_id = catalog.post(
        f"{SCHEMATIC}/companies", json={"keys": {"stripe": "cus_1", "id": "acme"}, "name": "A"}
    )
    by_name = catalog.post(
        f"{SCHEMATIC}/companies", json={"keys": {"stripe": "cus_2", "crm": "c-2"}, "name": "B"}
    )

    assert by_id.json()["data"]["id"] == "acme"
    assert by_name.json()["data"]["id"] == "c-2"
    assert catalog.get("/v1/companies/c-2").json()["name"] == "B"


def test_schematic_upsert__nested_trait__400_not_500(catalog: httpx.Client) -> None:
    reply = catalog.post(
        f"{SCHEMATIC}/companies", json={"keys": {"id": "acme"}, "traits": {"a": {"b": 1}}}
    )

    assert schematic_error(reply, 400)["details"][0]["param"].startswith("traits.a")


# Commet


def test_commet_auth__key_with_or_without_its_prefix__answers(
    catalog: httpx.Client, anonymous: httpx.Client, make_key: Any
) -> None:
    key = make_key()
    path = f"{COMMET}/feature-access/sso"

    prefixed = anonymous.get(
        path, params={"customerId": "acme"}, headers={"x-api-key": f"ck_{key}"}
    )
    plain = anonymous.get(path, params={"customerId": "acme"}, headers={"x-api-key": key})

    assert prefixed.status_code == plain.status_code == 200
    assert prefixed.json()["success"] is True
    assert prefixed.json()["data"]["enabled"] is True


def test_commet_errors__no_key__401_in_its_envelope(anonymous: httpx.Client) -> None:
    reply = anonymous.get(f"{COMMET}/feature-access", params={"customerId": "acme"})

    assert commet_error(reply, 401)["type"] == "authentication"


def test_commet_errors__missing_and_bad_fields__validation_error_with_fields(
    catalog: httpx.Client,
) -> None:
    missing = catalog.get(f"{COMMET}/feature-access/sso")
    bad = catalog.post(
        f"{COMMET}/usage/events",
        json={"customerId": "acme", "featureCode": "api_calls", "value": -1, "timestamp": 5},
    )

    assert commet_error(missing, 400)["details"] == [
        {"field": "customerId", "message": "This field is required."}
    ]
    error = commet_error(bad, 400)
    assert error["code"] == "validation_error"
    assert {d["field"] for d in error["details"]} == {"value", "timestamp"}
    assert used_of(catalog, "acme", "api_calls") == 0


def test_commet_errors__domain_errors__their_codes(catalog: httpx.Client) -> None:
    unknown = catalog.post(
        f"{COMMET}/usage/check", json={"customerId": "acme", "featureCode": "nope"}
    )
    not_metered = catalog.post(
        f"{COMMET}/usage/events", json={"customerId": "acme", "featureCode": "sso"}
    )
    taken = catalog.post(f"{COMMET}/plans", json={"name": "Pro again", "code": "pro"})

    assert commet_error(unknown, 404)["code"] == "feature_not_found"
    assert commet_error(not_metered, 400)["code"] == "feature_not_metered"
    assert commet_error(taken, 409)["type"] == "conflict"


def test_commet_plan_create__documented_path__the_seed_shape(catalog: httpx.Client) -> None:
    reply = catalog.post(
        f"{COMMET}/plans/manage",
        json={"name": "Team", "code": "team", "isPublic": False, "planGroupId": "teams"},
    )

    assert reply.status_code == 201, reply.text
    data = reply.json()["data"]
    assert (data["code"], data["isPublic"], data["planGroupId"]) == ("team", False, "teams")
    assert {"features", "prices", "exchangeRates", "createdAt"} <= set(data)
    stored = catalog.get("/v1/plans/team").json()
    assert (stored["visibility"], stored["group"]) == ("private", "teams")


# Salable

SALABLE_FIELDS = {
    "planUuid", "featureUuid", "value", "enumValueUuid", "isUnlimited", "updatedAt", "feature",
    "enumValue",
}  # fmt: skip
SALABLE_FEATURE_FIELDS = {
    "uuid", "name", "description", "displayName", "variableName", "status", "visibility",
    "valueType", "defaultValue", "showUnlimited", "productUuid", "updatedAt",
    "featureEnumOptions",
}  # fmt: skip


def test_salable_plan_features__demo_plan__the_fields_of_its_docs(
    services: Services, api: httpx.Client
) -> None:
    load_demo_catalog(services, services.environments.get_environment("development").id)
    plan = api.get("/v1/plans/pro").json()

    reply = api.get("/compat/salable/plans/pro/features")

    assert reply.status_code == 200, reply.text
    rows = {row["feature"]["variableName"]: row for row in reply.json()}
    assert all(set(row) == SALABLE_FIELDS for row in rows.values())
    assert all(set(row["feature"]) == SALABLE_FEATURE_FIELDS for row in rows.values())
    assert {row["planUuid"] for row in rows.values()} == {plan["id"]}
    projects = rows["projects"]
    assert (projects["value"], projects["isUnlimited"]) == ("25", False)
    assert (projects["feature"]["valueType"], projects["feature"]["status"]) == (
        "numerical",
        "ACTIVE",
    )
    assert rows["audit_log"]["value"] == "true"
    assert rows["exports"]["isUnlimited"] is True
    support = rows["support"]
    assert (support["value"], support["enumValue"]["name"]) == ("", "Live chat")
    assert support["enumValueUuid"] == support["enumValue"]["uuid"]
    assert len(support["feature"]["featureEnumOptions"]) == 4


def test_salable_plan_features__unknown_plan__404_envelope(api: httpx.Client) -> None:
    reply = api.get("/compat/salable/plans/nope/features")

    assert reply.status_code == 404
    assert error_of(reply)["code"] == "plan_not_found"
