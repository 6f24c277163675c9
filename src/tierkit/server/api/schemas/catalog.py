"""The catalog file (`tierkit catalog export`/`apply`): the API's own create bodies, gathered in
one document, plus the plan of changes an apply reports."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ConfigDict, Field

from tierkit.engine.catalog import (
    CreditType,
    Entitlement,
    FeatureOption,
    Meter,
    Period,
    Plan,
    PlanCreditGrant,
    Price,
    Reset,
)
from tierkit.engine.codec import rule_to_json
from tierkit.engine.rules import Rule
from tierkit.server.api.schemas.checks import RuleBody
from tierkit.server.api.schemas.common import Flag, InputModel, OutputModel
from tierkit.server.api.schemas.credits import BundleCreate, CreditTypeCreate
from tierkit.server.api.schemas.features import FeatureCreate
from tierkit.server.api.schemas.plans import PlanCreate
from tierkit.server.services.audit import jsonable
from tierkit.server.services.catalog_diff import Action, CatalogDiff, FieldChange, Kind
from tierkit.server.services.catalog_document import CatalogDocument, FeatureEntry
from tierkit.server.services.credits import NewBundle

PUBLIC_SCHEMA_PATH = "/catalog.schema.json"
"""Where editors fetch the schema of catalog files (no key, like `/openapi.json`)."""


class CatalogFeature(FeatureCreate):
    """A feature, as `POST /v1/features` takes it, with its targeting rules in order."""

    rules: list[RuleBody] = Field(
        default_factory=list, max_length=100, description="As `PUT /v1/features/{key}/rules`."
    )

    def to_entry(self) -> FeatureEntry:
        return FeatureEntry(self.to_feature(), tuple(rule.to_rule() for rule in self.rules))


class CatalogFile(InputModel):
    """A Tierkit catalog: credit types, features (with rules), plans and credit bundles, each
    entry shaped as the API's create body. `tierkit catalog apply` makes an environment match
    it; features and plans it omits are archived."""

    model_config = ConfigDict(title="Tierkit catalog")

    credits: list[CreditTypeCreate] = Field(
        default_factory=list, max_length=1000, description="Credit types (`POST /v1/credits`)."
    )
    features: list[CatalogFeature] = Field(
        default_factory=list, max_length=5000, description="Features (`POST /v1/features`)."
    )
    plans: list[PlanCreate] = Field(
        default_factory=list, max_length=1000, description="Plans (`POST /v1/plans`)."
    )
    bundles: list[BundleCreate] = Field(
        default_factory=list,
        max_length=1000,
        description="Credit bundles (`POST /v1/credit-bundles`).",
    )

    def to_document(self) -> CatalogDocument:
        return CatalogDocument(
            credits=tuple(CreditType(c.key, c.name, c.unit) for c in self.credits),
            features=tuple(f.to_entry() for f in self.features),
            plans=tuple(p.to_plan() for p in self.plans),
            bundles=tuple(b.to_new_bundle() for b in self.bundles),
        )


def catalog_schema() -> dict[str, Any]:
    """The JSON Schema of catalog files (committed as docs/catalog.schema.json)."""
    schema = CatalogFile.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


# The export: the document as the create bodies read it, fields at their default left out.


def export_catalog(document: CatalogDocument) -> dict[str, Any]:
    """The document as a catalog file's data (what `GET /v1/catalog` returns). Applying it to
    an empty environment and exporting again gives the same data."""
    full = {
        "credits": [_credit(c) for c in document.credits],
        "features": [_feature(entry) for entry in document.features],
        "plans": [_plan(p) for p in document.plans],
        "bundles": [_bundle(b) for b in document.bundles],
    }
    data = CatalogFile.model_validate(full).model_dump(mode="json", exclude_defaults=True)
    for plan in data.get("plans", []):
        # The feature first, as people write an entitlement (`{feature: sso, value: true}`).
        plan["entitlements"] = [
            {"feature": e.pop("feature"), **e} for e in plan.get("entitlements", [])
        ]
        if not plan["entitlements"]:
            del plan["entitlements"]
    return {name: _tidy(data.get(name, [])) for name in full}


def _credit(credit: CreditType) -> Any:
    return jsonable(credit)


def _feature(entry: FeatureEntry) -> Any:
    return {**jsonable(entry.feature), "rules": [rule_to_json(r) for r in entry.rules]}


def _entitlement(entitlement: Entitlement) -> Any:
    # A metered entitlement is stored with its period and reset filled in; the defaults
    # (`month`, `calendar`) are left out, as a person would write it.
    data = jsonable(entitlement)
    if entitlement.period is Period.MONTH:
        data["period"] = None
    if entitlement.reset is Reset.CALENDAR:
        data["reset"] = None
    return data


def _plan(plan: Plan) -> Any:
    return {
        **jsonable(plan),
        "entitlements": [_entitlement(e) for e in plan.entitlements],
        # PostgreSQL's JSONB keeps no key order: sorted, every database writes the same file.
        "metadata": _sorted_keys(jsonable(plan.metadata)),
    }


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value


def _bundle(bundle: NewBundle) -> Any:
    data = jsonable(bundle)
    data["price"] = {"currency": data.pop("currency"), "amount": data.pop("price")}
    return data


def _tidy(value: Any) -> Any:
    """Whole numbers as integers (`500`, not `500.0`), as a person writes them."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {key: _tidy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_tidy(item) for item in value]
    return value


