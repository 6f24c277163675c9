"""Environments: every object belongs to one; keys see only their own."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tierkit.engine.catalog import KEY_PATTERN
from tierkit.server.db import Database
from tierkit.server.db.ids import new_id
from tierkit.server.db.tables import EnvironmentRow
from tierkit.server.services.clock import Clock
from tierkit.server.services.errors import Conflict, InvalidRequest, NotFound

DEFAULT_ENVIRONMENTS = ("development", "production")


@dataclass(frozen=True, slots=True)
class Environment:
    id: str
    name: str
    created_at: datetime


def _to_environment(row: EnvironmentRow) -> Environment:
    return Environment(id=row.id, name=row.name, created_at=row.created_at)


def find_environment_row(session: Session, name: str) -> EnvironmentRow:
    row = session.scalar(select(EnvironmentRow).where(EnvironmentRow.name == name))
    if row is None:
        raise NotFound(
            f"There is no environment {name!r}.", code="environment_not_found", param="environment"
        )
    return row


class EnvironmentService:
    def __init__(self, database: Database, clock: Clock) -> None:
        self._db = database
        self._clock = clock

    def list_environments(self) -> list[Environment]:
        with self._db.read() as session:
            rows = session.scalars(select(EnvironmentRow).order_by(EnvironmentRow.created_at))
            return [_to_environment(row) for row in rows]

    def get_environment(self, name: str) -> Environment:
        with self._db.read() as session:
            return _to_environment(find_environment_row(session, name))

    def create_environment(self, name: str) -> Environment:
        if not re.fullmatch(KEY_PATTERN, name):
            raise InvalidRequest(
                f"{name!r} is not a valid environment name: use lowercase letters, digits and "
                "`_.:-`, starting with a letter or digit, at most 64 characters.",
                code="invalid_key",
                param="name",
            )
        with self._db.write() as session:
            if session.scalar(select(EnvironmentRow.id).where(EnvironmentRow.name == name)):
                raise Conflict(
                    f"The environment {name!r} already exists.",
                    code="environment_exists",
                    param="name",
                )
            row = EnvironmentRow(id=new_id("env"), name=name, created_at=self._clock())
            session.add(row)
            session.flush()
            return _to_environment(row)

    def ensure_default_environments(self) -> list[Environment]:
        """Create `development` and `production` where missing; returns those created."""
        with self._db.write() as session:
            existing = set(session.scalars(select(EnvironmentRow.name)))
            created = [
                EnvironmentRow(id=new_id("env"), name=name, created_at=self._clock())
                for name in DEFAULT_ENVIRONMENTS
                if name not in existing
            ]
            session.add_all(created)
            session.flush()
            return [_to_environment(row) for row in created]
