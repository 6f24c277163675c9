"""`InMemoryClient`: Tierkit in your own tests, without a server.

Define features, plans and companies in code, in the API's JSON shapes; checks answer from the
same engine and local evaluation as `Client(local=True)`; tracked events count at once and are
kept in `tracked` for assertions.

```python
from tierkit.testing import InMemoryClient
tk = InMemoryClient()
tk.add_feature("api_calls", "metered", meter={"event": "api_call", "aggregation": "count"})
tk.add_plan("pro", [{"feature": "api_calls", "value": 1000}])
tk.set_company("acme", plan="pro")
tk.track("api_call", company="acme")
assert tk.check("acme", "api_calls").usage.used == 1
```
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from tierkit.client.local import LocalEvaluation, Need
from tierkit.engine.catalog import Scalar
from tierkit.engine.codec import company_from_json, company_to_json, format_time
from tierkit.engine.credits import plan_debit
from tierkit.engine.evaluate import (
    CompanyState,
    Decision,
    Window,
    after_consuming,
    usage_windows,
)
from tierkit.zones import zone_named

_Counted = tuple[float, Window]
"""A metered feature's usage, and the window it was counted in."""


class InMemoryClient:
    """The check and track methods of `Client`, over state defined in code."""

    def __init__(self, *, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self._local = LocalEvaluation(clock)
        self._features: dict[str, dict[str, Any]] = {}
        self._plans: dict[str, dict[str, Any]] = {}
        self._rules: dict[str, list[dict[str, Any]]] = {}
        self._credits: dict[str, dict[str, Any]] = {}
        self._companies: dict[str, dict[str, Any]] = {}
        self._usage: dict[str, dict[str, _Counted]] = {}
        self.tracked: list[dict[str, Any]] = []
        """Every event tracked or identified, as it would have been sent."""
        self._publish_catalog()

    # -- defining ----------------------------------------------------------------------------

    def add_feature(self, key: str, type: str = "boolean", **fields: Any) -> None:
        """A feature as `POST /v1/features` takes it (a metered one needs a `meter`)."""
        self._features[key] = {"key": key, "type": type, **fields}
        self._publish_catalog()

    def add_plan(
        self, key: str, entitlements: Sequence[Mapping[str, Any]] = (), **fields: Any
    ) -> None:
        """A plan as `POST /v1/plans` takes it (`type="add_on"`, `is_default=True`, ...)."""
        self._plans[key] = {"key": key, "entitlements": [dict(e) for e in entitlements], **fields}
        self._publish_catalog()

    def set_rules(self, feature: str, rules: Sequence[Mapping[str, Any]]) -> None:
        """A feature's rules as `PUT /v1/features/{key}/rules` takes them."""
        self._rules[feature] = [dict(r) for r in rules]
        self._publish_catalog()

    def add_credit_type(self, key: str, name: str | None = None) -> None:
        self._credits[key] = {"key": key, "name": name or key}
        self._publish_catalog()

    def set_company(
        self,
        key: str,
        *,
        plan: str | None = None,
        add_ons: Mapping[str, int] | None = None,
        traits: Mapping[str, Scalar] | None = None,
        started_at: datetime | None = None,
    ) -> None:
        """A company on `plan` (and `add_ons`, by quantity) since `started_at` (now)."""
        start = format_time(started_at or self._clock())
        subscriptions = [
            {"id": f"sub_{plan_key}", "plan": plan_key, "quantity": quantity, "started_at": start}
            for plan_key, quantity in ([(plan, 1)] if plan else []) + list((add_ons or {}).items())
        ]
        company = self._companies.setdefault(key, {"key": key, "overrides": []})
        company.update(traits=dict(traits or {}), subscriptions=subscriptions)
        zone = company["traits"].get("timezone")  # as the server reads the trait
        company["timezone"] = zone if isinstance(zone, str) else None
        self._publish_company(key)

    def set_override(
        self,
        company: str,
        feature: str,
        value: Scalar | None = None,
        *,
        unlimited: bool = False,
        expires_at: datetime | None = None,
    ) -> None:
        state = self._company(company)
        state["overrides"] = [o for o in state["overrides"] if o["feature"] != feature] + [
            {
                "feature": feature,
                "value": value,
                "unlimited": unlimited,
                "expires_at": format_time(expires_at),
            }
        ]
        self._publish_company(company)

    def set_usage(self, company: str, feature: str, used: float) -> None:
        """The company's usage of a metered feature in its current period (it reads zero once
        that period is over, as the server's counters do)."""
        state = self._publish_company(self._key_of(company))
        window = state.usage_windows.get(feature, (None, None))
        self._usage[company][feature] = (used, window)
        self._publish_company(company)

    def grant_credits(
        self, company: str, credit: str, amount: float, *, expires_at: datetime | None = None
    ) -> None:
        grants = self._company(company).setdefault("grants", [])
        grants.append(
            {
                "id": f"grant_{len(grants) + 1}",
                "credit": credit,
                "remaining": amount,
                "created_at": format_time(self._clock()),
                "expires_at": format_time(expires_at),
            }
        )
        self._publish_company(company)

    def set_user(self, key: str, traits: Mapping[str, Scalar]) -> None:
        self._local.put_user({"key": key, "traits": dict(traits)})

    # -- the Client's methods ----------------------------------------------------------------

    def check(
        self,
        company: str,
        feature: str,
        *,
        user: str | None = None,
        quantity: float = 1,
        context: Mapping[str, Scalar] | None = None,
        consume: bool = False,
        idempotency_key: str | None = None,
    ) -> Decision:
        """As `Client.check`; `consume` records the units (and debits their credits) when
        allowed, and answers as the server's consume does."""
        if user is not None and user not in self._local.user_keys():
            self.set_user(user, {})
        if company in self._companies:
            self._publish_company(company)  # the clock may have moved into a new period
        elif not self._local.has_company(company):
            self._local.put_company({"key": company, "found": False})
        result = self._local.decide(company, feature, user=user, quantity=quantity, context=context)
        assert not isinstance(result, Need)  # noqa: S101 - everything is in memory
        if not consume or not result.allowed or (result.usage is None and result.credits is None):
            return result
        key = self._key_of(company)
        if result.usage is not None:
            used, window = self._usage[key].get(feature, (0.0, (None, None)))
            state = self._local.state_of(key)
            current = state.usage_windows.get(feature, window) if state else window
            used = used if window == current else 0.0
            self._usage[key][feature] = (used + quantity, current)
        if result.credits is not None:
            self._debit(key, result.credits.credit, result.credits.cost)
        self._publish_company(key)
        return after_consuming(result, quantity)

    def check_bulk(
        self,
        company: str,
        features: Sequence[str] | None = None,
        *,
        user: str | None = None,
        context: Mapping[str, Scalar] | None = None,
    ) -> list[Decision]:
        keys = features if features is not None else self._local.feature_keys()
        return [self.check(company, key, user=user, context=context) for key in keys]

    def track(
        self,
        event: str,
        *,
        company: str,
        user: str | None = None,
        quantity: float = 1,
        properties: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> bool:
        self.tracked.append(
            {
                "type": "track",
                "event": event,
                "company": company,
                "user": user,
                "quantity": quantity,
                "properties": dict(properties or {}),
                "timestamp": format_time(timestamp),
                "idempotency_key": idempotency_key,
            }
        )
        self._publish_company(self._key_of(company))  # tracking creates the company, as the API
        mark = self._local.track(company, event, quantity, properties or {}, timestamp)
        self._local.delivered([mark])
        state = self._local.state_of(company)
        if state is not None:
            self._usage[company] = {
                feature: (float(used), state.usage_windows.get(feature, (None, None)))
                for feature, used in state.usage.items()
            }
        return True

    def identify(
        self,
        *,
        company: str | Mapping[str, Any] | None = None,
        user: str | Mapping[str, Any] | None = None,
    ) -> bool:
        self.tracked.append({"type": "identify", "company": company, "user": user})
        return True

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self) -> None:
        return None

    def __enter__(self) -> InMemoryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------

    def _company(self, key: str) -> dict[str, Any]:
        if key not in self._companies:
            self.set_company(key)
        return self._companies[key]

    def _key_of(self, company: str) -> str:
        """`company`, defined (on the default plan) if it was not."""
        self._company(company)
        return company

    def _debit(self, company: str, credit: str, amount: float) -> None:
        grants = self._companies[company].get("grants", [])
        state = self._local.state_of(company)
        taken = plan_debit(state.grants if state else (), credit, amount, self._clock())
        for grant, take in taken or ():
            for stored in grants:
                if stored["id"] == grant.id:
                    stored["remaining"] -= take

    def _publish_catalog(self) -> None:
        document = {
            "features": list(self._features.values()),
            "plans": list(self._plans.values()),
            "rules": self._rules,
            "credits": list(self._credits.values()),
        }
        self._local.set_catalog(document, None)
        for key in self._companies:
            self._publish_company(key)

    def _publish_company(self, key: str) -> CompanyState:
        """The company's state as local evaluation holds it now: usage counted in an earlier
        window than the current one reads zero."""
        data = self._companies[key]
        catalog = self._local.catalog
        assert catalog is not None  # noqa: S101 - published in __init__
        state = company_from_json(data, catalog, zone_named)
        windows = usage_windows(catalog, state, self._clock())
        counted = self._usage.setdefault(key, {})
        state = replace(
            state,
            usage={
                feature: used
                for feature, (used, window) in counted.items()
                if windows.get(feature) == window
            },
            usage_windows=windows,
        )
        self._local.put_company(company_to_json(state))
        return state
