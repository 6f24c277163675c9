"""What every background worker of the server process shares: a daemon thread running
`_run` until `stop()` sets `_stopping`."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod


class BackgroundThread(ABC):
    """A worker with its own daemon thread: `start()`, then `stop()` (which waits for it)."""

    def __init__(self, name: str) -> None:
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._interrupt()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _interrupt(self) -> None:  # noqa: B027 - a hook, empty unless a subclass waits elsewhere
        """Cut short a wait of `_run` other than on `_stopping` (none by default)."""

    @abstractmethod
    def _run(self) -> None: ...
