"""The ids of companies this process has seen committed, by environment and key, so that
ingestion need not look up the hundred companies of every batch (a tenth of its work).

An id read here may be stale: its company deleted since, by this process or another (a key
deleted and tracked again gets a new id). Ingestion locks the companies it writes for, and the
lock returns the ids that still exist: a batch that met a stale id forgets its companies and
starts over, reading them anew. Ids are never reused, so a stale id is never taken for
another company's."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

DEFAULT_SIZE = 100_000


class KnownCompanies:
    """Company ids by (environment, key), up to `size` of them (then it starts afresh:
    a batch holds a few hundred companies at most, and reading them costs one query)."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._size = size
        self._ids: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def known(self, environment_id: str, keys: Iterable[str]) -> dict[str, str]:
        """The ids known of `keys` (those not known are left out)."""
        ids = self._ids
        found = {}
        for key in keys:
            company_id = ids.get((environment_id, key))
            if company_id is not None:
                found[key] = company_id
        return found

    def remember(self, environment_id: str, ids: Mapping[str, str]) -> None:
        """Keep `ids` (by key), committed in `environment_id`."""
        with self._lock:
            if len(self._ids) + len(ids) > self._size:
                self._ids = {}
            self._ids.update(((environment_id, key), company_id) for key, company_id in ids.items())

    def forget(self, environment_id: str, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                self._ids.pop((environment_id, key), None)
