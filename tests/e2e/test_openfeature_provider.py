"""The real OpenFeature SDK (openfeature-sdk) over `tierkit.openfeature.TierkitProvider`, against
a live server on both databases: the provider initialises on the snapshot, resolves every kind
of feature with OpenFeature's reasons, variants, metadata and error codes, answers as the
server's OFREP endpoint does, follows catalog changes with an event, tracks usage, and stops
its threads at shutdown."""

from __future__ import annotations

import functools
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from openfeature import api as openfeature
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagEvaluationDetails, Reason
from openfeature.provider import ProviderStatus
from openfeature.track import TrackingEventDetails
from sqlalchemy.engine import Engine

from tests.conftest import BACKENDS, drop_postgres_schema, postgres_schema_url
from tests.support.api import create_feature, create_plan
from tests.support.live_server import PATIENT_TIMEOUT, LiveServer
from tierkit import Client
from tierkit.openfeature import TierkitProvider
from tierkit.server.app import create_app
from tierkit.server.db import Database
from tierkit.server.db.migrate import create_schema
from tierkit.server.services.api_keys import KeyKind
from tierkit.server.services.container import Services
from tierkit.server.settings import Settings

pytestmark = pytest.mark.e2e

KeyFactory = Callable[..., str]

FRESHNESS = 1.0
"""A change made through the API reaches the provider within a second."""

ACME = EvaluationContext(targeting_key="acme")
NOBODY = EvaluationContext(targeting_key="nobody")


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)


def ok(response: httpx.Response) -> Any:
    request = response.request
    assert response.is_success, f"{request.method} {request.url}: {response.text}"
    return response.json() if response.content else None


def tierkit_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("tierkit-") and t.is_alive()}


# One server per backend for the module (short stream keep-alive), an environment per test


@dataclass(frozen=True, slots=True)
class TierkitServer:
    url: str
    services: Services
    names: Iterator[int]

    def new_key(self) -> str:
        """A secret key of a new, empty environment: no other test's data is in sight."""
        name = f"of-{next(self.names)}"
        self.services.environments.create_environment(name)
        return self.services.api_keys.create_key(name, KeyKind.SECRET, "openfeature")[1]


@pytest.fixture(scope="module", params=BACKENDS)
def tierkit_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_admin: Engine | None,
) -> Iterator[TierkitServer]:
    """A real server per backend for the module (a database per test would cost half a second
    each). Its stream keep-alive is short because a provider's shutdown now waits for its
    stream's next byte (the last two tests show it on a server with the default keep-alive)."""
    schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('openfeature')}/tierkit.db"
    else:
        assert postgres_admin is not None
        schema, url = postgres_schema_url(postgres_admin)
    database = Database(url)
    create_schema(database)
    database.dispose()
    app = create_app(Settings(database_url=url, stream_keepalive_seconds=0.1))
    services: Services = app.state.services
    server = LiveServer()
    server.start()
    server.mount(app)
    try:
        yield TierkitServer(server.url, services, itertools.count())
    finally:
        server.stop()
        services.database.dispose()
        if schema is not None:
            assert postgres_admin is not None
            drop_postgres_schema(postgres_admin, schema)


@pytest.fixture
def key(tierkit_server: TierkitServer) -> str:
    return tierkit_server.new_key()


