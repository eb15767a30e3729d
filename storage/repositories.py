"""Repositories: thin, typed queries over one AsyncSession; the unit of work owns the transaction.

No business rules live here: callers decide what to store and when; these classes only know how
to store it safely on SQLite and PostgreSQL alike (upserts, claims, leases).

The queries of a booking turn are Core statements built once at import (values travel as bound
parameters), so SQLAlchemy neither rebuilds nor recompiles them on every call; rows several of
them insert at once go in one statement (on SQLite every statement is a trip to the driver's thread).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple, cast
from uuid import uuid4

from sqlalchemy import (
    DateTime,
    Dialect,
    Executable,
    Row,
    Table,
    TextClause,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeDecorator

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
# An appointment row's status while its slot claims are being taken, inside the booking transaction
# only: never committed, and outside the PostgreSQL exclusion constraint (which covers "booked").
_CLAIMING = "claiming"

_CITIZENS = cast(Table, Citizen.__table__)
_CONSENTS = cast(Table, ConsentRecord.__table__)
_APPOINTMENTS = cast(Table, Appointment.__table__)
_CLAIMS = cast(Table, SlotClaim.__table__)
_JOBS = cast(Table, ScheduledJob.__table__)
_AUDIT = cast(Table, AuditEvent.__table__)


def _rows_insert(table: Table, columns: Sequence[str], shared: Sequence[str], count: int, tail: str = "") -> TextClause:
    """One INSERT of `count` rows: `columns` take one value per row (`<name>_<i>`), `shared` one for all.

    Written as text because SQLAlchemy caches neither a multi-row insert().values() nor the
    dialects' ON CONFLICT inserts (both compiled again on every call); the parameters carry
    the columns' types, so values are converted as the models say.
    """
    names = [*columns, *shared]
    rows = ", ".join(
        "(" + ", ".join(f":{name}_{i}" if name in columns else f":{name}" for name in names) + ")"
        for i in range(count)
    )
    parameters = [bindparam(f"{name}_{i}", type_=table.c[name].type) for i in range(count) for name in columns]
    parameters += [bindparam(name, type_=table.c[name].type) for name in shared]
    statement = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES {rows}{tail}"
    return text(statement).bindparams(*parameters)


class _RowsInserts:
    """`_rows_insert` statements by row count, built on first use and kept."""

    def __init__(self, table: Table, columns: Sequence[str], shared: Sequence[str] = (), tail: str = "") -> None:
        self._arguments = (table, tuple(columns), tuple(shared))
        self._tail = tail
        self._columns = tuple(columns)
        self._statements: dict[int, TextClause] = {}

    def statement(self, count: int) -> TextClause:
        statement = self._statements.get(count)
        if statement is None:
            statement = self._statements[count] = _rows_insert(*self._arguments, count, self._tail)
        return statement

    def parameters(self, rows: Sequence[Sequence[Any]], shared: Mapping[str, Any]) -> dict[str, Any]:
        """Bound values: `rows` hold the per-row values in `columns` order."""
        values = dict(shared)
        for i, row in enumerate(rows):
            for name, value in zip(self._columns, row, strict=True):
                values[f"{name}_{i}"] = value
        return values


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
        result = await self._session.scalars(_UPSERT_IDENTITY, {
            "id": str(uuid4()), "agency_id": agency_id, "tenant_id": tenant_id, "aad_object_id": aad_object_id,
            "teams_user_id": teams_user_id, "conversation_reference": conversation_reference, "locale": locale,
            "created_at": now, "last_seen_at": now,
        }, execution_options={"populate_existing": True})
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

    async def save_personal_data_for_booking(
        self, citizen_id: str, values: Mapping[str, str | date | None]
    ) -> ReminderFlags | None:
        """Store the given personal fields in one statement; the citizen's flags, None if there is no such
        citizen. On PostgreSQL the row stays locked until commit, like any update."""
        unknown = set(values) - set(PERSONAL_COLUMNS)
        if unknown or not values:
            raise ValueError(f"not personal data columns, or none: {sorted(unknown)}")
        result = await self._session.execute(_STORE_PERSONAL_DATA, {**values, "citizen_id": citizen_id})
        row = result.first()
        return ReminderFlags(*row) if row is not None else None

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


def _upsert_identity() -> Executable:
    """INSERT … ON CONFLICT DO UPDATE … RETURNING the citizen, spelled the same on both backends.

    Text, not the dialects' insert().on_conflict_do_update(): SQLAlchemy has no cache key for
    those and compiled this statement again on every first contact.
    """
    given = ["id", "agency_id", "tenant_id", "aad_object_id", "teams_user_id", "conversation_reference", "locale",
             "created_at", "last_seen_at"]
    kept = ["teams_user_id", "conversation_reference", "locale"]  # a missing value keeps the stored one
    statement = text(
        f"INSERT INTO citizens ({', '.join(given)}, processing_restricted, reminders_opt_out) "
        f"VALUES ({', '.join(f':{name}' for name in given)}, :no, :no) "
        "ON CONFLICT (agency_id, tenant_id, aad_object_id) DO UPDATE SET "
        + ", ".join(f"{name} = coalesce(excluded.{name}, citizens.{name})" for name in kept)
        + ", last_seen_at = excluded.last_seen_at "
        f"RETURNING {', '.join(column.name for column in _CITIZENS.columns)}"
    ).bindparams(
        *(bindparam(name, type_=_CITIZENS.c[name].type) for name in given),
        bindparam("no", value=False, type_=_CITIZENS.c.processing_restricted.type),
    ).columns(*_CITIZENS.columns)
    return select(Citizen).from_statement(statement)


_UPSERT_IDENTITY = _upsert_identity()


class ReminderFlags(NamedTuple):
    reminders_opt_out: bool
    processing_restricted: bool


# The SET clause comes from the parameters' names (any of PERSONAL_COLUMNS), one compiled form per set.
_STORE_PERSONAL_DATA = (
    update(_CITIZENS)
    .where(_CITIZENS.c.id == bindparam("citizen_id"))
    .returning(_CITIZENS.c.reminders_opt_out, _CITIZENS.c.processing_restricted)
)


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


class LatestConsentRecord(NamedTuple):
    """What the newest consent record of one document kind says."""

    id: int
    document_kind: str
    version: str
    content_hash: str
    action: str
    occurred_at: datetime


_LATEST_CONSENTS = select(
    _CONSENTS.c.id, _CONSENTS.c.document_kind, _CONSENTS.c.version, _CONSENTS.c.content_hash,
    _CONSENTS.c.action, _CONSENTS.c.occurred_at,
).where(_CONSENTS.c.id.in_(
    select(func.max(_CONSENTS.c.id))
    .where(_CONSENTS.c.citizen_id == bindparam("citizen_id"))
    .group_by(_CONSENTS.c.document_kind)
    .scalar_subquery()
))
_INSERT_CONSENT = insert(_CONSENTS)


class ConsentRepository:
    """Consent proof is append-only: there is deliberately no update or delete here."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def append(self, record: ConsentRecord) -> ConsentRecord:
        self._session.add(record)
        await self._session.flush()
        return record

    async def add(
        self, *, citizen_id: str, agency_id: str, document_kind: str, version: str, content_hash: str,
        language: str, action: str, channel: str, activity_id: str | None, occurred_at: datetime,
    ) -> None:
        """Append one record (as `append`, without building an ORM object)."""
        await self._session.execute(_INSERT_CONSENT, {
            "citizen_id": citizen_id, "agency_id": agency_id, "document_kind": document_kind, "version": version,
            "content_hash": content_hash, "language": language, "action": action, "channel": channel,
            "activity_id": activity_id, "occurred_at": occurred_at,
        })

    async def latest_per_kind(self, citizen_id: str) -> dict[str, LatestConsentRecord]:
        """The newest record of each document kind (acceptance or withdrawal), by kind."""
        rows = await self._session.execute(_LATEST_CONSENTS, {"citizen_id": citizen_id})
        return {row.document_kind: LatestConsentRecord._make(row) for row in rows}

    async def history(self, citizen_id: str) -> list[ConsentRecord]:
        statement = (
            select(ConsentRecord).where(ConsentRecord.citizen_id == citizen_id).order_by(ConsentRecord.id)
        )
        return list(await self._session.scalars(statement))


