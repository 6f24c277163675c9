"""Liveness and readiness, without auth."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from tierkit.server.api.dependencies import ServicesDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok", "ready", "unavailable"]
    detail: str | None = None


@router.get("/healthz", response_model=Health)
def get_health() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database cannot be reached."}},
)
def get_readiness(services: ServicesDep) -> Health | JSONResponse:
    """The database answers."""
    try:
        services.database.ping()
    except Exception as error:
        body = Health(status="unavailable", detail=type(error).__name__)
        return JSONResponse(body.model_dump(), status_code=503)
    return Health(status="ready")
