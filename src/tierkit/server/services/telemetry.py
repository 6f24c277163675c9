"""What services report as they work (cache reads, decisions, events stored), to whatever
counts it: the app passes its Prometheus metrics in (`server/metrics.py`); the CLI and tests
pass nothing. Services stay free of HTTP and of any metrics library."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from tierkit.engine.evaluate import Decision

CacheRead = Callable[[bool], None]
"""Called with True on a hit, False on a miss."""


class Telemetry(Protocol):
    def cache_reads(self, cache: str) -> CacheRead:
        """What to call on each read of the cache named `cache` (catalog, company, user)."""

    def decided(self, decisions: Sequence[Decision]) -> None:
        """Checks answered (one decision per feature checked)."""

    def ingested(self, accepted: int, duplicates: int) -> None:
        """Events stored, and repeats of stored ones (counted once)."""


def _ignore_read(hit: bool) -> None:
    return None


class NoTelemetry:
    """Counts nothing."""

    def cache_reads(self, cache: str) -> CacheRead:
        return _ignore_read

    def decided(self, decisions: Sequence[Decision]) -> None:
        return None

    def ingested(self, accepted: int, duplicates: int) -> None:
        return None
