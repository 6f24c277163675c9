"""Feature bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from tierkit.engine.catalog import (
    Aggregation,
    Feature,
    FeatureOption,
    FeatureStatus,
    FeatureType,
    Meter,
    Visibility,
)
from tierkit.server.api.schemas.common import (
    Description,
    EventName,
    InputModel,
    Key,
    Name,
    OutputModel,
    ScalarValue,
    Unit,
)
from tierkit.server.services.features import FeatureRecord


class MeterBody(InputModel):
    event: EventName = Field(description="The event name whose usage this meter measures.")
    aggregation: Aggregation
    property: EventName | None = Field(
        default=None,
        description="`sum`/`max`: the property to read (null: the event's `quantity`); "
        "`unique_count`: the property whose distinct values are counted.",
    )

    def to_meter(self) -> Meter:
        return Meter(self.event, self.aggregation, self.property)


class OptionBody(InputModel):
    key: Key
    name: Name


def _options(options: list[OptionBody] | None) -> tuple[FeatureOption, ...] | None:
    return None if options is None else tuple(FeatureOption(o.key, o.name) for o in options)


class FeatureCreate(InputModel):
    key: Key
    name: Name
    description: Description = ""
    type: FeatureType
    unit: Unit | None = None
    status: FeatureStatus = FeatureStatus.ACTIVE
    visibility: Visibility = Visibility.PUBLIC
    meter: MeterBody | None = None
    options: list[OptionBody] | None = Field(default=None, min_length=1, max_length=100)
    default: ScalarValue | None = None
    global_value: ScalarValue | None = Field(
        default=None, description="A kill switch: when set, every company gets this value."
    )

    def to_feature(self) -> Feature:
        return Feature(
            key=self.key,
            name=self.name,
            type=self.type,
            description=self.description,
            unit=self.unit,
            status=self.status,
            visibility=self.visibility,
            meter=self.meter.to_meter() if self.meter else None,
            options=_options(self.options),
            default=self.default,
            global_value=self.global_value,
        )


class FeatureUpdate(InputModel):
    """Fields to change; omitted fields are kept, `null` clears a nullable field."""

    name: Name | None = None
    description: Description | None = None
    type: FeatureType | None = None
    unit: Unit | None = None
    status: FeatureStatus | None = None
    visibility: Visibility | None = None
    meter: MeterBody | None = None
    options: list[OptionBody] | None = Field(default=None, min_length=1, max_length=100)
    default: ScalarValue | None = None
    global_value: ScalarValue | None = None

    not_null = frozenset({"name", "description", "type", "status", "visibility"})

    def to_changes(self) -> dict[str, Any]:
        changes = self.provided()
        if "meter" in changes:
            changes["meter"] = self.meter.to_meter() if self.meter else None
        if "options" in changes:
            changes["options"] = _options(self.options)
        return changes


class MeterOut(OutputModel):
    event: str
    aggregation: Aggregation
    property: str | None


class OptionOut(OutputModel):
    key: str
    name: str


class FeatureOut(OutputModel):
    id: str
    key: str
    name: str
    description: str
    type: FeatureType
    unit: str | None
    status: FeatureStatus
    visibility: Visibility
    meter: MeterOut | None
    options: list[OptionOut] | None
    default: ScalarValue | None
    global_value: ScalarValue | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, record: FeatureRecord) -> FeatureOut:
        feature = record.feature
        return cls(
            id=record.id,
            key=feature.key,
            name=feature.name,
            description=feature.description,
            type=feature.type,
            unit=feature.unit,
            status=feature.status,
            visibility=feature.visibility,
            meter=MeterOut.model_validate(feature.meter) if feature.meter else None,
            options=(
                None
                if feature.options is None
                else [OptionOut.model_validate(o) for o in feature.options]
            ),
            default=feature.default,
            global_value=feature.global_value,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )
