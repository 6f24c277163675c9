"""Local evaluation against a live server, on both databases: a local `Client` decides as the
server does on every engine vector and on a generated workload, follows changes made through
the API within a second, and counts tracked usage at once without counting it twice."""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from tests.conftest import BACKENDS, SettableClock, drop_postgres_schema, postgres_schema_url
from tests.support.api import rfc3339
from tests.support.live_server import PATIENT_TIMEOUT, LiveServer
from tierkit import Client, Reason
from tierkit.engine.codec import decision_to_json, parse_time
from tierkit.server.app import create_app
from tierkit.server.db import Database
from tierkit.server.db.migrate import create_schema
from tierkit.server.services.api_keys import KeyKind
from tierkit.server.services.container import Services
from tierkit.server.settings import Settings

KeyFactory = Callable[..., str]

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
VECTOR_FILES = sorted(VECTORS.glob("*.json"))
MISSING = "<missing from the reply>"
START = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
FRESHNESS = 1.0
"""The issue's bound: a change made through the API reaches a local client within a second."""


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)


def project(actual: Any, expected: Any) -> Any:
    """`actual` cut down to the keys `expected` names, recursively."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {key: project(actual.get(key, MISSING), value) for key, value in expected.items()}
    return actual


def ok(response: httpx.Response) -> Any:
    request = response.request
    assert response.is_success, f"{request.method} {request.url}: {response.text}"
    return response.json() if response.content else None


# One server per backend for the whole module, an environment per test


def loopback() -> httpx.HTTPTransport:
    """Plain HTTP to the test server. Without a transport each httpx client loads the CA
    bundle (50 ms of CPU), which the hundreds of clients here would spend for nothing."""
    return httpx.HTTPTransport(verify=False)


@dataclass(frozen=True, slots=True)
class SdkServer:
    url: str
    clock: SettableClock
    services: Services
    names: Iterator[int]

    def new_key(self, environment: str | None = None) -> str:
        """A secret key of a new, empty environment: a test's keys stay as they are (rollout
        buckets hash them) and no other test's data is in sight."""
        name = environment or f"env-{next(self.names)}"
        self.services.environments.create_environment(name)
        return self.services.api_keys.create_key(name, KeyKind.SECRET, "parity")[1]

    def remote_client(self, key: str, **options: Any) -> Client:
        return Client(api_key=key, base_url=self.url, transport=loopback(), **options)

    def local_client(self, key: str, **options: Any) -> Client:
        """A local client on the server's clock."""
        options.setdefault("transport", loopback())
        return Client(api_key=key, base_url=self.url, local=True, clock=self.clock, **options)


@pytest.fixture(scope="module", params=BACKENDS)
def sdk_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_admin: Engine | None,
) -> Iterator[SdkServer]:
    """A real server per backend for the module (a database per vector would cost half a
    second each). Its stream keep-alive is short because a local client's `close()` waits for
    the next byte on its stream (see the close test at the end)."""
    schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('parity')}/tierkit.db"
    else:
        assert postgres_admin is not None
        schema, url = postgres_schema_url(postgres_admin)
    database = Database(url)
    create_schema(database)
    database.dispose()
    clock = SettableClock()
    app = create_app(Settings(database_url=url, stream_keepalive_seconds=0.1), clock=clock)
    services: Services = app.state.services
    server = LiveServer()
    server.start()
    server.mount(app)
    try:
        yield SdkServer(server.url, clock, services, itertools.count())
    finally:
        server.stop()
        services.database.dispose()
        if schema is not None:
            assert postgres_admin is not None
            drop_postgres_schema(postgres_admin, schema)


@dataclass(frozen=True, slots=True)
class Setup:
    """A fresh environment on the module's server, and a remote client with its key."""

    server: SdkServer
    key: str
    remote: Client

    @property
    def clock(self) -> SettableClock:
        return self.server.clock

    def local_client(self, **options: Any) -> Client:
        return self.server.local_client(self.key, **options)


@pytest.fixture
def setup(sdk_server: SdkServer) -> Iterator[Setup]:
    """Starts at `START`."""
    sdk_server.clock.now = START
    key = sdk_server.new_key()
    with sdk_server.remote_client(key) as remote:
        yield Setup(sdk_server, key, remote)


# The engine vectors


