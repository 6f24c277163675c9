"""Plan versions and migrations between them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from tierkit.server.api.schemas.common import (
    Flag,
    InputModel,
    Measure,
    OutputModel,
    ScalarValue,
    WholeNumber,
)
from tierkit.server.api.schemas.plans import CreditGrantSpecOut, EntitlementOut, PriceOut
from tierkit.server.services.plan_migrations import (
    CompanyImpact,
    Effect,
    ImpactReport,
    MigrationBatch,
    PlanVersionRecord,
)

VersionNumber = Annotated[WholeNumber, Field(ge=1, le=2**31 - 1)]


class PlanVersionOut(OutputModel):
    version: int
    current: bool = Field(description="Whether it is the plan's current (latest) version.")
    entitlements: list[EntitlementOut]
    prices: list[PriceOut]
    credit_grants: list[CreditGrantSpecOut]
    subscribers: int = Field(description="Subscriptions on this version that have not ended.")
    created_at: datetime

    @classmethod
    def of(cls, record: PlanVersionRecord) -> PlanVersionOut:
        plan = record.plan
        return cls(
            version=record.version,
            current=record.current,
            entitlements=[EntitlementOut.of(e) for e in plan.entitlements],
            prices=[PriceOut.model_validate(p) for p in plan.prices],
            credit_grants=[CreditGrantSpecOut.model_validate(g) for g in plan.credit_grants],
            subscribers=record.subscribers,
            created_at=record.created_at,
        )


class MigrationBody(InputModel):
    from_version: VersionNumber
    to_version: VersionNumber = Field(description="Newer or older (a rollback) than `from`.")
    dry_run: Flag = Field(default=False, description="Report the impact; change nothing.")
    batch_size: Annotated[WholeNumber, Field(ge=1, le=1000)] = Field(
        default=100, description="Subscriptions moved by this call (a real run)."
    )


class AccessOut(OutputModel):
    allowed: bool
    value: ScalarValue | None
    unlimited: bool


class FeatureChangeOut(OutputModel):
    feature: str
    effect: Effect
    before: AccessOut
    after: AccessOut


class OverLimitOut(OutputModel):
    feature: str
    used: Measure
    limit: Measure


class CompanyImpactOut(OutputModel):
    company: str
    subscriptions: list[str]
    loses_access: bool = Field(description="Some feature allowed now would be denied.")
    changes: list[FeatureChangeOut]
    over_limit: list[OverLimitOut] = Field(
        description="Metered features whose new limit is below the current usage."
    )

    @classmethod
    def of(cls, impact: CompanyImpact) -> CompanyImpactOut:
        return cls(
            company=impact.company,
            subscriptions=impact.subscriptions,
            loses_access=impact.loses_access,
            changes=[
                FeatureChangeOut(
                    feature=c.feature,
                    effect=c.effect,
                    before=AccessOut.model_validate(c.before, from_attributes=True),
                    after=AccessOut.model_validate(c.after, from_attributes=True),
                )
                for c in impact.changes
            ],
            over_limit=[
                OverLimitOut(feature=o.feature, used=o.used, limit=o.limit)
                for o in impact.over_limit
            ],
        )


class MigrationReportOut(OutputModel):
    """A dry run: what the migration would change."""

    dry_run: Literal[True] = True
    plan: str
    from_version: int
    to_version: int
    companies: int = Field(description="Companies the migration would move.")
    subscriptions: int = Field(description="Subscriptions the migration would move.")
    losing_access: list[str] = Field(description="Companies that would lose access somewhere.")
    over_limit: list[str] = Field(description="Companies that would be over a new limit.")
    impact: list[CompanyImpactOut] = Field(
        description="Every company whose decisions change, by key (unchanged ones are left out)."
    )

    @classmethod
    def of(cls, report: ImpactReport) -> MigrationReportOut:
        return cls(
            plan=report.plan,
            from_version=report.from_version,
            to_version=report.to_version,
            companies=report.companies,
            subscriptions=report.subscriptions,
            losing_access=[i.company for i in report.impacts if i.loses_access],
            over_limit=[i.company for i in report.impacts if i.over_limit],
            impact=[CompanyImpactOut.of(i) for i in report.impacts],
        )


class MigrationBatchOut(OutputModel):
    """A real run's batch: call again while `done` is false."""

    dry_run: Literal[False] = False
    plan: str
    from_version: int
    to_version: int
    migrated: int = Field(description="Subscriptions this call moved.")
    remaining: int = Field(description="Subscriptions still on `from_version`.")
    done: bool

    @classmethod
    def of(cls, batch: MigrationBatch) -> MigrationBatchOut:
        return cls(
            plan=batch.plan,
            from_version=batch.from_version,
            to_version=batch.to_version,
            migrated=batch.migrated,
            remaining=batch.remaining,
            done=batch.done,
        )
