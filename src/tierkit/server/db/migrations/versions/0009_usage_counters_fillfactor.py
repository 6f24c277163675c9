"""usage counters keep room on their pages

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

Every ingested batch updates each counter its events fall in: at 50 batches a second, a
counter gets a new row version 50 times a second. With room on its page, PostgreSQL writes
the new version beside the old one (a HOT update: no index entry, and the dead versions are
pruned in place) instead of on another page. Pages written from now on keep 70% free; the
rows there now move as they are updated. SQLite has no such setting.
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE usage_counters SET (fillfactor = 30)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE usage_counters RESET (fillfactor)")
