"""Appointments and the slot claims that hold their counselors' and their citizens' time.

A counselor's time is held step by step (slot_claims' primary key), and on PostgreSQL also by an
exclusion constraint over booked appointments: of two transactions booking overlapping times of one
counselor, exactly one succeeds, and the other gets SlotTaken with nothing written. A citizen's time
is held the same way (citizen_claims, and the constraint ex_appointments_citizen_overlap): the loser
gets CitizenBusy.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import DateTime, Dialect, Row, bindparam, delete, func, insert, select, type_coerce, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.types import TypeDecorator

from bot.domain.agency import Mode
from bot.domain.appointment import Appointment, AppointmentStatus, AppointmentView
from bot.domain.slots import CitizenBusy, SlotTaken
from storage.errors import is_uniqueness_violation
from storage.mapping import SlotClaim
from storage.repositories.statements import NO_SYNC, RowsInserts, is_postgres
from storage.tables import appointments as _APPOINTMENTS
from storage.tables import citizen_claims as _CITIZEN_CLAIMS
from storage.tables import slot_claims as _CLAIMS

log = logging.getLogger(__name__)

BOOKED = AppointmentStatus.BOOKED.value
CANCELLED = AppointmentStatus.CANCELLED.value
# An appointment row's status while its slot claims are being taken, inside the booking transaction
# only: never committed, and outside the PostgreSQL exclusion constraint (which covers "booked").
_CLAIMING = "claiming"
_PG_DEADLOCK_DETECTED = "40P01"
# What a conflict over a citizen's time names, on either backend: the claims table (SQLite's message,
# PostgreSQL's pk_citizen_claims) or the exclusion constraint (ex_appointments_citizen_overlap).
_CITIZEN_CONFLICT_NAMES = ("citizen_claims", "citizen_overlap")

# (counselor_id, starts_at, ends_at); rows as the driver gives them, named like the columns.
BusyInterval = Row[tuple[str, datetime, datetime]]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = _EPOCH.replace(tzinfo=None)
_ONE_US = timedelta(microseconds=1)
_A = _APPOINTMENTS.c


class _EpochMicroseconds(TypeDecorator[int]):
    """A UTCDateTime column read as integer microseconds since the Unix epoch, the slot engine's unit
    (bot.domain.slots.BusyIndex): no aware datetime is built for each value of a busy search."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        # SQLite returns the naive UTC that UTCDateTime stored; PostgreSQL an aware datetime.
        return (value - (_NAIVE_EPOCH if value.tzinfo is None else _EPOCH)) // _ONE_US


_BUSY = (
    select(_A.counselor_id, _A.starts_at, _A.ends_at)
    .where(
        _A.agency_id == bindparam("agency_id"),
        _A.status == BOOKED,
        _A.starts_at < bindparam("end"),
        _A.ends_at > bindparam("start"),
    )
    .order_by(_A.counselor_id, _A.starts_at)
)
# An appointment lies within one local day's opening hours (bot.domain.slots), so it lasts less than
# 25 hours and one that overlaps a window started less than this before it. The bound limits the
# index range scanned, which would otherwise run from the agency's first booked appointment on.
LONGEST_APPOINTMENT = timedelta(days=2)
# Unordered: BusyIndex sorts per counselor, and rows then stream from the index without a sort.
_BUSY_US = (
    _BUSY.with_only_columns(
        _A.counselor_id,
        type_coerce(_A.starts_at, _EpochMicroseconds()).label("starts_at"),
        type_coerce(_A.ends_at, _EpochMicroseconds()).label("ends_at"),
    )
    .where(_A.starts_at > bindparam("earliest_start"))
    .order_by(None)
)
_LOAD_NOT_CANCELLED = (
    select(_A.counselor_id, func.count())
    .where(
        _A.agency_id == bindparam("agency_id"),
        _A.starts_at >= bindparam("start"),
        _A.starts_at < bindparam("end"),
        _A.status != CANCELLED,
    )
    .group_by(_A.counselor_id)
)
# The same for some counselors: their own index ranges, not every appointment of the agency.
_LOAD_NOT_CANCELLED_OF = _LOAD_NOT_CANCELLED.where(_A.counselor_id.in_(bindparam("counselor_ids", expanding=True)))
# What an appointment card shows (bot.domain.appointment.AppointmentView).
VIEW_COLUMNS = ("id", "mode", "subject_id", "office_id", "starts_at", "ends_at", "status", "interview_language",
                "join_url", "counselor_id", "cancel_reason", "updated_at")