SKIPPED_VECTORS = {
    # The API refuses the bad values these vectors feed the engine to see it fail closed.
    "fail_closed_metered_non_numeric_limit_denies": "the API refuses a rule value 'lots' on a "
    "metered feature (invalid_value)",
    "fail_closed_numeric_boolean_value_denies": "the API refuses a rule value true on a numeric "
    "feature (invalid_value)",
    "op_before_number_no_match": "the API refuses a number as the value of `before` "
    "(date_required)",
    "plan_condition_non_string_value_no_match": "the API refuses a nested list as a condition "
    "value (validation_failed)",
}


def vector_params() -> list[Any]:
    return [
        pytest.param(
            path,
            id=path.stem,
            marks=[pytest.mark.skip(reason=SKIPPED_VECTORS[path.stem])]
            if path.stem in SKIPPED_VECTORS
            else [],
        )
        for path in VECTOR_FILES
    ]


SMALL_COUNT = 20
"""A `count` meter's usage up to this is made of that many events; see `meter_for_usage`."""


def meter_for_usage(meter: dict[str, Any], used: float | None) -> dict[str, Any]:
    """The vector's meter, or, where its usage is more than a few events of a `count` meter
    (up to 5,000,000) or a fraction, a `sum` of the same event's quantity, which one event
    brings there. A meter only says how usage is measured: evaluation reads the number."""
    if used is None or (meter["aggregation"] == "count" and used == int(used) <= SMALL_COUNT):
        return meter
    return {"event": meter["event"], "aggregation": "sum", "property": None}


def usage_events(meter: dict[str, Any], company: str, used: float, now: datetime) -> list[Any]:
    """Events at `now` (so in every window holding `now`) that bring `meter` to `used`."""
    event = {"event": meter["event"], "company": company, "timestamp": rfc3339(now)}
    if meter["aggregation"] == "count":
        return [event] * int(used)
    return [event | {"quantity": used}]


def named_by_rules(catalog: dict[str, Any]) -> tuple[set[str], set[str]]:
    """The plans and metered features that the catalog's rules name."""
    plans, metered = set(), set()
    for rules in catalog["rules"].values():
        for rule in rules:
            for condition in itertools.chain.from_iterable(rule["conditions"]):
                if condition["type"] == "plan":
                    value = condition["value"]
                    plans |= set(value if isinstance(value, list) else [value])
                elif condition["type"] == "usage":
                    metered.add(condition["feature"])
    return {p for p in plans if isinstance(p, str)}, metered


def load_vector(api: httpx.Client, vector: dict[str, Any], clock: SettableClock) -> None:
    """The vector's catalog, company, user and usage, made through the API; the clock ends at
    the vector's `now`.

    The API refuses a rule that names a plan or metered feature that does not exist, and it
    measures usage of metered features only; a vector may name such a plan or feature (or
    have usage of one) that its catalog lacks, for the engine reads keys only. Those are added,
    on no plan, which no subscription uses and no vector checks: the decision is the same."""
    now = parse_time(vector["now"])
    assert now is not None
    catalog, company = vector["catalog"], vector["company"]
    usage: dict[str, float] = company["usage"]
    features = {feature["key"]: feature for feature in catalog["features"]}
    plan_names, metered = named_by_rules(catalog)
    for key in (usage.keys() | metered) - features.keys():
        features[key] = {
            "key": key,
            "type": "metered",
            "meter": {"event": key, "aggregation": "sum", "property": None},
        }
    meters = {}
    for key, feature in features.items():
        body = {"name": key} | feature
        if "meter" in body:
            body["meter"] = meters[key] = meter_for_usage(body["meter"], usage.get(key))
        ok(api.post("/v1/features", json=body))
    # A plan with older versions starts at its oldest; `grandfather` moves it on to its latest
    # once the subscriptions that hold an older version exist.
    versions: dict[str, list[dict[str, Any]]] = {
        key: sorted(held, key=lambda v: v["version"])
        for key, held in catalog.get("plan_versions", {}).items()
    }
    for plan in catalog["plans"]:
        oldest = [parts(v) for v in versions.get(plan["key"], [])[:1]]
        ok(api.post("/v1/plans", json={"name": plan["key"]} | plan | next(iter(oldest), {})))
    for key in plan_names - {plan["key"] for plan in catalog["plans"]}:
        ok(api.post("/v1/plans", json={"key": key, "name": key}))
    for feature, rules in catalog["rules"].items():
        ok(api.put(f"/v1/features/{feature}/rules", json=rules))
    if company["found"]:
        path = f"/v1/companies/{company['key']}"
        clock.now = now
        ok(api.put(path, json={"traits": company["traits"]}))
        subscribe(api, path, company["subscriptions"], catalog, versions)
        for override in company["overrides"]:
            # The API refuses an override that has already expired (it would never apply):
            # one that has expired by `now` is made the second before it expires.
            expires_at = parse_time(override["expires_at"])
            clock.now = min(now, expires_at - timedelta(seconds=1)) if expires_at else now
            body = {k: v for k, v in override.items() if k != "feature"}
            ok(api.put(f"{path}/overrides/{override['feature']}", json=body))
        clock.now = now
        events = [
            event
            for feature, used in usage.items()
            for event in usage_events(meters[feature], company["key"], used, now)
        ]
        if events:
            ok(api.post("/v1/events", json={"events": events}))
    else:
        grandfather(api, catalog, versions)
    user = vector["user"]
    if user is not None:
        ok(api.put(f"/v1/users/{user['key']}", json={"traits": user["traits"]}))
    clock.now = now


