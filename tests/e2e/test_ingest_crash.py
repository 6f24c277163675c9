"""Crash safety of usage: the server is killed (SIGKILL) while clients send event batches and
consumes; after a restart every acknowledged event is stored exactly once, no unacknowledged
batch is half stored, a retry of the unacknowledged ones counts them once, and `tierkit usage
verify` finds every counter equal to a recount of the raw events (and, once counters are
damaged by hand, names them, fails, and mends them with `--repair`)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

import httpx
from sqlalchemy import text

from tests.e2e.conftest import ServerProcess, run_tierkit
from tierkit.server.db import Database

StartServer = Callable[..., ServerProcess]
CLIENTS = 3
BATCH = 100
KILL_AFTER = 20
"""Acknowledged batches before the kill."""


def stored_keys(database_url: str) -> Counter[str]:
    database = Database(database_url)
    try:
        with database.read() as session:
            keys = session.execute(
                text("SELECT idempotency_key FROM events WHERE idempotency_key IS NOT NULL")
            ).scalars()
            return Counter(keys)
    finally:
        database.dispose()


def test_ingestion__server_killed_mid_batches_and_consumes__acknowledged_once_nothing_half(
    empty_database_url: str, start_server: StartServer
) -> None:
    # Given a server, a metered feature counting `call` events and one consumed by `job`s,
    # with counters already kept for the companies
    run_tierkit("migrate", database_url=empty_database_url)
    key = run_tierkit(
        "keys", "create", "-e", "development", database_url=empty_database_url
    ).stdout.strip()
    server = start_server("serve", database_url=empty_database_url)
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
        for feature, event in (("calls", "call"), ("jobs", "job")):
            meter = {"event": event, "aggregation": "sum"}
            body = {"key": feature, "name": feature, "type": "metered", "meter": meter}
            assert http.post("/v1/features", json=body).status_code == 201
        entitlements = [{"feature": "calls", "unlimited": True}, {"feature": "jobs", "value": 1e9}]
        plan = {"key": "free", "name": "Free", "is_default": True, "entitlements": entitlements}
        assert http.post("/v1/plans", json=plan).status_code == 201
        for client in range(CLIENTS):
            assert http.put(f"/v1/companies/c{client}", json={}).status_code == 201
            assert http.get(f"/v1/companies/c{client}/usage").status_code == 200

    # When clients send batches of 100 and consume one by one, and the server is SIGKILLed
    # (requests in flight) once 20 batches are acknowledged
    lock = threading.Lock()
    acked: set[str] = set()
    unacked: set[str] = set()
    consumed: set[str] = set()
    stop = threading.Event()

    def send_batches(client: int) -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
            number = 0
            while not stop.is_set():
                batch = f"c{client}-b{number}"
                events = [
                    {"event": "call", "company": f"c{client}", "idempotency_key": f"{batch}-{i}"}
                    for i in range(BATCH)
                ]
                try:
                    reply = http.post("/v1/events", json={"events": events})
                    answered = reply.status_code == 202
                except httpx.TransportError:
                    answered = False
                with lock:
                    (acked if answered else unacked).add(batch)
                number += 1

    def consume() -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
            number = 0
            while not stop.is_set():
                body = {
                    "company": "c0",
                    "feature": "jobs",
                    "consume": True,
                    "idempotency_key": f"job-{number}",
                }
                try:
                    reply = http.post("/v1/check", json=body)
                    if reply.status_code == 200 and reply.json()["allowed"]:
                        with lock:
                            consumed.add(body["idempotency_key"])
                except httpx.TransportError:
                    pass
                number += 1

    threads = [threading.Thread(target=send_batches, args=(c,)) for c in range(CLIENTS)]
    threads.append(threading.Thread(target=consume))
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(acked) < KILL_AFTER and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(30)
    assert len(acked) >= KILL_AFTER

    # Then every acknowledged event and consume is stored exactly once, and each batch that
    # got no answer is stored whole or not at all
    stored = stored_keys(empty_database_url)
    assert max(stored.values()) == 1
    per_batch = Counter(k.rsplit("-", 1)[0] for k in stored if not k.startswith("job-"))
    assert [b for b in acked if per_batch[b] != BATCH] == []
    assert [b for b in unacked if per_batch[b] not in (0, BATCH)] == []
    assert [k for k in consumed if stored[k] != 1] == []

    # When the server restarts and the unanswered batches are sent again
    server = start_server("serve", database_url=empty_database_url, port=server.port)
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
        for batch in sorted(unacked):
            company = batch.split("-")[0]
            events = [
                {"event": "call", "company": company, "idempotency_key": f"{batch}-{i}"}
                for i in range(BATCH)
            ]
            reply = http.post("/v1/events", json={"events": events})
            assert reply.status_code == 202, reply.text
            assert reply.json()["accepted"] + reply.json()["duplicates"] == BATCH
        # Then every batch is counted once in usage
        total = 0
        for client in range(CLIENTS):
            reply = http.get(f"/v1/companies/c{client}/usage")
            assert reply.status_code == 200, reply.text
            total += next(u["used"] for u in reply.json()["data"] if u["feature"] == "calls")
    assert total == BATCH * len(acked | unacked)

    # and every counter equals a recount of the raw events
    server.stop()
    verify = run_tierkit("usage", "verify", database_url=empty_database_url, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "match their raw events" in verify.stderr

    # When a counter is then damaged by hand
    database = Database(empty_database_url)
    with database.write() as session:
        session.execute(text("UPDATE usage_counters SET value = value + 7"))
    database.dispose()

    # Then verify names the drift and fails, --repair mends it, and verify passes again
    drifted = run_tierkit("usage", "verify", database_url=empty_database_url, check=False)
    assert drifted.returncode == 1
    assert all(f"c{client}" in drifted.stdout for client in range(CLIENTS))
    assert "--repair" in drifted.stderr
    repaired = run_tierkit("usage", "verify", "--repair", database_url=empty_database_url)
    assert "repaired" in repaired.stderr
    assert run_tierkit("usage", "verify", database_url=empty_database_url).returncode == 0
