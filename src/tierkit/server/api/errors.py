"""The one place that turns errors into HTTP: the documented envelope, never a bare 500."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tierkit.server.services.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    ErrorDetail,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
)

logger = logging.getLogger("tierkit.api")

_STATUS_OF_ERROR: dict[type[DomainError], int] = {
    InvalidRequest: 400,
    AuthenticationFailed: 401,
    PermissionDenied: 403,
    NotFound: 404,
    Conflict: 409,
    RateLimited: 429,
}

_TYPE_OF_STATUS = {
    400: "invalid_request",
    401: "authentication",
    403: "permission",
    404: "not_found",
    409: "conflict",
    429: "rate_limited",
    500: "internal",
}

_CODE_OF_STATUS = {
    404: "route_not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}

# Pydantic's messages, said for a person calling an API.
_MESSAGES = {
    "missing": "This field is required.",
    "extra_forbidden": "Unknown field: check its spelling against the API reference.",
    "json_invalid": "The body is not valid JSON.",
    "model_attributes_type": "Expected a JSON object.",
    "dict_type": "Expected a JSON object.",
    "list_type": "Expected a JSON array.",
    "float_type": "Must be a JSON number.",
}


def error_body(
    status: int,
    code: str,
    message: str,
    param: str | None = None,
    details: Sequence[ErrorDetail] = (),
) -> dict[str, Any]:
    error_type = _TYPE_OF_STATUS.get(status, "invalid_request" if status < 500 else "internal")
    return {
        "error": {
            "type": error_type,
            "code": code,
            "message": message,
            "param": param,
            "details": [
                {"param": d.param, "message": d.message}
                | ({"code": d.code} if d.code is not None else {})
                for d in details
            ],
        }
    }


def error_response(
    status: int,
    code: str,
    message: str,
    param: str | None = None,
    details: Sequence[ErrorDetail] = (),
    *,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(status, code, message, param, details), status_code=status, headers=headers
    )


def status_of(error: DomainError) -> int:
    for cls in type(error).__mro__:
        if cls in _STATUS_OF_ERROR:
            return _STATUS_OF_ERROR[cls]
    return 400


def _param_of(location: Iterable[Any]) -> str | None:
    # ("body", "entitlements", 0, "value") -> "entitlements.0.value"; the source is implied.
    parts = [str(part) for part in list(location)[1:]]
    return ".".join(parts) or None


def _validation_details(error: RequestValidationError) -> list[ErrorDetail]:
    details = []
    for item in error.errors():
        if item["type"] == "json_invalid":
            reason = str(item.get("ctx", {}).get("error", "")).rstrip(".")
            message = (
                f"The body is not valid JSON: {reason}." if reason else _MESSAGES["json_invalid"]
            )
            details.append(ErrorDetail("body", message))
            continue
        if item["type"] == "value_error":
            # Our validators' own sentences, without pydantic's "Value error, " prefix.
            reason = str(item.get("ctx", {}).get("error", item["msg"]))
            message = reason[:1].upper() + reason[1:]
        else:
            message = _MESSAGES.get(item["type"], item["msg"])
        if not message.endswith("."):
            message += "."
        details.append(ErrorDetail(_param_of(item["loc"]) or "body", message, item["type"]))
    return details


_KICKPLAN_PREFIX = "/api/"
_OFREP_PREFIX = "/ofrep/"
_KICKPLAN_TYPES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict"}
_KICKPLAN_MESSAGES = {"missing": "is required"}


def kickplan_body(
    status: int, message: str, param: str | None, details: Sequence[ErrorDetail]
) -> dict[str, Any]:
    """Kickplan's error body: `{"message", "type", "errors": [{"field", "message", "type"}]}`."""
    if status != 400:
        error_type = _KICKPLAN_TYPES.get(status, "error" if status >= 500 else "invalid_request")
        return {"message": message, "type": error_type, "errors": []}
    items = details or [ErrorDetail(param or "body", message)]
    return {
        "message": "Invalid input",
        "type": "invalid_input",
        "errors": [
            {
                "field": d.param,
                "message": _KICKPLAN_MESSAGES.get(d.code or "", d.message),
                "type": "invalid",
            }
            for d in items
        ],
    }


