"""`/v1/webhooks` used as documented: endpoints created, read, changed, deleted; the signing
secret shown on creation and rotation only; bad input in the error envelope; environments and
keys; deliveries made by fan-out (only to enabled endpoints subscribed to the event), test
events, and retries of failed deliveries.

The test server runs no dispatcher: tests fan out (`services.webhooks.fan_out()`) and send
(`WebhookDispatcher.run_once()`) themselves."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tests.conftest import SettableClock
from tests.support.api import create_feature, create_plan, error_of, parse_utc, rfc3339
from tierkit.server.db import Database
from tierkit.server.services.api_keys import KeyKind
from tierkit.server.services.audit import wrote_outbox
from tierkit.server.services.container import Services
from tierkit.server.services.events import NewEvent
from tierkit.server.workers.webhooks import WebhookDispatcher

ClientFactory = Callable[..., httpx.Client]

REFUSED = "http://127.0.0.1:1/hooks"
"""A receiver nobody listens on: every attempt fails without an answer."""


# Endpoints through the API


def create_endpoint(api: httpx.Client, url: str = REFUSED, **fields: Any) -> dict[str, Any]:
    response = api.post("/v1/webhooks", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    endpoint: dict[str, Any] = response.json()
    return endpoint


def get_endpoint(api: httpx.Client, endpoint_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/webhooks/{endpoint_id}")
    assert response.status_code == 200, response.text
    endpoint: dict[str, Any] = response.json()
    return endpoint


def patch_endpoint(api: httpx.Client, endpoint_id: str, **changes: Any) -> dict[str, Any]:
    response = api.patch(f"/v1/webhooks/{endpoint_id}", json=changes)
    assert response.status_code == 200, response.text
    endpoint: dict[str, Any] = response.json()
    return endpoint


def list_endpoints(api: httpx.Client) -> list[dict[str, Any]]:
    response = api.get("/v1/webhooks")
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    endpoints: list[dict[str, Any]] = response.json()["data"]
    return endpoints


def deliveries(api: httpx.Client, endpoint_id: str, **params: Any) -> list[dict[str, Any]]:
    response = api.get(f"/v1/webhooks/{endpoint_id}/deliveries", params=params)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    found: list[dict[str, Any]] = response.json()["data"]
    return found


def event_types_of(api: httpx.Client, endpoint_id: str) -> list[str]:
    """The event types of the endpoint's deliveries, oldest first."""
    return [d["event_type"] for d in reversed(deliveries(api, endpoint_id))]


def dispatch(services: Services, clock: SettableClock) -> int:
    """Fan out and send what is due once, giving up on the first failure; how many attempts."""
    dispatcher = WebhookDispatcher(
        services.webhooks, clock, poll_seconds=1, timeout_seconds=2, retry_seconds=[]
    )
    try:
        return dispatcher.run_once()
    finally:
        dispatcher.stop()


