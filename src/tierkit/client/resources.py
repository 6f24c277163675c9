"""The API's resources as methods, written once for both clients.

A resource method builds a `Call` and hands it to its client's `send`: the sync `Client` returns
the reply, `AsyncClient` an awaitable of it (`Resource[Json]` and `Resource[Awaitable[Json]]`).
Bodies and replies are the API's JSON (API.md); keyword arguments not named here pass through
as body fields, so new API fields need no SDK release.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from tierkit.client.http import Call, segment

Json = Any
Out = TypeVar("Out")


def _time(moment: datetime | str | None) -> str | None:
    if isinstance(moment, datetime):
        return moment.isoformat().replace("+00:00", "Z")
    return moment


def _fields(**fields: Any) -> dict[str, Any]:
    """Body fields that were given (None: leave out), times as RFC 3339."""
    return {
        key: _time(value) if isinstance(value, datetime) else value
        for key, value in fields.items()
        if value is not None
    }


def _page(limit: int | None, cursor: str | None, **filters: Any) -> dict[str, Any]:
    return {"limit": limit, "cursor": cursor, **filters}


class Resource(Generic[Out]):
    def __init__(self, send: Callable[[Call], Out]) -> None:
        self._send = send


class Features(Resource[Out]):
    def create(self, key: str, *, type: str, name: str | None = None, **fields: Any) -> Out:
        return self._send(
            Call("POST", "/v1/features", _fields(key=key, type=type, name=name or key, **fields))
        )

    def get(self, key: str) -> Out:
        return self._send(Call("GET", f"/v1/features/{segment(key)}"))

    def list(self, *, limit: int | None = None, cursor: str | None = None, **filters: Any) -> Out:
        return self._send(Call("GET", "/v1/features", params=_page(limit, cursor, **filters)))

    def update(self, key: str, **changes: Any) -> Out:
        return self._send(Call("PATCH", f"/v1/features/{segment(key)}", changes))

    def delete(self, key: str) -> Out:
        return self._send(Call("DELETE", f"/v1/features/{segment(key)}"))

    def get_rules(self, key: str) -> Out:
        return self._send(Call("GET", f"/v1/features/{segment(key)}/rules"))

    def set_rules(self, key: str, rules: Sequence[Mapping[str, Any]]) -> Out:
        return self._send(Call("PUT", f"/v1/features/{segment(key)}/rules", list(rules)))


class Plans(Resource[Out]):
    def create(self, key: str, *, name: str | None = None, **fields: Any) -> Out:
        return self._send(Call("POST", "/v1/plans", _fields(key=key, name=name or key, **fields)))

    def get(self, key: str) -> Out:
        return self._send(Call("GET", f"/v1/plans/{segment(key)}"))

    def list(self, *, limit: int | None = None, cursor: str | None = None, **filters: Any) -> Out:
        return self._send(Call("GET", "/v1/plans", params=_page(limit, cursor, **filters)))

    def update(self, key: str, **changes: Any) -> Out:
        return self._send(Call("PATCH", f"/v1/plans/{segment(key)}", changes))

    def delete(self, key: str) -> Out:
        return self._send(Call("DELETE", f"/v1/plans/{segment(key)}"))

    def set_entitlement(self, key: str, feature: str, **entitlement: Any) -> Out:
        path = f"/v1/plans/{segment(key)}/entitlements/{segment(feature)}"
        return self._send(Call("PUT", path, entitlement))

    def delete_entitlement(self, key: str, feature: str) -> Out:
        path = f"/v1/plans/{segment(key)}/entitlements/{segment(feature)}"
        return self._send(Call("DELETE", path))

    def features(self, key: str) -> Out:
        return self._send(Call("GET", f"/v1/plans/{segment(key)}/features"))

    def versions(self, key: str, *, limit: int | None = None, cursor: str | None = None) -> Out:
        path = f"/v1/plans/{segment(key)}/versions"
        return self._send(Call("GET", path, params=_page(limit, cursor)))

    def migrate(
        self,
        key: str,
        *,
        from_version: int,
        to_version: int,
        dry_run: bool = False,
        batch_size: int | None = None,
    ) -> Out:
        """A dry run's impact report, or one batch of a real run (call again until `done`)."""
        body = _fields(
            from_version=from_version,
            to_version=to_version,
            dry_run=dry_run,
            batch_size=batch_size,
        )
        return self._send(Call("POST", f"/v1/plans/{segment(key)}/migrations", body))


