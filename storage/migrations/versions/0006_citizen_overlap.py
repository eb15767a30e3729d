"""A citizen's booked appointments never overlap: citizen claims, and on PostgreSQL an exclusion constraint.

- citizen_claims: the steps of a citizen's time held by their booked appointments, as slot_claims
  does for counselors (its primary key refuses a second claim of a step on every backend).
- PostgreSQL: ex_appointments_citizen_overlap forbids two overlapping booked appointments of one citizen.

Booked appointments already in the database get their claims here. Two of them that already overlap
cannot both be held: the upgrade stops and names them (appointment ids only), so that the agency can
cancel one of each pair with the citizen, then run the upgrade again.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.domain.slots import claim_steps
from storage.types import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EXCLUSION_NAME = "ex_appointments_citizen_overlap"

_APPOINTMENTS = sa.table(
    "appointments", sa.column("id", sa.String), sa.column("citizen_id", sa.String), sa.column("status", sa.String),
    sa.column("starts_at", UTCDateTime()), sa.column("ends_at", UTCDateTime()),
)


def _overlapping_pairs(connection: sa.Connection) -> list[tuple[str, str]]:
    first, second = _APPOINTMENTS.alias("first"), _APPOINTMENTS.alias("second")
    statement = sa.select(first.c.id, second.c.id).where(
        first.c.citizen_id == second.c.citizen_id, first.c.id < second.c.id,
        first.c.status == "booked", second.c.status == "booked",
        first.c.starts_at < second.c.ends_at, second.c.starts_at < first.c.ends_at,
    ).order_by(first.c.id, second.c.id)
    return [(one, other) for one, other in connection.execute(statement)]


def upgrade() -> None:
    connection = op.get_bind()
    pairs = _overlapping_pairs(connection)
    if pairs:
        listed = ", ".join(f"{one} / {other}" for one, other in pairs)
        raise RuntimeError(
            f"{len(pairs)} pair(s) of booked appointments of one citizen overlap: {listed}. "
            "Cancel one of each pair (and tell the citizen), then run the upgrade again."
        )
    citizen_claims = op.create_table(
        "citizen_claims",
        sa.Column("citizen_id", sa.String(36), nullable=False),
        sa.Column("step_start", UTCDateTime(), nullable=False),
        sa.Column("appointment_id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("citizen_id", "step_start", name="pk_citizen_claims"),
        sa.ForeignKeyConstraint(
            ["appointment_id"], ["appointments.id"], name="fk_citizen_claims_appointment_id_appointments",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_citizen_claims_appointment_id", "citizen_claims", ["appointment_id"])
    booked = connection.execute(
        sa.select(_APPOINTMENTS.c.id, _APPOINTMENTS.c.citizen_id, _APPOINTMENTS.c.starts_at, _APPOINTMENTS.c.ends_at)
        .where(_APPOINTMENTS.c.status == "booked", _APPOINTMENTS.c.citizen_id.is_not(None))
    ).all()
    rows = [{"citizen_id": citizen_id, "step_start": step, "appointment_id": appointment_id}
            for appointment_id, citizen_id, starts_at, ends_at in booked
            for step in claim_steps(starts_at, ends_at)]
    if rows:
        op.bulk_insert(citizen_claims, rows)
    if connection.dialect.name == "postgresql":
        # btree_gist is there since 0001 (the counselors' constraint).
        op.execute(
            f"ALTER TABLE appointments ADD CONSTRAINT {EXCLUSION_NAME} EXCLUDE USING gist "
            "(citizen_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&) "
            "WHERE (status = 'booked')"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE appointments DROP CONSTRAINT IF EXISTS {EXCLUSION_NAME}")
    op.drop_index("ix_citizen_claims_appointment_id", table_name="citizen_claims")
    op.drop_table("citizen_claims")