class Receiver:
    """A local HTTP server answering every POST with 200 and keeping what it got."""

    def __init__(self) -> None:
        received: list[tuple[dict[str, str], bytes]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server_class = type("Server", (ThreadingHTTPServer,), {"request_queue_size": 128})
        self._server = server_class(("127.0.0.1", 0), Handler)  # a backlog as a real server has
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


# Endpoints


def test_create_webhook__201_with_its_fields_and_a_whsec_secret(
    api: httpx.Client, clock: SettableClock
) -> None:
    # When an endpoint is created with every field, and one with only a URL
    created = create_endpoint(
        api,
        "https://example.com/hooks",
        event_types=["plan.created", "feature.created", "plan.created"],
        description="Orders",
        enabled=True,
    )
    only_url = create_endpoint(api, "http://example.com/hooks")

    # Then the reply holds them (each type once), with a new id and a whsec_ secret of 24
    # random bytes
    assert created["id"].startswith("whe_")
    assert {k: v for k, v in created.items() if k not in ("id", "secret")} == {
        "url": "https://example.com/hooks",
        "description": "Orders",
        "event_types": ["feature.created", "plan.created"],
        "enabled": True,
        "disabled_reason": None,
        "failing_since": None,
        "created_at": rfc3339(clock.now),
        "updated_at": rfc3339(clock.now),
    }
    assert created["secret"].startswith("whsec_")
    assert len(created["secret"].removeprefix("whsec_")) == 32  # base64 of 24 bytes
    # and a URL alone means every type, enabled, no description
    assert (only_url["event_types"], only_url["enabled"], only_url["description"]) == (
        [],
        True,
        "",
    )
    assert only_url["id"] != created["id"]
    assert only_url["secret"] != created["secret"]


def test_get_and_list_webhooks__same_fields_and_never_the_secret(api: httpx.Client) -> None:
    # Given two endpoints
    first = create_endpoint(api, "https://example.com/one", description="One")
    second = create_endpoint(api, "https://example.com/two", event_types=["plan.created"])

    # When they are read one by one and listed
    got = [get_endpoint(api, first["id"]), get_endpoint(api, second["id"])]
    listed = list_endpoints(api)

    # Then both show what creation showed, except the secret
    expected = [
        {k: v for k, v in endpoint.items() if k != "secret"} for endpoint in (first, second)
    ]
    assert got == expected
    assert sorted(listed, key=lambda e: e["url"]) == expected
    assert all("secret" not in endpoint for endpoint in [*got, *listed])
    assert "whsec_" not in api.get("/v1/webhooks").text


def test_patch_webhook__changes_only_what_was_sent(api: httpx.Client, clock: SettableClock) -> None:
    # Given an endpoint
    created = create_endpoint(api, "https://example.com/one", description="One")

    # When its URL and event types change an hour later
    clock.advance(hours=1)
    patched = patch_endpoint(
        api, created["id"], url="https://example.com/two", event_types=["company.deleted"]
    )

    # Then those changed, the rest did not, and a GET agrees
    assert (patched["url"], patched["event_types"]) == (
        "https://example.com/two",
        ["company.deleted"],
    )
    assert (patched["description"], patched["enabled"]) == ("One", True)
    assert patched["created_at"] == created["created_at"]
    assert parse_utc(patched["updated_at"]) == clock.now
    assert "secret" not in patched
    assert get_endpoint(api, created["id"]) == patched
    # and disabling, then enabling with every type, follow each change
    disabled = patch_endpoint(api, created["id"], enabled=False)
    enabled = patch_endpoint(api, created["id"], enabled=True, event_types=[])
    assert (disabled["enabled"], disabled["event_types"]) == (False, ["company.deleted"])
    assert (enabled["enabled"], enabled["event_types"]) == (True, [])
    assert (enabled["disabled_reason"], enabled["failing_since"]) == (None, None)


def test_delete_webhook__204_then_gone_with_its_deliveries(
    api: httpx.Client, services: Services
) -> None:
    # Given an endpoint with a delivery
    created = create_endpoint(api)
    path = f"/v1/webhooks/{created['id']}"
    create_feature(api, "sso")
    services.webhooks.fan_out()
    assert len(deliveries(api, created["id"])) == 1

    # When it is deleted
    response = api.delete(path)

    # Then 204, and it is gone: not found, not listed, not deletable again
    assert (response.status_code, response.content) == (204, b"")
    for gone in (api.get(path), api.get(f"{path}/deliveries"), api.delete(path)):
        assert gone.status_code == 404
        assert error_of(gone)["code"] == "webhook_not_found"
    assert list_endpoints(api) == []


def test_rotate_secret__new_secret_shown_once_and_signs_the_next_delivery(
    api: httpx.Client, services: Services, clock: SettableClock, receiver: Receiver
) -> None:
    # Given an endpoint
    created = create_endpoint(api, receiver.url)

    # When its secret is rotated twice
    first = api.post(f"/v1/webhooks/{created['id']}/rotate-secret")
    second = api.post(f"/v1/webhooks/{created['id']}/rotate-secret")

    # Then each reply holds a new whsec_ secret, the endpoint otherwise unchanged
    assert (first.status_code, second.status_code) == (200, 200)
    secrets = [created["secret"], first.json()["secret"], second.json()["secret"]]
    assert all(secret.startswith("whsec_") for secret in secrets)
    assert len(set(secrets)) == 3
    assert {k: v for k, v in second.json().items() if k != "secret"} == {
        k: v for k, v in created.items() if k != "secret"
    }
    # and a GET still never shows it
    assert "secret" not in get_endpoint(api, created["id"])
    assert "whsec_" not in api.get(f"/v1/webhooks/{created['id']}").text
    # and the next delivery verifies with the newest secret only (Standard Webhooks)
    create_feature(api, "sso")
    assert dispatch(services, clock) == 1
    [(headers, body)] = receiver.received
    event = Webhook(secrets[2]).verify(body, headers)
    assert (event["type"], event["data"]["feature"]) == ("feature.created", "sso")
    for old in secrets[:2]:
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(body, headers)


# Bad input


def test_create_webhook__url_not_absolute_http__400_invalid_url_on_url(
    api: httpx.Client,
) -> None:
    for url in ("ftp://example.com/hooks", "/relative/hooks", "example.com/hooks", "https:///x"):
        response = api.post("/v1/webhooks", json={"url": url})

        assert response.status_code == 400, (url, response.text)
        error = error_of(response)
        assert (error["type"], error["code"], error["param"]) == (
            "invalid_request",
            "invalid_url",
            "url",
        ), url
        assert [d["param"] for d in error["details"]] == ["url"]
    assert list_endpoints(api) == []


def test_create_webhook__malformed_bracketed_host__400_invalid_url_not_500(
    api: httpx.Client,
) -> None:
    # When the URL's host is an unclosed or invalid IPv6 literal (urlsplit raises on both)
    urls = ["http://[::1/hooks", "http://[not-an-ip]/hooks"]
    # (each on its own connection: the server drops a connection after a 500)
    close = {"Connection": "close"}
    responses = [api.post("/v1/webhooks", json={"url": url}, headers=close) for url in urls]

    # Then 400 invalid_url on `url`, as for any other bad URL
    assert [r.status_code for r in responses] == [400, 400], [r.text for r in responses]
    for response in responses:
        assert (error_of(response)["code"], error_of(response)["param"]) == ("invalid_url", "url")
    assert list_endpoints(api) == []


def test_create_webhook__unknown_event_type_or_field__400_naming_it(api: httpx.Client) -> None:
    # When the body names an unknown type, `webhook.test` (sent on request, not subscribed
    # to), an unknown field, or no URL
    unknown_type = api.post(
        "/v1/webhooks",
        json={"url": REFUSED, "event_types": ["plan.created", "plan.exploded"]},
    )
    test_type = api.post("/v1/webhooks", json={"url": REFUSED, "event_types": ["webhook.test"]})
    unknown_field = api.post("/v1/webhooks", json={"url": REFUSED, "secret": "whsec_mine"})
    missing_url = api.post("/v1/webhooks", json={"event_types": []})

    # Then each is a 400 validation_failed naming the field (the list item for a type)
    responses = [unknown_type, test_type, unknown_field, missing_url]
    assert [r.status_code for r in responses] == [400] * 4
    errors = [error_of(r) for r in responses]
    assert {(e["type"], e["code"]) for e in errors} == {("invalid_request", "validation_failed")}
    assert [e["param"] for e in errors] == ["event_types.1", "event_types.0", "secret", "url"]
    assert [d["param"] for d in errors[0]["details"]] == ["event_types.1"]
    assert "plan.created" in errors[0]["details"][0]["message"]
    assert list_endpoints(api) == []


def test_create_webhook__enabled_as_a_string__400_like_every_boolean_field(
    api: httpx.Client,
) -> None:
    # A typed boolean is `true` or `false`, never "yes" (as `Flag` fields elsewhere)
    response = api.post("/v1/webhooks", json={"url": REFUSED, "enabled": "no"})

    assert response.status_code == 400, response.text
    assert error_of(response)["param"] == "enabled"


def test_patch_webhook__bad_input__400_and_the_endpoint_unchanged(api: httpx.Client) -> None:
    # Given an endpoint
    created = create_endpoint(api, "https://example.com/hooks", event_types=["plan.created"])
    before = get_endpoint(api, created["id"])
    path = f"/v1/webhooks/{created['id']}"

    # When changes are refused
    bad = [
        (api.patch(path, json={"url": "ftp://example.com/hooks"}), "invalid_url", "url"),
        (api.patch(path, json={"url": None}), "validation_failed", "url"),
        (api.patch(path, json={"event_types": ["nope"]}), "validation_failed", "event_types.0"),
        (api.patch(path, json={"enabled": None}), "validation_failed", "enabled"),
        (api.patch(path, json={"colour": "red"}), "validation_failed", "colour"),
    ]

    # Then each is a 400 naming its field, and nothing changed
    for response, code, param in bad:
        assert response.status_code == 400, response.text
        assert (error_of(response)["code"], error_of(response)["param"]) == (code, param)
    assert get_endpoint(api, created["id"]) == before


# Unknown endpoints, environments, keys


def test_webhook_routes__unknown_endpoint_or_delivery__404_naming_what_is_missing(
    api: httpx.Client,
) -> None:
    # Given two endpoints, the first with a delivery
    first = create_endpoint(api)
    second = create_endpoint(api)
    delivery = api.post(f"/v1/webhooks/{first['id']}/test").json()

    # When the routes name an endpoint that does not exist
    path = "/v1/webhooks/whe_nope"
    no_endpoint = [
        api.get(path),
        api.patch(path, json={"enabled": False}),
        api.delete(path),
        api.post(f"{path}/rotate-secret"),
        api.post(f"{path}/test"),
        api.get(f"{path}/deliveries"),
        api.post(f"{path}/deliveries/{delivery['id']}/retry"),
    ]
    # or a retry names a delivery that is not the endpoint's
    no_delivery = [
        api.post(f"/v1/webhooks/{first['id']}/deliveries/whd_nope/retry"),
        api.post(f"/v1/webhooks/{second['id']}/deliveries/{delivery['id']}/retry"),
    ]

    # Then 404 webhook_not_found, or delivery_not_found
    for response in no_endpoint:
        assert response.status_code == 404, response.request.url
        error = error_of(response)
        assert (error["type"], error["code"]) == ("not_found", "webhook_not_found")
    for response in no_delivery:
        assert response.status_code == 404, response.request.url
        assert error_of(response)["code"] == "delivery_not_found"


def test_webhooks__of_another_environment__404_untouched_and_unlisted(
    api: httpx.Client, production: httpx.Client, services: Services
) -> None:
    # Given an endpoint in each environment, production's with a delivery
    mine = create_endpoint(api)
    theirs = create_endpoint(production, "https://example.com/production")
    delivery = production.post(f"/v1/webhooks/{theirs['id']}/test").json()
    path = f"/v1/webhooks/{theirs['id']}"

    # When development's key reaches for production's endpoint
    responses = [
        api.get(path),
        api.patch(path, json={"url": "https://attacker.example/hooks"}),
        api.post(f"{path}/rotate-secret"),
        api.post(f"{path}/test"),
        api.get(f"{path}/deliveries"),
        api.post(f"{path}/deliveries/{delivery['id']}/retry"),
        api.delete(path),
    ]

    # Then 404 every time, development lists its own only, production's is intact
    assert [r.status_code for r in responses] == [404] * len(responses)
    assert {error_of(r)["code"] for r in responses} == {"webhook_not_found"}
    assert [e["id"] for e in list_endpoints(api)] == [mine["id"]]
    assert get_endpoint(production, theirs["id"])["url"] == "https://example.com/production"
    assert deliveries(production, theirs["id"]) == [delivery]
    # and each environment's changes go to its own endpoints only
    create_feature(api, "sso")
    create_feature(production, "beta")
    services.webhooks.fan_out()
    [my_delivery] = deliveries(api, mine["id"])
    their_change, their_test = deliveries(production, theirs["id"])
    assert my_delivery["payload"]["data"]["feature"] == "sso"
    assert their_change["payload"]["data"]["feature"] == "beta"
    assert their_test == delivery


def test_webhooks__publishable_key__403_secret_key_required(
    api: httpx.Client, make_client: ClientFactory
) -> None:
    endpoint = create_endpoint(api)
    publishable = make_client(kind=KeyKind.PUBLISHABLE)
    path = f"/v1/webhooks/{endpoint['id']}"

    responses = [
        publishable.post("/v1/webhooks", json={"url": REFUSED}),
        publishable.get("/v1/webhooks"),
        publishable.get(path),
        publishable.patch(path, json={"enabled": False}),
        publishable.post(f"{path}/rotate-secret"),
        publishable.post(f"{path}/test"),
        publishable.get(f"{path}/deliveries"),
        publishable.delete(path),
    ]

    for response in responses:
        assert response.status_code == 403, response.request.url
        assert error_of(response)["code"] == "secret_key_required"
    assert get_endpoint(api, endpoint["id"]) == {k: v for k, v in endpoint.items() if k != "secret"}


# Deliveries


def test_deliveries__feature_created__pending_delivery_after_fan_out(
    api: httpx.Client, services: Services, clock: SettableClock
) -> None:
    # Given an endpoint receiving every type, created after a first change
    create_feature(api, "old")
    clock.advance(seconds=1)
    endpoint = create_endpoint(api)

    # When a feature is created
    create_feature(api, "sso", name="SSO")

    # Then nothing is delivered until the events are fanned out
    assert deliveries(api, endpoint["id"]) == []
    assert services.webhooks.fan_out() == 2
    # and then only the change made since the endpoint exists is delivered
    [delivery] = deliveries(api, endpoint["id"])
    # and then one pending delivery of feature.created, not yet attempted
    assert delivery["id"].startswith("whd_")
    assert delivery["event_id"].startswith("msg_")
    assert (delivery["event_type"], delivery["status"], delivery["attempts"]) == (
        "feature.created",
        "pending",
        0,
    )
    assert delivery["attempt_log"] == []
    assert parse_utc(delivery["next_attempt_at"]) == clock.now
    # whose payload is the body as sent: id, type, timestamp, the feature after and before
    payload = delivery["payload"]
    assert (payload["id"], payload["type"], payload["timestamp"]) == (
        delivery["event_id"],
        "feature.created",
        rfc3339(clock.now),
    )
    assert payload["data"]["feature"] == "sso"
    assert payload["data"]["object"]["feature"]["name"] == "SSO"
    assert payload["data"]["previous"] is None
    # and it is fanned out once
    assert services.webhooks.fan_out() == 0
    assert len(deliveries(api, endpoint["id"])) == 1


def test_deliveries__endpoint_of_plan_created__gets_no_feature_events(
    api: httpx.Client, services: Services
) -> None:
    # Given an endpoint subscribed to plan.created only, and one to everything
    plans_only = create_endpoint(api, event_types=["plan.created"])
    everything = create_endpoint(api)

    # When features and a plan are created and changed
    create_feature(api, "sso")
    create_plan(api, "pro")
    api.patch("/v1/plans/pro", json={"name": "Pro 2"}).raise_for_status()
    api.patch("/v1/features/sso", json={"name": "SSO 2"}).raise_for_status()
    services.webhooks.fan_out()

    # Then the first got plan.created only; the other got every event, in order
    assert event_types_of(api, plans_only["id"]) == ["plan.created"]
    assert event_types_of(api, everything["id"]) == [
        "feature.created",
        "plan.created",
        "plan.updated",
        "feature.updated",
    ]


def test_deliveries__disabled_endpoint__gets_none_even_when_enabled_again(
    api: httpx.Client, services: Services
) -> None:
    # Given an endpoint disabled by PATCH, and one created disabled
    endpoint = create_endpoint(api)
    patch_endpoint(api, endpoint["id"], enabled=False)
    created_disabled = create_endpoint(api, enabled=False)

    # When a feature is created and events are fanned out, then the first enabled again
    create_feature(api, "sso")
    services.webhooks.fan_out()
    patch_endpoint(api, endpoint["id"], enabled=True)
    services.webhooks.fan_out()

    # Then neither got anything for the change made while they were disabled
    assert created_disabled["enabled"] is False
    assert deliveries(api, endpoint["id"]) == []
    assert deliveries(api, created_disabled["id"]) == []
    # and the one enabled again gets what comes after
    create_feature(api, "beta")
    services.webhooks.fan_out()
    assert [d["payload"]["data"]["feature"] for d in deliveries(api, endpoint["id"])] == ["beta"]
    assert deliveries(api, created_disabled["id"]) == []


def test_test_webhook__202_pending_webhook_test_delivery_to_that_endpoint_only(
    api: httpx.Client, services: Services, clock: SettableClock
) -> None:
    # Given two endpoints of every type
    endpoint = create_endpoint(api)
    other = create_endpoint(api)

    # When a test is sent to the first
    response = api.post(f"/v1/webhooks/{endpoint['id']}/test")

    # Then 202 with a pending webhook.test delivery naming the endpoint
    assert response.status_code == 202, response.text
    delivery = response.json()
    assert (delivery["event_type"], delivery["status"], delivery["attempts"]) == (
        "webhook.test",
        "pending",
        0,
    )
    assert delivery["payload"]["type"] == "webhook.test"
    assert delivery["payload"]["id"] == delivery["event_id"]
    assert delivery["payload"]["data"] == {"endpoint": endpoint["id"]}
    assert parse_utc(delivery["next_attempt_at"]) == clock.now
    # listed in its deliveries, and no other endpoint gets it, even after fan-out
    services.webhooks.fan_out()
    assert deliveries(api, endpoint["id"]) == [delivery]
    assert deliveries(api, other["id"]) == []


def test_retry__failed_delivery__pending_again_with_its_attempt_kept(
    api: httpx.Client, services: Services, clock: SettableClock
) -> None:
    # Given a delivery to a receiver refusing connections, given up after one attempt
    endpoint = create_endpoint(api, REFUSED)
    create_feature(api, "sso")
    assert dispatch(services, clock) == 1
    [failed] = deliveries(api, endpoint["id"])
    assert (failed["status"], failed["attempts"], failed["next_attempt_at"]) == ("failed", 1, None)
    [attempt] = failed["attempt_log"]
    assert attempt["status_code"] is None
    assert attempt["error"]
    assert attempt["response_excerpt"] == ""
    assert parse_utc(attempt["attempted_at"]) == clock.now

    # When it is retried a minute later
    clock.advance(minutes=1)
    response = api.post(f"/v1/webhooks/{endpoint['id']}/deliveries/{failed['id']}/retry")

    # Then 202: pending, due now, same event, its first attempt kept
    assert response.status_code == 202, response.text
    retried = response.json()
    assert (retried["id"], retried["event_id"]) == (failed["id"], failed["event_id"])
    assert (retried["status"], retried["attempts"]) == ("pending", 1)
    assert parse_utc(retried["next_attempt_at"]) == clock.now
    assert retried["attempt_log"] == failed["attempt_log"]
    assert deliveries(api, endpoint["id"], status="pending") == [retried]
    assert deliveries(api, endpoint["id"], status="failed") == []


def test_retry__then_sent_to_a_receiver__succeeds_with_the_same_webhook_id(
    api: httpx.Client, services: Services, clock: SettableClock, receiver: Receiver
) -> None:
    # Given a delivery that failed
    endpoint = create_endpoint(api, REFUSED)
    create_feature(api, "sso")
    dispatch(services, clock)
    [failed] = deliveries(api, endpoint["id"])

    # When the endpoint points to a receiver, and the delivery is retried and sent
    patch_endpoint(api, endpoint["id"], url=receiver.url)
    api.post(f"/v1/webhooks/{endpoint['id']}/deliveries/{failed['id']}/retry").raise_for_status()
    assert dispatch(services, clock) == 1

    # Then it succeeded on its second attempt, with the event's id as webhook-id
    [delivered] = deliveries(api, endpoint["id"])
    assert (delivered["status"], delivered["attempts"]) == ("succeeded", 2)
    assert [a["status_code"] for a in delivered["attempt_log"]] == [None, 200]
    assert delivered["attempt_log"][1]["response_excerpt"] == "ok"
    [(headers, _)] = receiver.received
    assert headers["webhook-id"] == failed["event_id"]


def test_deliveries__status_filter_and_pages__newest_first(
    api: httpx.Client, services: Services, clock: SettableClock
) -> None:
    # Given a failed delivery, then two pending ones
    endpoint = create_endpoint(api)
    create_feature(api, "one")
    dispatch(services, clock)
    create_feature(api, "two")
    create_feature(api, "three")
    services.webhooks.fan_out()

    def features(found: list[dict[str, Any]]) -> list[str]:
        return [d["payload"]["data"]["feature"] for d in found]

    # When they are filtered by status and read one at a time
    path = f"/v1/webhooks/{endpoint['id']}/deliveries"
    first = api.get(path, params={"limit": 1}).json()
    second = api.get(path, params={"limit": 1, "cursor": first["next_cursor"]}).json()
    third = api.get(path, params={"limit": 1, "cursor": second["next_cursor"]}).json()

    # Then each status selects its own, and the pages are newest first without gaps
    assert features(deliveries(api, endpoint["id"], status="failed")) == ["one"]
    assert features(deliveries(api, endpoint["id"], status="pending")) == ["three", "two"]
    assert deliveries(api, endpoint["id"], status="succeeded") == []
    assert features(first["data"] + second["data"] + third["data"]) == ["three", "two", "one"]
    assert third["next_cursor"] is None
    # and a status that does not exist is a 400 naming `status`
    unknown = api.get(path, params={"status": "lost"})
    assert unknown.status_code == 400
    assert (error_of(unknown)["code"], error_of(unknown)["param"]) == (
        "validation_failed",
        "status",
    )


def test_outbox_flag__usage_commits_say_none__a_new_company_says_so__once(
    database: Database, services: Services
) -> None:
    # The served app wakes its webhook dispatcher on exactly these answers: ingestion's many
    # commits must not set it polling the outbox after each batch.
    said: list[bool] = []
    database.on_write_commit(after=lambda session: said.append(wrote_outbox(session)))
    environment_id = services.environments.get_environment("development").id

    services.events.ingest(environment_id, [NewEvent("track", "acme", "api_call")])  # created
    services.events.ingest(environment_id, [NewEvent("track", "acme", "api_call")])
    services.events.ingest(environment_id, [NewEvent("track", "acme", "api_call", quantity=2)])

    assert said == [True, False, False]
