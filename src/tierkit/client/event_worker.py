"""The event worker: tracked events go to a bounded queue that never blocks the caller, and a
background thread sends them in batches, retrying with backoff until they are stored.

Each event has its idempotency key from the moment it is queued, so a batch sent again (the
server stored it but the reply was lost, or the server restarted) counts once. A full queue
drops the new event and counts it; a batch the server rejects as invalid (4xx other than 429)
is dropped and counted too, never retried. `flush()` waits until what was queued before it is
stored; `close()` flushes within `flush_timeout` and reports what it could not send.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from tierkit.client.errors import ApiError, TierkitError
from tierkit.client.http import retry_delay
from tierkit.client.options import ClientOptions

logger = logging.getLogger("tierkit.client.events")

_MAX_BATCH = 1000


@dataclass(frozen=True, slots=True)
class WorkerStats:
    queued: int
    """Accepted by `submit` so far."""
    delivered: int
    """Stored by the server (duplicates included: a retried batch counts once)."""
    dropped: int
    """Refused by a full queue, or still queued when `close` gave up."""
    rejected: int
    """In batches the server refused as invalid."""
    retries: int
    """Sends that failed and were tried again."""
    pending: int
    """Queued or in flight now."""


@dataclass(frozen=True, slots=True)
class _Item:
    event: Mapping[str, Any]
    mark: int | None


def new_idempotency_key() -> str:
    return f"tk_{uuid.uuid4().hex}"


class EventWorker:
    def __init__(
        self,
        deliver: Callable[[Sequence[Mapping[str, Any]]], None],
        options: ClientOptions,
        on_delivered: Callable[[list[int]], None] = lambda marks: None,
        on_drop: Callable[[int, str], None] | None = None,
    ) -> None:
        """`deliver` sends one batch once (raising `TierkitError` on failure)."""
        self._deliver = deliver
        self._options = options
        self._batch_size = max(1, min(options.event_batch_size, _MAX_BATCH))
        self._on_delivered = on_delivered
        self._on_drop = on_drop or _log_drop
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=max(1, options.max_queued_events))
        self._lock = threading.Condition()
        self._queued = self._done = self._delivered = self._dropped = 0
        self._rejected = self._retries = 0
        self._flush_wanted = threading.Event()
        self._closing = threading.Event()
        self._give_up_at = float("inf")
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    # -- caller side -------------------------------------------------------------------------

    def submit(self, event: Mapping[str, Any], mark: int | None = None) -> bool:
        """Queue an event (never blocks). False when it was dropped: the queue is full or the
        worker is closed."""
        if self._closing.is_set():
            self._count_drop(1, "the client is closed")
            return False
        if "idempotency_key" not in event or event["idempotency_key"] is None:
            event = {**event, "idempotency_key": new_idempotency_key()}
        try:
            orjson.dumps(event)
        except TypeError:
            with self._lock:
                self._rejected += 1
            logger.warning("an event was not sent: it cannot be encoded as JSON: %r", event)
            return False
        try:
            self._queue.put_nowait(_Item(event, mark))
        except queue.Full:
            self._count_drop(1, "the event queue is full")
            return False
        with self._lock:
            self._queued += 1
        self._ensure_started()
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event queued before now is stored (or dropped); False on
        timeout."""
        with self._lock:
            target = self._queued
        if self._done >= target:
            return True
        self._flush_wanted.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._done < target:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._lock.wait(left if left is None else min(left, 0.5))
        return True

    def close(self, timeout: float | None = None) -> WorkerStats:
        """Send what is queued, within `timeout` (default `flush_timeout`); what is left then
        is dropped and reported."""
        timeout = self._options.flush_timeout if timeout is None else timeout
        self._give_up_at = time.monotonic() + timeout
        self._closing.set()
        self._flush_wanted.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout + 1)
        left = self._drain()
        if left:
            self._count_drop(left, f"they were not sent within {timeout:g}s of closing")
        return self.stats()

    def stats(self) -> WorkerStats:
        with self._lock:
            return WorkerStats(
                queued=self._queued,
                delivered=self._delivered,
                dropped=self._dropped,
                rejected=self._rejected,
                retries=self._retries,
                pending=self._queued - self._done,
            )

    # -- worker side -------------------------------------------------------------------------

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="tierkit-events", daemon=True)
                self._thread = thread
                thread.start()
                _close_at_exit(self)

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch:
                self._send(batch)
            elif self._closing.is_set():
                return

    def _next_batch(self) -> list[_Item]:
        """Up to a batch of events: as soon as it is full, a flush is asked for, or the
        oldest has waited `flush_interval`."""
        batch: list[_Item] = []
        deadline = None
        while len(batch) < self._batch_size:
            if self._flush_wanted.is_set() or self._closing.is_set():
                batch += self._take(self._batch_size - len(batch))
                if self._queue.empty():
                    self._flush_wanted.clear()
                break
            wait = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
            if deadline is not None and wait <= 0:
                break
            try:
                batch.append(self._queue.get(timeout=wait))
            except queue.Empty:
                continue
            if deadline is None:
                deadline = time.monotonic() + self._options.flush_interval
        return batch

    def _take(self, count: int) -> list[_Item]:
        items = []
        for _ in range(count):
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return items

    def _send(self, batch: list[_Item]) -> None:
        attempt = 0
        while True:
            try:
                self._deliver([item.event for item in batch])
            except ApiError as error:
                if error.status == 429 or error.status >= 500:
                    if self._wait_to_retry(attempt, error.headers.get("retry-after")):
                        attempt += 1
                        continue
                    self._finish(batch, dropped=True, why="the server kept failing until close")
                    return
                logger.warning("the server rejected %d events: %s", len(batch), error)
                self._finish(batch, rejected=True)
                return
            except TierkitError as error:
                if self._wait_to_retry(attempt, None):
                    attempt += 1
                    logger.debug("sending events failed, retrying: %s", error)
                    continue
                self._finish(batch, dropped=True, why="the server was unreachable until close")
                return
            except Exception:  # a bug must cost this batch, not the worker thread
                logger.exception("sending %d events failed unexpectedly", len(batch))
                self._finish(batch, rejected=True)
                return
            self._finish(batch)
            return

    def _wait_to_retry(self, attempt: int, retry_after: str | None) -> bool:
        """Wait before retrying (cut short by `close`); False when closing and out of time."""
        delay = retry_delay(attempt, self._options, retry_after)
        if not self._closing.is_set():
            self._closing.wait(delay)  # `close` wakes it to retry at once, within its deadline
            delay = 0
        left = self._give_up_at - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(delay, left))
        if time.monotonic() >= self._give_up_at:
            return False
        with self._lock:
            self._retries += 1
        return True

    def _finish(
        self, batch: list[_Item], *, rejected: bool = False, dropped: bool = False, why: str = ""
    ) -> None:
        marks = [item.mark for item in batch if item.mark is not None]
        if marks:  # before a flush waiting on `_done` returns
            try:
                self._on_delivered(marks)
            except Exception:  # the worker must go on whatever the callback does
                logger.exception("the delivered-events callback failed")
        if dropped:
            self._count_drop(len(batch), why)
        with self._lock:
            if rejected:
                self._rejected += len(batch)
            elif not dropped:
                self._delivered += len(batch)
            self._done += len(batch)
            self._lock.notify_all()

    def _drain(self) -> int:
        left = self._take(self._queue.qsize() + 1)
        with self._lock:
            self._done += len(left)
            self._lock.notify_all()
        return len(left)

    def _count_drop(self, count: int, why: str) -> None:
        with self._lock:
            self._dropped += count
        self._on_drop(count, why)


def _log_drop(count: int, why: str) -> None:
    logger.warning("dropped %d tracked event(s): %s", count, why)


def _close_at_exit(worker: EventWorker) -> None:
    """Flush at interpreter exit, without keeping the worker alive (no `__del__`)."""
    ref = weakref.ref(worker)

    def close() -> None:
        live = ref()
        if live is not None:
            live.close()

    atexit.register(close)