@pytest.fixture
def admin(tierkit_server: TierkitServer, key: str) -> Iterator[httpx.Client]:
    """An HTTP client with the test's secret key."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=tierkit_server.url, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture
def catalog(admin: httpx.Client) -> None:
    """Features `sso`, `projects` (numeric, default 1), `support` (enum, default email),
    `api_calls` (metered, the sum of `api_call` quantities), `maintenance` (global value on),
    `beta` (rules: users of role admin, companies of tier gold), `new_ui` (a 100% rollout);
    plans `free` (default: 100 `api_calls`) and `pro` (`sso`, 10 `projects`, chat support,
    10,000 `api_calls`); company `acme` on `pro`; user `u1`, an admin."""
    api = admin
    create_feature(api, "sso")
    create_feature(api, "projects", "numeric", default=1)
    create_feature(api, "support", "enum", default="email")
    create_feature(api, "api_calls", "metered", meter={"event": "api_call", "aggregation": "sum"})
    create_feature(api, "maintenance", global_value=True)
    create_feature(api, "beta")
    create_feature(api, "new_ui")
    create_plan(api, "free", [{"feature": "api_calls", "value": 100}], is_default=True)
    create_plan(
        api,
        "pro",
        [
            {"feature": "sso", "value": True},
            {"feature": "projects", "value": 10},
            {"feature": "support", "value": "chat"},
            {"feature": "api_calls", "value": 10_000},
        ],
    )
    admins = {"type": "trait", "entity": "user", "trait": "role", "op": "eq", "value": "admin"}
    gold = {"type": "trait", "entity": "company", "trait": "tier", "op": "eq", "value": "gold"}
    beta_rules = [
        {"name": "admins", "value": True, "conditions": [[admins]]},
        {"name": "gold", "value": True, "conditions": [[gold]]},
    ]
    ok(api.put("/v1/features/beta/rules", json=beta_rules))
    rollout = [{"name": "everyone", "value": True, "rollout": {"percent": 100, "by": "company"}}]
    ok(api.put("/v1/features/new_ui/rules", json=rollout))
    ok(api.put("/v1/companies/acme", json={"plan": "pro"}))
    ok(api.put("/v1/users/u1", json={"traits": {"role": "admin"}, "companies": ["acme"]}))


@pytest.fixture
def providers() -> Iterator[list[TierkitProvider]]:
    """The providers a test sets; at teardown OpenFeature shuts them down, which closes their
    clients and stops their threads."""
    before = tierkit_threads()
    made: list[TierkitProvider] = []
    yield made
    openfeature.clear_providers()
    assert wait_for(lambda: not (tierkit_threads() - before), 2), tierkit_threads() - before
    for provider in made:
        assert provider.client.track("api_call", company="acme") is False  # closed: dropped


Connect = Callable[[], tuple[TierkitProvider, OpenFeatureClient]]


def set_provider(provider: TierkitProvider) -> OpenFeatureClient:
    """`provider` set on a domain of its own; that domain's client."""
    domain = f"tierkit-{uuid.uuid4().hex}"
    openfeature.set_provider(provider, domain=domain)
    return openfeature.get_client(domain=domain)


@pytest.fixture
def connect(tierkit_server: TierkitServer, key: str, providers: list[TierkitProvider]) -> Connect:
    """A new provider on the test's environment, and its OpenFeature client once ready."""

    def connect() -> tuple[TierkitProvider, OpenFeatureClient]:
        provider = TierkitProvider(api_key=key, base_url=tierkit_server.url)
        providers.append(provider)
        client = set_provider(provider)
        assert wait_for(lambda: client.get_provider_status() == ProviderStatus.READY, 5)
        return provider, client

    return connect


@pytest.fixture
def flags(catalog: None, connect: Connect) -> OpenFeatureClient:
    return connect()[1]


def ofrep(admin: httpx.Client, flag: str, context: dict[str, Any]) -> httpx.Response:
    return admin.post(f"/ofrep/v1/evaluate/flags/{flag}", json={"context": context})


def as_ofrep(details: FlagEvaluationDetails[Any]) -> dict[str, Any]:
    """An OpenFeature evaluation in the OFREP reply's shape."""
    return {
        "key": details.flag_key,
        "value": details.value,
        "reason": details.reason,
        "variant": details.variant,
        "metadata": dict(details.flag_metadata),
    }


# Initialisation, metadata, events


