"""The job runner's records: what each finished job came to, and citizens the bot can no longer reach.

- scheduled_jobs.outcome / finished_at: "sent", "dropped_late", "skipped_opt_out"... and when, so an
  operator (`guichet jobs list`) and the statistics can tell a reminder sent from one dropped.
- citizens.unreachable_since: Teams answered 403 MessageWritesBlocked (the person blocked or removed
  the bot); no message is attempted until they write to the bot again.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("scheduled_jobs") as batch:
        batch.add_column(sa.Column("outcome", sa.String(32), nullable=True))
        batch.add_column(sa.Column("finished_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("citizens") as batch:
        batch.add_column(sa.Column("unreachable_since", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("citizens") as batch:
        batch.drop_column("unreachable_since")
    with op.batch_alter_table("scheduled_jobs") as batch:
        batch.drop_column("finished_at")
        batch.drop_column("outcome")