_SCHEMATIC_PREFIX = "/compat/schematic/"
_COMMET_PREFIX = "/compat/commet/"


def schematic_body(code: str, message: str, details: Sequence[ErrorDetail]) -> dict[str, Any]:
    """Schematic's error body: `{"error": "a sentence"}` (its SDKs read `error`), with our
    stable `code` and the bad fields beside it."""
    return {
        "error": message,
        "code": code,
        "details": [{"param": d.param, "message": d.message} for d in details],
    }


def commet_body(
    status: int, code: str, message: str, param: str | None, details: Sequence[ErrorDetail]
) -> dict[str, Any]:
    """Commet's envelope: `{"success": false, "error": {"type", "code", "message", "param",
    "details", "doc_url"}}`; bad fields as `{"field", "message"}` under `validation_error`
    (its SDK raises `CommetValidationError` for them)."""
    error = error_body(status, code, message, param, details)["error"]
    if code == "validation_failed":
        error["code"] = "validation_error"
    error["details"] = [{"field": d.param, "message": d.message} for d in details]
    return {"success": False, "error": {**error, "doc_url": None}}


_OFREP_CODES = {
    "feature_not_found": "FLAG_NOT_FOUND",
    "targeting_key_missing": "TARGETING_KEY_MISSING",
    "invalid_context": "INVALID_CONTEXT",
    "invalid_json": "PARSE_ERROR",
    "unsupported_media_type": "PARSE_ERROR",
}


def ofrep_body(request: Request, status: int, code: str, message: str) -> dict[str, Any]:
    """OFREP's error body: `{"key", "errorCode", "errorDetails"}`."""
    error_code = _OFREP_CODES.get(code) or ("INVALID_CONTEXT" if status == 400 else "GENERAL")
    body: dict[str, Any] = {"errorCode": error_code, "errorDetails": message}
    key = request.path_params.get("key")
    return {"key": key, **body} if key is not None else body


