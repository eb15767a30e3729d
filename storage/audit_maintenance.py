"""Audit trail reads and the one write allowed on past events: pruning them (retention).

Kept apart from AuditRepository, which only appends: nothing here changes a hash or a link, and
pruning rewrites only the fields whose digests the hash already covers (see bot.domain.audit).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEvent

# bot.domain.audit.PRUNED_ACTOR; repeated here because storage does not import the domain.
_PRUNED_ACTOR = "pruned"


class AuditMaintenance:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def head(self, agency_id: str) -> AuditEvent | None:
        """The newest event, without taking the chain lock (read-only callers)."""
        statement = select(AuditEvent).where(AuditEvent.agency_id == agency_id).order_by(AuditEvent.id.desc())
        return (await self._session.scalars(statement.limit(1))).first()

    async def appointment_bounds(self, agency_id: str, appointment_id: str) -> tuple[int, int] | None:
        """The ids of the first and last events about one appointment."""
        row = (await self._session.execute(
            select(func.min(AuditEvent.id), func.max(AuditEvent.id)).where(
                AuditEvent.agency_id == agency_id, AuditEvent.appointment_id == appointment_id
            )
        )).one()
        return None if row[0] is None else (int(row[0]), int(row[1]))

    async def segment(self, agency_id: str, first_id: int, last_id: int) -> list[AuditEvent]:
        statement = (
            select(AuditEvent)
            .where(AuditEvent.agency_id == agency_id, AuditEvent.id >= first_id, AuditEvent.id <= last_id)
            .order_by(AuditEvent.id)
        )
        return list(await self._session.scalars(statement))

    async def about(self, citizen_pseudonym: str, appointment_ids: Sequence[str]) -> list[AuditEvent]:
        """Events naming the citizen, or about one of their appointments, in chain order."""
        condition = AuditEvent.citizen_pseudonym == citizen_pseudonym
        if appointment_ids:
            condition = or_(condition, AuditEvent.appointment_id.in_(list(appointment_ids)))
        return list(await self._session.scalars(select(AuditEvent).where(condition).order_by(AuditEvent.id)))

    async def unpruned_before(self, agency_id: str, cutoff: datetime, limit: int) -> list[AuditEvent]:
        """Events older than `cutoff` that still carry their actor, pseudonym and payload."""
        statement = (
            select(AuditEvent)
            .where(AuditEvent.agency_id == agency_id, AuditEvent.occurred_at < cutoff,
                   AuditEvent.actor != _PRUNED_ACTOR)
            .order_by(AuditEvent.id)
            .limit(limit)
        )
        return list(await self._session.scalars(statement))

    async def store_pruned(self, event_id: int, *, actor: str, payload: dict[str, Any]) -> None:
        await self._session.execute(
            update(AuditEvent)
            .where(AuditEvent.id == event_id)
            .values(actor=actor, citizen_pseudonym=None, payload=payload),
            execution_options={"synchronize_session": False},
        )
