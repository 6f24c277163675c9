"""OpenFeature Remote Evaluation Protocol: `/ofrep/v1/evaluate/flags[/{key}]`.

`targetingKey` is the company key, a `user` attribute names the user, every other attribute is
a trait for rules. Metered features evaluate to `allowed`, with usage in `metadata`. Errors are
OFREP's `{"key", "errorCode", "errorDetails"}` (`api/errors.py`).
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from tierkit.engine.catalog import Scalar
from tierkit.engine.openfeature import evaluation
from tierkit.server.api.dependencies import AnyKey, ServicesDep
from tierkit.server.api.etags import etag_matches
from tierkit.server.api.json_route import StrictJSONRoute
from tierkit.server.api.routes.checks import decide
from tierkit.server.services.checks import CheckRequest
from tierkit.server.services.errors import InvalidRequest

router = APIRouter(prefix="/ofrep/v1", tags=["openfeature"], route_class=StrictJSONRoute)

# Any flag key a client sends: one that cannot be a feature's key is simply not found (404).
FlagKey = Annotated[str, Path(min_length=1, max_length=255, description="The feature's key.")]


class EvaluationRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    context: dict[str, Any] | None = Field(
        default=None,
        description="`targetingKey` (the company key), `user`, and traits for rules.",
    )


class EvaluationOut(BaseModel):
    key: str
    value: Any
    reason: str
    variant: str
    metadata: dict[str, Scalar]


class BulkEvaluationOut(BaseModel):
    flags: list[EvaluationOut]


def _context(request: EvaluationRequest) -> tuple[str, str | None, dict[str, Scalar]]:
    context = request.context or {}
    key = context.get("targetingKey")
    if not isinstance(key, str) or not key:
        raise InvalidRequest(
            "`context.targetingKey` (the company key) is required.",
            code="targeting_key_missing",
            param="context.targetingKey",
        )
    user = context.get("user")
    if user is not None and not isinstance(user, str):
        raise InvalidRequest(
            "`context.user` names the user: a string.", code="invalid_context", param="context.user"
        )
    traits: dict[str, Scalar] = {}
    for name, value in context.items():
        if name in ("targetingKey", "user"):
            continue
        if not isinstance(value, bool | int | float | str):
            raise InvalidRequest(
                f"Attribute {name!r} must be a string, a number or a boolean to be a trait.",
                code="invalid_context",
                param=f"context.{name}",
            )
        traits[name] = value
    return key, user, traits


@router.post(
    "/evaluate/flags/{key}",
    response_model=None,
    responses={200: {"model": EvaluationOut}},
)
async def ofrep_evaluate_flag(
    key: FlagKey, body: EvaluationRequest, principal: AnyKey, services: ServicesDep
) -> Response:
    """Evaluate one flag (feature) for the context's company."""
    company, user, traits = _context(body)
    request = CheckRequest(company=company, features=[key], user=user, context=traits)
    (decision,) = await decide(services, principal.environment_id, request)
    body_out = evaluation(services.checks.catalog(principal.environment_id), decision)
    return Response(orjson.dumps(body_out), media_type="application/json")


@router.post(
    "/evaluate/flags",
    response_model=None,
    responses={200: {"model": BulkEvaluationOut}, 304: {"description": "Not modified."}},
)
async def ofrep_evaluate_flags(
    body: EvaluationRequest,
    principal: AnyKey,
    services: ServicesDep,
    if_none_match: str | None = Header(default=None),
) -> Response:
    """Evaluate every flag for the context's company; `ETag`/`If-None-Match` save the body."""
    company, user, traits = _context(body)
    request = CheckRequest(company=company, user=user, context=traits)
    decisions = await decide(services, principal.environment_id, request)
    catalog = services.checks.catalog(principal.environment_id)
    content = orjson.dumps({"flags": [evaluation(catalog, d) for d in decisions]})
    etag = f'"{hashlib.sha256(content).hexdigest()[:32]}"'
    if etag_matches(etag, if_none_match):
        return Response(status_code=304, headers={"ETag": etag})
    return Response(content, media_type="application/json", headers={"ETag": etag})