def _respond(
    request: Request,
    status: int,
    code: str,
    message: str,
    param: str | None = None,
    details: Sequence[ErrorDetail] = (),
    *,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The error in the envelope of the API the request is for: Kickplan's under `/api/`,
    OFREP's under `/ofrep/`, Schematic's and Commet's under their `/compat/` prefixes, the
    documented one everywhere else (Salable's facade included: its docs show no error body)."""
    path = request.url.path
    body: Any
    if path.startswith(_KICKPLAN_PREFIX):
        body = kickplan_body(status, message, param, details)
    elif path.startswith(_OFREP_PREFIX):
        body = ofrep_body(request, status, code, message)
    elif path.startswith(_SCHEMATIC_PREFIX):
        body = schematic_body(code, message, details)
    elif path.startswith(_COMMET_PREFIX):
        body = commet_body(status, code, message, param, details)
    else:
        return error_response(status, code, message, param, details, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers)


_Parts = tuple[int, str, str, str | None, Sequence[ErrorDetail]]
"""status, code, message, param, details"""


def _domain_error_parts(error: DomainError) -> _Parts:
    status = status_of(error)
    details = error.details
    if status == 400 and error.param is not None and not details:
        # A bad field is listed in `details` however it was found, as validation lists them.
        details = (ErrorDetail(error.param, error.message, error.code),)
    return status, error.code, error.message, error.param, details


def _validation_parts(error: RequestValidationError) -> _Parts:
    if any(_is_unparsed_body(item) for item in error.errors()):
        message = "The body must be JSON, sent with `Content-Type: application/json`."
        return 415, "unsupported_media_type", message, None, [ErrorDetail("body", message)]
    details = _validation_details(error)
    first = details[0]
    if any(item["type"] == "json_invalid" for item in error.errors()):
        return 400, "invalid_json", first.message, None, details
    more = f" ({len(details) - 1} more in `details`)" if len(details) > 1 else ""
    message = f"`{first.param}`: {first.message}{more}"
    return 400, "validation_failed", message, first.param, details


def envelope_of(error: DomainError | RequestValidationError) -> tuple[int, dict[str, Any]]:
    """The status and documented envelope of an error, for faces that are not HTTP replies
    (the JSON-RPC WebSocket)."""
    if isinstance(error, DomainError):
        parts = _domain_error_parts(error)
    else:
        parts = _validation_parts(error)
    return parts[0], error_body(*parts)


def problems_of(error: DomainError | ValidationError) -> tuple[int, str, list[ErrorDetail]]:
    """The status, message and per-field details the API would answer for a domain error or
    a body's validation error: the console shows the same sentences next to its fields."""
    if isinstance(error, DomainError):
        parts = _domain_error_parts(error)
    else:
        in_body = [{**item, "loc": ("body", *item["loc"])} for item in error.errors()]
        parts = _validation_parts(RequestValidationError(in_body))
    status, _, message, _, details = parts
    return status, message, list(details)


async def _on_domain_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, DomainError)  # noqa: S101 - registered for DomainError only
    if isinstance(error, RateLimited):
        return _rate_limited(request, error)
    return _respond(request, *_domain_error_parts(error))


def _rate_limited(request: Request, error: RateLimited) -> Response:
    """429 with `Retry-After` in whole seconds (HTTP's unit), and the exact wait in
    `details` (`{"param": "retry_after", "retry_after": 0.25, ...}`) for clients that can
    sleep less than a second."""
    wait = round(error.retry_after, 3)
    headers = {"Retry-After": str(max(1, math.ceil(error.retry_after)))}
    if request.url.path.startswith((_KICKPLAN_PREFIX, _OFREP_PREFIX)):
        return _respond(request, 429, error.code, error.message, headers=headers)
    body = error_body(429, error.code, error.message)
    detail = {"param": "retry_after", "message": f"Retry in {wait} s.", "retry_after": wait}
    body["error"]["details"] = [detail]
    return JSONResponse(body, status_code=429, headers=headers)


def _is_unparsed_body(item: Mapping[str, Any]) -> bool:
    # FastAPI hands the body over as raw bytes when its Content-Type is not JSON.
    return tuple(item["loc"]) == ("body",) and isinstance(item.get("input"), bytes)


async def _on_validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)  # noqa: S101
    return _respond(request, *_validation_parts(error))


def _too_large(request: Request) -> str:
    limit = request.app.state.settings.max_body_bytes
    return (
        f"The request body is over {limit:,} bytes, the most this server accepts "
        "(TIERKIT_MAX_BODY_BYTES); send fewer events per batch."
    )


class BodySizeLimit:
    """Request bodies over `max_bytes` get the 413 envelope: at once when `Content-Length`
    says so, else as soon as a chunked body passes the limit while it is read. (Starlette's
    own limit would answer in plain text, before any handler of ours runs.)"""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            request = Request(scope)
            response = _respond(request, 413, "body_too_large", _too_large(request))
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise StarletteHTTPException(413)
            return message

        await self.app(scope, counted, send)


async def _on_http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)  # noqa: S101
    status = error.status_code
    code = _CODE_OF_STATUS.get(status, "http_error")
    if status == 404:
        message = "There is no such route; see /docs for the API."
    elif status == 413:
        message = _too_large(request)
    elif isinstance(error.detail, str) and error.detail != HTTPStatus(status).phrase:
        message = error.detail
    else:
        message = f"{HTTPStatus(status).phrase}."
    return _respond(request, status, code, message, headers=error.headers)


async def _on_unexpected_error(request: Request, error: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return _respond(
        request, 500, "internal_error", "Something went wrong on our side; it is logged."
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected_error)