_UPCOMING_VIEWS = (
    select(*(_A[name] for name in VIEW_COLUMNS))
    .where(_A.citizen_id == bindparam("citizen_id"), _A.status == BOOKED, _A.ends_at > bindparam("now"))
    .order_by(_A.starts_at)
)
_INSERT_APPOINTMENT = insert(_APPOINTMENTS)
_SET_STATUS = update(_APPOINTMENTS).where(_A.id == bindparam("appointment_id")).values(status=bindparam("new_status"))


@asynccontextmanager
async def _claiming(session: AsyncSession, counselor_id: str) -> AsyncIterator[None]:
    """One counselor's try in a savepoint: a conflict with another booking rolls it back as SlotTaken."""
    try:
        async with session.begin_nested():
            yield
    except IntegrityError as error:
        # A held step, or PostgreSQL's exclusion constraint: an overlapping booked appointment.
        if is_uniqueness_violation(error):
            if any(name in str(error.orig) for name in _CITIZEN_CONFLICT_NAMES):
                raise CitizenBusy(counselor_id) from error
            raise SlotTaken(counselor_id) from error
        raise
    except DBAPIError as error:
        # Should claims ever be bypassed, a deadlock victim has still only lost a race.
        if _sqlstate(error) == _PG_DEADLOCK_DETECTED:
            log.warning("booking: deadlock on counselor %s, treated as taken", counselor_id)
            raise SlotTaken(counselor_id) from error
        raise


def _sqlstate(error: DBAPIError) -> str | None:
    original = error.orig
    return getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)


class AppointmentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, appointment: Appointment) -> Appointment:
        """Insert now; on PostgreSQL an overlapping booked appointment raises SlotTaken.

        A savepoint keeps the unit of work usable after SlotTaken (e.g. to try another counselor).
        """
        async with _claiming(self._session, appointment.counselor_id):
            self._session.add(appointment)
        return appointment

    async def book(self, values: Mapping[str, Any], steps: Sequence[datetime]) -> None:
        """A booked appointment (column values, without status) with the slot claims of `steps`, or
        SlotTaken with nothing written (its own savepoint, so the unit of work stays usable)."""
        async with _claiming(self._session, values["counselor_id"]):
            await self.insert_booked(values, steps)

    async def insert_booked(self, values: Mapping[str, Any], steps: Sequence[datetime]) -> None:
        """`book` without its savepoint: a held step or an overlapping booked appointment raises
        IntegrityError as it comes (on PostgreSQL the failed statement spoils the transaction).

        PostgreSQL: the row goes in as 'claiming' and becomes 'booked' once its claims are held.
        Two transactions inserting overlapping booked rows at once would wait for each other inside
        the exclusion constraint and one would die as a deadlock victim; claims are taken in
        ascending step order, so the second claimant waits for the first and then fails cleanly.
        SQLite has no such constraint and one writer at a time: the row goes in booked.
        """
        appointment_id = values["id"]
        postgres = is_postgres(self._session)
        await self._session.execute(_INSERT_APPOINTMENT, {**values, "status": _CLAIMING if postgres else BOOKED})
        claims = SlotClaimRepository(self._session)
        await claims.insert(appointment_id, values["counselor_id"], steps)
        await claims.insert_for_citizen(appointment_id, values["citizen_id"], steps)
        if postgres:
            await self._session.execute(_SET_STATUS, {"appointment_id": appointment_id, "new_status": BOOKED})

    async def move(self, appointment: Appointment, *, counselor_id: str, starts_at: datetime, ends_at: datetime,
                   office_id: str | None, steps: Sequence[datetime], now: datetime) -> None:
        """Give the appointment its new time, office and counselor with claims of `steps`, or raise
        SlotTaken and change nothing (its own savepoint). The caller has released the old claims.

        Claims first, for the reason given in `insert_booked`.
        """
        async with _claiming(self._session, counselor_id):
            claims = SlotClaimRepository(self._session)
            await claims.insert(appointment.id, counselor_id, steps)
            await claims.insert_for_citizen(appointment.id, appointment.citizen_id, steps)
            await self._session.execute(
                update(Appointment).where(_A.id == appointment.id).values(
                    counselor_id=counselor_id, starts_at=starts_at, ends_at=ends_at, office_id=office_id,
                    updated_at=now),
                execution_options=NO_SYNC,
            )
        # The row now says so: the entity follows without being marked changed (no second UPDATE).
        for name, value in (("counselor_id", counselor_id), ("starts_at", starts_at), ("ends_at", ends_at),
                            ("office_id", office_id), ("updated_at", now)):
            set_committed_value(appointment, name, value)

    async def get(self, appointment_id: str) -> Appointment | None:
        return await self._session.get(Appointment, appointment_id)

    async def get_for_citizen(self, appointment_id: str, citizen_id: str) -> Appointment | None:
        """The appointment only if it belongs to this citizen (ids from cards cannot be trusted)."""
        statement = select(Appointment).where(_A.id == appointment_id, _A.citizen_id == citizen_id)
        return (await self._session.scalars(statement)).first()

    async def get_own_for_update(self, appointment_id: str, citizen_id: str) -> Appointment | None:
        """`get_for_citizen`, locked until commit (PostgreSQL), so two changes of it queue up."""
        statement = select(Appointment).where(_A.id == appointment_id, _A.citizen_id == citizen_id).with_for_update()
        return (await self._session.scalars(statement, execution_options={"populate_existing": True})).first()

    async def upcoming_for_citizen(self, citizen_id: str, now: datetime) -> list[Appointment]:
        """Booked appointments not yet over (one in progress still shows), soonest first."""
        statement = (
            select(Appointment)
            .where(_A.citizen_id == citizen_id, _A.status == BOOKED, _A.ends_at > now)
            .order_by(_A.starts_at)
        )
        return list(await self._session.scalars(statement))

    async def upcoming_views_for_citizen(self, citizen_id: str, now: datetime) -> list[AppointmentView]:
        """`upcoming_for_citizen`, read as views from VIEW_COLUMNS (no entities)."""
        rows = await self._session.execute(_UPCOMING_VIEWS, {"citizen_id": citizen_id, "now": now})
        return [_view(row) for row in rows]

    async def all_for_citizen(self, citizen_id: str) -> list[Appointment]:
        statement = select(Appointment).where(_A.citizen_id == citizen_id).order_by(_A.starts_at)
        return list(await self._session.scalars(statement))

    async def busy_between(self, agency_id: str, start: datetime, end: datetime) -> list[BusyInterval]:
        """Booked appointments of the agency that overlap [start, end)."""
        result = await self._session.execute(_BUSY, {"agency_id": agency_id, "start": start, "end": end})
        return cast(list[BusyInterval], result.all())

    async def busy_between_us(self, agency_id: str, start: datetime, end: datetime) -> list[tuple[str, int, int]]:
        """`busy_between`, with times as microseconds since the Unix epoch (BusyIndex.from_epoch_us), for
        appointments no longer than LONGEST_APPOINTMENT."""
        result = await self._session.execute(_BUSY_US, {
            "agency_id": agency_id, "start": start, "end": end, "earliest_start": start - LONGEST_APPOINTMENT,
        })
        return cast(list[tuple[str, int, int]], result.all())  # rows unpack and compare as tuples

    async def load_by_counselor(
        self,
        agency_id: str,
        start: datetime,
        end: datetime,
        *,
        exclude_statuses: Iterable[str] = (CANCELLED,),
        counselor_ids: Sequence[str] | None = None,
    ) -> dict[str, int]:
        """How many appointments start in [start, end) per counselor (cancelled ones do not count);
        only for `counselor_ids` when given."""
        excluded = list(exclude_statuses)
        if excluded == [CANCELLED]:
            parameters: dict[str, Any] = {"agency_id": agency_id, "start": start, "end": end}
            if counselor_ids is None:
                rows = await self._session.execute(_LOAD_NOT_CANCELLED, parameters)
            else:
                rows = await self._session.execute(
                    _LOAD_NOT_CANCELLED_OF, {**parameters, "counselor_ids": list(counselor_ids)}
                )
            return {counselor_id: count for counselor_id, count in rows}
        statement = (
            select(_A.counselor_id, func.count())
            .where(_A.agency_id == agency_id, _A.starts_at >= start, _A.starts_at < end, _A.status.not_in(excluded))
            .group_by(_A.counselor_id)
        )
        if counselor_ids is not None:
            statement = statement.where(_A.counselor_id.in_(list(counselor_ids)))
        rows = await self._session.execute(statement)
        return {counselor_id: count for counselor_id, count in rows}

    async def booked_ending_before(self, agency_id: str, cutoff: datetime, limit: int = 500) -> list[Appointment]:
        statement = (
            select(Appointment)
            .where(_A.agency_id == agency_id, _A.status == BOOKED, _A.ends_at < cutoff)
            .order_by(_A.ends_at)
            .limit(limit)
        )
        return list(await self._session.scalars(statement))

    async def of_counselors_between(self, agency_id: str, start: datetime, end: datetime,
                                    counselor_ids: Sequence[str] | None = None) -> list[Appointment]:
        """Appointments starting in [start, end) of these counselors (all when None), any status, by time."""
        statement = select(Appointment).where(_A.agency_id == agency_id, _A.starts_at >= start, _A.starts_at < end)
        if counselor_ids is not None:
            statement = statement.where(_A.counselor_id.in_(list(counselor_ids)))
        return list(await self._session.scalars(statement.order_by(_A.starts_at, _A.counselor_id)))

    async def get_for_update(self, appointment_id: str) -> Appointment | None:
        """The appointment, locked until commit (PostgreSQL): reports on it queue up."""
        statement = select(Appointment).where(_A.id == appointment_id).with_for_update()
        return (await self._session.scalars(statement, execution_options={"populate_existing": True})).first()

    async def not_anonymised_before(self, agency_id: str, cutoff: datetime, limit: int = 500) -> list[Appointment]:
        """Finished appointments older than `cutoff` still holding links to a person (retention)."""
        statement = (
            select(Appointment)
            .where(_A.agency_id == agency_id, _A.ends_at < cutoff, _A.anonymised_at.is_(None))
            .order_by(_A.ends_at)
            .limit(limit)
        )
        return list(await self._session.scalars(statement))


