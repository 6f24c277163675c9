"""API keys: created shown once, stored as a SHA-256 hash, revoked softly."""

from __future__ import annotations

import hashlib
import secrets
import string
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update

from tierkit.server.db import Database
from tierkit.server.db.ids import new_id
from tierkit.server.db.tables import ApiKeyRow, EnvironmentRow
from tierkit.server.services.audit import ChangeLog
from tierkit.server.services.clock import Clock
from tierkit.server.services.environments import find_environment_row
from tierkit.server.services.errors import AuthenticationFailed, NotFound
from tierkit.server.services.pagination import Page, paginate, to_page

_KEY_ALPHABET = string.ascii_letters + string.digits
_KEY_LENGTH = 40  # about 238 bits of randomness
_LAST_USED_RESOLUTION = timedelta(minutes=10)
AUTH_CACHE_SECONDS = 5.0
"""How long a process trusts a key it has looked up: a revocation reaches other processes within
this bound (at once in the process that revoked it)."""
_AUTH_CACHE_SIZE = 10_000


class KeyKind(StrEnum):
    SECRET = "secret"  # noqa: S105 - a kind of key, not a key
    PUBLISHABLE = "publishable"


_PREFIXES = {KeyKind.SECRET: "tk_sec_", KeyKind.PUBLISHABLE: "tk_pub_"}


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    environment: str
    kind: KeyKind
    name: str
    hint: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key and the environment it opens."""

    key_id: str
    kind: KeyKind
    environment_id: str
    environment: str


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _to_api_key(row: ApiKeyRow, environment: str) -> ApiKey:
    return ApiKey(
        id=row.id,
        environment=environment,
        kind=KeyKind(row.kind),
        name=row.name,
        hint=row.hint,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


class ApiKeyService:
    def __init__(self, database: Database, clock: Clock) -> None:
        self._db = database
        self._clock = clock
        # key hash -> (principal, monotonic expiry); requests authenticate without a query.
        self._trusted: dict[str, tuple[Principal, float]] = {}
        self._trusted_lock = threading.Lock()

    def create_key(self, environment: str, kind: KeyKind, name: str = "") -> tuple[ApiKey, str]:
        """Create a key; returns it and its secret, which is never retrievable again."""
        secret = _PREFIXES[kind] + "".join(
            secrets.choice(_KEY_ALPHABET) for _ in range(_KEY_LENGTH)
        )
        with self._db.write() as session:
            env = find_environment_row(session, environment)
            row = ApiKeyRow(
                id=new_id("key"),
                environment_id=env.id,
                kind=kind.value,
                name=name,
                key_hash=hash_key(secret),
                hint=f"{_PREFIXES[kind]}...{secret[-4:]}",
                created_at=self._clock(),
            )
            session.add(row)
            session.flush()
            key = _to_api_key(row, env.name)
            ChangeLog(session, env.id, row.created_at).record(
                "api_key.created", ("api_key", row.id), None, key
            )
            return key, secret

    def list_keys(
        self,
        environment: str | None = None,
        *,
        include_revoked: bool = True,
        cursor: str | None = None,
        limit: int = 500,
    ) -> Page[ApiKey]:
        with self._db.read() as session:
            query = select(ApiKeyRow, EnvironmentRow.name).join(EnvironmentRow)
            if environment is not None:
                query = query.where(
                    EnvironmentRow.id == find_environment_row(session, environment).id
                )
            if not include_revoked:
                query = query.where(ApiKeyRow.revoked_at.is_(None))
            query, limit = paginate(query, [ApiKeyRow.id], cursor, limit)
            found = [(row, env) for row, env in session.execute(query)]
            page = to_page(found, limit, lambda r: [r[0].id])
            return Page([_to_api_key(row, env) for row, env in page.items], page.next_cursor)

    def revoke_key(self, key_id: str, environment: str | None = None) -> ApiKey:
        """Revoke a key (of `environment`, when given). Revoking twice keeps the first time."""
        with self._db.write() as session:
            query = select(ApiKeyRow, EnvironmentRow.name).join(EnvironmentRow)
            query = query.where(ApiKeyRow.id == key_id)
            if environment is not None:
                query = query.where(EnvironmentRow.name == environment)
            found = session.execute(query).first()
            if found is None:
                raise NotFound(
                    f"There is no API key {key_id!r}.", code="api_key_not_found", param="id"
                )
            row, env = found
            if row.revoked_at is None:
                before = _to_api_key(row, env)
                row.revoked_at = self._clock()
                ChangeLog(session, row.environment_id, row.revoked_at).record(
                    "api_key.revoked", ("api_key", row.id), before, _to_api_key(row, env)
                )
        with self._trusted_lock:
            self._trusted.pop(row.key_hash, None)
        return _to_api_key(row, env)

    def trusted(self, secret: str) -> Principal | None:
        """The principal of a key looked up less than `AUTH_CACHE_SECONDS` ago (no I/O)."""
        trusted = self._trusted.get(hash_key(secret))
        if trusted is not None and trusted[1] > time.monotonic():
            return trusted[0]
        return None

    def authenticate(self, secret: str) -> Principal:
        """The principal of a presented key, or `AuthenticationFailed`."""
        if not secret.startswith(tuple(_PREFIXES.values())):
            raise _unknown_key()
        digest = hash_key(secret)
        trusted = self._trusted.get(digest)
        if trusted is not None and trusted[1] > time.monotonic():
            return trusted[0]
        principal = self._look_up(digest)
        with self._trusted_lock:
            if len(self._trusted) >= _AUTH_CACHE_SIZE:
                self._trusted.clear()
            self._trusted[digest] = (principal, time.monotonic() + AUTH_CACHE_SECONDS)
        return principal

    def _look_up(self, digest: str) -> Principal:
        with self._db.read() as session:
            found = session.execute(
                select(
                    ApiKeyRow.id,
                    ApiKeyRow.kind,
                    ApiKeyRow.revoked_at,
                    ApiKeyRow.last_used_at,
                    EnvironmentRow.id,
                    EnvironmentRow.name,
                )
                .join(EnvironmentRow)
                .where(ApiKeyRow.key_hash == digest)
            ).first()
        if found is None or found[2] is not None:
            raise _unknown_key()
        key_id, kind, _, last_used_at, environment_id, environment = found
        now = self._clock()
        if last_used_at is None or now - last_used_at > _LAST_USED_RESOLUTION:
            # Coarse on purpose: a write per request would put the database on the hot path.
            with self._db.write() as session:
                session.execute(
                    update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(last_used_at=now)
                )
        return Principal(key_id, KeyKind(kind), environment_id, environment)


def _unknown_key() -> AuthenticationFailed:
    return AuthenticationFailed(
        "The API key is not valid: it is unknown or revoked.", code="invalid_api_key"
    )