def test_provider__set_provider__initialises_on_the_snapshot_and_reports_ready(
    catalog: None, tierkit_server: TierkitServer, key: str, providers: list[TierkitProvider]
) -> None:
    # Given a provider over a live server, and a handler for PROVIDER_READY
    provider = TierkitProvider(api_key=key, base_url=tierkit_server.url)
    providers.append(provider)
    readied: list[EventDetails] = []
    ready = threading.Event()

    def on_ready(details: EventDetails) -> None:
        readied.append(details)
        ready.set()

    # When OpenFeature sets it
    client = set_provider(provider)
    client.add_handler(ProviderEvent.PROVIDER_READY, on_ready)

    # Then initialize waited for the snapshot: the status is READY, the handler ran, and the
    # catalog is in memory
    assert wait_for(lambda: client.get_provider_status() == ProviderStatus.READY, 5)
    assert ready.wait(5)
    assert readied[0].provider_name == "Tierkit"
    assert provider.client.catalog is not None
    assert "sso" in provider.client.catalog.features
    assert client.get_boolean_value("sso", False, ACME) is True


def test_provider__metadata__is_named_tierkit(connect: Connect) -> None:
    provider, client = connect()

    assert provider.get_metadata().name == "Tierkit"
    assert client.provider.get_metadata().name == "Tierkit"


def test_provider__over_a_remote_client__raises_value_error(
    tierkit_server: TierkitServer, key: str
) -> None:
    with (
        Client(api_key=key, base_url=tierkit_server.url, timeout=PATIENT_TIMEOUT) as remote,
        pytest.raises(ValueError, match="local"),
    ):
        TierkitProvider(remote)


def test_provider__catalog_change__emits_configuration_changed_and_serves_the_new_value(
    admin: httpx.Client, catalog: None, connect: Connect
) -> None:
    # Given a ready provider answering 10 projects for acme, and a handler for changes
    _, client = connect()
    assert client.get_integer_value("projects", 0, ACME) == 10
    changed = threading.Event()
    client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, lambda _: changed.set())

    # When the plan's entitlement changes through the API (a new version of the plan) and
    # acme is migrated onto it
    ok(admin.put("/v1/plans/pro/entitlements/projects", json={"value": 25}))
    ok(admin.post("/v1/plans/pro/migrations", json={"from_version": 1, "to_version": 2}))

    # Then the new value is served within a second, and the handler is told
    assert wait_for(lambda: client.get_integer_value("projects", 0, ACME) == 25, FRESHNESS)
    assert changed.wait(FRESHNESS)


# Resolution


def test_provider__boolean_on_the_plan__targeting_match_and_on(flags: OpenFeatureClient) -> None:
    details = flags.get_boolean_details("sso", False, ACME)

    assert (details.value, details.reason, details.variant) == (True, Reason.TARGETING_MATCH, "on")
    assert details.error_code is None
    assert details.flag_metadata == {"tierkit_reason": "plan", "plan": "pro"}


def test_provider__boolean_nowhere__default_and_off(flags: OpenFeatureClient) -> None:
    details = flags.get_boolean_details("sso", True, NOBODY)

    assert (details.value, details.reason, details.variant) == (False, Reason.DEFAULT, "off")
    assert details.flag_metadata == {"tierkit_reason": "default"}


def test_provider__global_value__static(flags: OpenFeatureClient) -> None:
    details = flags.get_boolean_details("maintenance", False, ACME)

    assert (details.value, details.reason, details.variant) == (True, Reason.STATIC, "on")
    assert details.flag_metadata == {"tierkit_reason": "global_override"}


def test_provider__rule_with_a_rollout__split(flags: OpenFeatureClient) -> None:
    details = flags.get_boolean_details("new_ui", False, ACME)

    assert (details.value, details.reason, details.variant) == (True, Reason.SPLIT, "on")
    assert details.flag_metadata == {"tierkit_reason": "rule", "rule": "everyone"}


def test_provider__enum__a_string_with_the_option_key_as_variant(
    flags: OpenFeatureClient,
) -> None:
    on_plan = flags.get_string_details("support", "none", ACME)
    by_default = flags.get_string_details("support", "none", NOBODY)

    assert (on_plan.value, on_plan.reason, on_plan.variant) == (
        "chat",
        Reason.TARGETING_MATCH,
        "chat",
    )
    assert (by_default.value, by_default.reason, by_default.variant) == (
        "email",
        Reason.DEFAULT,
        "email",
    )