def parts(plan: dict[str, Any]) -> dict[str, Any]:
    """A plan's versioned parts."""
    return {key: plan.get(key, []) for key in ("entitlements", "prices", "credit_grants")}


def subscribe(
    api: httpx.Client,
    path: str,
    subscriptions: list[dict[str, Any]],
    catalog: dict[str, Any],
    versions: dict[str, list[dict[str, Any]]],
) -> None:
    """The company's subscriptions: those on an older plan version first, then the plans
    moved on to their latest, then the others."""
    older = [s for s in subscriptions if _holds_older(s, versions)]
    for subscription in older:
        ok(api.post(f"{path}/subscriptions", json=_without_version(subscription)))
    grandfather(api, catalog, versions)
    for subscription in subscriptions:
        if subscription not in older:
            ok(api.post(f"{path}/subscriptions", json=_without_version(subscription)))


def _holds_older(subscription: dict[str, Any], versions: dict[str, list[dict[str, Any]]]) -> bool:
    held = {v["version"] for v in versions.get(subscription["plan"], [])}
    return subscription.get("plan_version") in held


def _without_version(subscription: dict[str, Any]) -> dict[str, Any]:
    """The API sets a subscription's version itself (the plan's current one)."""
    return {k: v for k, v in subscription.items() if k != "plan_version"}


def grandfather(
    api: httpx.Client, catalog: dict[str, Any], versions: dict[str, list[dict[str, Any]]]
) -> None:
    """Move each plan that has older versions through the rest of them to its latest: the
    subscriptions made so far keep the versions they hold."""
    latest = {plan["key"]: plan for plan in catalog["plans"]}
    for key, held in versions.items():
        for version in [*held[1:], latest[key]]:
            ok(api.patch(f"/v1/plans/{key}", json=parts(version)))


@pytest.mark.parametrize("path", vector_params())
def test_local_check__engine_vector_made_through_the_api__decides_as_the_server(
    path: Path, sdk_server: SdkServer
) -> None:
    # Given the vector's catalog and state made through the API, at the vector's instant
    vector = json.loads(path.read_text())
    key = sdk_server.new_key(path.stem[:64])
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=sdk_server.url, headers=headers, transport=loopback()) as api:
        load_vector(api, vector, sdk_server.clock)
    check: dict[str, Any] = {
        "company": vector["company"]["key"],
        "feature": vector["feature"],
        "user": vector["user"]["key"] if vector["user"] else None,
        "quantity": vector["quantity"],
        "context": vector["context"].get("traits") or None,
    }

    # When a remote client and a local client (that has read the catalog) check it; the
    # local one reads the company's state and the user's, and decides
    with (
        sdk_server.remote_client(key) as remote,
        # (no stream: these decisions come from states read on demand, and a client closes
        # at once without one; the stream has its own tests below)
        sdk_server.local_client(key, stream=False) as local,
    ):
        local.wait_until_ready()
        remote_reply = decision_to_json(remote.check(**check))
        local_reply = decision_to_json(local.check(**check))

    # Then both give the same decision, the one the vector expects
    assert local_reply == remote_reply
    assert project(remote_reply, vector["expected"]) == vector["expected"]


# A generated workload

