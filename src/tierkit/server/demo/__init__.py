"""The demo: a small SaaS with every kind of feature, and customers on it, loaded by `make run`.

Entries are parsed by the API's own request schemas and stored by the services, so the demo goes
through exactly the validation an API client's data would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from typing import Any

import yaml

from tierkit.server.api.schemas.catalog import CatalogFile
from tierkit.server.api.schemas.customers import (
    CompanyUpsert,
    OverrideBody,
    SubscriptionCreate,
    UserUpsert,
)
from tierkit.server.api.schemas.usage import TrackEvent
from tierkit.server.services.container import Services


@dataclass(frozen=True, slots=True)
class DemoLoaded:
    features: int
    plans: int
    companies: int = 0
    users: int = 0


def _read(name: str) -> dict[str, Any]:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def read_demo_catalog() -> dict[str, Any]:
    return _read("catalog.yaml")


def is_catalog_empty(services: Services, environment_id: str) -> bool:
    no_features = not services.features.list_features(environment_id, limit=1).items
    return no_features and not services.plans.list_plans(environment_id, limit=1).items


def load_demo_catalog(services: Services, environment_id: str) -> DemoLoaded:
    """Apply the demo's catalog file to the environment (as `tierkit catalog apply` would),
    then create its customers."""
    document = CatalogFile.model_validate(read_demo_catalog()).to_document()
    services.catalog.apply(environment_id, document)
    companies, users = load_demo_customers(services, environment_id)
    return DemoLoaded(len(document.features), len(document.plans), companies, users)


def load_demo_customers(services: Services, environment_id: str) -> tuple[int, int]:
    """Create the demo's companies (with plans, add-ons, overrides) and users."""
    data = _read("customers.yaml")
    for entry in data["companies"]:
        _load_company(services, environment_id, entry)
    for entry in data["users"]:
        user = UserUpsert.model_validate({k: v for k, v in entry.items() if k != "key"})
        services.users.upsert_user(environment_id, entry["key"], user.provided())
    return len(data["companies"]), len(data["users"])


def _load_company(services: Services, environment_id: str, entry: dict[str, Any]) -> None:
    key = entry["key"]
    company = CompanyUpsert.model_validate({k: entry[k] for k in ("name", "traits") if k in entry})
    services.customers.upsert_company(environment_id, key, company.provided())
    subscriptions: list[dict[str, Any]] = []
    if "plan" in entry:
        base = {"plan": entry["plan"], "price_interval": entry.get("price_interval")}
        subscriptions.append(base)
    for body in subscriptions + entry.get("add_ons", []):
        request = SubscriptionCreate.model_validate(body).to_request()
        services.subscriptions.create_subscription(environment_id, key, request)
    for item in entry.get("overrides", []):
        fields = {k: v for k, v in item.items() if k not in ("feature", "expires_in_days")}
        if "expires_in_days" in item:
            expires_at = services.clock() + timedelta(days=item["expires_in_days"])
            fields["expires_at"] = expires_at.isoformat()
        override = OverrideBody.model_validate(fields).to_override(item["feature"])
        services.overrides.put_override(environment_id, key, override)
    events = [
        TrackEvent.model_validate({"company": key, **item}).to_new_event()
        for item in entry.get("usage", [])
    ]
    services.events.ingest(environment_id, events)
    for gauge, value in entry.get("gauges", {}).items():
        services.events.set_gauge(environment_id, gauge, key, float(value))