class Companies(Resource[Out]):
    def upsert(
        self,
        key: str,
        *,
        name: str | None = None,
        traits: Mapping[str, Any] | None = None,
        plan: str | None = None,
        **fields: Any,
    ) -> Out:
        body = _fields(name=name, traits=traits, plan=plan, **fields)
        return self._send(Call("PUT", f"/v1/companies/{segment(key)}", body))

    def get(self, key: str) -> Out:
        return self._send(Call("GET", f"/v1/companies/{segment(key)}"))

    def list(
        self,
        *,
        plan: str | None = None,
        q: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Out:
        return self._send(Call("GET", "/v1/companies", params=_page(limit, cursor, plan=plan, q=q)))

    def delete(self, key: str) -> Out:
        return self._send(Call("DELETE", f"/v1/companies/{segment(key)}"))


class Subscriptions(Resource[Out]):
    def create(
        self,
        company: str,
        plan: str,
        *,
        quantity: int | None = None,
        started_at: datetime | str | None = None,
        trial_ends_at: datetime | str | None = None,
        ends_at: datetime | str | None = None,
        **fields: Any,
    ) -> Out:
        body = _fields(
            plan=plan,
            quantity=quantity,
            started_at=started_at,
            trial_ends_at=trial_ends_at,
            ends_at=ends_at,
            **fields,
        )
        return self._send(Call("POST", f"/v1/companies/{segment(company)}/subscriptions", body))

    def list(self, company: str, *, limit: int | None = None, cursor: str | None = None) -> Out:
        path = f"/v1/companies/{segment(company)}/subscriptions"
        return self._send(Call("GET", path, params=_page(limit, cursor)))

    def get(self, company: str, subscription_id: str) -> Out:
        path = f"/v1/companies/{segment(company)}/subscriptions/{segment(subscription_id)}"
        return self._send(Call("GET", path))

    def update(self, company: str, subscription_id: str, **changes: Any) -> Out:
        path = f"/v1/companies/{segment(company)}/subscriptions/{segment(subscription_id)}"
        return self._send(Call("PATCH", path, _fields(**changes)))

    def cancel(self, company: str, subscription_id: str, *, at: str = "now") -> Out:
        """End it `now` or at `period_end`."""
        path = f"/v1/companies/{segment(company)}/subscriptions/{segment(subscription_id)}"
        return self._send(Call("DELETE", path, params={"at": at}))


class Overrides(Resource[Out]):
    def set(
        self,
        company: str,
        feature: str,
        *,
        value: Any = None,
        unlimited: bool | None = None,
        expires_at: datetime | str | None = None,
        **fields: Any,
    ) -> Out:
        body = _fields(unlimited=unlimited, expires_at=expires_at, **fields)
        if value is not None:
            body["value"] = value
        path = f"/v1/companies/{segment(company)}/overrides/{segment(feature)}"
        return self._send(Call("PUT", path, body))

    def list(self, company: str) -> Out:
        return self._send(Call("GET", f"/v1/companies/{segment(company)}/overrides"))

    def delete(self, company: str, feature: str) -> Out:
        path = f"/v1/companies/{segment(company)}/overrides/{segment(feature)}"
        return self._send(Call("DELETE", path))


class Users(Resource[Out]):
    def upsert(
        self,
        key: str,
        *,
        name: str | None = None,
        traits: Mapping[str, Any] | None = None,
        companies: Sequence[str] | None = None,
    ) -> Out:
        body = _fields(name=name, traits=traits, companies=list(companies) if companies else None)
        return self._send(Call("PUT", f"/v1/users/{segment(key)}", body))

    def get(self, key: str) -> Out:
        return self._send(Call("GET", f"/v1/users/{segment(key)}"))

    def list(self, *, limit: int | None = None, cursor: str | None = None, **filters: Any) -> Out:
        return self._send(Call("GET", "/v1/users", params=_page(limit, cursor, **filters)))

    def delete(self, key: str) -> Out:
        return self._send(Call("DELETE", f"/v1/users/{segment(key)}"))


class Events(Resource[Out]):
    def send(self, events: Sequence[Mapping[str, Any]]) -> Out:
        """Store a batch now (at most 1000), bypassing the background queue of `track`."""
        safe = all(e.get("idempotency_key") for e in events)
        return self._send(Call("POST", "/v1/events", {"events": list(events)}, safe_to_repeat=safe))

    def list(
        self,
        *,
        company: str | None = None,
        event: str | None = None,
        from_: datetime | str | None = None,
        to: datetime | str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Out:
        params = _page(limit, cursor, company=company, event=event)
        params |= {"from": _time(from_), "to": _time(to)}
        return self._send(Call("GET", "/v1/events", params=params))

    def get(self, event_id: str) -> Out:
        return self._send(Call("GET", f"/v1/events/{segment(event_id)}"))

    def set_metric(
        self,
        key: str,
        company: str,
        value: float,
        *,
        idempotency_key: str | None = None,
        time: datetime | str | None = None,
    ) -> Out:
        """Set a gauge (a `latest` meter, such as seats)."""
        body = _fields(
            key=key, company=company, value=value, idempotency_key=idempotency_key, time=time
        )
        return self._send(Call("POST", "/v1/metrics/set", body, safe_to_repeat=True))


class Usage(Resource[Out]):
    def get(self, company: str) -> Out:
        return self._send(Call("GET", f"/v1/companies/{segment(company)}/usage"))

    def series(
        self,
        company: str,
        feature: str,
        *,
        from_: datetime | str | None = None,
        to: datetime | str | None = None,
        granularity: str | None = None,
    ) -> Out:
        path = f"/v1/companies/{segment(company)}/usage/{segment(feature)}"
        params = {"from": _time(from_), "to": _time(to), "granularity": granularity}
        return self._send(Call("GET", path, params=params))


class Credits(Resource[Out]):
    def create_type(self, key: str, *, name: str | None = None, **fields: Any) -> Out:
        return self._send(Call("POST", "/v1/credits", _fields(key=key, name=name or key, **fields)))

    def list_types(self) -> Out:
        return self._send(Call("GET", "/v1/credits"))

    def grant(
        self,
        company: str,
        credit: str,
        amount: float,
        *,
        expires_at: datetime | str | None = None,
        **fields: Any,
    ) -> Out:
        body = _fields(credit=credit, amount=amount, expires_at=expires_at, **fields)
        return self._send(Call("POST", f"/v1/companies/{segment(company)}/credit-grants", body))

    def grants(self, company: str) -> Out:
        return self._send(Call("GET", f"/v1/companies/{segment(company)}/credit-grants"))

    def void(self, company: str, grant_id: str) -> Out:
        path = f"/v1/companies/{segment(company)}/credit-grants/{segment(grant_id)}/void"
        return self._send(Call("POST", path))

    def balances(self, company: str) -> Out:
        return self._send(Call("GET", f"/v1/companies/{segment(company)}/credits"))

    def ledger(self, company: str, *, limit: int | None = None, cursor: str | None = None) -> Out:
        path = f"/v1/companies/{segment(company)}/credits/ledger"
        return self._send(Call("GET", path, params=_page(limit, cursor)))

    def create_bundle(self, key: str, **fields: Any) -> Out:
        return self._send(Call("POST", "/v1/credit-bundles", _fields(key=key, **fields)))

    def list_bundles(self) -> Out:
        return self._send(Call("GET", "/v1/credit-bundles"))

    def purchase(self, company: str, bundle: str, **fields: Any) -> Out:
        path = f"/v1/companies/{segment(company)}/credit-bundles/{segment(bundle)}/purchase"
        return self._send(Call("POST", path, _fields(**fields)))


class Pricing(Resource[Out]):
    def table(self, *, currency: str | None = None, interval: str | None = None) -> Out:
        params = {"currency": currency, "interval": interval}
        return self._send(Call("GET", "/v1/pricing-table", params=params))

    def invoice_preview(self, company: str) -> Out:
        return self._send(Call("GET", f"/v1/companies/{segment(company)}/invoice-preview"))


class Environment(Resource[Out]):
    def get(self) -> Out:
        return self._send(Call("GET", "/v1/environment"))

    def create_key(self, *, kind: str = "secret", name: str | None = None) -> Out:
        return self._send(Call("POST", "/v1/api-keys", _fields(kind=kind, name=name)))

    def list_keys(self) -> Out:
        return self._send(Call("GET", "/v1/api-keys"))

    def revoke_key(self, key_id: str) -> Out:
        return self._send(Call("DELETE", f"/v1/api-keys/{segment(key_id)}"))


class Api(Generic[Out]):
    """Every resource, over one `send`."""

    def __init__(self, send: Callable[[Call], Out]) -> None:
        self.features = Features(send)
        self.plans = Plans(send)
        self.companies = Companies(send)
        self.subscriptions = Subscriptions(send)
        self.overrides = Overrides(send)
        self.users = Users(send)
        self.events = Events(send)
        self.usage = Usage(send)
        self.credits = Credits(send)
        self.pricing = Pricing(send)
        self.environment = Environment(send)
