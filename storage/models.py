"""SQLAlchemy tables: citizens, counselors, consents, appointments, slot claims, jobs, audit, bot state."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.types import UTCDateTime

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


# none_as_null: Python None is SQL NULL, not the JSON value 'null' (SQLAlchemy's default), so
# "no value" reads the same on both backends and COALESCE / IS NULL behave.
_JSON = JSON(none_as_null=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: _JSON, list[Any]: _JSON}


class Citizen(Base):
    """A person who talks to the bot in Teams; personal fields are null until given, and after erasure."""

    __tablename__ = "citizens"
    __table_args__ = (
        UniqueConstraint("agency_id", "tenant_id", "aad_object_id", name="uq_citizen_identity"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    agency_id: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[str | None] = mapped_column(String(64))
    aad_object_id: Mapped[str | None] = mapped_column(String(64))
    teams_user_id: Mapped[str | None] = mapped_column(String(256))
    conversation_reference: Mapped[dict[str, Any] | None]
    locale: Mapped[str | None] = mapped_column(String(16))
    # Personal data collected at booking; see PersonalField.
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    birth_date: Mapped[date | None] = mapped_column(Date)
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    postal_code: Mapped[str | None] = mapped_column(String(16))
    national_register_number: Mapped[str | None] = mapped_column(String(16))
    client_number: Mapped[str | None] = mapped_column(String(32))
    interview_language: Mapped[str | None] = mapped_column(String(8))
    # Restriction / objection (GDPR art. 18, 21): non-essential processing stops.
    processing_restricted: Mapped[bool] = mapped_column(Boolean, default=False)
    reminders_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    erased_at: Mapped[datetime | None]


class Counselor(Base):
    """A counselor from the agency file, with the Teams conversation the bot reaches them in."""

    __tablename__ = "counselors"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # Entra object id
    agency_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(200))
    conversation_reference: Mapped[dict[str, Any] | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ConsentRecord(Base):
    """Append-only proof of one acceptance, refusal or withdrawal of one document version."""

    __tablename__ = "consent_records"
    __table_args__ = (Index("ix_consent_citizen_kind", "citizen_id", "document_kind", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    citizen_id: Mapped[str] = mapped_column(ForeignKey("citizens.id"))
    agency_id: Mapped[str] = mapped_column(String(64))
    document_kind: Mapped[str] = mapped_column(String(16))
    version: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    action: Mapped[str] = mapped_column(String(16))  # accepted | withdrawn
    channel: Mapped[str] = mapped_column(String(32))
    activity_id: Mapped[str | None] = mapped_column(String(256))
    occurred_at: Mapped[datetime]


class Appointment(Base):
    """A booked slot with one counselor; times in UTC; status moves booked → done/cancelled/no_show."""

    __tablename__ = "appointments"
    __table_args__ = (
        Index("ix_appointment_citizen", "citizen_id", "starts_at"),
        Index("ix_appointment_counselor", "counselor_id", "starts_at"),
        # Busy-time searches: an agency's booked appointments over a window (migration 0002).
        Index("ix_appointment_agency_status_start", "agency_id", "status", "starts_at", "ends_at", "counselor_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    agency_id: Mapped[str] = mapped_column(String(64))
    citizen_id: Mapped[str | None] = mapped_column(ForeignKey("citizens.id"))
    counselor_id: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(16))
    office_id: Mapped[str | None] = mapped_column(String(64))
    subject_id: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="booked")
    interview_language: Mapped[str] = mapped_column(String(8))
    cancel_reason: Mapped[str | None] = mapped_column(String(32))
    cancel_note: Mapped[str | None] = mapped_column(Text)
    meeting_id: Mapped[str | None] = mapped_column(String(512))
    join_url: Mapped[str | None] = mapped_column(Text)
    identity_check: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    anonymised_at: Mapped[datetime | None]


class SlotClaim(Base):
    """One step of a counselor's time held by a booked appointment.

    The primary key makes overlapping bookings of one counselor impossible on every database:
    an appointment claims every step it covers, and a second claim of the same step fails.
    """

    __tablename__ = "slot_claims"

    counselor_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    step_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    appointment_id: Mapped[str] = mapped_column(ForeignKey("appointments.id", ondelete="CASCADE"), index=True)


class ScheduledJob(Base):
    """A durable job (reminder, counselor prompt, no-show check, retention run)."""

    __tablename__ = "scheduled_jobs"
    __table_args__ = (Index("ix_job_due", "status", "run_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    run_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]]
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    # Lets a cancelled or moved appointment withdraw its pending jobs in one indexed update.
    appointment_id: Mapped[str | None] = mapped_column(String(36), index=True)
    # pending | running | done | failed | cancelled
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class AuditEvent(Base):
    """Append-only, hash-chained event; personal data never enters the hashed payload."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    agency_id: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))  # citizen:<pseudonym> | counselor:<id> | system
    event_type: Mapped[str] = mapped_column(String(48))
    citizen_pseudonym: Mapped[str | None] = mapped_column(String(64), index=True)
    appointment_id: Mapped[str | None] = mapped_column(String(36), index=True)
    payload: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class BotStateItem(Base):
    """Bot Framework conversation/user state, one JSON document per key, with an e-tag.

    `data` must stay JSON (not JSONB): the jsonpickle documents refer to earlier objects by
    position (py/id), so key order has to survive the round trip.
    """

    __tablename__ = "bot_state"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    etag: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]