SUPPORT_OPTIONS = [
    {"key": "email", "name": "Email"},
    {"key": "chat", "name": "Chat"},
    {"key": "phone", "name": "Phone"},
]
ZONES = ["Europe/Paris", "America/New_York", "Asia/Tokyo"]


def trait(trait: str, op: str, value: Any, entity: str = "company") -> dict[str, Any]:
    return {"type": "trait", "entity": entity, "trait": trait, "op": op, "value": value}


def make_catalog(client: Client) -> None:
    """Nine features of the four types (two metered: a count and a sum of a property), rules
    on traits of companies, users and contexts, on plans and usage, with rollouts; base plans
    `free` (the default), `starter` (a 14-day trial), `pro`, and the add-on `boost`."""
    features = client.features
    features.create("sso", name="sso", type="boolean", default=False)
    features.create("beta", name="beta", type="boolean", default=False)
    features.create("dark_mode", name="dark_mode", type="boolean")
    features.create("uploads", name="uploads", type="boolean", global_value=False)
    features.create("projects", name="projects", type="numeric", default=1)
    features.create("seats", name="seats", type="numeric", default=0)
    features.create(
        "support", name="support", type="enum", options=SUPPORT_OPTIONS, default="email"
    )
    api_calls = {"event": "api_call", "aggregation": "count"}
    features.create("api_calls", name="api_calls", type="metered", meter=api_calls, default=0)
    storage = {"event": "storage", "aggregation": "sum", "property": "gb"}
    features.create("storage_gb", name="storage_gb", type="metered", meter=storage, default=0)
    plans = client.plans
    plans.create(
        "free",
        name="free",
        is_default=True,
        entitlements=[
            {"feature": "api_calls", "value": 100},
            {"feature": "storage_gb", "value": 5, "period": "day"},
        ],
    )
    plans.create(
        "starter",
        name="starter",
        trial_days=14,
        entitlements=[
            {"feature": "projects", "value": 10},
            {"feature": "seats", "value": 5},
            {"feature": "api_calls", "value": 1000, "reset": "billing_cycle"},
            {"feature": "storage_gb", "value": 20, "period": "week"},
            {"feature": "support", "value": "chat"},
        ],
    )
    plans.create(
        "pro",
        name="pro",
        entitlements=[
            {"feature": "sso", "value": True},
            {"feature": "projects", "unlimited": True},
            {"feature": "seats", "value": 20},
            {"feature": "api_calls", "value": 80, "soft_limit": True},
            {"feature": "storage_gb", "value": 100},
            {"feature": "support", "value": "phone"},
            {"feature": "uploads", "value": True},
        ],
    )
    plans.create(
        "boost",
        name="boost",
        type="add_on",
        entitlements=[
            {"feature": "sso", "value": True},
            {"feature": "projects", "value": 5},
            {"feature": "seats", "value": 5},
            {"feature": "api_calls", "value": 50},
        ],
    )
    features.set_rules(
        "beta",
        [
            {"name": "gold", "value": True, "conditions": [[trait("tier", "in", ["gold"])]]},
            {
                "name": "heavy",
                "value": True,
                "conditions": [
                    [{"type": "usage", "feature": "api_calls", "op": "gte", "value": 60}]
                ],
            },
            {"name": "some", "value": True, "rollout": {"percent": 30, "by": "company"}},
        ],
    )
    features.set_rules(
        "dark_mode",
        [
            {"name": "ios", "value": True, "conditions": [[trait("device", "eq", "ios")]]},
            {
                "name": "admins",
                "value": True,
                "conditions": [[trait("role", "eq", "admin", entity="user")]],
                "rollout": {"percent": 50, "by": "user"},
            },
        ],
    )
    features.set_rules(
        "projects",
        [
            {
                "name": "big",
                "value": 25,
                "conditions": [
                    [trait("employees", "gte", 200)],
                    [{"type": "plan", "op": "not_in", "value": ["pro"]}],
                ],
            }
        ],
    )
    features.set_rules(
        "support",
        [{"name": "eu", "value": "chat", "conditions": [[trait("region", "eq", "eu")]]}],
    )


