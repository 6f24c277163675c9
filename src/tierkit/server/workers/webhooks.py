"""The webhook dispatcher: a thread that fans new outbox events out to endpoints, sends due
deliveries signed as Standard Webhooks, and records every attempt.

Each delivery is leased to one dispatcher while it is sent (`claim_due`), so several server
processes on one database deliver each event once; a process that dies mid-send leaves the
lease to expire, and the delivery is sent again with the same `webhook-id` (receivers
deduplicate by it: delivery is at least once, never lost).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx

from tierkit import __version__
from tierkit.server.services.clock import Clock
from tierkit.server.services.webhooks import Attempt, DueDelivery, Outcome, WebhookService, sign
from tierkit.server.workers.background import BackgroundThread

logger = logging.getLogger("tierkit.webhooks")

_PARALLEL_SENDS = 8
"""Endpoints sent to at the same time."""
_LEASE_MARGIN = 30.0
"""Seconds a lease outlasts the send timeout."""


class WebhookDispatcher(BackgroundThread):
    def __init__(
        self,
        webhooks: WebhookService,
        clock: Clock,
        *,
        poll_seconds: float,
        timeout_seconds: float,
        retry_seconds: Sequence[float],
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._webhooks = webhooks
        self._clock = clock
        self._poll = poll_seconds
        self._timeout = timeout_seconds
        self._retries = list(retry_seconds)
        self._http = httpx.Client(
            timeout=timeout_seconds,
            transport=transport,
            headers={"User-Agent": f"tierkit-webhooks/{__version__}"},
            follow_redirects=False,
        )
        self._senders = ThreadPoolExecutor(_PARALLEL_SENDS, thread_name_prefix="tierkit-webhook")
        self._wake = threading.Event()
        super().__init__("tierkit-webhooks")

    def wake(self) -> None:
        """Look for work now (a change was committed)."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        super().stop(timeout)
        self._senders.shutdown(wait=False, cancel_futures=True)
        self._http.close()

    def _interrupt(self) -> None:
        self._wake.set()

    def run_once(self) -> int:
        """Fan out and send what is due; how many deliveries were attempted."""
        while self._webhooks.fan_out():
            pass
        lease = timedelta(seconds=self._timeout + _LEASE_MARGIN)
        attempted = 0
        while not self._stopping.is_set():
            due = self._webhooks.claim_due(lease)
            if not due:
                break
            # In order to each endpoint, endpoints side by side (a slow receiver holds up only
            # itself), and the outcomes recorded in one transaction.
            by_endpoint: dict[str, list[DueDelivery]] = {}
            for delivery in due:
                by_endpoint.setdefault(delivery.endpoint_id, []).append(delivery)
            sent = self._senders.map(self._send_in_order, by_endpoint.values())
            self._webhooks.record_attempts([outcome for batch in sent for outcome in batch])
            attempted += len(due)
        return attempted

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.run_once()
            except Exception:  # the dispatcher must outlive a bad moment of the database
                logger.exception("webhook dispatch failed; trying again")
            self._wake.wait(self._poll)
            self._wake.clear()

    def _send_in_order(self, deliveries: list[DueDelivery]) -> list[Outcome]:
        return [self._send(delivery) for delivery in deliveries]

    def _send(self, due: DueDelivery) -> Outcome:
        timestamp = int(self._clock().timestamp())
        headers = {
            "content-type": "application/json",
            "webhook-id": due.message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(due.secret, due.message_id, timestamp, due.body),
        }
        attempted_at = self._clock()
        started = time.perf_counter()
        status: int | None = None
        excerpt, error = "", None
        try:
            response = self._http.post(due.url, content=due.body, headers=headers)
            status, excerpt = response.status_code, response.text[:500]
        except httpx.HTTPError as failure:
            error = f"{type(failure).__name__}: {failure}"
        latency = (time.perf_counter() - started) * 1000
        succeeded = status is not None and 200 <= status < 300
        retry_after = None
        if not succeeded and due.attempts < len(self._retries):
            retry_after = timedelta(seconds=self._retries[due.attempts])
        if not succeeded:
            logger.info(
                "webhook %s to %s failed (%s); %s",
                due.message_id,
                due.url,
                status if status is not None else error,
                f"retrying in {retry_after}" if retry_after else "giving up",
            )
        attempt = Attempt(attempted_at, status, latency, excerpt, error)
        return Outcome(due, attempt, succeeded, retry_after)