def export_value(value: Any) -> Any:
    """A field's value in a plan of changes, shaped as in the file."""
    if isinstance(value, Entitlement):
        return _tidy(_without_nulls(_entitlement(value)))
    if isinstance(value, Rule):
        return _tidy(_without_nulls(rule_to_json(value)))
    if isinstance(value, Meter | FeatureOption | Price | PlanCreditGrant):
        return _tidy(_without_nulls(jsonable(value)))
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [export_value(item) for item in value]
    return _tidy(jsonable(value))


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v not in (None, False, [], {})}
    return value


# The plan of changes.


class FieldChangeOut(OutputModel):
    field: str = Field(description="`name`, `entitlements.api_calls`, `prices.0`, `rules`...")
    before: Any = Field(description="null when the field or line is added.")
    after: Any = Field(description="null when the field or line is removed.")

    @classmethod
    def of(cls, change: FieldChange) -> FieldChangeOut:
        return cls(
            field=change.field,
            before=export_value(change.before),
            after=export_value(change.after),
        )


class ChangeOut(OutputModel):
    action: Action
    kind: Kind = Field(description="The file's section: credits, features, plans, bundles.")
    key: str
    fields: list[FieldChangeOut] = Field(description="For updates and archives.")


class UnmanagedOut(OutputModel):
    kind: Kind
    key: str


class ApplySummary(OutputModel):
    create: int
    update: int
    archive: int


class CatalogApplyOut(OutputModel):
    dry_run: bool
    applied: bool = Field(description="Whether the changes were written (not on a dry run).")
    changes: list[ChangeOut]
    unmanaged: list[UnmanagedOut] = Field(
        description="Credit types and bundles the file omits: apply leaves them as they are."
    )
    summary: ApplySummary

    @classmethod
    def of(cls, diff: CatalogDiff, dry_run: bool) -> CatalogApplyOut:
        return cls(
            dry_run=dry_run,
            applied=bool(diff.changes) and not dry_run,
            changes=[
                ChangeOut(
                    action=c.action,
                    kind=c.kind,
                    key=c.key,
                    fields=[FieldChangeOut.of(f) for f in c.fields],
                )
                for c in diff.changes
            ],
            unmanaged=[UnmanagedOut(kind=u.kind, key=u.key) for u in diff.unmanaged],
            summary=ApplySummary(
                create=diff.count(Action.CREATE),
                update=diff.count(Action.UPDATE),
                archive=diff.count(Action.ARCHIVE),
            ),
        )


class CatalogApply(InputModel):
    catalog: dict[str, Any] = Field(
        description=f"A catalog file's data; its JSON Schema is at `{PUBLIC_SCHEMA_PATH}`."
    )
    dry_run: Flag = Field(
        default=False, description="Report the changes (and any error) without writing them."
    )
    allow_archive: Flag = Field(
        default=False,
        description="Archive the features and plans the file omits (refused with 409 otherwise).",
    )