def make_customers(client: Client, rng: random.Random, now: datetime) -> list[str]:
    """Thirty companies with random traits (some in a time zone), plans (some ended, some
    ending, some on trial), add-ons, overrides (some expiring within three weeks), and ten
    users; returns the company keys."""
    companies = [f"co-{i:02d}" for i in range(30)]
    for key in companies:
        traits: dict[str, Any] = {
            "tier": rng.choice(["bronze", "silver", "gold"]),
            "employees": rng.randint(1, 400),
            "region": rng.choice(["eu", "us", "apac"]),
        }
        if rng.random() < 0.3:
            traits["timezone"] = rng.choice(ZONES)
        client.companies.upsert(key, traits=traits)
        plan = rng.choice([None, "free", "starter", "starter", "pro", "pro"])
        if plan is not None:
            ends_at = rng.choice([None, None, now - timedelta(days=rng.randint(1, 9))])
            ends_at = ends_at or rng.choice([None, now + timedelta(days=rng.randint(1, 30))])
            started_at = now - timedelta(days=rng.randint(10, 90), hours=rng.randint(0, 23))
            client.subscriptions.create(key, plan, started_at=started_at, ends_at=ends_at)
        if rng.random() < 0.3:
            client.subscriptions.create(key, "boost", quantity=rng.randint(1, 3))
        if rng.random() < 0.4:
            feature, value = rng.choice(
                [("projects", rng.randint(0, 60)), ("api_calls", rng.randint(10, 300)),
                 ("sso", rng.random() < 0.5), ("support", "phone"), ("seats", 0)]
            )  # fmt: skip
            expires_at = rng.choice([None, now + timedelta(days=rng.randint(1, 20))])
            client.overrides.set(key, feature, value=value, expires_at=expires_at)
    for i in range(10):
        client.users.upsert(
            f"u-{i}",
            traits={"role": rng.choice(["admin", "member"])},
            companies=[rng.choice(companies)],
        )
    return companies


def make_usage(client: Client, rng: random.Random, companies: list[str], now: datetime) -> None:
    """Events over the last four days for most companies (some of them in the previous
    month's window when `now` is early in a month)."""
    events: list[dict[str, Any]] = []
    for key in companies:
        if rng.random() < 0.3:
            continue
        for _ in range(rng.randint(1, 150)):
            at = now - timedelta(seconds=rng.randint(0, 4 * 86400))
            events.append({"event": "api_call", "company": key, "timestamp": rfc3339(at)})
        for _ in range(rng.randint(0, 4)):
            at = now - timedelta(seconds=rng.randint(0, 4 * 86400))
            gb = {"gb": rng.randint(1, 9)}
            events.append({"event": "storage", "company": key, "properties": gb,
                           "timestamp": rfc3339(at)})  # fmt: skip
    for start in range(0, len(events), 1000):
        client.events.send(events[start : start + 1000])


Ask = tuple[str, str | None, dict[str, Any] | None]
"""A company, a user, a context."""


def check_all(client: Client, companies: list[str], asks: list[Ask]) -> dict[str, Any]:
    """Every feature of every company and of each ask, and `api_calls` for a quantity of 25,
    as `client` answers them."""
    answers: dict[str, Any] = {}
    for company, user, context in [(c, None, None) for c in companies] + asks:
        for decision in client.check_bulk(company, user=user, context=context):
            answers[f"{company}/{decision.feature}/{user}/{context}"] = decision_to_json(decision)
    for company in companies:
        decision = client.check(company, "api_calls", quantity=25)
        answers[f"{company}/api_calls x25"] = decision_to_json(decision)
    return answers


def differences(remote: dict[str, Any], local: dict[str, Any]) -> dict[str, list[Any]]:
    return {
        ask: [answer, local.get(ask)] for ask, answer in remote.items() if local.get(ask) != answer
    }