_INSERT_CLAIMS = RowsInserts(_CLAIMS, ["step_start"], shared=["counselor_id", "appointment_id"])
_INSERT_CITIZEN_CLAIMS = RowsInserts(_CITIZEN_CLAIMS, ["step_start"], shared=["citizen_id", "appointment_id"])


class SlotClaimRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim(self, appointment_id: str, counselor_id: str, steps: Sequence[datetime]) -> None:
        """Hold every step for the appointment, or none of them: SlotTaken if one is already held.

        The appointment row must exist (flushed) first. A savepoint keeps the unit of work usable.
        """
        async with _claiming(self._session, counselor_id):
            await self.insert(appointment_id, counselor_id, steps)

    async def insert(self, appointment_id: str, counselor_id: str, steps: Sequence[datetime]) -> None:
        """`claim` in one statement without its savepoint: a held step raises IntegrityError, and on
        PostgreSQL then spoils the transaction unless the caller holds a savepoint."""
        await self._insert(_INSERT_CLAIMS, {"counselor_id": counselor_id, "appointment_id": appointment_id}, steps)

    async def insert_for_citizen(self, appointment_id: str, citizen_id: str | None, steps: Sequence[datetime]) -> None:
        """The citizen's own claims of `steps` (as `insert`; a held step raises IntegrityError); nothing for an
        appointment without a citizen (anonymised)."""
        if citizen_id is not None:
            await self._insert(_INSERT_CITIZEN_CLAIMS, {"citizen_id": citizen_id, "appointment_id": appointment_id},
                               steps)

    async def _insert(self, inserts: RowsInserts, shared: Mapping[str, str], steps: Sequence[datetime]) -> None:
        distinct_steps = sorted(set(steps))
        if not distinct_steps:
            raise ValueError("an appointment claims at least one step")
        await self._session.execute(inserts.statement(len(distinct_steps)),
                                    inserts.parameters([(step,) for step in distinct_steps], shared))

    async def release(self, appointment_id: str) -> int:
        """Free the appointment's time: its counselor's steps (counted) and its citizen's."""
        result = await self._session.execute(
            delete(SlotClaim).where(_CLAIMS.c.appointment_id == appointment_id), execution_options=NO_SYNC
        )
        await self.release_citizen(appointment_id)
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def release_citizen(self, appointment_id: str) -> None:
        """Free the citizen's time only (an appointment that took place keeps its counselor's)."""
        await self._session.execute(delete(_CITIZEN_CLAIMS).where(_CITIZEN_CLAIMS.c.appointment_id == appointment_id))

    async def for_appointment(self, appointment_id: str) -> list[datetime]:
        claims = _CLAIMS.c
        statement = select(claims.step_start).where(claims.appointment_id == appointment_id).order_by(claims.step_start)
        return list(await self._session.scalars(statement))


def _view(row: Row[Any]) -> AppointmentView:
    values = dict(row._mapping)
    return AppointmentView(**{**values, "mode": Mode(values["mode"]), "status": AppointmentStatus(values["status"])})
