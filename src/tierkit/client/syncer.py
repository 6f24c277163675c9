"""Keeps local evaluation in step with the server, from a background thread.

It reads the snapshot (with its ETag), then follows `/v1/sdk/stream`: each event names what
changed, and what this process holds of it is read again (by a second thread, so the stream is
never held up). When the stream breaks, decisions say `stale` until it is back; on reconnecting
everything held is read again, since changes may have been missed. Without a stream (or as a
safety net with one), everything is read again every `poll_interval`.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson

from tierkit.client.errors import NotFoundError, TierkitError
from tierkit.client.http import Call, retry_delay, segment, send
from tierkit.client.local import LocalEvaluation, TrackedMarker
from tierkit.client.options import ClientOptions, blocking_http
from tierkit.client.sse import ServerEvent, parse_events

logger = logging.getLogger("tierkit.client.sync")

_COMPANY_KINDS = frozenset({"company", "subscription", "override", "usage", "credits"})
_ALL = "*"


def company_state_call(key: str, marker: TrackedMarker) -> Call:
    """The read of a company's state, asking which of its pending events it counts."""
    params = {"pending": list(marker.pending)} if marker.pending else {}
    return Call("GET", f"/v1/sdk/companies/{segment(key)}", params=params)


class Syncer:
    def __init__(self, local: LocalEvaluation, options: ClientOptions) -> None:
        self._local = local
        self._options = options
        self._http = blocking_http(options)
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._dirty: set[str] = set()  # "c:<company>", "u:<user>", or _ALL
        self._dirty_changed = threading.Condition()
        self._stream_response: httpx.Response | None = None
        self._stream_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._follow, name="tierkit-sync", daemon=True),
            threading.Thread(target=self._refresh_loop, name="tierkit-refresh", daemon=True),
        ]
        self.connected = False
        self.listeners: list[Callable[[str], None]] = []
        """Called (from the sync thread) with `connected`, `stale` or `catalog`."""
        local.on_refresh_due = self.refresh_company

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def wait_until_ready(self, timeout: float | None) -> bool:
        return self._ready.wait(timeout)

    def stop(self) -> None:
        self._stopping.set()
        with self._dirty_changed:
            self._dirty_changed.notify_all()
        with self._stream_lock:
            response = self._stream_response
        if response is not None:
            _interrupt(response)
        for thread in self._threads:
            thread.join(2)
        self._http.close()

    # -- reading -----------------------------------------------------------------------------

    def read_snapshot(self) -> None:
        headers = {"If-None-Match": self._local.etag} if self._local.etag else {}
        response = self._http.get("/v1/sdk/snapshot", headers=headers)
        if response.status_code == 304:
            return
        if response.status_code != 200:
            raise TierkitError(f"snapshot: HTTP {response.status_code}")
        body = orjson.loads(response.content)
        first = self._local.catalog is None
        self._local.set_catalog(body["catalog"], body["etag"])
        if not first:
            self._tell("catalog")

    def read_company(self, key: str) -> None:
        """Read a company's state into local evaluation (raises `TierkitError`)."""
        marker = self._local.tracked_marker(key)
        data = send(self._http, company_state_call(key, marker), self._options, 1)
        self._local.put_company(data, marker)

    def read_user(self, key: str) -> None:
        try:
            data = send(self._http, Call("GET", f"/v1/sdk/users/{segment(key)}"), self._options, 1)
        except NotFoundError:
            data = {"key": key, "traits": {}}
        self._local.put_user(data)

    def refresh_company(self, key: str) -> None:
        self._mark(f"c:{key}")

    def _mark(self, item: str) -> None:
        with self._dirty_changed:
            self._dirty.add(item)
            self._dirty_changed.notify_all()

    # -- threads -----------------------------------------------------------------------------

    def _follow(self) -> None:
        attempt = 0
        next_poll = time.monotonic() + self._options.poll_interval
        while not self._stopping.is_set():
            try:
                self.read_snapshot()
                if self._ready.is_set():
                    self._mark(_ALL)  # changes may have been missed while away
                self._ready.set()
                if not self._options.stream:
                    self._set_connected(True)
                    self._stopping.wait(self._options.poll_interval)
                    self._mark(_ALL)
                    continue
                for event in self._stream():
                    attempt = 0
                    self._on_event(event)
                    if time.monotonic() >= next_poll:
                        next_poll = time.monotonic() + self._options.poll_interval
                        self._mark(_ALL)
            except (TierkitError, httpx.HTTPError, ValueError, KeyError) as error:
                if self._stopping.is_set():
                    break
                logger.debug("sync interrupted: %r", error)
            self._set_connected(False)
            self._stopping.wait(retry_delay(attempt, self._options))
            attempt += 1

    def _stream(self) -> Iterator[ServerEvent]:
        timeout = httpx.Timeout(self._options.timeout, read=max(60.0, self._options.timeout))
        with self._http.stream("GET", "/v1/sdk/stream", timeout=timeout) as response:
            if response.status_code != 200:
                raise TierkitError(f"stream: HTTP {response.status_code}")
            with self._stream_lock:
                if self._stopping.is_set():
                    return
                self._stream_response = response
            try:
                yield from parse_events(response.iter_lines())
            finally:
                with self._stream_lock:
                    self._stream_response = None
        raise TierkitError("the stream ended")

    def _on_event(self, event: ServerEvent) -> None:
        data: dict[str, Any] = orjson.loads(event.data) if event.data else {}
        if event.event == "hello":
            self._set_connected(True)
            if data.get("etag") != self._local.etag:
                self.read_snapshot()
        elif event.event == "catalog":
            self.read_snapshot()
        elif event.event in _COMPANY_KINDS and "company" in data:
            if self._local.has_company(data["company"]):
                self._mark(f"c:{data['company']}")
        elif event.event == "user" and "user" in data:
            self._mark(f"u:{data['user']}")
        elif event.event == "reset":
            self.read_snapshot()
            self._mark(_ALL)

    def _set_connected(self, connected: bool) -> None:
        changed = connected != self.connected
        if changed:
            logger.info("tierkit sync %s", "connected" if connected else "lost: answers are stale")
        self.connected = connected
        self._local.stale = not connected
        if changed:
            self._tell("connected" if connected else "stale")

    def _tell(self, what: str) -> None:
        for listener in list(self.listeners):
            try:
                listener(what)
            except Exception:  # a listener's failure must not stop the sync
                logger.exception("a sync listener failed")

    def _refresh_loop(self) -> None:
        while not self._stopping.is_set():
            with self._dirty_changed:
                while not self._dirty and not self._stopping.is_set():
                    self._dirty_changed.wait()
                items, self._dirty = self._dirty, set()
            if _ALL in items:
                items = {f"c:{k}" for k in self._local.company_keys()} | {
                    f"u:{k}" for k in self._local.user_keys()
                }
            for item in sorted(items):
                if self._stopping.is_set():
                    return
                kind, key = item[:2], item[2:]
                try:
                    self.read_company(key) if kind == "c:" else self.read_user(key)
                except TierkitError as error:
                    logger.debug("refreshing %s failed: %r", item, error)


def _interrupt(response: httpx.Response) -> None:
    """Wake a thread blocked reading `response`: shut its socket down (closing the response
    from another thread would wait for the read to time out)."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    else:
        response.close()
