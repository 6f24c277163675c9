"""An environment's events are listed newest timestamp first, through an index of their time

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05

`GET /v1/events` lists by timestamp, then number, instead of by number alone: a company's
events are then read in the order the company index holds them, and a time window is a range
of an index. `(environment_id, timestamp, seq)` replaces `(environment_id, seq)`, which only
that listing used. On PostgreSQL the company index gains the number after the time, so
events of one instant come in order too (SQLite's indexes end with it already). Building the
indexes reads the whole events table.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


_COMPANY_INDEX = (
    "CREATE INDEX ix_events_company_event_hashes"
    ' ON events (hashtext(company_id), hashtext(event), "timestamp"{})'
)


def upgrade() -> None:
    op.create_index("ix_events_environment_time", "events", ["environment_id", "timestamp", "seq"])
    op.drop_index("ix_events_environment_seq", table_name="events")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_events_company_event_hashes", table_name="events")
        op.execute(_COMPANY_INDEX.format(", seq"))


def downgrade() -> None:
    op.create_index("ix_events_environment_seq", "events", ["environment_id", "seq"])
    op.drop_index("ix_events_environment_time", table_name="events")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_events_company_event_hashes", table_name="events")
        op.execute(_COMPANY_INDEX.format(""))
