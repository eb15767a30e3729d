"""Repositories: thin, typed queries over one AsyncSession; the unit of work owns the transaction.

No business rules live here: callers decide what to store and when; these classes only know how
to store it safely on SQLite and PostgreSQL alike (upserts, claims, leases).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.errors import SlotTaken, is_uniqueness_violation
from storage.models import (
    Appointment,
    AuditEvent,
    Citizen,
    ConsentRecord,
    Counselor,
    ScheduledJob,
    SlotClaim,
)

# Columns that hold what a citizen told us about themselves (see PersonalField).
PERSONAL_COLUMNS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "birth_date",
    "email",
    "phone",
    "postal_code",
    "national_register_number",
    "client_number",
    "interview_language",
)

BOOKED = "booked"
CANCELLED = "cancelled"


def _dialect_insert(session: AsyncSession, entity: Any) -> postgresql.Insert | sqlite.Insert:
    """INSERT that knows ON CONFLICT for the session's backend (both spell it the same way)."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(entity)
    if name == "sqlite":
        return sqlite.insert(entity)
    raise NotImplementedError(f"unsupported database dialect {name!r}")


def _is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


class CitizenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, citizen_id: str) -> Citizen | None:
        return await self._session.get(Citizen, citizen_id)

    async def get_by_identity(
        self, agency_id: str, tenant_id: str | None, aad_object_id: str | None
    ) -> Citizen | None:
        # IS NULL for a missing part; a plain `=` otherwise, which the unique index serves.
        statement = select(Citizen).where(
            Citizen.agency_id == agency_id,
            Citizen.tenant_id.is_(None) if tenant_id is None else Citizen.tenant_id == tenant_id,
            Citizen.aad_object_id.is_(None)
            if aad_object_id is None
            else Citizen.aad_object_id == aad_object_id,
        )
        return (await self._session.scalars(statement.limit(1))).first()

    async def upsert_identity(
        self,
        *,
        agency_id: str,
        tenant_id: str | None,
        aad_object_id: str | None,
        teams_user_id: str | None,
        conversation_reference: dict[str, Any] | None,
        locale: str | None,
        now: datetime,
    ) -> Citizen:
        """The citizen with this Teams identity, created on first contact, refreshed afterwards.

        A missing locale keeps the stored one. With tenant and object id both known this is one
        INSERT … ON CONFLICT statement, so two first turns of one person cannot create two rows.
        """
        if tenant_id is None or aad_object_id is None:
            # NULLs never collide in a unique constraint, so ON CONFLICT cannot see the twin row.
            return await self._upsert_without_full_identity(
                agency_id, tenant_id, aad_object_id, teams_user_id, conversation_reference, locale, now
            )
        table = Citizen.__table__
        statement = _dialect_insert(self._session, Citizen).values(
            id=str(uuid4()),
            agency_id=agency_id,
            tenant_id=tenant_id,
            aad_object_id=aad_object_id,
            teams_user_id=teams_user_id,
            conversation_reference=conversation_reference,
            locale=locale,
            processing_restricted=False,
            reminders_opt_out=False,
            created_at=now,
            last_seen_at=now,
        )
        excluded = statement.excluded
        upsert = statement.on_conflict_do_update(
            index_elements=[table.c.agency_id, table.c.tenant_id, table.c.aad_object_id],
            set_={
                "teams_user_id": func.coalesce(excluded.teams_user_id, table.c.teams_user_id),
                "conversation_reference": func.coalesce(
                    excluded.conversation_reference, table.c.conversation_reference
                ),
                "locale": func.coalesce(excluded.locale, table.c.locale),
                "last_seen_at": excluded.last_seen_at,
            },
        ).returning(Citizen)
        result = await self._session.scalars(upsert, execution_options={"populate_existing": True})
        return result.one()

    async def _upsert_without_full_identity(
        self,
        agency_id: str,
        tenant_id: str | None,
        aad_object_id: str | None,
        teams_user_id: str | None,
        conversation_reference: dict[str, Any] | None,
        locale: str | None,
        now: datetime,
    ) -> Citizen:
        if aad_object_id is not None:
            citizen = await self.get_by_identity(agency_id, tenant_id, aad_object_id)
        elif teams_user_id is not None:
            # No Entra object id (e.g. the Emulator): the Teams user id is all that tells people apart.
            statement = select(Citizen).where(
                Citizen.agency_id == agency_id,
                Citizen.tenant_id.is_(None) if tenant_id is None else Citizen.tenant_id == tenant_id,
                Citizen.aad_object_id.is_(None),
                Citizen.teams_user_id == teams_user_id,
            )
            citizen = (await self._session.scalars(statement.limit(1))).first()
        else:
            raise ValueError("a citizen needs an Entra object id or a Teams user id")
        if citizen is None:
            citizen = Citizen(
                id=str(uuid4()),
                agency_id=agency_id,
                tenant_id=tenant_id,
                aad_object_id=aad_object_id,
                processing_restricted=False,
                reminders_opt_out=False,
                created_at=now,
            )
            self._session.add(citizen)
        if teams_user_id is not None:
            citizen.teams_user_id = teams_user_id
        if conversation_reference is not None:
            citizen.conversation_reference = conversation_reference
        if locale is not None:
            citizen.locale = locale
        citizen.last_seen_at = now
        await self._session.flush()
        return citizen

    async def save_personal_data(self, citizen_id: str, values: Mapping[str, str | date | None]) -> None:
        """Store the given personal fields (unknown names are a programming error)."""
        unknown = set(values) - set(PERSONAL_COLUMNS)
        if unknown:
            raise ValueError(f"not personal data columns: {sorted(unknown)}")
        if values:
            await self._session.execute(
                update(Citizen).where(Citizen.id == citizen_id).values(**dict(values)),
                execution_options={"synchronize_session": "fetch"},
            )

    async def clear_personal_data(self, citizen_id: str, now: datetime) -> None:
        """Null every personal column and the conversation reference; mark the row erased."""
        values: dict[str, Any] = dict.fromkeys(PERSONAL_COLUMNS)
        values.update(conversation_reference=None, erased_at=now)
        await self._session.execute(
            update(Citizen).where(Citizen.id == citizen_id).values(**values),
            execution_options={"synchronize_session": "fetch"},
        )

    async def set_flags(
        self,
        citizen_id: str,
        *,
        processing_restricted: bool | None = None,
        reminders_opt_out: bool | None = None,
    ) -> None:
        values: dict[str, bool] = {}
        if processing_restricted is not None:
            values["processing_restricted"] = processing_restricted
        if reminders_opt_out is not None:
            values["reminders_opt_out"] = reminders_opt_out
        if values:
            await self._session.execute(
                update(Citizen).where(Citizen.id == citizen_id).values(**values),
                execution_options={"synchronize_session": "fetch"},
            )

    async def inactive_since(self, agency_id: str, cutoff: datetime, limit: int = 500) -> list[Citizen]:
        """Citizens not seen since `cutoff` and not yet erased (retention candidates)."""
        statement = (
            select(Citizen)
            .where(Citizen.agency_id == agency_id, Citizen.last_seen_at < cutoff, Citizen.erased_at.is_(None))
            .order_by(Citizen.last_seen_at)
            .limit(limit)
        )
        return list(await self._session.scalars(statement))


class CounselorRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, counselor_id: str) -> Counselor | None:
        return await self._session.get(Counselor, counselor_id)

    async def list_for_agency(self, agency_id: str, *, active_only: bool = True) -> list[Counselor]:
        statement = select(Counselor).where(Counselor.agency_id == agency_id)
        if active_only:
            statement = statement.where(Counselor.active.is_(True))
        return list(await self._session.scalars(statement.order_by(Counselor.id)))

    async def upsert(
        self, counselor_id: str, agency_id: str, display_name: str, *, active: bool = True
    ) -> None:
        """Mirror one counselor of the agency file; keeps the stored conversation reference."""
        statement = _dialect_insert(self._session, Counselor).values(
            id=counselor_id, agency_id=agency_id, display_name=display_name, active=active
        )
        statement = statement.on_conflict_do_update(
            index_elements=[Counselor.__table__.c.id],
            set_={"agency_id": agency_id, "display_name": display_name, "active": active},
        )
        await self._session.execute(statement)

    async def set_conversation_reference(self, counselor_id: str, reference: dict[str, Any]) -> None:
        await self._session.execute(
            update(Counselor).where(Counselor.id == counselor_id).values(conversation_reference=reference),
            execution_options={"synchronize_session": "fetch"},
        )


class ConsentRepository:
    """Consent proof is append-only: there is deliberately no update or delete here."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def append(self, record: ConsentRecord) -> ConsentRecord:
        self._session.add(record)
        await self._session.flush()
        return record

    async def latest_per_kind(self, citizen_id: str) -> dict[str, ConsentRecord]:
        """The newest record of each document kind (acceptance or withdrawal), by kind."""
        newest = (
            select(func.max(ConsentRecord.id))
            .where(ConsentRecord.citizen_id == citizen_id)
            .group_by(ConsentRecord.document_kind)
        )
        records = await self._session.scalars(select(ConsentRecord).where(ConsentRecord.id.in_(newest)))
        return {record.document_kind: record for record in records}

    async def history(self, citizen_id: str) -> list[ConsentRecord]:
        statement = (
            select(ConsentRecord).where(ConsentRecord.citizen_id == citizen_id).order_by(ConsentRecord.id)
        )
        return list(await self._session.scalars(statement))


@dataclass(frozen=True)
class BusyInterval:
    counselor_id: str
    starts_at: datetime
    ends_at: datetime


class AppointmentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, appointment: Appointment) -> Appointment:
        """Insert now; on PostgreSQL an overlapping booked appointment raises SlotTaken.

        A savepoint keeps the unit of work usable after SlotTaken (e.g. to try another counselor).
        """
        try:
            async with self._session.begin_nested():
                self._session.add(appointment)
        except IntegrityError as error:
            if is_uniqueness_violation(error):
                raise SlotTaken(appointment.counselor_id) from error
            raise
        return appointment

    async def get(self, appointment_id: str) -> Appointment | None:
        return await self._session.get(Appointment, appointment_id)

    async def get_for_citizen(self, appointment_id: str, citizen_id: str) -> Appointment | None:
        """The appointment only if it belongs to this citizen (ids from cards cannot be trusted)."""
        statement = select(Appointment).where(
            Appointment.id == appointment_id, Appointment.citizen_id == citizen_id
        )
        return (await self._session.scalars(statement)).first()

    async def upcoming_for_citizen(self, citizen_id: str, now: datetime) -> list[Appointment]:
        """Booked appointments not yet over (one in progress still shows), soonest first."""
        statement = (
            select(Appointment)
            .where(
                Appointment.citizen_id == citizen_id,
                Appointment.status == BOOKED,
                Appointment.ends_at > now,
            )
            .order_by(Appointment.starts_at)
        )
        return list(await self._session.scalars(statement))

    async def all_for_citizen(self, citizen_id: str) -> list[Appointment]:
        statement = (
            select(Appointment).where(Appointment.citizen_id == citizen_id).order_by(Appointment.starts_at)
        )
        return list(await self._session.scalars(statement))

    async def busy_between(self, agency_id: str, start: datetime, end: datetime) -> list[BusyInterval]:
        """Booked appointments of the agency that overlap [start, end)."""
        statement = (
            select(Appointment.counselor_id, Appointment.starts_at, Appointment.ends_at)
            .where(
                Appointment.agency_id == agency_id,
                Appointment.status == BOOKED,
                Appointment.starts_at < end,
                Appointment.ends_at > start,
            )
            .order_by(Appointment.counselor_id, Appointment.starts_at)
        )
        rows = await self._session.execute(statement)
        return [BusyInterval(counselor_id, starts_at, ends_at) for counselor_id, starts_at, ends_at in rows]

    async def load_by_counselor(
        self,
        agency_id: str,
        start: datetime,
        end: datetime,
        *,
        exclude_statuses: Iterable[str] = (CANCELLED,),
    ) -> dict[str, int]:
        """How many appointments start in [start, end) per counselor (cancelled ones do not count)."""
        statement = (
            select(Appointment.counselor_id, func.count())
            .where(
                Appointment.agency_id == agency_id,
                Appointment.starts_at >= start,
                Appointment.starts_at < end,
                Appointment.status.not_in(list(exclude_statuses)),
            )
            .group_by(Appointment.counselor_id)
        )
        rows = await self._session.execute(statement)
        return {counselor_id: count for counselor_id, count in rows}

    async def booked_ending_before(
        self, agency_id: str, cutoff: datetime, limit: int = 500
    ) -> list[Appointment]:
        statement = (
            select(Appointment)
            .where(
                Appointment.agency_id == agency_id, Appointment.status == BOOKED, Appointment.ends_at < cutoff
            )
            .order_by(Appointment.ends_at)
            .limit(limit)
        )
        return list(await self._session.scalars(statement))

    async def not_anonymised_before(
        self, agency_id: str, cutoff: datetime, limit: int = 500
    ) -> list[Appointment]:
        """Finished appointments older than `cutoff` still holding links to a person (retention)."""
        statement = (
            select(Appointment)
            .where(
                Appointment.agency_id == agency_id,
                Appointment.ends_at < cutoff,
                Appointment.anonymised_at.is_(None),
            )
            .order_by(Appointment.ends_at)
            .limit(limit)
        )
        return list(await self._session.scalars(statement))


class SlotClaimRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim(self, appointment_id: str, counselor_id: str, steps: Sequence[datetime]) -> None:
        """Hold every step for the appointment, or none of them: SlotTaken if one is already held.

        The appointment row must exist (flushed) first. A savepoint keeps the unit of work usable.
        """
        distinct_steps = sorted(set(steps))
        if not distinct_steps:
            raise ValueError("an appointment claims at least one step")
        rows = [
            {"counselor_id": counselor_id, "step_start": step, "appointment_id": appointment_id}
            for step in distinct_steps
        ]
        try:
            async with self._session.begin_nested():
                await self._session.execute(insert(SlotClaim), rows)
        except IntegrityError as error:
            if is_uniqueness_violation(error):
                raise SlotTaken(counselor_id) from error
            raise

    async def release(self, appointment_id: str) -> int:
        result = await self._session.execute(
            delete(SlotClaim).where(SlotClaim.appointment_id == appointment_id),
            execution_options={"synchronize_session": False},
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def for_appointment(self, appointment_id: str) -> list[datetime]:
        statement = (
            select(SlotClaim.step_start)
            .where(SlotClaim.appointment_id == appointment_id)
            .order_by(SlotClaim.step_start)
        )
        return list(await self._session.scalars(statement))


class JobRepository:
    """Durable jobs. A claimed job is 'running' under a lease; an expired lease makes it claimable again."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def schedule(
        self,
        kind: str,
        run_at: datetime,
        payload: dict[str, Any],
        dedupe_key: str | None = None,
        *,
        appointment_id: str | None = None,
        now: datetime | None = None,
    ) -> int:
        """Add a pending job and return its id; with a known dedupe key, the existing job's id.

        Put in the key whatever makes two jobs different (e.g. the appointment's start time), so a
        moved appointment gets new reminders instead of the already-sent ones.
        """
        values = {
            "kind": kind,
            "run_at": run_at,
            "payload": payload,
            "dedupe_key": dedupe_key,
            "appointment_id": appointment_id,
            "status": "pending",
            "attempts": 0,
            "created_at": now or datetime.now(UTC),
        }
        if dedupe_key is None:
            result = await self._session.execute(
                insert(ScheduledJob).values(**values).returning(ScheduledJob.id)
            )
            return int(result.scalar_one())
        statement = (
            _dialect_insert(self._session, ScheduledJob)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[ScheduledJob.__table__.c.dedupe_key])
            .returning(ScheduledJob.id)
        )
        inserted = (await self._session.execute(statement)).scalar_one_or_none()
        if inserted is not None:
            return int(inserted)
        existing = await self._session.scalar(
            select(ScheduledJob.id).where(ScheduledJob.dedupe_key == dedupe_key)
        )
        return int(existing)  # type: ignore[arg-type]

    async def get(self, job_id: int) -> ScheduledJob | None:
        return await self._session.get(ScheduledJob, job_id)

    async def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[ScheduledJob]:
        """Mark up to `limit` due jobs running until now + lease and return them, oldest first.

        Due: pending with run_at <= now, or running with an expired lease (its worker died).
        PostgreSQL: FOR UPDATE SKIP LOCKED lets concurrent claimers take disjoint jobs.
        SQLite: the write transaction (BEGIN IMMEDIATE) already excludes other claimers.
        """
        due = (
            select(ScheduledJob.id)
            .where(
                ((ScheduledJob.status == "pending") & (ScheduledJob.run_at <= now))
                | ((ScheduledJob.status == "running") & (ScheduledJob.locked_until <= now))
            )
            .order_by(ScheduledJob.run_at, ScheduledJob.id)
            .limit(limit)
        )
        if _is_postgres(self._session):
            due = due.with_for_update(skip_locked=True)
        # MATERIALIZED: the locked selection is computed once, never re-run inside the update.
        due_cte = due.cte("due").prefix_with("MATERIALIZED", dialect="postgresql")
        statement = (
            update(ScheduledJob)
            .where(ScheduledJob.id.in_(select(due_cte.c.id)))
            .values(status="running", locked_until=now + lease, attempts=ScheduledJob.attempts + 1)
            .returning(ScheduledJob)
            .add_cte(due_cte)
        )
        result = await self._session.scalars(
            statement, execution_options={"synchronize_session": False, "populate_existing": True}
        )
        return sorted(result.all(), key=lambda job: (job.run_at, job.id))

    async def mark_done(self, job_id: int) -> bool:
        result = await self._session.execute(
            update(ScheduledJob)
            .where(ScheduledJob.id == job_id, ScheduledJob.status == "running")
            .values(status="done", locked_until=None),
            execution_options={"synchronize_session": False},
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def mark_failed(self, job_id: int, error: str, retry_at: datetime | None) -> bool:
        """Back to pending at `retry_at`, or failed for good when retry_at is None."""
        values: dict[str, Any] = {"locked_until": None, "last_error": error[:2000]}
        if retry_at is None:
            values["status"] = "failed"
        else:
            values.update(status="pending", run_at=retry_at)
        result = await self._session.execute(
            update(ScheduledJob)
            .where(ScheduledJob.id == job_id, ScheduledJob.status == "running")
            .values(**values),
            execution_options={"synchronize_session": False},
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def cancel_for_appointment(self, appointment_id: str) -> int:
        """Cancel the appointment's jobs that have not started; returns how many."""
        result = await self._session.execute(
            update(ScheduledJob)
            .where(ScheduledJob.appointment_id == appointment_id, ScheduledJob.status == "pending")
            .values(status="cancelled", locked_until=None),
            execution_options={"synchronize_session": False},
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def for_appointment(self, appointment_id: str) -> list[ScheduledJob]:
        statement = (
            select(ScheduledJob)
            .where(ScheduledJob.appointment_id == appointment_id)
            .order_by(ScheduledJob.run_at)
        )
        return list(await self._session.scalars(statement))


class AuditRepository:
    """Hash-chained audit log: read the head, append after it, read back in order."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def last(self, agency_id: str) -> AuditEvent | None:
        """The chain head, to append after. On PostgreSQL this also locks the agency's chain
        until commit, so two transactions cannot both append after the same head (SQLite
        transactions are already serialised)."""
        if _is_postgres(self._session):
            await self._session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:lock))"), {"lock": f"guichet.audit:{agency_id}"}
            )
        statement = select(AuditEvent).where(AuditEvent.agency_id == agency_id).order_by(AuditEvent.id.desc())
        return (await self._session.scalars(statement.limit(1))).first()

    async def append(self, event: AuditEvent) -> AuditEvent:
        self._session.add(event)
        await self._session.flush()
        return event

    async def iterate(
        self, agency_id: str | None = None, *, batch_size: int = 500
    ) -> AsyncIterator[AuditEvent]:
        """Every event (of one agency, or all) in id order, fetched in batches."""
        after = 0
        while True:
            statement = select(AuditEvent).where(AuditEvent.id > after)
            if agency_id is not None:
                statement = statement.where(AuditEvent.agency_id == agency_id)
            batch = list(await self._session.scalars(statement.order_by(AuditEvent.id).limit(batch_size)))
            for event in batch:
                yield event
            if len(batch) < batch_size:
                return
            after = batch[-1].id

    async def for_citizen(self, citizen_pseudonym: str) -> list[AuditEvent]:
        statement = (
            select(AuditEvent)
            .where(AuditEvent.citizen_pseudonym == citizen_pseudonym)
            .order_by(AuditEvent.id)
        )
        return list(await self._session.scalars(statement))