def test_provider__numeric__an_integer_or_a_float(flags: OpenFeatureClient) -> None:
    integer = flags.get_integer_details("projects", 0, ACME)
    real = flags.get_float_details("projects", 0.5, ACME)

    assert (integer.value, integer.reason, integer.variant) == (10, Reason.TARGETING_MATCH, "10")
    assert type(integer.value) is int
    assert (real.value, real.reason, real.variant, real.error_code) == (
        10.0,
        Reason.TARGETING_MATCH,
        "10",
        None,
    )
    assert type(real.value) is float


def test_provider__metered__allowed_with_its_usage_in_metadata(flags: OpenFeatureClient) -> None:
    details = flags.get_boolean_details("api_calls", False, ACME)

    assert (details.value, details.reason, details.variant) == (
        True,
        Reason.TARGETING_MATCH,
        "allowed",
    )
    metadata = dict(details.flag_metadata)
    assert (metadata["used"], metadata["limit"], metadata["remaining"]) == (0, 10_000, 10_000)
    assert (metadata["tierkit_reason"], metadata["plan"], metadata["period"]) == (
        "plan",
        "pro",
        "month",
    )


def test_provider__object__is_the_check_reply(
    admin: httpx.Client, flags: OpenFeatureClient
) -> None:
    details = flags.get_object_details("api_calls", {}, ACME)
    server = ok(admin.post("/v1/check", json={"company": "acme", "feature": "api_calls"}))

    assert details.error_code is None
    assert details.value == server
    assert (server["allowed"], server["value"], server["reason"]) == (True, 10_000, "plan")
    assert (details.reason, details.variant) == (Reason.TARGETING_MATCH, "allowed")


def test_provider__user_attribute__names_the_user_whose_traits_rules_read(
    flags: OpenFeatureClient,
) -> None:
    admin = flags.get_boolean_details(
        "beta", False, EvaluationContext(targeting_key="acme", attributes={"user": "u1"})
    )
    stranger = flags.get_boolean_details(
        "beta", False, EvaluationContext(targeting_key="acme", attributes={"user": "u2"})
    )

    assert (admin.value, admin.reason, admin.variant) == (True, Reason.TARGETING_MATCH, "on")
    assert admin.flag_metadata == {"tierkit_reason": "rule", "rule": "admins"}
    assert (stranger.value, stranger.reason) == (False, Reason.DEFAULT)


def test_provider__other_attributes__are_traits_for_rules(flags: OpenFeatureClient) -> None:
    gold = flags.get_boolean_details(
        "beta", False, EvaluationContext(targeting_key="acme", attributes={"tier": "gold"})
    )
    silver = flags.get_boolean_details(
        "beta", False, EvaluationContext(targeting_key="acme", attributes={"tier": "silver"})
    )

    assert (gold.value, gold.reason, gold.flag_metadata["rule"]) == (
        True,
        Reason.TARGETING_MATCH,
        "gold",
    )
    assert (silver.value, silver.reason) == (False, Reason.DEFAULT)


# Errors


def test_provider__unknown_flag__flag_not_found_and_the_default(flags: OpenFeatureClient) -> None:
    details = flags.get_boolean_details("no_such_flag", True, ACME)

    assert (details.value, details.reason, details.error_code) == (
        True,
        Reason.ERROR,
        ErrorCode.FLAG_NOT_FOUND,
    )


def test_provider__wrong_type__type_mismatch_and_the_default(flags: OpenFeatureClient) -> None:
    as_string = flags.get_string_details("sso", "fallback", ACME)
    as_integer = flags.get_integer_details("sso", 7, ACME)
    as_boolean = flags.get_boolean_details("projects", False, ACME)

    for details, default in ((as_string, "fallback"), (as_integer, 7), (as_boolean, False)):
        assert (details.value, details.reason, details.error_code) == (
            default,
            Reason.ERROR,
            ErrorCode.TYPE_MISMATCH,
        )


