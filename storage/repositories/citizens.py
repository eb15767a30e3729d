"""Citizens: found or created by their Teams identity, their personal data and choices stored."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import Executable, bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.people import Citizen, ReminderFlags
from storage.tables import citizens as _CITIZENS

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
_FETCH = {"synchronize_session": "fetch"}


def _equals(column: Any, value: str | None) -> Any:
    """IS NULL for a missing part; a plain `=` otherwise, which the unique index serves."""
    return column.is_(None) if value is None else column == value


class CitizenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, citizen_id: str) -> Citizen | None:
        return await self._session.get(Citizen, citizen_id)

    async def get_by_identity(
        self, agency_id: str, tenant_id: str | None, aad_object_id: str | None
    ) -> Citizen | None:
        c = _CITIZENS.c
        statement = select(Citizen).where(
            c.agency_id == agency_id,
            _equals(c.tenant_id, tenant_id),
            _equals(c.aad_object_id, aad_object_id),
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
        c = _CITIZENS.c
        if aad_object_id is not None:
            citizen = await self.get_by_identity(agency_id, tenant_id, aad_object_id)
        elif teams_user_id is not None:
            # No Entra object id (e.g. the Emulator): the Teams user id is all that tells people apart.
            statement = select(Citizen).where(
                c.agency_id == agency_id,
                _equals(c.tenant_id, tenant_id),
                c.aad_object_id.is_(None),
                c.teams_user_id == teams_user_id,
            )
            citizen = (await self._session.scalars(statement.limit(1))).first()
        else:
            raise ValueError("a citizen needs an Entra object id or a Teams user id")
        if citizen is None:
            citizen = Citizen(id=str(uuid4()), agency_id=agency_id, tenant_id=tenant_id, aad_object_id=aad_object_id,
                              created_at=now, last_seen_at=now)
            self._session.add(citizen)
        if teams_user_id is not None:
            citizen.teams_user_id = teams_user_id
        if conversation_reference is not None:
            citizen.conversation_reference = conversation_reference
        if locale is not None:
            citizen.locale = locale
        citizen.last_seen_at = now
        citizen.unreachable_since = None
        await self._session.flush()
        return citizen

    async def save_personal_data(self, citizen_id: str, values: Mapping[str, str | date | None]) -> None:
        """Store the given personal fields (unknown names are a programming error)."""
        unknown = set(values) - set(PERSONAL_COLUMNS)
        if unknown:
            raise ValueError(f"not personal data columns: {sorted(unknown)}")
        if values:
            await self._session.execute(
                update(Citizen).where(_CITIZENS.c.id == citizen_id).values(**dict(values)), execution_options=_FETCH
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
            update(Citizen).where(_CITIZENS.c.id == citizen_id).values(**values), execution_options=_FETCH
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
                update(Citizen).where(_CITIZENS.c.id == citizen_id).values(**values), execution_options=_FETCH
            )

    async def mark_unreachable(self, citizen_id: str, now: datetime) -> None:
        """Teams refused to deliver to them (they blocked or removed the bot)."""
        await self._session.execute(
            update(Citizen).where(_CITIZENS.c.id == citizen_id, _CITIZENS.c.unreachable_since.is_(None))
            .values(unreachable_since=now),
            execution_options=_FETCH,
        )

    async def inactive_since(self, agency_id: str, cutoff: datetime, limit: int = 500) -> list[Citizen]:
        """Citizens not seen since `cutoff` and not yet erased (retention candidates)."""
        c = _CITIZENS.c
        statement = (
            select(Citizen)
            .where(c.agency_id == agency_id, c.last_seen_at < cutoff, c.erased_at.is_(None))
            .order_by(c.last_seen_at)
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
        # Writing to the bot again makes a person reachable again (see Citizen.unreachable_since).
        + ", last_seen_at = excluded.last_seen_at, unreachable_since = NULL "
        f"RETURNING {', '.join(column.name for column in _CITIZENS.columns)}"
    ).bindparams(
        *(bindparam(name, type_=_CITIZENS.c[name].type) for name in given),
        bindparam("no", value=False, type_=_CITIZENS.c.processing_restricted.type),
    ).columns(*_CITIZENS.columns)
    return select(Citizen).from_statement(statement)


_UPSERT_IDENTITY = _upsert_identity()

# The SET clause comes from the parameters' names (any of PERSONAL_COLUMNS), one compiled form per set.
_STORE_PERSONAL_DATA = (
    update(_CITIZENS)
    .where(_CITIZENS.c.id == bindparam("citizen_id"))
    .returning(_CITIZENS.c.reminders_opt_out, _CITIZENS.c.processing_restricted)
)
