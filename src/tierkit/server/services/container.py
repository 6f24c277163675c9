"""All services over one database and clock: what app.py and the CLI build and hand out."""

from __future__ import annotations

from dataclasses import dataclass

from tierkit.server.db import Database
from tierkit.server.services.api_keys import ApiKeyService
from tierkit.server.services.clock import Clock, system_clock
from tierkit.server.services.environments import EnvironmentService
from tierkit.server.services.features import FeatureService
from tierkit.server.services.plans import PlanService


@dataclass(frozen=True, slots=True)
class Services:
    database: Database
    environments: EnvironmentService
    api_keys: ApiKeyService
    features: FeatureService
    plans: PlanService

    @classmethod
    def build(cls, database: Database, clock: Clock = system_clock) -> Services:
        return cls(
            database=database,
            environments=EnvironmentService(database, clock),
            api_keys=ApiKeyService(database, clock),
            features=FeatureService(database, clock),
            plans=PlanService(database, clock),
        )