def test_provider__no_targeting_key__targeting_key_missing_and_the_default(
    flags: OpenFeatureClient,
) -> None:
    details = flags.get_boolean_details("sso", True, EvaluationContext(attributes={"tier": "x"}))

    assert (details.value, details.reason, details.error_code) == (
        True,
        Reason.ERROR,
        ErrorCode.TARGETING_KEY_MISSING,
    )


def test_provider__non_scalar_attribute__invalid_context_and_the_default(
    flags: OpenFeatureClient,
) -> None:
    listed = flags.get_boolean_details(
        "sso", True, EvaluationContext(targeting_key="acme", attributes={"tags": ["a", "b"]})
    )
    numeric_user = flags.get_boolean_details(
        "sso", True, EvaluationContext(targeting_key="acme", attributes={"user": 7})
    )

    assert (listed.value, listed.error_code) == (True, ErrorCode.INVALID_CONTEXT)
    assert (numeric_user.value, numeric_user.error_code) == (True, ErrorCode.INVALID_CONTEXT)


# The same answers as the server's OFREP endpoint

PARITY_CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("boolean", "sso", {"targetingKey": "acme"}),
    ("boolean", "sso", {"targetingKey": "nobody"}),
    ("boolean", "maintenance", {"targetingKey": "acme"}),
    ("boolean", "new_ui", {"targetingKey": "acme"}),
    ("boolean", "beta", {"targetingKey": "acme", "user": "u1"}),
    ("boolean", "beta", {"targetingKey": "acme", "user": "u2"}),
    ("boolean", "beta", {"targetingKey": "acme", "tier": "gold"}),
    ("boolean", "beta", {"targetingKey": "acme", "tier": "silver", "seats": 3}),
    ("boolean", "api_calls", {"targetingKey": "acme"}),
    ("boolean", "api_calls", {"targetingKey": "nobody"}),
    ("string", "support", {"targetingKey": "acme"}),
    ("string", "support", {"targetingKey": "nobody"}),
    ("integer", "projects", {"targetingKey": "acme"}),
    ("integer", "projects", {"targetingKey": "nobody"}),
]
DEFAULTS: dict[str, Any] = {"boolean": False, "string": "", "integer": -1}


def resolve(flags: OpenFeatureClient, kind: str, flag: str, context: dict[str, Any]) -> Any:
    attributes = {k: v for k, v in context.items() if k != "targetingKey"}
    evaluation_context = EvaluationContext(context["targetingKey"], attributes)
    getter = getattr(flags, f"get_{kind}_details")
    return getter(flag, DEFAULTS[kind], evaluation_context)


def agrees(
    flags: OpenFeatureClient, kind: str, flag: str, context: dict[str, Any], server: Any
) -> bool:
    return bool(as_ofrep(resolve(flags, kind, flag, context)) == server)


def test_provider__every_kind_of_flag__answers_as_the_ofrep_endpoint(
    admin: httpx.Client, flags: OpenFeatureClient
) -> None:
    # Given 40 units used by acme, so that its metered metadata is not all zeros
    ok(admin.post("/v1/events", json={"event": "api_call", "company": "acme", "quantity": 40}))

    for kind, flag, context in PARITY_CASES:
        # When the OFREP endpoint and the provider evaluate the same flag in the same context
        server = ok(ofrep(admin, flag, context))

        # Then they say the same (the usage reaches the provider within a second)
        agreeing = functools.partial(agrees, flags, kind, flag, context, server)
        assert wait_for(agreeing, FRESHNESS), (flag, context, server)
    metered = resolve(flags, "boolean", "api_calls", {"targetingKey": "acme"})
    assert metered.flag_metadata["used"] == 40


