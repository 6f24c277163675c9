"""Domain errors. Services raise them; `api/errors.py` alone turns them into HTTP."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    param: str
    message: str
    code: str | None = None


class DomainError(Exception):
    """A failure a client can act on: a stable `code`, a sentence, the field at fault."""

    code = "error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        details: Sequence[ErrorDetail] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.param = param
        self.details = tuple(details)


class InvalidRequest(DomainError):
    code = "invalid_request"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class AuthenticationFailed(DomainError):
    code = "authentication_failed"


class PermissionDenied(DomainError):
    code = "permission_denied"


def named_in_body(error: NotFound, param: str | None) -> DomainError:
    """A missing object named by a body field (`param`) is a bad field of the body (400), not
    a missing object of the route (404)."""
    return error if param is None else InvalidRequest(error.message, code=error.code, param=param)


class RateLimited(DomainError):
    """The key made more requests than its limit allows; it may retry after `retry_after`
    seconds."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
