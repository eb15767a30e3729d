"""What happened at each appointment, and the counselors' chat language.

- appointment_outcomes: every outcome a counselor (or the citizen, or the bot at the end of the slot)
  reported: identity verified or not (with the reason), absent, no-show, technical problem, agency late,
  no outcome; who and when. The statistics count them per week; the appointment's status says where
  it ended.
- counselors.locale: the Teams locale of the counselor's chat, for the prompts the bot sends them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "appointment_outcomes",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("appointment_id", sa.String(36), sa.ForeignKey("appointments.id", ondelete="CASCADE",
                                                                   name="fk_appointment_outcomes_appointment_id_appointments"),
                  nullable=False),
        sa.Column("agency_id", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_appointment_outcomes"),
    )
    op.create_index("ix_outcome_appointment", "appointment_outcomes", ["appointment_id", "id"])
    op.create_index("ix_outcome_agency_time", "appointment_outcomes", ["agency_id", "occurred_at"])
    with op.batch_alter_table("counselors") as batch:
        batch.add_column(sa.Column("locale", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("counselors") as batch:
        batch.drop_column("locale")
    op.drop_index("ix_outcome_agency_time", table_name="appointment_outcomes")
    op.drop_index("ix_outcome_appointment", table_name="appointment_outcomes")
    op.drop_table("appointment_outcomes")
