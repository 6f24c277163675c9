"""What applying a catalog document would change: creates, per-field updates and archives,
computed from the stored catalog and the document alone (no I/O)."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tierkit.engine.catalog import Entitlement, FeatureStatus, Plan, PlanStatus
from tierkit.engine.catalog_rules import normalize_entitlement
from tierkit.engine.codec import rule_to_json
from tierkit.server.services.catalog_document import CatalogDocument, FeatureEntry
from tierkit.server.services.errors import ErrorDetail, InvalidRequest


class Action(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    ARCHIVE = "archive"


class Kind(enum.StrEnum):
    """The kinds of objects a catalog document holds, named as its sections are."""

    CREDIT = "credits"
    FEATURE = "features"
    PLAN = "plans"
    BUNDLE = "bundles"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of an object, before and after (engine values; None when absent)."""

    field: str
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class Change:
    action: Action
    kind: Kind
    key: str
    fields: tuple[FieldChange, ...] = ()


@dataclass(frozen=True, slots=True)
class Unmanaged:
    """An object the document omits that apply leaves as it is (credit types and bundles have
    no archived state, and purchases and grants refer to them)."""

    kind: Kind
    key: str


@dataclass(frozen=True, slots=True)
class CatalogDiff:
    changes: tuple[Change, ...]
    unmanaged: tuple[Unmanaged, ...]

    @property
    def archives(self) -> list[Change]:
        return [c for c in self.changes if c.action is Action.ARCHIVE]

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action is action)


def diff_catalogs(current: CatalogDocument, desired: CatalogDocument) -> CatalogDiff:
    """The changes that turn `current` into `desired`, kind by kind in apply's order. Objects
    of `current` that `desired` omits are archived (features, plans) or left (the rest)."""
    check_unique_keys(desired)
    desired = normalized(desired)
    changes: list[Change] = []
    unmanaged: list[Unmanaged] = []
    sections: tuple[tuple[Kind, Sequence[Any], Sequence[Any]], ...] = (
        (Kind.CREDIT, current.credits, desired.credits),
        (Kind.FEATURE, current.features, desired.features),
        (Kind.PLAN, current.plans, desired.plans),
        (Kind.BUNDLE, current.bundles, desired.bundles),
    )
    for kind, before, after in sections:
        old = {_key(item): item for item in before}
        new_keys = {_key(item) for item in after}
        for item in after:
            key = _key(item)
            if key not in old:
                changes.append(Change(Action.CREATE, kind, key))
            elif fields := _FIELD_CHANGES[kind](old[key], item):
                changes.append(Change(Action.UPDATE, kind, key, tuple(fields)))
        for key, item in old.items():
            if key in new_keys:
                continue
            archived = _archived(kind, item)
            if archived is None:
                unmanaged.append(Unmanaged(kind, key))
            elif archived is False:
                status = FieldChange("status", _status(item), "archived")
                changes.append(Change(Action.ARCHIVE, kind, key, (status,)))
    return CatalogDiff(tuple(changes), tuple(unmanaged))


def normalized(document: CatalogDocument) -> CatalogDocument:
    """Plans' metered entitlements with their default period and reset filled in, as stored."""
    features = {entry.feature.key: entry.feature for entry in document.features}

    def fill(entitlement: Entitlement) -> Entitlement:
        feature = features.get(entitlement.feature)
        return entitlement if feature is None else normalize_entitlement(feature, entitlement)

    plans = tuple(
        replace(plan, entitlements=tuple(fill(e) for e in plan.entitlements))
        for plan in document.plans
    )
    return replace(document, plans=plans)


