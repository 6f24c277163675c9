"""The console's "why?": one sentence per reason, naming what decided the value."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tierkit.engine.catalog import Period
from tierkit.engine.evaluate import Decision, Reason, Usage
from tierkit.server.console.companies import explain


def decision(reason: Reason, **fields: object) -> Decision:
    base: dict[str, object] = {
        "feature": "seats",
        "company": "acme",
        "company_found": True,
        "allowed": True,
        "value": 5,
        "unlimited": False,
        "reason": reason,
    }
    return Decision(**(base | fields))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("made", "expected"),
    [
        (decision(Reason.PLAN, plan="pro"), "Plan pro sets 5"),
        (decision(Reason.RULE, rule="beta testers"), "Rule 'beta testers' matched"),
        (decision(Reason.DEFAULT), "its default, 5"),
        (decision(Reason.GLOBAL_OVERRIDE, value=False), "kill switch) gives every company false"),
        (decision(Reason.OVERRIDE, unlimited=True), "sets unlimited, with no expiry"),
        (
            decision(Reason.OVERRIDE, override_expires_at=datetime(2027, 1, 2, 3, 4, tzinfo=UTC)),
            "until 2027-01-02 03:04 UTC",
        ),
        (
            decision(
                Reason.LIMIT_EXCEEDED,
                allowed=False,
                plan="free",
                usage=Usage(10, 10, 0, 0, Period.MONTH, None, None),
            ),
            "The limit is 10 (from plan free) and 10 is used this month",
        ),
    ],
)
def test_explain__says_what_decided_the_value(made: Decision, expected: str) -> None:
    assert expected in explain(made)
