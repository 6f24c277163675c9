"""POST /v1/check throughput and latency against a trivial route of the same app.

Usage: .venv/bin/python bench/checks.py [--postgres URL] [--seconds 10] [--connections 16]

Seeds 10,000 companies, 30 features (rules on half of them) and four plans plus an add-on, then
serves the app with one worker (`tierkit`'s app plus `/bench/echo`, a FastAPI route with a
pydantic body returning a body of the same size) and loads both routes with wrk, picking a
random company and feature per request. Both databases run in one invocation; the ratio to the
trivial route is what to compare across machines. Needs wrk (`apt-get install wrk`).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from harness import open_environment, postgres_schema, serve

from tierkit.engine.catalog import (
    Aggregation,
    Entitlement,
    Feature,
    FeatureOption,
    FeatureType,
    Meter,
    Plan,
    PlanType,
)
from tierkit.engine.rules import Condition, ConditionType, Operator, Rollout, Rule
from tierkit.server.services.companies import upsert_company_in
from tierkit.server.services.container import Services
from tierkit.server.services.subscriptions import NewSubscription, subscribe_in

COMPANIES = 10_000
TYPES = [FeatureType.BOOLEAN] * 10 + [FeatureType.NUMERIC] * 8 + [FeatureType.ENUM] * 6
TYPES += [FeatureType.METERED] * 6


def _features() -> list[Feature]:
    features = []
    for index, kind in enumerate(TYPES):
        key = f"f{index:02d}_{kind.value}"
        features.append(
            Feature(
                key=key,
                name=key,
                type=kind,
                meter=Meter(key, Aggregation.COUNT) if kind is FeatureType.METERED else None,
                options=(FeatureOption("a", "A"), FeatureOption("b", "B"))
                if kind is FeatureType.ENUM
                else None,
            )
        )
    return features


def _value(feature: Feature, tier: int) -> Entitlement:
    if feature.type is FeatureType.BOOLEAN:
        return Entitlement(feature.key, value=tier >= 2)
    if feature.type is FeatureType.ENUM:
        return Entitlement(feature.key, value="b" if tier >= 2 else "a")
    return Entitlement(feature.key, value=10 ** (tier + 1))


def seed(services: Services, environment_id: str) -> list[str]:
    features = _features()
    for feature in features:
        services.features.create_feature(environment_id, feature)
    # Plans entitle the first half; rules decide the second half (no plan sets them).
    entitled, ruled = features[::2], features[1::2]
    for tier, key in enumerate(["free", "starter", "pro", "enterprise"]):
        plan = Plan(
            key=key,
            name=key,
            is_default=tier == 0,
            entitlements=tuple(_value(f, tier) for f in entitled),
        )
        services.plans.create_plan(environment_id, plan)
    services.plans.create_plan(
        environment_id,
        Plan("boost", "Boost", PlanType.ADD_ON, entitlements=(_value(entitled[2], 1),)),
    )
    for feature in ruled:
        rules = [
            Rule(
                "gold",
                value=_value(feature, 3).value,
                conditions=((Condition(ConditionType.TRAIT, Operator.EQ, "gold", "tier"),),),
            ),
            Rule(
                "big",
                value=_value(feature, 2).value,
                conditions=((Condition(ConditionType.TRAIT, Operator.GTE, 500, "employees"),),),
            ),
            Rule("canary", value=_value(feature, 1).value, rollout=Rollout(20)),
        ]
        services.features.put_rules(environment_id, feature.key, rules)
    now = datetime.now(UTC)
    rng = random.Random(7)
    for start in range(0, COMPANIES, 500):
        with services.database.write() as session:
            for index in range(start, min(start + 500, COMPANIES)):
                traits = {
                    "tier": rng.choice(["gold", "silver", "bronze"]),
                    "employees": rng.randint(1, 1000),
                }
                company, _ = upsert_company_in(
                    session,
                    environment_id,
                    f"c{index}",
                    {"name": f"C{index}", "traits": traits},
                    now,
                )
                plan = rng.choice(["free", "starter", "pro", "enterprise", None])
                if plan:
                    began = now - timedelta(days=rng.randint(1, 400))
                    subscribe_in(session, company, NewSubscription(plan, started_at=began), now)
                if plan and rng.random() < 0.2:
                    subscribe_in(session, company, NewSubscription("boost", quantity=2), now)
    return [f.key for f in features]


_LUA = """
math.randomseed(42)
local features = {%(features)s}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
request = function()
  local company = "c" .. math.random(0, %(last)d)
  local feature = features[math.random(#features)]
  local body = '{"company":"' .. company .. '","feature":"' .. feature .. '"}'
  return wrk.format(nil, "%(path)s", nil, body)
end
"""


def wrk(
    url: str, path: str, key: str, features: list[str], seconds: int, connections: int
) -> dict[str, float]:
    script = Path(tempfile.mkdtemp()) / "load.lua"
    quoted = ",".join(f'"{f}"' for f in features)
    script.write_text(_LUA % {"features": quoted, "key": key, "last": COMPANIES - 1, "path": path})
    run = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    out = run.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def latency(percent: str) -> float:
        value, unit = re.search(rf"\s{percent}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {
        "rps": rps,
        "p50": latency("50"),
        "p99": latency("99"),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def warm(url: str, key: str, clients: int = 8, *, each_client_all: bool = False) -> float:
    """Check every company once (a running server has their state in memory); seconds taken.
    With several processes, `each_client_all`: each client (one keep-alive connection, so one
    process) checks every company, so every process that holds a connection reads them all."""
    started = time.monotonic()
    step = 1 if each_client_all else clients

    def check_companies(offset: int) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as client:
            first = 0 if each_client_all else offset
            for index in range(first, COMPANIES, step):
                client.post("/v1/check/bulk", json={"company": f"c{index}"}).raise_for_status()

    threads = [
        threading.Thread(target=check_companies, args=(offset,)) for offset in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


def run(name: str, database_url: str, seconds: int, connections: int, cache: float) -> list[str]:
    database, services, environment_id, key = open_environment(database_url)
    started = time.monotonic()
    features = seed(services, environment_id)
    seeded = time.monotonic() - started
    database.dispose()
    port = 8940 + (name == "PostgreSQL")
    with serve("bench_app:make_app", database_url, port, cache_seconds=str(cache)) as url:
        warmed = warm(url, key)
        wrk(url, "/v1/check", key, features, 2, connections)
        check = wrk(url, "/v1/check", key, features, seconds, connections)
        floor = wrk(url, "/bench/echo", key, features, seconds, connections)
    ratio = check["rps"] / floor["rps"]
    return [
        f"| {name} | `POST /v1/check` | {check['rps']:.0f} | {check['p50']:.2f} | "
        f"{check['p99']:.2f} | {ratio:.2f} | {int(check['errors'])} | {seeded:.0f} s, "
        f"warm-up {warmed:.0f} s |",
        f"| {name} | trivial route (floor) | {floor['rps']:.0f} | {floor['p50']:.2f} | "
        f"{floor['p99']:.2f} | 1.00 | {int(floor['errors'])} | |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("TIERKIT_TEST_DATABASE_URL"))
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--cache-seconds",
        type=float,
        default=3600,
        help="TIERKIT_CACHE_SECONDS for the server: how long it trusts state it has read "
        "(3600: one process owns the writes; the server's default is 10)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/checks.py needs wrk: apt-get install wrk")
    rows = [
        "| database | route | req/s | p50 ms | p99 ms | ratio to floor | errors | seeding |",
        "|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = f"sqlite:///{tmp}/bench.db"
        rows += run("SQLite", sqlite, args.seconds, args.connections, args.cache_seconds)
    if args.postgres:
        with postgres_schema(args.postgres) as postgres:
            rows += run("PostgreSQL", postgres, args.seconds, args.connections, args.cache_seconds)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
