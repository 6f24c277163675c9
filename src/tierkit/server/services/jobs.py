"""Time-driven work, once across processes: each job's row in `job_leases` is locked while it
runs, records when it is due again, and the instant its work is done up to (`watermark`).

A job's work and its new watermark commit in one transaction, so a crash mid-way redoes the
work from the old watermark and nothing is announced twice or skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tierkit.server.db import Database
from tierkit.server.db.tables import JobLeaseRow
from tierkit.server.db.upserts import insert_ignoring_conflicts
from tierkit.server.services.clock import Clock

JobWork = Callable[[Session, datetime, datetime], None]
"""`work(session, since, until)`: do what fell due in `(since, until]`, in `session`."""


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    every: timedelta
    work: JobWork


class JobService:
    def __init__(self, database: Database, clock: Clock) -> None:
        self._db = database
        self._clock = clock

    def run_if_due(self, job: Job, holder: str) -> bool:
        """Run `job` if no process ran it within `job.every` and none is running it now;
        whether it ran. The first run starts the watermark at now (no history replayed)."""
        now = self._clock()
        with self._db.write() as session:
            session.execute(
                insert_ignoring_conflicts(session, JobLeaseRow, ["name"]),
                [{"name": job.name, "holder": holder, "expires_at": now, "watermark": now}],
            )
            row = session.scalars(
                select(JobLeaseRow)
                .where(JobLeaseRow.name == job.name)
                .with_for_update(skip_locked=True)
            ).first()
            if row is None or row.expires_at > now:
                return False  # running elsewhere, or not due
            since = row.watermark or now
            job.work(session, since, now)  # an empty range on a first run: marks still count
            row.holder, row.expires_at, row.watermark = holder, now + job.every, max(now, since)
            return True
