"""The tables: citizens, counselors, consents, appointments, slot and citizen claims, jobs, web identities, audit,
bot state.

Plain SQLAlchemy Core tables; `storage.mapping` maps the domain's entities onto them, so the domain
classes know nothing of the database (SQLAlchemy's imperative mapping). Migrations build exactly
this schema (tests/storage/test_migrations.py compares them).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from bot.domain.appointment import AppointmentStatus, MeetingState, Outcome
from bot.domain.jobs import JobResult, JobStatus
from storage.types import StoredEnum, UTCDateTime

# BIGINT on PostgreSQL, INTEGER (rowid alias, autoincrement) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")

# Named constraints let later migrations drop or alter them by name (SQLite batch mode needs it).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# none_as_null: Python None is SQL NULL, not the JSON value 'null' (SQLAlchemy's default), so
# "no value" reads the same on both backends and COALESCE / IS NULL behave.
_JSON = JSON(none_as_null=True)


def _when(name: str, *, nullable: bool = False) -> Column[object]:
    return Column(name, UTCDateTime(), nullable=nullable)


citizens = Table(
    "citizens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("agency_id", String(64), nullable=False),
    Column("tenant_id", String(64)),
    Column("aad_object_id", String(64)),
    Column("teams_user_id", String(256)),
    Column("conversation_reference", _JSON),
    Column("locale", String(16)),
    # Personal data collected at booking; see PersonalField.
    Column("first_name", String(100)),
    Column("last_name", String(100)),
    Column("birth_date", Date),
    Column("email", String(254)),
    Column("phone", String(32)),
    Column("postal_code", String(16)),
    Column("national_register_number", String(16)),
    Column("client_number", String(32)),
    Column("interview_language", String(8)),
    Column("processing_restricted", Boolean, nullable=False, default=False),
    Column("reminders_opt_out", Boolean, nullable=False, default=False),
    _when("created_at"),
    _when("last_seen_at"),
    _when("erased_at", nullable=True),
    # Teams refused a message (403 MessageWritesBlocked): cleared when they write to the bot again.
    _when("unreachable_since", nullable=True),
    UniqueConstraint("agency_id", "tenant_id", "aad_object_id", name="uq_citizen_identity"),
)

counselors = Table(
    "counselors",
    metadata,
    Column("id", String(64), primary_key=True),  # Entra object id
    Column("agency_id", String(64), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("conversation_reference", _JSON),
    Column("active", Boolean, nullable=False, default=True),
    Column("locale", String(16)),
)

consent_records = Table(
    "consent_records",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("citizen_id", ForeignKey("citizens.id"), nullable=False),
    Column("agency_id", String(64), nullable=False),
    Column("document_kind", String(16), nullable=False),
    Column("version", String(32), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("language", String(8), nullable=False),
    Column("action", String(16), nullable=False),  # accepted | withdrawn
    Column("channel", String(32), nullable=False),
    Column("activity_id", String(256)),
    _when("occurred_at"),
    Index("ix_consent_citizen_kind", "citizen_id", "document_kind", "id"),
)

appointments = Table(
    "appointments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("agency_id", String(64), nullable=False),
    Column("citizen_id", ForeignKey("citizens.id")),
    Column("counselor_id", String(64), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("office_id", String(64)),
    Column("subject_id", String(64), nullable=False),
    _when("starts_at"),
    _when("ends_at"),
    Column("status", StoredEnum(AppointmentStatus, 16), nullable=False, default=AppointmentStatus.BOOKED),
    Column("interview_language", String(8), nullable=False),
    Column("cancel_reason", String(32)),
    Column("cancel_note", Text),
    Column("meeting_id", String(512)),
    Column("join_url", Text),
    # MeetingState: none, pending (a job creates it), ready, failed.
    Column("meeting_state", StoredEnum(MeetingState, 16), nullable=False, default=MeetingState.NONE,
           server_default="none"),
    Column("identity_check", String(16)),
    _when("created_at"),
    _when("updated_at"),
    _when("anonymised_at", nullable=True),
    Index("ix_appointment_citizen", "citizen_id", "starts_at"),
    Index("ix_appointment_counselor", "counselor_id", "starts_at"),
    # Busy-time searches: an agency's booked appointments over a window (migration 0002).
    Index("ix_appointment_agency_status_start", "agency_id", "status", "starts_at", "ends_at", "counselor_id"),
)

# One step of a counselor's time held by a booked appointment. The primary key makes overlapping
# bookings of one counselor impossible on every database: an appointment claims every step it
# covers, and a second claim of the same step fails.
slot_claims = Table(
    "slot_claims",
    metadata,
    Column("counselor_id", String(64), primary_key=True),
    Column("step_start", UTCDateTime(), primary_key=True),
    Column("appointment_id", ForeignKey("appointments.id", ondelete="CASCADE"), nullable=False, index=True),
)

# The same for a citizen: one person is in one interview at a time, whatever the counselors
# (bot.domain.booking_rules.own_times). Not a foreign key to citizens: erasure keeps that row anyway.
citizen_claims = Table(
    "citizen_claims",
    metadata,
    Column("citizen_id", String(36), primary_key=True),
    Column("step_start", UTCDateTime(), primary_key=True),
    Column("appointment_id", ForeignKey("appointments.id", ondelete="CASCADE"), nullable=False, index=True),
)

# What happened at an appointment, reported by the counselor, the citizen or the bot (bot.domain.appointment).
appointment_outcomes = Table(
    "appointment_outcomes",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("appointment_id", ForeignKey("appointments.id", ondelete="CASCADE"), nullable=False),
    Column("agency_id", String(64), nullable=False),
    Column("outcome", StoredEnum(Outcome, 32), nullable=False),
    Column("reason", String(32)),
    Column("actor", String(64), nullable=False),
    _when("occurred_at"),
    Index("ix_outcome_appointment", "appointment_id", "id"),
    Index("ix_outcome_agency_time", "agency_id", "occurred_at"),
)

scheduled_jobs = Table(
    "scheduled_jobs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    _when("run_at"),
    Column("payload", _JSON, nullable=False),
    Column("dedupe_key", String(200), unique=True),
    Column("appointment_id", String(36), index=True),
    Column("status", StoredEnum(JobStatus, 16), nullable=False, default=JobStatus.PENDING),
    Column("attempts", Integer, nullable=False, default=0),
    _when("locked_until", nullable=True),
    Column("last_error", Text),
    _when("created_at"),
    Column("outcome", StoredEnum(JobResult, 32)),
    _when("finished_at", nullable=True),
    Index("ix_job_due", "status", "run_at"),
)

# Web Chat conversations bound to a citizen by a proof (bot.domain.web_identity): the Direct Line user id
# the token endpoint made, never one a page chose, in the conversation its token was made for.
web_identities = Table(
    "web_identities",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("citizen_id", ForeignKey("citizens.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("proof", String(16), nullable=False),  # manage_link | sign_in
    # The Direct Line conversation the token was made for: the proof holds there only.
    Column("conversation_id", String(128), nullable=False),
    _when("created_at"),
)

# Each citizen's manage-link epoch: links signed with an older one are revoked (erasure raises it).
web_link_epochs = Table(
    "web_link_epochs",
    metadata,
    Column("citizen_id", ForeignKey("citizens.id", ondelete="CASCADE"), primary_key=True),
    Column("epoch", Integer, nullable=False),
)

# Append-only, hash-chained events; personal data never enters the hashed payload.
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("agency_id", String(64), nullable=False),
    _when("occurred_at"),
    Column("actor", String(64), nullable=False),
    Column("event_type", String(48), nullable=False),
    Column("citizen_pseudonym", String(64), index=True),
    Column("appointment_id", String(36), index=True),
    Column("payload", _JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# Bot Framework conversation/user state, one JSON document per key, with an e-tag. `data` must stay
# JSON (not JSONB): the jsonpickle documents refer to earlier objects by position (py/id), so key
# order has to survive the round trip.
bot_state = Table(
    "bot_state",
    metadata,
    Column("key", String(400), primary_key=True),
    Column("etag", String(64), nullable=False),
    Column("data", _JSON, nullable=False),
    _when("updated_at"),
)
