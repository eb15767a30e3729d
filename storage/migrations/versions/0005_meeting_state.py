"""Where the Teams meeting of a video appointment stands: none, pending (a job is creating it), ready, failed.

A video appointment is confirmed at once and its meeting follows (bot.jobs.meetings): the state lets the
cards say "the link comes in this chat" while it is pending, and tells an operator which ones failed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("appointments") as batch:
        batch.add_column(sa.Column("meeting_state", sa.String(16), nullable=False, server_default="none"))


def downgrade() -> None:
    with op.batch_alter_table("appointments") as batch:
        batch.drop_column("meeting_state")