# (counselor_id, starts_at, ends_at); rows as the driver gives them, named like the columns.
BusyInterval = Row[tuple[str, datetime, datetime]]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = _EPOCH.replace(tzinfo=None)
_ONE_US = timedelta(microseconds=1)


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
    select(_APPOINTMENTS.c.counselor_id, _APPOINTMENTS.c.starts_at, _APPOINTMENTS.c.ends_at)
    .where(
        _APPOINTMENTS.c.agency_id == bindparam("agency_id"),
        _APPOINTMENTS.c.status == BOOKED,
        _APPOINTMENTS.c.starts_at < bindparam("end"),
        _APPOINTMENTS.c.ends_at > bindparam("start"),
    )
    .order_by(_APPOINTMENTS.c.counselor_id, _APPOINTMENTS.c.starts_at)
)
# An appointment lies within one local day's opening hours (bot.domain.slots), so it lasts less than
# 25 hours and one that overlaps a window started less than this before it. The bound limits the
# index range scanned, which would otherwise run from the agency's first booked appointment on.
LONGEST_APPOINTMENT = timedelta(days=2)
# Unordered: BusyIndex sorts per counselor, and rows then stream from the index without a sort.
_BUSY_US = (
    _BUSY.with_only_columns(
        _APPOINTMENTS.c.counselor_id,
        type_coerce(_APPOINTMENTS.c.starts_at, _EpochMicroseconds()).label("starts_at"),
        type_coerce(_APPOINTMENTS.c.ends_at, _EpochMicroseconds()).label("ends_at"),
    )
    .where(_APPOINTMENTS.c.starts_at > bindparam("earliest_start"))
    .order_by(None)
)
_LOAD_NOT_CANCELLED = (
    select(_APPOINTMENTS.c.counselor_id, func.count())
    .where(
        _APPOINTMENTS.c.agency_id == bindparam("agency_id"),
        _APPOINTMENTS.c.starts_at >= bindparam("start"),
        _APPOINTMENTS.c.starts_at < bindparam("end"),
        _APPOINTMENTS.c.status != CANCELLED,
    )
    .group_by(_APPOINTMENTS.c.counselor_id)
)
# The same for some counselors: their own index ranges, not every appointment of the agency.
_LOAD_NOT_CANCELLED_OF = _LOAD_NOT_CANCELLED.where(
    _APPOINTMENTS.c.counselor_id.in_(bindparam("counselor_ids", expanding=True))
)
# What an appointment card shows (see bot.services.booking.AppointmentView).
VIEW_COLUMNS = ("id", "mode", "subject_id", "office_id", "starts_at", "ends_at", "status", "interview_language",
                "join_url", "counselor_id", "cancel_reason", "updated_at")
