"""The job runner: a thread that runs each time-driven job when it is due, once across every
server process on the database (`services.jobs`)."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence

from tierkit.server.services.jobs import Job, JobService
from tierkit.server.workers.background import BackgroundThread

logger = logging.getLogger("tierkit.jobs")


class JobRunner(BackgroundThread):
    def __init__(
        self,
        jobs: JobService,
        schedule: Sequence[Job],
        *,
        tick_seconds: float,
        after_run: Callable[[], None] = lambda: None,
    ) -> None:
        """`after_run` is called after a tick that ran a job (to wake the webhook
        dispatcher for what the job announced)."""
        self._jobs = jobs
        self._schedule = list(schedule)
        self._tick = tick_seconds
        self._after_run = after_run
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        super().__init__("tierkit-jobs")

    def run_once(self) -> list[str]:
        """Run what is due; the names of the jobs that ran."""
        ran = []
        for job in self._schedule:
            if self._stopping.is_set():
                break
            try:
                if self._jobs.run_if_due(job, self.holder):
                    ran.append(job.name)
            except Exception:  # one job's failure must not stop the others
                logger.exception("job %s failed; it runs again when next due", job.name)
        return ran

    def _run(self) -> None:
        while not self._stopping.is_set():
            if self.run_once():
                self._after_run()
            self._stopping.wait(self._tick)