def test_local_check__generated_workload__decides_as_the_server_before_and_after_a_month(
    setup: Setup,
) -> None:
    # Given a seeded catalog, customers (overrides made 12 days ago, some expired since)
    # and usage over the last four days
    rng = random.Random(20261122)  # noqa: S311 - reproducible test data, not secrets
    make_catalog(setup.remote)
    companies = make_customers(setup.remote, rng, setup.clock.now)
    now = setup.clock.advance(days=12)
    make_usage(setup.remote, rng, companies, now)
    companies.append("stranger")
    asks: list[Ask] = [
        (
            rng.choice(companies),
            f"u-{rng.randint(0, 9)}",
            rng.choice([None, {"device": "ios"}, {"region": "eu", "tier": "gold"}]),
        )
        for _ in range(12)
    ] + [("nobody", None, None), ("nobody", "u-1", {"device": "ios"})]

    with setup.local_client() as local:
        # When both clients check every feature of every company
        remote_before = check_all(setup.remote, companies, asks)
        local_before = check_all(local, companies, asks)
        # and again 40 days later, across the end of the month (and of trials, subscriptions,
        # overrides and usage windows), with the local client's decisions kept from before
        setup.clock.advance(days=40)
        remote_after = check_all(setup.remote, companies, asks)
        local_after = check_all(local, companies, asks)

    # Then they agree on each
    assert differences(remote_before, local_before) == {}
    assert differences(remote_after, local_after) == {}
    # (and the workload is not degenerate: every reason shows, and time changed answers)
    answers = list(remote_before.values()) + list(remote_after.values())
    assert len(remote_before) == len(remote_after) == len(companies) * 10 + len(asks) * 9
    assert {answer["reason"] for answer in answers} == {
        "global_override", "override", "plan", "rule", "default", "limit_exceeded"
    }  # fmt: skip
    changed = [ask for ask, answer in remote_before.items() if remote_after[ask] != answer]
    assert len(changed) >= 30


# Changes made through the API reach a local client


def make_projects_catalog(client: Client) -> None:
    """`projects` (numeric, default 1) on plans `pro` (10) and `enterprise` (100); company
    `acme` on `pro`."""
    client.features.create("projects", name="projects", type="numeric", default=1)
    client.plans.create("pro", name="pro", entitlements=[{"feature": "projects", "value": 10}])
    client.plans.create(
        "enterprise", name="enterprise", entitlements=[{"feature": "projects", "value": 100}]
    )
    client.companies.upsert("acme", plan="pro")


