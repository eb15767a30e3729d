"""Recording audit events and checking the chain, over a unit of work.

Call `AuditTrail.record` as the LAST write of a transaction: on PostgreSQL it takes the agency's
chain lock until commit, and a transaction holding that lock must not then wait on other rows.
"""

from __future__ import annotations

from typing import Any

from bot.domain.audit import GENESIS, ChainedEvent, ChainReport, EventType, event_hash, verify_chain
from bot.domain.clock import Clock
from storage.models import AuditEvent
from storage.unit_of_work import UnitOfWork, UnitOfWorkFactory


def citizen_actor(citizen_id: str) -> str:
    return f"citizen:{citizen_id}"


def counselor_actor(counselor_id: str) -> str:
    return f"counselor:{counselor_id}"


SYSTEM_ACTOR = "system"


class AuditTrail:
    def __init__(self, agency_id: str, clock: Clock) -> None:
        self._agency_id = agency_id
        self._clock = clock

    async def record(
        self,
        uow: UnitOfWork,
        event_type: EventType,
        *,
        actor: str,
        citizen_id: str | None = None,
        appointment_id: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> AuditEvent:
        """Append one event after the chain head. `payload` must hold no personal data."""
        head = await uow.audit.last(self._agency_id)
        prev_hash = head.hash if head is not None else GENESIS
        occurred_at = self._clock.now()
        if head is not None and occurred_at < head.occurred_at:
            occurred_at = head.occurred_at  # a clock step backwards must not reorder the chain
        body = dict(payload or {})
        event = AuditEvent(
            agency_id=self._agency_id, occurred_at=occurred_at, actor=actor, event_type=str(event_type),
            citizen_pseudonym=citizen_id, appointment_id=appointment_id, payload=body, prev_hash=prev_hash,
            hash=event_hash(prev_hash=prev_hash, agency_id=self._agency_id, occurred_at=occurred_at,
                            actor=actor, event_type=str(event_type), citizen_pseudonym=citizen_id,
                            appointment_id=appointment_id, payload=body),
        )
        return await uow.audit.append(event)


def as_chained(row: AuditEvent) -> ChainedEvent:
    return ChainedEvent(
        id=row.id, agency_id=row.agency_id, occurred_at=row.occurred_at, actor=row.actor,
        event_type=row.event_type, citizen_pseudonym=row.citizen_pseudonym,
        appointment_id=row.appointment_id, payload=row.payload, prev_hash=row.prev_hash, hash=row.hash,
    )


async def verify(uow_factory: UnitOfWorkFactory, agency_id: str) -> ChainReport:
    """Check an agency's whole chain, streaming it in id order."""
    async with uow_factory() as uow:
        return verify_chain([as_chained(row) async for row in uow.audit.iterate(agency_id)])
