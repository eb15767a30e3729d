"""Index for the busy-time searches of a booking: booked appointments of an agency by start time.

Every search for free days and times, and every booking, reads an agency's booked appointments
over a time window (storage.repositories.appointments: busy search, counselor load); without this index each of
them scanned the whole appointments table.

Revision ID: 0002
Revises: 0001
Create Date: 2025-06-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX_NAME = "ix_appointment_agency_status_start"


def upgrade() -> None:
    op.create_index(INDEX_NAME, "appointments", ["agency_id", "status", "starts_at", "ends_at", "counselor_id"])


def downgrade() -> None:
    op.drop_index(INDEX_NAME, table_name="appointments")