def check_unique_keys(document: CatalogDocument) -> None:
    """Each key at most once per section: a second one would silently win."""
    details = []
    sections: tuple[tuple[Kind, Sequence[Any]], ...] = (
        (Kind.CREDIT, document.credits),
        (Kind.FEATURE, document.features),
        (Kind.PLAN, document.plans),
        (Kind.BUNDLE, document.bundles),
    )
    for kind, items in sections:
        seen: set[str] = set()
        for index, item in enumerate(items):
            key = _key(item)
            if key in seen:
                details.append(
                    ErrorDetail(f"{kind}.{index}.key", f"{key!r} is already in `{kind}`.")
                )
            seen.add(key)
    if details:
        raise InvalidRequest(
            details[0].message if len(details) == 1 else "The catalog repeats keys.",
            code="duplicate_key",
            param=details[0].param,
            details=details,
        )


def _key(item: Any) -> str:
    key: str = item.feature.key if isinstance(item, FeatureEntry) else item.key
    return key


def _archived(kind: Kind, item: Any) -> bool | None:
    """Whether an omitted object is archived already; None for kinds apply leaves alone."""
    if kind is Kind.FEATURE:
        return bool(item.feature.status is FeatureStatus.ARCHIVED)
    if kind is Kind.PLAN:
        return bool(item.status is PlanStatus.ARCHIVED)
    return None


def _status(item: FeatureEntry | Plan) -> str:
    status = item.feature.status if isinstance(item, FeatureEntry) else item.status
    return status.value


def _differing_fields(before: Any, after: Any, skip: Iterable[str] = ()) -> list[FieldChange]:
    names = [f.name for f in dataclasses.fields(before) if f.name not in {"key", *skip}]
    return [
        FieldChange(name, getattr(before, name), getattr(after, name))
        for name in names
        if getattr(before, name) != getattr(after, name)
    ]


def _feature_changes(before: FeatureEntry, after: FeatureEntry) -> list[FieldChange]:
    fields = _differing_fields(before.feature, after.feature)
    if [rule_to_json(r) for r in before.rules] != [rule_to_json(r) for r in after.rules]:
        fields.append(FieldChange("rules", before.rules, after.rules))
    return fields


def _plan_changes(before: Plan, after: Plan) -> list[FieldChange]:
    lines = ("entitlements", "prices", "credit_grants")
    fields = _differing_fields(before, after, skip=lines)
    fields += _entitlement_changes(before.entitlements, after.entitlements)
    fields += _line_changes("prices", before.prices, after.prices)
    fields += _line_changes("credit_grants", before.credit_grants, after.credit_grants)
    return fields


def _entitlement_changes(
    before: Sequence[Entitlement], after: Sequence[Entitlement]
) -> list[FieldChange]:
    """Per feature (`entitlements.api_calls`), then the order if only that moved."""
    if tuple(before) == tuple(after):
        return []
    old = {e.feature: e for e in before}
    new = {e.feature: e for e in after}
    fields = [
        FieldChange(f"entitlements.{key}", old.get(key), new.get(key))
        for key in [*new, *(k for k in old if k not in new)]
        if old.get(key) != new.get(key)
    ]
    if not fields:
        order = [e.feature for e in before], [e.feature for e in after]
        fields.append(FieldChange("entitlements", *order))
    return fields


def _line_changes(name: str, before: Sequence[Any], after: Sequence[Any]) -> list[FieldChange]:
    """Per position (`prices.1`): prices and grants have no key of their own."""
    count = max(len(before), len(after))
    pairs = [
        (before[i] if i < len(before) else None, after[i] if i < len(after) else None)
        for i in range(count)
    ]
    return [
        FieldChange(f"{name}.{i}", old, new) for i, (old, new) in enumerate(pairs) if old != new
    ]


_FIELD_CHANGES: dict[Kind, Callable[[Any, Any], list[FieldChange]]] = {
    Kind.CREDIT: _differing_fields,
    Kind.FEATURE: _feature_changes,
    Kind.PLAN: _plan_changes,
    Kind.BUNDLE: _differing_fields,
}


def changed_plan_fields(change: Change) -> set[str]:
    """The plan fields (`entitlements`, `prices`, ...) a change touches."""
    return {field.field.split(".")[0] for field in change.fields}
