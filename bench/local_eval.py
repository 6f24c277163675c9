"""Local evaluation: checks per second and median latency of the SDK's in-process checks on a
cached company, against the PyPI engines `growthbook` and `flagsmith-flag-engine` on the same
workload in the same run (`bench/local_eval_rivals.py`: 20 features, a rule of three trait
conditions on 5 of them, 100,000 companies).

Tierkit is measured through the real `Client(local=True)`: its snapshot and company states come
from an `httpx.MockTransport` that serves them as the server would (`/v1/sdk/snapshot`,
`/v1/sdk/companies/{key}`), so no server runs and nothing but the check is timed. Two figures:
`tierkit (local client)`, a repeated check (the client keeps each decision until it can change),
and `tierkit (engine, no reuse)`, the engine's full `evaluate` on every call.

    .venv/bin/python bench/local_eval.py [--companies 100000] [--seconds 1]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))

from local_eval_rivals import (
    SAMPLE,
    Checker,
    FlagsmithChecker,
    Timing,
    Workload,
    build_workload,
    flagsmith_checker,
    growthbook_checker,
    measure,
    measure_checker,
    measure_overhead,
    sample_indices,
    verify,
)

from tierkit import Client
from tierkit.engine.codec import (
    catalog_from_json,
    catalog_to_json,
    company_from_json,
    company_to_json,
)
from tierkit.engine.evaluate import Catalog, CompanyState, evaluate, usage_windows

NOW = datetime.now(UTC)
SHOWN = (("f05", "boolean"), ("f11", "enum"), ("f16", "metered"), ("f00", "rule"))


def company_state(catalog: Catalog, company: dict[str, Any], usage: dict[str, int]) -> CompanyState:
    state = company_from_json(
        {
            "key": company["key"],
            "traits": company["traits"],
            "subscriptions": [{"plan": company["plan"], "started_at": "2026-01-01T00:00:00Z"}],
        },
        catalog,
    )
    windows = usage_windows(catalog, state, NOW)
    return replace(state, usage=dict(usage), usage_windows={k: windows[k] for k in usage})


class TierkitServer:
    """What a Tierkit server answers a local client, from the workload."""

    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self.catalog = catalog_from_json(workload.catalog())
        self.by_key = {c["key"]: i for i, c in enumerate(workload.companies)}
        self.snapshot = orjson.dumps({"etag": '"bench"', "catalog": catalog_to_json(self.catalog)})

    def state(self, index: int) -> CompanyState:
        company = self.workload.companies[index]
        return company_state(self.catalog, company, self.workload.usage[company["key"]])

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v1/sdk/snapshot":
            return httpx.Response(200, content=self.snapshot, headers={"ETag": '"bench"'})
        if path.startswith("/v1/sdk/companies/"):
            index = self.by_key[path.rsplit("/", 1)[1]]
            return httpx.Response(200, content=orjson.dumps(company_to_json(self.state(index))))
        return httpx.Response(404, json={"error": {"code": "route_not_found", "message": path}})


class TierkitLocalChecker:
    name = "tierkit (local client)"

    def __init__(self, server: TierkitServer) -> None:
        self.keys = [c["key"] for c in server.workload.companies]
        self.client = Client(
            api_key="tk_sec_bench",
            base_url="http://tierkit.invalid",
            local=True,
            stream=False,
            poll_interval=3600,
            transport=httpx.MockTransport(server.handle),
        )
        self.client.wait_until_ready(10)

    def prepare(self, company_index: int) -> None:
        for key in server_features():
            self.client.check(self.keys[company_index], key)

    def check(self, company_index: int, feature_key: str) -> object:
        return self.client.check(self.keys[company_index], feature_key).value


class TierkitEngineChecker:
    name = "tierkit (engine, no reuse)"

    def __init__(self, server: TierkitServer) -> None:
        self.server = server
        self.catalog = server.catalog
        self.states: dict[int, CompanyState] = {}

    def prepare(self, company_index: int) -> None:
        if company_index not in self.states:
            self.states[company_index] = self.server.state(company_index)

    def check(self, company_index: int, feature_key: str) -> object:
        state = self.states.get(company_index) or self.server.state(company_index)
        return evaluate(self.catalog, state, feature_key, now=NOW).value


def server_features() -> list[str]:
    return [f"f{i:02d}" for i in range(20)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--companies", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=SAMPLE, help="companies the checks walk")
    parser.add_argument("--seconds", type=float, default=1.0, help="per measurement")
    arguments = parser.parse_args()

    started = time.perf_counter()
    workload = build_workload(arguments.companies)
    server = TierkitServer(workload)
    indices = sample_indices(workload, arguments.sample)
    local = TierkitLocalChecker(server)
    loaded = time.perf_counter()
    for index in range(len(workload.companies)):  # every company cached, as a busy app would
        local.client.check(local.keys[index], "f05")
    print(
        f"workload: {len(workload.companies):,} companies built in {loaded - started:.1f}s; "
        f"the local client read all their states in {time.perf_counter() - loaded:.1f}s"
    )
    flagsmith = FlagsmithChecker(workload)
    checkers: list[Checker] = [
        local,
        TierkitEngineChecker(server),
        growthbook_checker(workload),
        flagsmith,
        flagsmith_checker(workload, one_feature=True),
    ]
    for checker in checkers:
        verify(checker, workload)
    print("every engine's answers match the reference on 2,000 random checks")
    overhead = measure_overhead(seconds=arguments.seconds, items=len(indices))
    print(f"harness overhead: {overhead.median_us * 1e3:.0f} ns per call (median), not subtracted")
    print(f"Python {platform.python_version()} on {platform.machine()}\n")

    results: dict[tuple[str, str], Timing] = {}
    print("| engine | feature | median µs | p99 µs | checks/s |")
    print("|---|---|---|---|---|")
    for checker in checkers:
        for key, kind in SHOWN:
            timing = measure_checker(checker, key, indices, seconds=arguments.seconds)
            results[(checker.name, key)] = timing
            print(
                f"| {checker.name} | {key} ({kind}) | {timing.median_us:.2f} | "
                f"{timing.p99_us:.2f} | {timing.per_second:,.0f} |"
            )
    next_index = iter(indices * 1000).__next__
    every = measure(lambda: flagsmith.flags(next_index()), seconds=arguments.seconds)
    print(
        f"| flagsmith, all 20 flags at once | (per flag) | {every.median_us / 20:.2f} | "
        f"{every.p99_us / 20:.2f} | {every.per_second * 20:,.0f} |"
    )
    print()
    for key, kind in SHOWN:
        ours = results[(local.name, key)].median_us
        rivals = min(
            results[(name, key)].median_us
            for name in ("growthbook", "flagsmith")
            if (name, key) in results
        )
        print(
            f"{kind}: tierkit local {ours:.2f} µs, {rivals / ours:.1f}x faster than the faster "
            f"rival ({rivals:.2f} µs)"
        )
    local.client.close()


if __name__ == "__main__":
    main()
