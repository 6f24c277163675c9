"""Catalog as code: export an environment's catalog as one document, and apply a document
(the whole change in one transaction, through the same writers as the API's own writes)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tierkit.engine.catalog import FeatureStatus, PlanStatus
from tierkit.server.db import Database
from tierkit.server.services.catalog_cache import changes_catalog
from tierkit.server.services.catalog_diff import (
    Action,
    CatalogDiff,
    Change,
    Kind,
    changed_plan_fields,
    diff_catalogs,
    normalized,
)
from tierkit.server.services.catalog_document import (
    CatalogDocument,
    FeatureEntry,
    read_catalog_document,
)
from tierkit.server.services.credits import CreditService
from tierkit.server.services.errors import Conflict, DomainError, ErrorDetail
from tierkit.server.services.features import FeatureService
from tierkit.server.services.plans import PlanService


class CatalogService:
    def __init__(
        self,
        database: Database,
        features: FeatureService,
        plans: PlanService,
        credits: CreditService,
        on_catalog_change: Callable[[str], None] = lambda environment_id: None,
    ) -> None:
        self._db = database
        self._features = features
        self._plans = plans
        self._credits = credits
        self._catalog_changed = on_catalog_change

    def export(self, environment_id: str) -> CatalogDocument:
        with self._db.read() as session:
            return read_catalog_document(session, environment_id)

    @changes_catalog
    def apply(
        self,
        environment_id: str,
        document: CatalogDocument,
        *,
        dry_run: bool = False,
        allow_archive: bool = False,
    ) -> CatalogDiff:
        """Make the environment's catalog equal `document`, in one transaction: what it lacks
        is created, what differs is updated, features and plans it omits are archived (only
        with `allow_archive`; 409 `destructive_change` otherwise). A dry run makes every write
        and rolls it back, so it reports the errors a real run would meet."""
        try:
            with self._db.write() as session:
                diff = diff_catalogs(read_catalog_document(session, environment_id), document)
                if diff.archives and not (allow_archive or dry_run):
                    raise _destructive(diff)
                if diff.changes:
                    _Writer(
                        self._features, self._plans, self._credits, session, environment_id
                    ).write(normalized(document), diff)
                if dry_run:
                    session.rollback()
                return diff
        except IntegrityError as error:
            raise Conflict(
                "Another request changed the catalog at the same time; retry.",
                code="concurrent_change",
            ) from error


def _destructive(diff: CatalogDiff) -> Conflict:
    archives = diff.archives
    names = ", ".join(f"{c.kind.value.rstrip('s')} {c.key!r}" for c in archives)
    return Conflict(
        f"The catalog omits {len(archives)} object(s) that applying it would archive "
        f"({names}); pass `allow_archive` to archive them, or add them to the file.",
        code="destructive_change",
        details=[
            ErrorDetail(
                f"{c.kind.value}.{c.key}",
                f"{c.kind.value.rstrip('s').capitalize()} {c.key!r} is not in the file: "
                "applying it would archive it.",
            )
            for c in archives
        ],
    )


class _Writer:
    """The writes of one apply, in dependency order: credit types, features, plans, then
    features' rules (they may name plans), bundles, and last the archives of features (a plan
    may still entitle one the file archives)."""

    def __init__(
        self,
        features: FeatureService,
        plans: PlanService,
        credits: CreditService,
        session: Session,
        environment_id: str,
    ) -> None:
        self._features = features
        self._plans = plans
        self._credits = credits
        self._session = session
        self._env = environment_id

    def write(self, document: CatalogDocument, diff: CatalogDiff) -> None:
        todo = {(c.kind, c.key): c for c in diff.changes}
        self._write_credits(document, todo)
        late_archives = self._write_features(document, todo)
        self._write_plans(document, diff, todo)
        self._write_rules(document, todo)
        self._write_bundles(document, todo)
        for change in diff.archives:
            if change.kind is Kind.FEATURE:
                with _at(change.kind, change.key):
                    self._archive_feature(change.key)
        for index, key in late_archives:
            with _at(Kind.FEATURE, key, index):
                self._archive_feature(key)

    def _write_credits(
        self, document: CatalogDocument, todo: dict[tuple[Kind, str], Change]
    ) -> None:
        for index, credit in enumerate(document.credits):
            change = todo.get((Kind.CREDIT, credit.key))
            if change is None:
                continue
            with _at(Kind.CREDIT, credit.key, index):
                write = (
                    self._credits.create_credit_type_in
                    if change.action is Action.CREATE
                    else self._credits.update_credit_type_in
                )
                write(self._session, self._env, credit.key, credit.name, credit.unit)

    def _write_features(
        self, document: CatalogDocument, todo: dict[tuple[Kind, str], Change]
    ) -> list[tuple[int, str]]:
        """Create and update features; those the file archives stay as they were (or
        active) until the end. Returns those (position, key)."""
        late = []
        for index, entry in enumerate(document.features):
            change = todo.get((Kind.FEATURE, entry.feature.key))
            if change is None:
                continue
            feature = entry.feature
            fields = {f.field for f in change.fields} - {"rules"}
            if feature.status is FeatureStatus.ARCHIVED and (
                change.action is Action.CREATE or "status" in fields
            ):
                late.append((index, feature.key))
                fields.discard("status")
                if change.action is Action.CREATE:
                    feature = replace(feature, status=FeatureStatus.ACTIVE)
            with _at(Kind.FEATURE, feature.key, index):
                if change.action is Action.CREATE:
                    self._features.create_feature_in(self._session, self._env, feature)
                elif fields:
                    changes = {name: getattr(feature, name) for name in fields}
                    self._features.update_feature_in(self._session, self._env, feature.key, changes)
        return late

    def _write_plans(
        self, document: CatalogDocument, diff: CatalogDiff, todo: dict[tuple[Kind, str], Change]
    ) -> None:
        """Archives first, then plans that stop being a default: either may free the default
        slot of a group that another plan of the file takes."""
        for archive in diff.archives:
            if archive.kind is Kind.PLAN:
                with _at(Kind.PLAN, archive.key):
                    self._plans.update_plan_in(
                        self._session, self._env, archive.key, {"status": PlanStatus.ARCHIVED}
                    )
        positions = list(enumerate(document.plans))
        positions.sort(key=lambda item: item[1].is_default)  # stable: file order otherwise
        for index, plan in positions:
            change = todo.get((Kind.PLAN, plan.key))
            if change is None:
                continue
            with _at(Kind.PLAN, plan.key, index):
                if change.action is Action.CREATE:
                    self._plans.create_plan_in(self._session, self._env, plan)
                else:
                    changes = {name: getattr(plan, name) for name in changed_plan_fields(change)}
                    self._plans.update_plan_in(self._session, self._env, plan.key, changes)

    def _write_rules(self, document: CatalogDocument, todo: dict[tuple[Kind, str], Change]) -> None:
        for index, entry in enumerate(document.features):
            change = todo.get((Kind.FEATURE, entry.feature.key))
            if change is None or not _rules_change(change, entry):
                continue
            with _at(Kind.FEATURE, entry.feature.key, index, "rules"):
                self._features.put_rules_in(
                    self._session, self._env, entry.feature.key, entry.rules
                )

    def _write_bundles(
        self, document: CatalogDocument, todo: dict[tuple[Kind, str], Change]
    ) -> None:
        for index, bundle in enumerate(document.bundles):
            change = todo.get((Kind.BUNDLE, bundle.key))
            if change is None:
                continue
            with _at(Kind.BUNDLE, bundle.key, index):
                if change.action is Action.CREATE:
                    self._credits.create_bundle_in(self._session, self._env, bundle)
                else:
                    self._credits.update_bundle_in(self._session, self._env, bundle)

    def _archive_feature(self, key: str) -> None:
        self._features.update_feature_in(
            self._session, self._env, key, {"status": FeatureStatus.ARCHIVED}
        )


def _rules_change(change: Change, entry: FeatureEntry) -> bool:
    if change.action is Action.CREATE:
        return bool(entry.rules)
    return any(field.field == "rules" for field in change.fields)


@contextmanager
def _at(kind: Kind, key: str, index: int | None = None, part: str | None = None) -> Iterator[None]:
    """Name the place in the document of an error raised while writing one object:
    `plans.2.entitlements.0.value` rather than the bare `entitlements.0.value`."""
    try:
        yield
    except DomainError as error:
        where = f"{kind.value}.{index}" if index is not None else f"{kind.value}.{key}"
        if part is not None:
            where = f"{where}.{part}"
        raise type(error)(
            f"{kind.value.rstrip('s').capitalize()} {key!r} (`{where}`): {error.message}",
            code=error.code,
            param=_under(where, error.param),
            details=[replace(d, param=_under(where, d.param)) for d in error.details],
        ) from error


def _under(where: str, param: str | None) -> str:
    return where if not param else f"{where}.{param}"
