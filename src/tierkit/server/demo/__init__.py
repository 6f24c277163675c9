"""The demo catalog: a small SaaS with every kind of feature, loaded by `make run`.

Entries are parsed by the API's own request schemas and stored by the catalog services, so the
demo goes through exactly the validation an API client's catalog would.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from tierkit.server.api.schemas.features import FeatureCreate
from tierkit.server.api.schemas.plans import PlanCreate
from tierkit.server.services.container import Services


@dataclass(frozen=True, slots=True)
class DemoLoaded:
    features: int
    plans: int


def read_demo_catalog() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("catalog.yaml").read_text(encoding="utf-8")
    catalog: dict[str, Any] = yaml.safe_load(text)
    return catalog


def is_catalog_empty(services: Services, environment_id: str) -> bool:
    no_features = not services.features.list_features(environment_id, limit=1).items
    return no_features and not services.plans.list_plans(environment_id, limit=1).items


def load_demo_catalog(services: Services, environment_id: str) -> DemoLoaded:
    """Create the demo's features and plans in the environment (which must not have them)."""
    catalog = read_demo_catalog()
    features = [FeatureCreate.model_validate(f).to_feature() for f in catalog["features"]]
    plans = [PlanCreate.model_validate(p).to_plan() for p in catalog["plans"]]
    for feature in features:
        services.features.create_feature(environment_id, feature)
    for plan in plans:
        services.plans.create_plan(environment_id, plan)
    return DemoLoaded(features=len(features), plans=len(plans))
