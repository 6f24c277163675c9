"""Each environment's catalog compiled for the evaluator, built once, dropped on any change.

Checks read it from memory: no query per feature, plan or rule. Every catalog write (features,
plans, entitlements, rules) invalidates its environment in this process; other processes learn
of changes with the scale-out work (issue 11).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy import select

from tierkit.engine.codec import rule_from_json
from tierkit.engine.evaluate import Catalog
from tierkit.server.db import Database
from tierkit.server.db.tables import FeatureRow, PlanRow
from tierkit.server.services.rows import to_feature, to_plan

P = ParamSpec("P")
R = TypeVar("R")


class CatalogCache:
    def __init__(self, database: Database) -> None:
        self._db = database
        self._catalogs: dict[str, Catalog] = {}
        self._generations: dict[str, int] = {}
        self._lock = threading.Lock()

    def get(self, environment_id: str) -> Catalog:
        catalog = self._catalogs.get(environment_id)
        if catalog is not None:
            return catalog
        generation = self._generations.get(environment_id, 0)
        catalog = self._build(environment_id)
        with self._lock:
            # A change committed while building makes this catalog stale: don't keep it.
            if self._generations.get(environment_id, 0) == generation:
                self._catalogs[environment_id] = catalog
        return catalog

    def invalidate(self, environment_id: str) -> None:
        with self._lock:
            self._generations[environment_id] = self._generations.get(environment_id, 0) + 1
            self._catalogs.pop(environment_id, None)

    def _build(self, environment_id: str) -> Catalog:
        with self._db.read() as session:
            features = session.scalars(
                select(FeatureRow).where(FeatureRow.environment_id == environment_id)
            ).all()
            plans = session.scalars(
                select(PlanRow).where(PlanRow.environment_id == environment_id)
            ).all()
            return Catalog(
                features={row.key: to_feature(row) for row in features},
                plans={row.key: to_plan(row) for row in plans},
                rules={
                    row.key: tuple(rule_from_json(rule) for rule in row.rules)
                    for row in features
                    if row.rules
                },
            )


class _ChangesCatalog(Protocol):
    def _catalog_changed(self, environment_id: str) -> None: ...


S = TypeVar("S", bound=_ChangesCatalog)


def changes_catalog(
    method: Callable[Concatenate[S, str, P], R],
) -> Callable[Concatenate[S, str, P], R]:
    """Mark a service method (environment first) as a catalog write: once its transaction has
    ended, the environment's compiled catalog is dropped."""

    @functools.wraps(method)
    def wrapper(self: S, environment_id: str, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, environment_id, *args, **kwargs)
        finally:
            self._catalog_changed(environment_id)

    return wrapper
