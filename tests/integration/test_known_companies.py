"""Ingestion reuses the company ids it has seen committed (`KnownCompanies`): an id gone
stale, its company deleted by another process, must never take events."""

from __future__ import annotations

from tierkit.server.db import Database
from tierkit.server.services.container import Services
from tierkit.server.services.events import NewEvent


def _track(services: Services, environment_id: str, key: str) -> int:
    event = NewEvent("track", "acme", "api_call", idempotency_key=key)
    return services.events.ingest(environment_id, [event]).accepted


def _acme_events(services: Services, environment_id: str) -> list[str | None]:
    page = services.events.list_events(environment_id, company="acme")
    return [record.idempotency_key for record in page.items]


def test_track__company_deleted_by_another_process__created_anew_and_only_new_events_its(
    database: Database,
) -> None:
    ingesting, deleting = Services.build(database), Services.build(database)
    environment_id = ingesting.environments.get_environment("development").id
    assert _track(ingesting, environment_id, "before") == 1  # acme's id is known here now

    deleting.companies.delete_company(environment_id, "acme")
    accepted = _track(ingesting, environment_id, "after")

    assert accepted == 1
    assert _acme_events(deleting, environment_id) == ["after"]
    assert _acme_events(ingesting, environment_id) == ["after"]


def test_track__known_company__its_events_go_to_it_across_batches(database: Database) -> None:
    services = Services.build(database)
    environment_id = services.environments.get_environment("development").id

    for key in ("one", "two", "three"):
        assert _track(services, environment_id, key) == 1

    assert _acme_events(services, environment_id) == ["three", "two", "one"]
    assert len(services.companies.list_companies(environment_id).items) == 1
