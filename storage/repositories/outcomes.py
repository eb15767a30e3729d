"""Appointment outcomes: appended as they are reported, read per appointment and over a period."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.appointment import AppointmentOutcome
from storage.tables import appointment_outcomes as _OUTCOMES

_O = _OUTCOMES.c
_INSERT = insert(_OUTCOMES)


class OutcomeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, *, appointment_id: str, agency_id: str, outcome: str, actor: str, occurred_at: datetime,
                  reason: str | None = None) -> None:
        await self._session.execute(_INSERT, {
            "appointment_id": appointment_id, "agency_id": agency_id, "outcome": outcome, "reason": reason,
            "actor": actor, "occurred_at": occurred_at,
        })

    async def for_appointment(self, appointment_id: str) -> list[AppointmentOutcome]:
        statement = select(AppointmentOutcome).where(_O.appointment_id == appointment_id).order_by(_O.id)
        return list(await self._session.scalars(statement))

    async def between(self, agency_id: str, start: datetime, end: datetime) -> list[tuple[str, datetime]]:
        """(outcome, when) of every outcome reported in [start, end)."""
        statement = (
            select(_O.outcome, _O.occurred_at)
            .where(_O.agency_id == agency_id, _O.occurred_at >= start, _O.occurred_at < end)
            .order_by(_O.occurred_at)
        )
        return [(outcome, when) for outcome, when in await self._session.execute(statement)]
