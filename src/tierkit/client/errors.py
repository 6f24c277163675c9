"""The SDK's errors. Checks never raise them (they answer with a fallback); every other call
raises `ApiError` (the server said no, with the API's error envelope) or `TransportError` (the
server could not be reached, or did not answer in time)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class TierkitError(Exception):
    """Anything the SDK raises."""


class TransportError(TierkitError):
    """The request did not get an answer: connection refused or reset, or a timeout."""


class NotReadyError(TierkitError):
    """Local evaluation has no snapshot yet (`wait_until_ready` timed out)."""


class ApiError(TierkitError):
    """The server answered with an error envelope `{"error": {...}}`."""

    status: int

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        details: Sequence[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.details = list(details)
        self.headers = dict(headers or {})


class InvalidRequestError(ApiError):
    """400: the request is invalid; `details` names each bad field."""


class AuthenticationError(ApiError):
    """401: no key, or an unknown one."""


class PermissionDeniedError(ApiError):
    """403: the key may not do this (a publishable key on a secret route)."""


class NotFoundError(ApiError):
    """404."""


class ConflictError(ApiError):
    """409."""


class RateLimitedError(ApiError):
    """429; `retry_after` is the server's `Retry-After`, in seconds."""

    @property
    def retry_after(self) -> float | None:
        value = self.headers.get("retry-after")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


class ServerError(ApiError):
    """5xx."""


ERROR_OF_STATUS: Mapping[int, type[ApiError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: InvalidRequestError,
    415: InvalidRequestError,
    429: RateLimitedError,
}


def error_of(status: int, body: Any, headers: Mapping[str, str]) -> ApiError:
    """The error an error reply stands for (its envelope, or what can be made of its body)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {"code": f"http_{status}", "message": f"The server answered {status}."}
    cls = ERROR_OF_STATUS.get(status, ServerError if status >= 500 else ApiError)
    return cls(
        status,
        str(error.get("code", f"http_{status}")),
        str(error.get("message", "")),
        param=error.get("param"),
        details=error.get("details") or (),
        headers={key.lower(): value for key, value in headers.items()},
    )