def test_provider__errors__are_the_ofrep_endpoints(
    admin: httpx.Client, flags: OpenFeatureClient
) -> None:
    cases: list[tuple[str, dict[str, Any]]] = [
        ("no_such_flag", {"targetingKey": "acme"}),
        ("sso", {"tier": "gold"}),
        ("sso", {"targetingKey": "acme", "tags": ["a"]}),
        ("sso", {"targetingKey": "acme", "user": 7}),
    ]
    for flag, context in cases:
        server = ofrep(admin, flag, context)
        attributes = {k: v for k, v in context.items() if k != "targetingKey"}
        local = flags.get_boolean_details(
            flag, False, EvaluationContext(context.get("targetingKey"), attributes)
        )

        assert server.status_code in (400, 404)
        assert local.error_code == server.json()["errorCode"], (flag, context)


# Tracking


def test_provider__track__records_the_value_as_units(
    admin: httpx.Client, catalog: None, connect: Connect
) -> None:
    # Given a ready provider
    provider, client = connect()

    # When OpenFeature tracks an api_call of value 3 for acme
    client.track("api_call", EvaluationContext(targeting_key="acme"), TrackingEventDetails(value=3))

    # Then it counts at once in local answers, and the server's usage shows 3 units once
    # flushed
    local = client.get_boolean_details("api_calls", False, ACME)
    assert provider.client.flush(5)
    usage = ok(admin.get("/v1/companies/acme/usage"))["data"]
    api_calls = next(u for u in usage if u["feature"] == "api_calls")
    assert (local.flag_metadata["used"], local.flag_metadata["remaining"]) == (3, 9_997)
    assert (api_calls["used"], api_calls["remaining"]) == (3, 9_997)


def test_provider__track_without_a_targeting_key__sends_nothing(
    catalog: None, connect: Connect
) -> None:
    provider, client = connect()

    client.track("api_call", EvaluationContext(), TrackingEventDetails(value=3))

    assert provider.client.flush(5)
    assert provider.client.event_stats().queued == 0


# Shutdown, on a server with the default stream keep-alive (15 s)


def test_provider__shutdown__closes_its_client_and_stops_its_threads_at_once(
    api: httpx.Client, server_url: str, make_key: KeyFactory
) -> None:
    # Given a ready provider following the stream of a server with the default keep-alive
    # (a feature created after it started reaches it)
    before = tierkit_threads()
    provider = TierkitProvider(api_key=make_key(), base_url=server_url)
    try:
        client = set_provider(provider)
        assert wait_for(lambda: client.get_provider_status() == ProviderStatus.READY, 5)
        create_feature(api, "sso")
        assert wait_for(lambda: "sso" in getattr(provider.client.catalog, "features", {}), 5)
        started_threads = tierkit_threads() - before
        assert {t.name for t in started_threads} >= {"tierkit-sync", "tierkit-refresh"}

        # When OpenFeature shuts its providers down
        started = time.monotonic()
        openfeature.clear_providers()
        took = time.monotonic() - started
    finally:
        openfeature.clear_providers()

    # Then the shutdown returned at once, the client is closed, and its threads are gone
    alive = [t.name for t in started_threads if t.is_alive()]
    assert provider.client.track("api_call", company="acme") is False
    assert alive == []
    assert took < 0.5


def test_provider__shutdown_right_after_ready__stops_its_threads_at_once(
    server_url: str, make_key: KeyFactory
) -> None:
    # Given a provider that has just become ready (its stream may still be opening)
    before = tierkit_threads()
    provider = TierkitProvider(api_key=make_key(), base_url=server_url)
    try:
        client = set_provider(provider)
        assert wait_for(lambda: client.get_provider_status() == ProviderStatus.READY, 5)
        started_threads = tierkit_threads() - before

        # When OpenFeature shuts its providers down at once
        started = time.monotonic()
        openfeature.clear_providers()
        took = time.monotonic() - started
    finally:
        openfeature.clear_providers()

    # Then the shutdown returned at once and its threads are gone
    alive = [t.name for t in started_threads if t.is_alive()]
    assert alive == []
    assert took < 0.5
