"""Decisions in OpenFeature's terms: its reasons, a variant name for every value, and flag
metadata. The server's OFREP routes and the SDK's OpenFeature provider both answer with this."""

from __future__ import annotations

from typing import Any

from tierkit.engine.catalog import FeatureStatus, FeatureType, Scalar
from tierkit.engine.codec import json_number
from tierkit.engine.evaluate import Catalog, Decision, Reason

REASONS: dict[Reason, str] = {
    Reason.GLOBAL_OVERRIDE: "STATIC",
    Reason.OVERRIDE: "TARGETING_MATCH",
    Reason.PLAN: "TARGETING_MATCH",
    Reason.RULE: "TARGETING_MATCH",
    Reason.DEFAULT: "DEFAULT",
    Reason.LIMIT_EXCEEDED: "TARGETING_MATCH",
    Reason.INSUFFICIENT_CREDITS: "TARGETING_MATCH",
    Reason.ERROR: "ERROR",
}
"""Tierkit's reason -> OpenFeature's (a rule with a rollout is `SPLIT`, an archived feature
`DISABLED`: see `evaluation`)."""


def variant_of(value: Any, unlimited: bool) -> str:
    """A stable name for an entitled value: `on`/`off`, the option key, the number, or
    `unlimited`."""
    if unlimited:
        return "unlimited"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(json_number(value)) if value is not None else "none"


def flag_metadata(decision: Decision) -> dict[str, Scalar]:
    """What explains the decision, as flat OpenFeature metadata."""
    metadata: dict[str, Scalar] = {"tierkit_reason": decision.reason.value}
    if decision.plan is not None:
        metadata["plan"] = decision.plan
    if decision.rule is not None:
        metadata["rule"] = decision.rule
    if decision.override_expires_at is not None:
        metadata["override_expires_at"] = decision.override_expires_at.isoformat()
    usage = decision.usage
    if usage is not None:
        metadata |= {
            "used": json_number(usage.used),
            "limit": json_number(usage.limit) if usage.limit is not None else "unlimited",
            "remaining": json_number(usage.remaining)
            if usage.remaining is not None
            else "unlimited",
            "period": usage.period.value,
        }
        if usage.resets_at is not None:
            metadata["resets_at"] = usage.resets_at.isoformat()
    if decision.stale:
        metadata["stale"] = True
    return metadata


def evaluation(catalog: Catalog, decision: Decision) -> dict[str, Any]:
    """A decision as an OpenFeature evaluation `{"key", "value", "reason", "variant",
    "metadata"}`. Metered features evaluate to `allowed`, with their usage in the metadata."""
    feature = catalog.features[decision.feature]
    reason = REASONS[decision.reason]
    if decision.rule is not None and any(
        rule.name == decision.rule and rule.rollout is not None
        for rule in catalog.rules.get(feature.key, ())
    ):
        reason = "SPLIT"
    if feature.status is FeatureStatus.ARCHIVED:
        reason = "DISABLED"
    value: Any
    if feature.type is FeatureType.METERED:
        value = decision.allowed
        variant = "allowed" if decision.allowed else "denied"
    else:
        value = json_number(decision.value)
        variant = variant_of(decision.value, decision.unlimited)
    return {
        "key": decision.feature,
        "value": value,
        "reason": reason,
        "variant": variant,
        "metadata": flag_metadata(decision),
    }
