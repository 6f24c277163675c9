"""`/metrics`: Prometheus's text, parsed by prometheus_client's own parser, and its counters
moving as requests are made, over real HTTP on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.api import create_feature, create_plan
from tests.support.live_server import LiveServer
from tierkit.server.app import create_app
from tierkit.server.services.container import Services
from tierkit.server.settings import Settings

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: httpx.Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_metrics__requests_checks_events_and_cache__counters_move(
    api: httpx.Client, anonymous: httpx.Client
) -> None:
    # Given a catalog with a plan and a company on it
    create_feature(api, "sso")
    create_feature(api, "api_calls", "metered")
    create_plan(
        api, "pro", [{"feature": "sso", "value": True}, {"feature": "api_calls", "value": 2}]
    )
    assert api.put("/v1/companies/acme", json={"plan": "pro"}).status_code in (200, 201)
    before = scrape(anonymous)

    # When the company is checked 3 times (a plan's yes), a feature is read by its key,
    # 3 events are sent (one a repeat) and an unknown route is called
    for _ in range(3):
        assert api.post("/v1/check", json={"company": "acme", "feature": "sso"}).json()["allowed"]
    assert api.get("/v1/features/sso").status_code == 200
    events = [
        {"event": "api_calls", "company": "acme", "idempotency_key": "e1"},
        {"event": "api_calls", "company": "acme", "idempotency_key": "e2"},
        {"event": "api_calls", "company": "acme", "idempotency_key": "e1"},
    ]
    assert api.post("/v1/events", json={"events": events}).json() == {
        "accepted": 2,
        "duplicates": 1,
    }
    # (2 of a limit of 2 used: the next unit is over the limit)
    over = api.post("/v1/check", json={"company": "acme", "feature": "api_calls"}).json()
    assert over["reason"] == "limit_exceeded"
    assert api.get("/v1/no-such-route").status_code == 404
    after = scrape(anonymous)

    # Then requests are counted by route template and status, and timed
    assert (
        moved(
            before,
            after,
            "tierkit_http_requests_total",
            method="POST",
            route="/v1/check",
            status="200",
        )
        == 4
    )
    assert (
        moved(
            before,
            after,
            "tierkit_http_requests_total",
            method="GET",
            route="/v1/features/{key}",
            status="200",
        )
        == 1
    )
    assert (
        moved(
            before,
            after,
            "tierkit_http_requests_total",
            method="POST",
            route="/v1/events",
            status="202",
        )
        == 1
    )
    assert (
        moved(
            before,
            after,
            "tierkit_http_requests_total",
            method="GET",
            route="unmatched",
            status="404",
        )
        == 1
    )
    assert (
        moved(
            before,
            after,
            "tierkit_http_request_duration_seconds_count",
            method="POST",
            route="/v1/check",
        )
        == 4
    )
    assert not any("/v1/features/sso" in dict(labels).get("route", "") for _, labels in after)
    # And decisions by reason and outcome
    assert moved(before, after, "tierkit_check_decisions_total", reason="plan", allowed="true") == 3
    assert (
        moved(
            before, after, "tierkit_check_decisions_total", reason="limit_exceeded", allowed="false"
        )
        == 1
    )
    # And events stored, repeats apart
    assert moved(before, after, "tierkit_events_ingested_total") == 2
    assert moved(before, after, "tierkit_events_duplicate_total") == 1
    # And cache reads: the first check reads the company's state, the next two hit it
    assert moved(before, after, "tierkit_cache_reads_total", cache="company", result="miss") >= 1
    assert moved(before, after, "tierkit_cache_reads_total", cache="company", result="hit") >= 2
    assert moved(before, after, "tierkit_cache_reads_total", cache="catalog", result="hit") >= 3
    # And /metrics itself needs no key by default, and counts its own scrapes
    assert (
        moved(
            before,
            after,
            "tierkit_http_requests_total",
            method="GET",
            route="/metrics",
            status="200",
        )
        == 1
    )


def test_metrics__webhook_backlog__read_from_the_database_at_each_scrape(
    api: httpx.Client, anonymous: httpx.Client, services: Services
) -> None:
    # Given an enabled webhook endpoint
    response = api.post("/v1/webhooks", json={"url": "http://127.0.0.1:1/hooks"})
    assert response.status_code == 201, response.text
    before = scrape(anonymous)

    # When a feature is created (an event in the outbox, no dispatcher in this test's server)
    create_feature(api, "sso")
    queued = scrape(anonymous)
    # And then fanned out into a delivery to the endpoint
    assert services.webhooks.fan_out() >= 1
    fanned = scrape(anonymous)

    # Then the backlog shows the event waiting, then its delivery pending
    assert moved(before, queued, "tierkit_webhook_unsent_events") >= 1
    assert value(fanned, "tierkit_webhook_unsent_events") == 0
    assert moved(before, fanned, "tierkit_webhook_pending_deliveries") >= 1


@pytest.fixture
def guarded_url(live_server: LiveServer, database_url: str) -> Iterator[str]:
    app = create_app(Settings(database_url=database_url, metrics_token="s3cret-scrape"))
    live_server.mount(app)
    yield live_server.url
    live_server.mount(None)
    app.state.services.database.dispose()


def test_metrics__token_set__only_its_bearer_reads_them(guarded_url: str) -> None:
    with httpx.Client(base_url=guarded_url, timeout=30) as client:
        refused = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        read = client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "metrics_token_required"
    assert wrong.status_code == 401
    assert read.status_code == 200
    assert "tierkit_http_requests_total" in read.text


# These two read no data: one app on an unused SQLite path, not one per database.


def test_metrics__turned_off__no_route(live_server: LiveServer, tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/unused.db", metrics=False))
    live_server.mount(app)
    try:
        assert httpx.get(f"{live_server.url}/metrics", timeout=30).status_code == 404
    finally:
        live_server.mount(None)
        app.state.services.database.dispose()


def test_metrics__not_in_the_openapi(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/unused.db"))
    try:
        assert "/metrics" not in app.openapi()["paths"]
        assert any(getattr(route, "path", None) == "/metrics" for route in app.routes)
    finally:
        app.state.services.database.dispose()


def test_metrics__unknown_method_or_path__bounded_labels(
    api: httpx.Client, anonymous: httpx.Client
) -> None:
    # When clients send made-up methods and paths
    for number, method in enumerate(("PROPFIND", "MKCOL", "COPY")):  # WebDAV's, for instance
        assert api.request(method, "/v1/check").status_code == 405
        assert api.get(f"/v1/nothing-{number}").status_code == 404
    samples = scrape(anonymous)
    # Then they are counted under `other` and `unmatched`, never as labels of their own
    labels = [dict(pairs) for name, pairs in samples if name == "tierkit_http_requests_total"]
    assert not any(label["method"] in ("PROPFIND", "MKCOL", "COPY") for label in labels)
    assert not any("nothing" in label["route"] for label in labels)
    assert (
        value(
            samples, "tierkit_http_requests_total", method="other", route="/v1/check", status="405"
        )
        == 3
    )
    assert (
        value(samples, "tierkit_http_requests_total", method="GET", route="unmatched", status="404")
        == 3
    )
