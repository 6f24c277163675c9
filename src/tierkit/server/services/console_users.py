"""Console users and their sessions: scrypt password hashes, hashed random session tokens.

A session is a row keyed by the SHA-256 of a random token the browser holds in a cookie; it
carries the environment the console shows and the CSRF token its forms must send back.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from tierkit.server.db import Database
from tierkit.server.db.ids import new_id
from tierkit.server.db.tables import ConsoleSessionRow, ConsoleUserRow
from tierkit.server.services.clock import Clock
from tierkit.server.services.environments import find_environment_row
from tierkit.server.services.errors import AuthenticationFailed, Conflict, InvalidRequest

SESSION_LIFETIME = timedelta(hours=12)
MIN_PASSWORD_LENGTH = 12
_MAX_PASSWORD_LENGTH = 1024
# scrypt at n=2**14, r=8, p=1 (16 MiB, tens of milliseconds): OWASP's minimum for scrypt.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024
SIGN_IN_ATTEMPTS = 10
"""Failed sign-ins allowed per email in `SIGN_IN_WINDOW_SECONDS` (per server process)."""
SIGN_IN_WINDOW_SECONDS = 15 * 60
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,255}$")


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    id: str
    email: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A signed-in browser: who, which environment the console shows, its forms' CSRF token."""

    user: ConsoleUser
    environment: str
    environment_id: str
    csrf_token: str
    expires_at: datetime

    @property
    def actor(self) -> str:
        """Who the audit log names for this session's changes."""
        return f"console:{self.user.email}"


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def is_password(password: str, stored: str) -> bool:
    """Whether `password` is the one `stored` was made from (in constant time)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        candidate = _scrypt(password, bytes.fromhex(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(candidate, bytes.fromhex(digest))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM
    )


@functools.cache
def _nobody() -> str:
    """Compared against when the email is unknown, so both answers take as long."""
    return hash_password("not anybody's password", b"\x00" * 16)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _to_user(row: ConsoleUserRow) -> ConsoleUser:
    return ConsoleUser(row.id, row.email, row.created_at)


def normalized_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.fullmatch(email):
        raise InvalidRequest(
            f"{email!r} is not an email address.", code="invalid_email", param="email"
        )
    return email


def check_password_strength(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= _MAX_PASSWORD_LENGTH:
        raise InvalidRequest(
            f"A console password has {MIN_PASSWORD_LENGTH} to {_MAX_PASSWORD_LENGTH} characters.",
            code="weak_password",
            param="password",
        )


def _signed_out() -> AuthenticationFailed:
    return AuthenticationFailed("Sign in to use the console.", code="signed_out")


class ConsoleUserService:
    def __init__(self, database: Database, clock: Clock) -> None:
        self._db = database
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._failures_lock = threading.Lock()

    def _recent_failures(self, email: str) -> deque[float]:
        """The email's failed sign-ins within the window (older ones forgotten)."""
        horizon = time.monotonic() - SIGN_IN_WINDOW_SECONDS
        if len(self._failures) > 10_000:
            self._failures.clear()
        failures = self._failures.setdefault(email, deque())
        while failures and failures[0] < horizon:
            failures.popleft()
        return failures

    def create_user(self, email: str, password: str) -> ConsoleUser:
        email = normalized_email(email)
        check_password_strength(password)
        password_hash = hash_password(password)
        with self._db.write() as session:
            if session.scalar(select(ConsoleUserRow.id).where(ConsoleUserRow.email == email)):
                raise Conflict(
                    f"There is already a console user {email!r}.",
                    code="console_user_exists",
                    param="email",
                )
            row = ConsoleUserRow(
                id=new_id("cu"), email=email, password_hash=password_hash, created_at=self._clock()
            )
            session.add(row)
            return _to_user(row)

    def set_password(self, email: str, password: str) -> ConsoleUser:
        """A new password; the user's sessions end."""
        email = normalized_email(email)
        check_password_strength(password)
        password_hash = hash_password(password)
        with self._db.write() as session:
            row = session.scalar(select(ConsoleUserRow).where(ConsoleUserRow.email == email))
            if row is None:
                raise InvalidRequest(
                    f"There is no console user {email!r}.", code="console_user_not_found"
                )
            row.password_hash = password_hash
            session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.user_id == row.id))
            return _to_user(row)

    def list_users(self) -> list[ConsoleUser]:
        with self._db.read() as session:
            rows = session.scalars(select(ConsoleUserRow).order_by(ConsoleUserRow.email))
            return [_to_user(row) for row in rows]

    def sign_in(self, email: str, password: str, environment: str) -> tuple[ConsoleSession, str]:
        """A new session for the user whose password this is, and its token (for the cookie)."""
        email = email.strip().lower()
        with self._failures_lock:
            if len(self._recent_failures(email)) >= SIGN_IN_ATTEMPTS:
                raise AuthenticationFailed(
                    "Too many failed sign-ins for this email: wait 15 minutes and try again.",
                    code="too_many_sign_in_attempts",
                )
        with self._db.read() as session:
            row = session.scalar(select(ConsoleUserRow).where(ConsoleUserRow.email == email))
            found = _to_user(row) if row is not None else None
            stored = row.password_hash if row is not None else _nobody()
        if not is_password(password, stored) or found is None:
            with self._failures_lock:
                self._recent_failures(email).append(time.monotonic())
            raise AuthenticationFailed(
                "The email or the password is not right.", code="invalid_credentials"
            )
        with self._failures_lock:
            self._failures.pop(email, None)
        token = secrets.token_urlsafe(32)
        now = self._clock()
        with self._db.write() as session:
            env = find_environment_row(session, environment)
            created = ConsoleSessionRow(
                token_hash=_token_hash(token),
                user_id=found.id,
                environment=env.name,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                expires_at=now + SESSION_LIFETIME,
            )
            session.add(created)
            # Expired sessions of the user go as a new one starts.
            session.execute(
                delete(ConsoleSessionRow).where(
                    ConsoleSessionRow.user_id == found.id, ConsoleSessionRow.expires_at <= now
                )
            )
            return _to_session(created, found, env.id), token

    def get_session(self, token: str) -> ConsoleSession:
        """The live session of a cookie's token, or `AuthenticationFailed`."""
        if not token:
            raise _signed_out()
        with self._db.read() as session:
            found = session.execute(
                select(ConsoleSessionRow, ConsoleUserRow)
                .join(ConsoleUserRow)
                .where(ConsoleSessionRow.token_hash == _token_hash(token))
            ).first()
            if found is None or found[0].expires_at <= self._clock():
                raise _signed_out()
            row, user = found
            env = find_environment_row(session, row.environment)
            return _to_session(row, _to_user(user), env.id)

    def switch_environment(self, token: str, environment: str) -> ConsoleSession:
        with self._db.write() as session:
            row = session.get(ConsoleSessionRow, _token_hash(token))
            if row is None or row.expires_at <= self._clock():
                raise _signed_out()
            env = find_environment_row(session, environment)
            row.environment = env.name
            user = session.get_one(ConsoleUserRow, row.user_id)
            return _to_session(row, _to_user(user), env.id)

    def sign_out(self, token: str) -> None:
        with self._db.write() as session:
            session.execute(
                delete(ConsoleSessionRow).where(ConsoleSessionRow.token_hash == _token_hash(token))
            )


def _to_session(row: ConsoleSessionRow, user: ConsoleUser, environment_id: str) -> ConsoleSession:
    return ConsoleSession(
        user=user,
        environment=row.environment,
        environment_id=environment_id,
        csrf_token=row.csrf_token,
        expires_at=row.expires_at,
    )
