"""Initial schema: citizens, counselors, consents, appointments, slot claims, jobs, audit, bot state.

Written by hand to match what is now storage/tables.py; tests/storage/test_migrations.py compares them.
On PostgreSQL an exclusion constraint also forbids overlapping booked appointments of one
counselor, beside the slot claims that do the same job on every backend.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# BIGINT on PostgreSQL; INTEGER on SQLite, where only INTEGER PRIMARY KEY auto-increments.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = sa.DateTime(timezone=True)

EXCLUSION_NAME = "ex_appointments_counselor_overlap"


def upgrade() -> None:
    op.create_table(
        "citizens",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("agency_id", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=True),
        sa.Column("aad_object_id", sa.String(64), nullable=True),
        sa.Column("teams_user_id", sa.String(256), nullable=True),
        sa.Column("conversation_reference", sa.JSON(), nullable=True),
        sa.Column("locale", sa.String(16), nullable=True),
        sa.Column("first_name", sa.String(100), nullable=True),
        sa.Column("last_name", sa.String(100), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("postal_code", sa.String(16), nullable=True),
        sa.Column("national_register_number", sa.String(16), nullable=True),
        sa.Column("client_number", sa.String(32), nullable=True),
        sa.Column("interview_language", sa.String(8), nullable=True),
        sa.Column("processing_restricted", sa.Boolean(), nullable=False),
        sa.Column("reminders_opt_out", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("last_seen_at", UTC_DATETIME, nullable=False),
        sa.Column("erased_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_citizens"),
        sa.UniqueConstraint("agency_id", "tenant_id", "aad_object_id", name="uq_citizen_identity"),
    )

    op.create_table(
        "counselors",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("agency_id", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("conversation_reference", sa.JSON(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_counselors"),
    )

    op.create_table(
        "consent_records",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("citizen_id", sa.String(36), nullable=False),
        sa.Column("agency_id", sa.String(64), nullable=False),
        sa.Column("document_kind", sa.String(16), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("activity_id", sa.String(256), nullable=True),
        sa.Column("occurred_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_consent_records"),
        sa.ForeignKeyConstraint(
            ["citizen_id"], ["citizens.id"], name="fk_consent_records_citizen_id_citizens"
        ),
    )
    op.create_index("ix_consent_citizen_kind", "consent_records", ["citizen_id", "document_kind", "id"])

    op.create_table(
        "appointments",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("agency_id", sa.String(64), nullable=False),
        sa.Column("citizen_id", sa.String(36), nullable=True),
        sa.Column("counselor_id", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("office_id", sa.String(64), nullable=True),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("starts_at", UTC_DATETIME, nullable=False),
        sa.Column("ends_at", UTC_DATETIME, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("interview_language", sa.String(8), nullable=False),
        sa.Column("cancel_reason", sa.String(32), nullable=True),
        sa.Column("cancel_note", sa.Text(), nullable=True),
        sa.Column("meeting_id", sa.String(512), nullable=True),
        sa.Column("join_url", sa.Text(), nullable=True),
        sa.Column("identity_check", sa.String(16), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("anonymised_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_appointments"),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizens.id"], name="fk_appointments_citizen_id_citizens"),
    )
    op.create_index("ix_appointment_citizen", "appointments", ["citizen_id", "starts_at"])
    op.create_index("ix_appointment_counselor", "appointments", ["counselor_id", "starts_at"])

    op.create_table(
        "slot_claims",
        sa.Column("counselor_id", sa.String(64), nullable=False),
        sa.Column("step_start", UTC_DATETIME, nullable=False),
        sa.Column("appointment_id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("counselor_id", "step_start", name="pk_slot_claims"),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name="fk_slot_claims_appointment_id_appointments",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_slot_claims_appointment_id", "slot_claims", ["appointment_id"])

    op.create_table(
        "scheduled_jobs",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("run_at", UTC_DATETIME, nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=True),
        sa.Column("appointment_id", sa.String(36), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTC_DATETIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scheduled_jobs"),
        sa.UniqueConstraint("dedupe_key", name="uq_scheduled_jobs_dedupe_key"),
    )
    op.create_index("ix_job_due", "scheduled_jobs", ["status", "run_at"])
    op.create_index("ix_scheduled_jobs_appointment_id", "scheduled_jobs", ["appointment_id"])

    op.create_table(
        "audit_events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("agency_id", sa.String(64), nullable=False),
        sa.Column("occurred_at", UTC_DATETIME, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(48), nullable=False),
        sa.Column("citizen_pseudonym", sa.String(64), nullable=True),
        sa.Column("appointment_id", sa.String(36), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_citizen_pseudonym", "audit_events", ["citizen_pseudonym"])
    op.create_index("ix_audit_events_appointment_id", "audit_events", ["appointment_id"])

    op.create_table(
        "bot_state",
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_bot_state"),
    )

    if op.get_bind().dialect.name == "postgresql":
        # btree_gist gives GiST an equality operator for varchar, so one constraint can say
        # "same counselor AND overlapping time". It is a trusted extension (PostgreSQL 13+):
        # the database owner may create it without superuser rights.
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            f"ALTER TABLE appointments ADD CONSTRAINT {EXCLUSION_NAME} EXCLUDE USING gist "
            "(counselor_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&) "
            "WHERE (status = 'booked')"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # The extension stays: other schemas in the database may use it.
        op.execute(f"ALTER TABLE appointments DROP CONSTRAINT IF EXISTS {EXCLUSION_NAME}")
    op.drop_table("bot_state")
    op.drop_index("ix_audit_events_appointment_id", table_name="audit_events")
    op.drop_index("ix_audit_events_citizen_pseudonym", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_index("ix_scheduled_jobs_appointment_id", table_name="scheduled_jobs")
    op.drop_index("ix_job_due", table_name="scheduled_jobs")
    op.drop_table("scheduled_jobs")
    op.drop_index("ix_slot_claims_appointment_id", table_name="slot_claims")
    op.drop_table("slot_claims")
    op.drop_index("ix_appointment_counselor", table_name="appointments")
    op.drop_index("ix_appointment_citizen", table_name="appointments")
    op.drop_table("appointments")
    op.drop_index("ix_consent_citizen_kind", table_name="consent_records")
    op.drop_table("consent_records")
    op.drop_table("counselors")
    op.drop_table("citizens")
