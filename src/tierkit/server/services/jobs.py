"""Time-driven work, once across processes: each job's row in `job_leases` is locked while it
runs, records when it is due again, and the instant its work is done up to (`watermark`).

A job's work and its new watermark commit in one transaction, so a crash mid-way redoes the
work from the old watermark and nothing is announced twice or skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from tierkit.server.db import Database
from tierkit.server.db.tables import JobLeaseRow
from tierkit.server.db.upserts import insert_ignoring_conflicts
from tierkit.server.db.writers import wait_for_writers
from tierkit.server.services.clock import Clock

logger = logging.getLogger("tierkit.jobs")


@dataclass(slots=True)
class JobRun:
    """One run of a job: its transaction, and the part of time or of a table it covers."""

    session: Session
    since: datetime
    until: datetime
    """Do what fell due in `(since, until]`."""
    position: int | None = None
    """For a job that follows a table by sequence number: the last one handled (None on a
    first run). Set it to where the run got to."""


JobWork = Callable[[JobRun], None]

WRITERS_WAIT_SECONDS = 2.0
"""How long a job that follows a table waits for the write transactions in progress before
leaving the table's new rows to its next run."""


def newest_settled(session: Session, seq: InstrumentedAttribute[int]) -> int | None:
    """For a job that follows a table by sequence number: the table's newest number, once no
    transaction that may still commit a lower one is running (`tierkit.server.db.writers`);
    None if one still was after `WRITERS_WAIT_SECONDS`. A job that reads up to this number
    never steps over a row that commits later."""
    newest = session.scalar(select(func.max(seq))) or 0
    table = seq.class_.__tablename__
    if wait_for_writers(session, table, WRITERS_WAIT_SECONDS):
        return newest
    logger.info(
        "a transaction writing to %s still ran after %.0f s: its rows wait for the next run",
        table,
        WRITERS_WAIT_SECONDS,
    )
    return None


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
            run = JobRun(session, since, now, row.position)
            job.work(run)  # an empty range on a first run: marks still count
            row.holder, row.expires_at, row.watermark = holder, now + job.every, max(now, since)
            row.position = run.position
            return True
