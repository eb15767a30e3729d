"""The hash-chained audit log: append after the head, read back in order, and the maintenance reads
and writes (proof segments, a citizen's events, pruning past retention) that change no hash or link.

Pruning rewrites only the fields whose digests the hash already covers (see bot.domain.audit).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.audit import PRUNED_ACTOR, AuditEvent, ChainHead
from storage.repositories.statements import NO_SYNC, is_postgres
from storage.tables import audit_events as _AUDIT

_E = _AUDIT.c
_LOCK_CHAIN = text("SELECT pg_advisory_xact_lock(hashtext(:lock))")
_HEAD = select(_E.hash, _E.occurred_at).where(_E.agency_id == bindparam("agency_id")).order_by(_E.id.desc()).limit(1)
_INSERT_EVENT = insert(_AUDIT)
_EVENT_COLUMNS = ("agency_id", "occurred_at", "actor", "event_type", "citizen_pseudonym", "appointment_id", "payload",
                  "prev_hash", "hash")
# The event goes in only if the chain head is still the event hashed `prev_hash`.
_INSERT_EVENT_AFTER = insert(_AUDIT).from_select(
    _EVENT_COLUMNS,
    select(*(bindparam(name, type_=_E[name].type) for name in _EVENT_COLUMNS)).where(
        select(_E.hash).where(_E.agency_id == bindparam("agency_id")).order_by(_E.id.desc()).limit(1).scalar_subquery()
        == bindparam("prev_hash")
    ),
)


class AuditRepository:
    """Hash-chained audit log: read the head, append after it, read back in order."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # -- appending ----------------------------------------------------------------------------------

    async def lock_chain(self, agency_id: str) -> None:
        """On PostgreSQL, lock the agency's chain until commit, so two transactions cannot both append
        after the same head (SQLite transactions are already serialised). Before `head`."""
        if is_postgres(self._session):
            await self._session.execute(_LOCK_CHAIN, {"lock": f"guichet.audit:{agency_id}"})

    async def last(self, agency_id: str) -> AuditEvent | None:
        """The chain head, to append after; locks the chain first (see `lock_chain`)."""
        await self.lock_chain(agency_id)
        return await self.newest(agency_id)

    async def head(self, agency_id: str) -> ChainHead | None:
        """`last`, reading only what appending needs; the caller has called `lock_chain`."""
        row = (await self._session.execute(_HEAD, {"agency_id": agency_id})).first()
        return ChainHead._make(row) if row is not None else None

    async def add(self, values: Mapping[str, Any]) -> None:
        """Append one event given as column values (as `append`, without building an entity)."""
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

    # -- reading ------------------------------------------------------------------------------------

    async def iterate(self, agency_id: str | None = None, *, batch_size: int = 500) -> AsyncIterator[AuditEvent]:
        """Every event (of one agency, or all) in id order, fetched in batches."""
        after = 0
        while True:
            statement = select(AuditEvent).where(_E.id > after)
            if agency_id is not None:
                statement = statement.where(_E.agency_id == agency_id)
            batch = list(await self._session.scalars(statement.order_by(_E.id).limit(batch_size)))
            for event in batch:
                yield event
            if len(batch) < batch_size:
                return
            after = batch[-1].id or after

    async def newest(self, agency_id: str) -> AuditEvent | None:
        """The newest event, without taking the chain lock (read-only callers)."""
        statement = select(AuditEvent).where(_E.agency_id == agency_id).order_by(_E.id.desc())
        return (await self._session.scalars(statement.limit(1))).first()

    async def appointment_bounds(self, agency_id: str, appointment_id: str) -> tuple[int, int] | None:
        """The ids of the first and last events about one appointment."""
        row = (await self._session.execute(
            select(func.min(_E.id), func.max(_E.id)).where(_E.agency_id == agency_id,
                                                           _E.appointment_id == appointment_id)
        )).one()
        return None if row[0] is None else (int(row[0]), int(row[1]))

    async def segment(self, agency_id: str, first_id: int, last_id: int) -> list[AuditEvent]:
        statement = (
            select(AuditEvent)
            .where(_E.agency_id == agency_id, _E.id >= first_id, _E.id <= last_id)
            .order_by(_E.id)
        )
        return list(await self._session.scalars(statement))

    async def about(self, citizen_pseudonym: str, appointment_ids: Sequence[str]) -> list[AuditEvent]:
        """Events naming the citizen, or about one of their appointments, in chain order."""
        condition = _E.citizen_pseudonym == citizen_pseudonym
        if appointment_ids:
            condition = or_(condition, _E.appointment_id.in_(list(appointment_ids)))
        return list(await self._session.scalars(select(AuditEvent).where(condition).order_by(_E.id)))

    # -- pruning past retention ---------------------------------------------------------------------

    async def unpruned_before(self, agency_id: str, cutoff: datetime, limit: int) -> list[AuditEvent]:
        """Events older than `cutoff` that still carry their actor, pseudonym and payload."""
        statement = (
            select(AuditEvent)
            .where(_E.agency_id == agency_id, _E.occurred_at < cutoff, _E.actor != PRUNED_ACTOR)
            .order_by(_E.id)
            .limit(limit)
        )
        return list(await self._session.scalars(statement))

    async def store_pruned(self, event_id: int, *, actor: str, payload: dict[str, Any]) -> None:
        await self._session.execute(
            update(AuditEvent).where(_E.id == event_id).values(actor=actor, citizen_pseudonym=None, payload=payload),
            execution_options=NO_SYNC,
        )
