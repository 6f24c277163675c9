"""`/v1/catalog`: the environment's whole catalog as one document, its JSON Schema, and apply."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from tierkit.server.api.dependencies import SecretKey, ServicesDep
from tierkit.server.api.json_route import StrictJSONRoute
from tierkit.server.api.schemas.catalog import (
    PUBLIC_SCHEMA_PATH,
    CatalogApply,
    CatalogApplyOut,
    CatalogFile,
    catalog_schema,
    export_catalog,
)

router = APIRouter(prefix="/v1/catalog", tags=["catalog"], route_class=StrictJSONRoute)
public = APIRouter(tags=["catalog"])


@router.get("", response_model=None, responses={200: {"model": CatalogFile}})
def export(principal: SecretKey, services: ServicesDep) -> JSONResponse:
    """The environment's catalog as one document (what `tierkit catalog export` writes):
    credit types, features with their rules, plans, bundles, each shaped as its create body,
    fields at their default left out. Archived objects are included."""
    # Returned as built: a response model would turn whole numbers back into `500.0`.
    return JSONResponse(export_catalog(services.catalog.export(principal.environment_id)))


@router.get("/schema")
def schema(principal: SecretKey) -> dict[str, Any]:
    """The JSON Schema of catalog files (a secret key, as every `/v1` route but checks and
    the pricing table). For editors, which send no key, it is at `/catalog.schema.json`."""
    return catalog_schema()


@public.get(PUBLIC_SCHEMA_PATH, include_in_schema=False)
def public_schema() -> dict[str, Any]:
    """The JSON Schema of catalog files, without a key (like `/openapi.json`): it holds no
    data, and editors fetch it from a file's `# yaml-language-server: $schema=` line."""
    return catalog_schema()


@router.post("/apply", response_model=CatalogApplyOut)
def apply(body: CatalogApply, principal: SecretKey, services: ServicesDep) -> CatalogApplyOut:
    """Make the environment's catalog match `catalog`, in one transaction: create what is
    missing, update what differs, archive the features and plans it omits (only with
    `allow_archive`, else 409 `destructive_change` and nothing written). Credit types and
    bundles it omits are left as they are (`unmanaged`). Applying the same file again changes
    nothing. Errors name the place in the file (`plans.2.entitlements.0.value`)."""
    try:
        document = CatalogFile.model_validate(body.catalog).to_document()
    except ValidationError as error:
        # Paths in the file, as if the file were the body: `plans.2.key`.
        raise RequestValidationError(
            [{**item, "loc": ("catalog", *item["loc"])} for item in error.errors()]
        ) from error
    diff = services.catalog.apply(
        principal.environment_id,
        document,
        dry_run=body.dry_run,
        allow_archive=body.allow_archive,
    )
    return CatalogApplyOut.of(diff, body.dry_run)