CHANGES: dict[str, tuple[Callable[[Client], object], int, Reason, str | None]] = {
    "override": (
        lambda client: client.overrides.set("acme", "projects", value=50),
        50,
        Reason.OVERRIDE,
        None,
    ),
    # A plan edited under its subscribers makes a new version: `acme` sees it once migrated.
    "plan_entitlement": (
        lambda client: (
            client.plans.set_entitlement("pro", "projects", value=20),
            client.plans.migrate("pro", from_version=1, to_version=2),
        ),
        20,
        Reason.PLAN,
        "pro",
    ),
    "subscription": (
        lambda client: client.subscriptions.create("acme", "enterprise"),
        100,
        Reason.PLAN,
        "enterprise",
    ),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_local_check__change_made_through_the_api__seen_within_one_second(
    setup: Setup, change: str
) -> None:
    # Given a local client that has checked `acme`
    make_projects_catalog(setup.remote)
    make_change, value, reason, plan = CHANGES[change]
    with setup.local_client() as local:
        local.wait_until_ready()
        first = local.check("acme", "projects")
        assert (first.value, first.reason, first.plan) == (10, Reason.PLAN, "pro")

        # When the change is made through the API
        make_change(setup.remote)
        made_at = time.monotonic()

        # Then within a second the local client answers the new value, as the server does
        seen = wait_for(lambda: local.check("acme", "projects").value == value, FRESHNESS)
        elapsed = time.monotonic() - made_at
        decision = local.check("acme", "projects")
        remote = setup.remote.check("acme", "projects")
    assert seen, f"not seen after {elapsed:.2f}s"
    assert (decision.value, decision.reason, decision.plan) == (value, reason, plan)
    assert decision_to_json(decision) == decision_to_json(remote)


def make_usage_catalog(client: Client) -> None:
    """`api_calls` summing the quantity of `api_call` events, 1000 a month on `pro`; `marked`,
    on for companies with the trait `marker` = 1 (a change a test can wait for); `acme` on
    `pro` with 5 calls used."""
    meter = {"event": "api_call", "aggregation": "sum"}
    client.features.create("api_calls", name="api_calls", type="metered", meter=meter, default=0)
    client.features.create("marked", name="marked", type="boolean", default=False)
    marked = [[trait("marker", "eq", 1)]]
    client.features.set_rules("marked", [{"name": "m", "value": True, "conditions": marked}])
    client.plans.create("pro", name="pro", entitlements=[{"feature": "api_calls", "value": 1000}])
    client.companies.upsert("acme", plan="pro")
    client.events.send([{"event": "api_call", "company": "acme", "quantity": 5}])


def used(client: Client) -> Any:
    usage = client.check("acme", "api_calls").usage
    assert usage is not None
    return usage.used


def mark_and_wait(remote: Client, local: Client) -> bool:
    """Change `acme` through the API and wait until the local client has read it again."""
    remote.companies.upsert("acme", traits={"marker": 1})
    return wait_for(lambda: local.check("acme", "marked").allowed, FRESHNESS)


class Gate(httpx.HTTPTransport):
    """Loopback HTTP that holds requests of one method and path while it is closed: before
    they reach the server, or (`after_server`) once the server has answered, before the
    client sees the answer. `held` is set when it holds one."""

    def __init__(self, method: str, path: str, *, after_server: bool = False) -> None:
        super().__init__(verify=False)
        self.method, self.path, self.after_server = method, path, after_server
        self.opened = threading.Event()
        self.opened.set()
        self.held = threading.Event()

    def close_gate(self) -> None:
        self.held.clear()
        self.opened.clear()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        matches = request.method == self.method and request.url.path == self.path
        if matches and not self.after_server:
            self._hold()
        response = super().handle_request(request)
        if matches and self.after_server:
            response.read()
            self._hold()
        return response

    def _hold(self) -> None:
        if not self.opened.is_set():
            self.held.set()
            self.opened.wait(10)


def test_local_track__then_flush__counted_at_once_and_once(setup: Setup) -> None:
    # Given 5 calls used by `acme`, and a local client that holds the events it tracks (no
    # flush before it is asked)
    make_usage_catalog(setup.remote)
    with setup.local_client(flush_interval=60, event_batch_size=1000) as local:
        assert used(local) == 5

        # When it tracks 3 calls
        tracked = local.track("api_call", company="acme", quantity=3)

        # Then its next check counts them at once, before the server has them
        assert tracked
        assert used(local) == 8
        assert used(setup.remote) == 5

        # and once they are stored (flush), the server's stream makes the local client read
        # the company again: it counts them once, as the server does, at every moment
        assert local.flush(timeout=5)
        assert used(setup.remote) == 8
        seen: list[Any] = []

        def refreshed() -> bool:
            seen.append(used(local))
            return local.check("acme", "marked").allowed

        setup.remote.companies.upsert("acme", traits={"marker": 1})
        assert wait_for(refreshed, FRESHNESS)
        assert set(seen) == {8}
        assert decision_to_json(local.check("acme", "api_calls")) == decision_to_json(
            setup.remote.check("acme", "api_calls")
        )


def test_local_track__while_the_company_is_read_again__still_counted(setup: Setup) -> None:
    # Given 5 calls used by `acme`, and a local client (which holds the events it tracks)
    # reading `acme` again after a change, its read held on the way to the server
    make_usage_catalog(setup.remote)
    gate = Gate("GET", "/v1/sdk/companies/acme")
    with setup.local_client(flush_interval=60, transport=gate) as local:
        try:
            assert used(local) == 5
            gate.close_gate()
            setup.remote.companies.upsert("acme", traits={"marker": 1})
            assert gate.held.wait(FRESHNESS)

            # When it tracks 3 calls meanwhile, and then the read lands
            local.track("api_call", company="acme", quantity=3)
            assert used(local) == 8
            gate.opened.set()
            assert wait_for(lambda: local.check("acme", "marked").allowed, FRESHNESS)

            # Then the calls are still counted: the server has not got them yet
            assert used(setup.remote) == 5
            assert used(local) == 8
        finally:
            gate.opened.set()


def test_local_track__stored_but_the_reply_not_yet_back__counted_once(setup: Setup) -> None:
    # Given 5 calls used by `acme`, and a local client that has tracked 3 more and sent them:
    # the server has stored them, and its reply is on the way back
    make_usage_catalog(setup.remote)
    gate = Gate("POST", "/v1/events", after_server=True)
    with setup.local_client(flush_interval=60, transport=gate) as local:
        try:
            assert used(local) == 5
            gate.close_gate()
            local.track("api_call", company="acme", quantity=3)
            assert not local.flush(timeout=0)  # sends now, without waiting
            assert gate.held.wait(FRESHNESS)
            assert used(setup.remote) == 8

            # When the local client reads `acme` again meanwhile (the server's usage change
            # and a trait change make it)
            assert mark_and_wait(setup.remote, local)

            # Then it counts the calls once, before the reply and after it
            during = used(local)
            gate.opened.set()
            assert local.flush(timeout=5)
            assert (during, used(local)) == (8, 8)
        finally:
            gate.opened.set()


def test_local_check__unknown_company__answers_as_the_server(setup: Setup) -> None:
    # Given a catalog with a default plan, and a company nobody has seen
    make_projects_catalog(setup.remote)
    setup.remote.plans.update("enterprise", is_default=True)

    # When a local client checks it
    with setup.local_client(stream=False) as local:
        local_reply = decision_to_json(local.check("nobody", "projects"))

    # Then it answers as the server: not found, on the default plan
    assert local_reply == decision_to_json(setup.remote.check("nobody", "projects"))
    assert project(local_reply, {"company_found": False, "value": 100, "plan": "enterprise"}) == {
        "company_found": False,
        "value": 100,
        "plan": "enterprise",
    }


@pytest.mark.parametrize(
    "fallback",
    [{}, {"fallback_allowed": True}, {"fallback_values": {"nope": 7}}],
    ids=["default", "fallback_allowed", "fallback_values"],
)
def test_local_check__unknown_feature__the_fallback_with_feature_not_found_as_remote(
    setup: Setup, fallback: dict[str, Any]
) -> None:
    # Given a catalog without the feature `nope`, and clients with the same fallback options
    make_projects_catalog(setup.remote)
    with (
        setup.server.remote_client(setup.key, **fallback) as remote,
        setup.local_client(stream=False, **fallback) as local,
    ):
        # When both check it
        remote_decision = remote.check("acme", "nope")
        local_decision = local.check("acme", "nope")

    # Then both answer the configured fallback with `feature_not_found` (the server's 404)
    assert decision_to_json(local_decision) == decision_to_json(remote_decision)
    assert remote_decision.reason is Reason.ERROR
    assert remote_decision.error_code == "feature_not_found"
    values = fallback.get("fallback_values", {})
    assert remote_decision.value == values.get("nope")
    assert remote_decision.allowed is (
        bool(values["nope"]) if values else "fallback_allowed" in fallback
    )


class SlowSnapshot(httpx.HTTPTransport):
    """Loopback HTTP on which the snapshot comes 0.2 s late (a slow network, simulated), so a
    client's first check surely finds no catalog yet."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/sdk/snapshot":
            time.sleep(0.2)
        return super().handle_request(request)


def test_local_check__first_check_names_a_user__decides_as_the_server(setup: Setup) -> None:
    # Given `beta` on for admins, a company and an admin user, and a local client whose
    # catalog has not arrived yet
    setup.remote.features.create("beta", name="beta", type="boolean", default=False)
    admins = [[trait("role", "eq", "admin", entity="user")]]
    setup.remote.features.set_rules(
        "beta", [{"name": "admins", "value": True, "conditions": admins}]
    )
    setup.remote.companies.upsert("acme", traits={"tier": "gold"})
    setup.remote.users.upsert("u1", traits={"role": "admin"}, companies=["acme"])
    with setup.local_client(transport=SlowSnapshot(verify=False), stream=False) as local:
        # When its first check names a user (the catalog, the company and the user must all
        # be read before it can decide)
        decision = local.check("acme", "beta", user="u1")

    # Then it decides, as the server does
    assert decision_to_json(decision) == decision_to_json(
        setup.remote.check("acme", "beta", user="u1")
    )
    assert (decision.allowed, decision.reason, decision.rule) == (True, Reason.RULE, "admins")


def test_local_client_close__stream_open__returns_at_once_and_stops_syncing(
    server_url: str, make_key: KeyFactory
) -> None:
    # Given a local client following the stream of a server with the default keep-alive
    threads_before = set(threading.enumerate())
    local = Client(api_key=make_key(), base_url=server_url, local=True, timeout=PATIENT_TIMEOUT)
    told: list[str] = []
    local.on_sync(told.append)
    assert wait_for(lambda: "connected" in told, 5)

    # When it is closed
    started = time.monotonic()
    local.close()
    took = time.monotonic() - started

    # Then close returns at once, and no sync thread is left reading the stream (the live
    # server runs in this process: its own worker threads are not the client's)
    alive = [
        t.name
        for t in set(threading.enumerate()) - threads_before
        if t.is_alive() and t.name.startswith("tierkit")
    ]
    assert took < 0.5
    assert alive == []