_UPCOMING_VIEWS = (
    select(*(_APPOINTMENTS.c[name] for name in VIEW_COLUMNS))
    .where(
        _APPOINTMENTS.c.citizen_id == bindparam("citizen_id"),
        _APPOINTMENTS.c.status == BOOKED,
        _APPOINTMENTS.c.ends_at > bindparam("now"),
    )
    .order_by(_APPOINTMENTS.c.starts_at)
)
_INSERT_APPOINTMENT = insert(_APPOINTMENTS)
_SET_STATUS = (
    update(_APPOINTMENTS)
    .where(_APPOINTMENTS.c.id == bindparam("appointment_id"))
    .values(status=bindparam("new_status"))
)


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

    async def insert_booked(self, values: Mapping[str, Any], steps: Sequence[datetime]) -> None:
        """Insert a booked appointment (column values, without status) and the slot claims of `steps`.

        A held step or an overlapping booked appointment raises IntegrityError as it comes: the
        caller holds a savepoint (on PostgreSQL the failed statement spoils the transaction).
        PostgreSQL: the row goes in as 'claiming' and becomes 'booked' once its claims are held.
        Two transactions inserting overlapping booked rows at once would wait for each other inside
        the exclusion constraint and one would die as a deadlock victim; claims are taken in
        ascending step order, so the second claimant waits for the first and then fails cleanly.
        SQLite has no such constraint and one writer at a time: the row goes in booked.
        """
        appointment_id = values["id"]
        postgres = _is_postgres(self._session)
        await self._session.execute(_INSERT_APPOINTMENT, {**values, "status": _CLAIMING if postgres else BOOKED})
        await SlotClaimRepository(self._session).insert(appointment_id, values["counselor_id"], steps)
        if postgres:
            await self._session.execute(_SET_STATUS, {"appointment_id": appointment_id, "new_status": BOOKED})

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

    async def upcoming_views_for_citizen(self, citizen_id: str, now: datetime) -> list[Row[Any]]:
        """`upcoming_for_citizen`, as rows of VIEW_COLUMNS (no ORM objects)."""
        return list(await self._session.execute(_UPCOMING_VIEWS, {"citizen_id": citizen_id, "now": now}))

    async def all_for_citizen(self, citizen_id: str) -> list[Appointment]:
        statement = (
            select(Appointment).where(Appointment.citizen_id == citizen_id).order_by(Appointment.starts_at)
        )
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
            select(Appointment.counselor_id, func.count())
            .where(
                Appointment.agency_id == agency_id,
                Appointment.starts_at >= start,
                Appointment.starts_at < end,
                Appointment.status.not_in(excluded),
            )
            .group_by(Appointment.counselor_id)
        )
        if counselor_ids is not None:
            statement = statement.where(Appointment.counselor_id.in_(list(counselor_ids)))
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


_INSERT_CLAIMS = _RowsInserts(_CLAIMS, ["step_start"], shared=["counselor_id", "appointment_id"])


class SlotClaimRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim(self, appointment_id: str, counselor_id: str, steps: Sequence[datetime]) -> None:
        """Hold every step for the appointment, or none of them: SlotTaken if one is already held.

        The appointment row must exist (flushed) first. A savepoint keeps the unit of work usable.
        """
        try:
            async with self._session.begin_nested():
                await self.insert(appointment_id, counselor_id, steps)
        except IntegrityError as error:
            if is_uniqueness_violation(error):
                raise SlotTaken(counselor_id) from error
            raise

    async def insert(self, appointment_id: str, counselor_id: str, steps: Sequence[datetime]) -> None:
        """`claim` in one statement without its savepoint: a held step raises IntegrityError, and on
        PostgreSQL then spoils the transaction unless the caller holds a savepoint."""
        distinct_steps = sorted(set(steps))
        if not distinct_steps:
            raise ValueError("an appointment claims at least one step")
        await self._session.execute(
            _INSERT_CLAIMS.statement(len(distinct_steps)),
            _INSERT_CLAIMS.parameters([(step,) for step in distinct_steps],
                                      {"counselor_id": counselor_id, "appointment_id": appointment_id}),
        )

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


class NewJob(NamedTuple):
    kind: str
    run_at: datetime
    payload: dict[str, Any]
    dedupe_key: str


# ON CONFLICT is spelled the same on SQLite and PostgreSQL.
_INSERT_JOBS = _RowsInserts(
    _JOBS, ["kind", "run_at", "payload", "dedupe_key"], shared=["appointment_id", "status", "attempts", "created_at"],
    tail=" ON CONFLICT (dedupe_key) DO NOTHING",
)


class JobRepository:
    """Durable jobs. A claimed job is 'running' under a lease; an expired lease makes it claimable again."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def schedule_many(self, jobs: Sequence[NewJob], *, appointment_id: str | None, now: datetime) -> None:
        """Add pending jobs in one statement, as `schedule` does one by one; a job whose dedupe key
        is already known is left out (the existing one stays as it is)."""
        if not jobs:
            return
        await self._session.execute(
            _INSERT_JOBS.statement(len(jobs)),
            _INSERT_JOBS.parameters(jobs, {"appointment_id": appointment_id, "status": "pending", "attempts": 0,
                                           "created_at": now}),
        )

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


class ChainHead(NamedTuple):
    """What appending after the newest event of a chain needs to know of it."""

    hash: str
    occurred_at: datetime


_LOCK_CHAIN = text("SELECT pg_advisory_xact_lock(hashtext(:lock))")
_HEAD = (
    select(_AUDIT.c.hash, _AUDIT.c.occurred_at)
    .where(_AUDIT.c.agency_id == bindparam("agency_id"))
    .order_by(_AUDIT.c.id.desc())
    .limit(1)
)
_INSERT_EVENT = insert(_AUDIT)
_EVENT_COLUMNS = ("agency_id", "occurred_at", "actor", "event_type", "citizen_pseudonym", "appointment_id", "payload",
                  "prev_hash", "hash")
# The event goes in only if the chain head is still the event hashed `prev_hash`.
_INSERT_EVENT_AFTER = insert(_AUDIT).from_select(
    _EVENT_COLUMNS,
    select(*(bindparam(name, type_=_AUDIT.c[name].type) for name in _EVENT_COLUMNS)).where(
        select(_AUDIT.c.hash)
        .where(_AUDIT.c.agency_id == bindparam("agency_id"))
        .order_by(_AUDIT.c.id.desc())
        .limit(1)
        .scalar_subquery()
        == bindparam("prev_hash")
    ),
)


class AuditRepository:
    """Hash-chained audit log: read the head, append after it, read back in order."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_chain(self, agency_id: str) -> None:
        """On PostgreSQL, lock the agency's chain until commit, so two transactions cannot both append
        after the same head (SQLite transactions are already serialised). Before `head`."""
        if _is_postgres(self._session):
            await self._session.execute(_LOCK_CHAIN, {"lock": f"guichet.audit:{agency_id}"})

    async def last(self, agency_id: str) -> AuditEvent | None:
        """The chain head, to append after; locks the chain first (see `lock_chain`)."""
        await self.lock_chain(agency_id)
        statement = select(AuditEvent).where(AuditEvent.agency_id == agency_id).order_by(AuditEvent.id.desc())
        return (await self._session.scalars(statement.limit(1))).first()

    async def head(self, agency_id: str) -> ChainHead | None:
        """`last`, reading only what appending needs; the caller has called `lock_chain`."""
        row = (await self._session.execute(_HEAD, {"agency_id": agency_id})).first()
        return ChainHead._make(row) if row is not None else None

    async def add(self, values: Mapping[str, Any]) -> None:
        """Append one event given as column values (as `append`, without building an ORM object)."""
        await self._session.execute(_INSERT_EVENT, dict(values))

    async def add_after(self, values: Mapping[str, Any]) -> bool:
        """`add`, only if the agency's chain head is still the event hashed `values["prev_hash"]`:
        whether it went in. The caller has called `lock_chain`."""
        result = await self._session.execute(_INSERT_EVENT_AFTER, dict(values))
        return bool(result.rowcount)  # type: ignore[attr-defined]

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
