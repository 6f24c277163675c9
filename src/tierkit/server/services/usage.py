"""Usage as customers and support read it: each metered feature's current period, and one
feature's usage over time."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from tierkit.engine.catalog import Aggregation, FeatureStatus, FeatureType, Meter
from tierkit.engine.evaluate import Decision
from tierkit.engine.meters import MeterEvent, aggregate, latest_key
from tierkit.engine.periods import Unit, calendar_bounds
from tierkit.server.db import Database
from tierkit.server.db.event_lookup import company_events
from tierkit.server.db.tables import EventRow
from tierkit.server.services.catalog_cache import CatalogCache
from tierkit.server.services.checks import CheckRequest, CheckService
from tierkit.server.services.clock import Clock
from tierkit.server.services.companies import find_company_row
from tierkit.server.services.counters import USAGE_EVENT_TYPES, to_meter_event
from tierkit.server.services.errors import InvalidRequest
from tierkit.server.services.features import feature_not_found
from tierkit.server.services.states import company_zone

MAX_POINTS = 1000


class Granularity(StrEnum):
    HOUR = "hour"
    DAY = "day"


_DEFAULT_SPAN = {Granularity.HOUR: timedelta(hours=24), Granularity.DAY: timedelta(days=30)}


@dataclass(frozen=True, slots=True)
class Point:
    start: datetime
    end: datetime
    value: float


@dataclass(frozen=True, slots=True)
class Series:
    feature: str
    granularity: Granularity
    timezone: str
    points: list[Point]


def _hour_bounds(at: datetime) -> tuple[datetime, datetime]:
    start = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return start, start + timedelta(hours=1)


class UsageService:
    def __init__(
        self, database: Database, clock: Clock, catalogs: CatalogCache, checks: CheckService
    ) -> None:
        self._db = database
        self._clock = clock
        self._catalogs = catalogs
        self._checks = checks

    def company_usage(self, environment_id: str, key: str) -> list[Decision]:
        """Each metered feature's usage in its current period, read anew (not from cache)."""
        with self._db.read() as session:
            find_company_row(session, environment_id, key)
        catalog = self._catalogs.get(environment_id)
        features = sorted(
            feature.key
            for feature in catalog.features.values()
            if feature.type is FeatureType.METERED and feature.status is not FeatureStatus.ARCHIVED
        )
        if not features:
            return []
        request = CheckRequest(company=key, features=features, quantity=0)
        return self._checks.check(environment_id, request, fresh=True)

    def series(
        self,
        environment_id: str,
        key: str,
        feature_key: str,
        *,
        start: datetime | None,
        end: datetime | None,
        granularity: Granularity,
    ) -> Series:
        """The feature's meter per hour (UTC) or per day (in the company's time zone) over
        `[start, end)`; a gauge carries its last value into buckets where it was not set."""
        feature = self._catalogs.get(environment_id).features.get(feature_key)
        if feature is None:
            raise feature_not_found(feature_key)
        if feature.meter is None:
            raise InvalidRequest(
                f"Feature {feature_key!r} is not metered: it has no usage over time.",
                code="feature_not_metered",
                param="feature",
            )
        end = end or self._clock()
        start = start or end - _DEFAULT_SPAN[granularity]
        if start >= end:
            raise InvalidRequest("`from` must be before `to`.", code="invalid_range", param="from")
        with self._db.read() as session:
            company = find_company_row(session, environment_id, key)
            zone = company_zone(company)
            buckets = self._buckets(start, end, granularity, zone)
            rows = session.scalars(
                select(EventRow)
                .where(
                    *company_events(session, company.id, feature.meter.event),
                    EventRow.type.in_(USAGE_EVENT_TYPES),
                    EventRow.timestamp >= buckets[0][0],
                    EventRow.timestamp < buckets[-1][1],
                )
                .order_by(EventRow.seq)
            ).all()
            read = [to_meter_event(row) for row in rows]
            carried = self._gauge_before(session, company.id, feature.meter, buckets[0][0])
        events: list[list[MeterEvent]] = [[] for _ in buckets]
        starts = [bucket_start for bucket_start, _ in buckets]
        for event in read:
            events[bisect.bisect_right(starts, event.timestamp) - 1].append(event)
        points = []
        for (bucket_start, bucket_end), bucket_events in zip(buckets, events, strict=True):
            inside = bucket_events
            if feature.meter.aggregation is Aggregation.LATEST:
                inside = carried + bucket_events
                carried = [max(inside, key=latest_key)] if inside else carried
            points.append(Point(bucket_start, bucket_end, aggregate(feature.meter, inside)))
        return Series(feature_key, granularity, str(zone), points)

    @staticmethod
    def _buckets(
        start: datetime, end: datetime, granularity: Granularity, zone: tzinfo
    ) -> list[tuple[datetime, datetime]]:
        buckets = []
        at = start
        while at < end:
            if granularity is Granularity.HOUR:
                bucket = _hour_bounds(at)
            else:
                bucket = calendar_bounds(Unit.DAY, at, zone)
            buckets.append(bucket)
            if len(buckets) > MAX_POINTS:
                raise InvalidRequest(
                    f"That range holds more than {MAX_POINTS} {granularity.value}s; "
                    "ask for a shorter range or a coarser granularity.",
                    code="range_too_large",
                    param="from",
                )
            at = bucket[1]
        return buckets

    @staticmethod
    def _gauge_before(
        session: Session, company_id: str, meter: Meter, before: datetime
    ) -> list[MeterEvent]:
        if meter.aggregation is not Aggregation.LATEST:
            return []
        row = session.scalar(
            select(EventRow)
            .where(
                *company_events(session, company_id, meter.event),
                EventRow.type.in_(USAGE_EVENT_TYPES),
                EventRow.timestamp < before,
            )
            .order_by(EventRow.timestamp.desc(), EventRow.seq.desc())
            .limit(1)
        )
        return [] if row is None else [to_meter_event(row)]
