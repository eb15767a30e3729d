"""Recording audit events and checking the chain, over a unit of work.

Call `AuditTrail.record` as the LAST write of a transaction: on PostgreSQL it takes the agency's
chain lock until commit, and a transaction holding that lock must not then wait on other rows.

An AuditTrail remembers the last head it wrote, and appends after it in a single statement that
the database carries out only if that is still the head; otherwise (another process wrote, the
transaction was rolled back) it reads the head and appends after it, as it would without.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.domain.audit import (
    GENESIS,
    PROOF_FORMAT,
    PRUNED_ACTOR,
    ChainHead,
    ChainReport,
    EventType,
    event_hash,
    proof_entry,
    verify_chain,
)
from bot.services.ports import Clock, UnitOfWork, UnitOfWorkFactory


def citizen_actor(citizen_id: str) -> str:
    return f"citizen:{citizen_id}"


def counselor_actor(counselor_id: str) -> str:
    return f"counselor:{counselor_id}"


SYSTEM_ACTOR = "system"


class AuditTrail:
    def __init__(self, agency_id: str, clock: Clock) -> None:
        self._agency_id = agency_id
        self._clock = clock
        # The head this trail last appended: probably still the head (checked by the database).
        self._last_written: ChainHead | None = None

    async def record(
        self,
        uow: UnitOfWork,
        event_type: EventType,
        *,
        actor: str,
        citizen_id: str | None = None,
        appointment_id: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> None:
        """Append one event after the chain head. `payload` must hold no personal data."""
        body = dict(payload or {})
        # Names starting with "$" and the actor "pruned" are reserved for pruned events (bot.domain.audit).
        if actor == PRUNED_ACTOR or any(str(key).startswith("$") for key in body):
            raise ValueError("reserved audit actor or payload key")
        await uow.audit.lock_chain(self._agency_id)
        now = self._clock.now()
        guess = self._last_written
        if guess is not None:
            values = self._event(guess, now, actor, str(event_type), citizen_id, appointment_id, body)
            if await uow.audit.add_after(values):
                self._last_written = ChainHead(values["hash"], values["occurred_at"])
                return
        head = await uow.audit.head(self._agency_id)
        values = self._event(head, now, actor, str(event_type), citizen_id, appointment_id, body)
        await uow.audit.add(values)
        self._last_written = ChainHead(values["hash"], values["occurred_at"])

    def _event(
        self, head: ChainHead | None, now: datetime, actor: str, event_type: str, citizen_id: str | None,
        appointment_id: str | None, payload: dict[str, Any],
    ) -> dict[str, Any]:
        """The column values of the event appended after `head` (None: the chain's first)."""
        prev_hash = head.hash if head is not None else GENESIS
        occurred_at = now
        if head is not None and occurred_at < head.occurred_at:
            occurred_at = head.occurred_at  # a clock step backwards must not reorder the chain
        return {
            "agency_id": self._agency_id, "occurred_at": occurred_at, "actor": actor, "event_type": event_type,
            "citizen_pseudonym": citizen_id, "appointment_id": appointment_id, "payload": payload,
            "prev_hash": prev_hash,
            "hash": event_hash(prev_hash=prev_hash, agency_id=self._agency_id, occurred_at=occurred_at,
                               actor=actor, event_type=event_type, citizen_pseudonym=citizen_id,
                               appointment_id=appointment_id, payload=payload),
        }


async def verify(uow_factory: UnitOfWorkFactory, agency_id: str) -> ChainReport:
    """Check an agency's whole chain, streaming it in id order."""
    async with uow_factory() as uow:
        return verify_chain([row.chained() async for row in uow.audit.iterate(agency_id)])


PROOF_ABOUT = (
    "Proof from the audit trail of one appointment. Every event of the agency is chained: its hash is "
    "SHA-256 over the canonical JSON array [prev_hash, agency_id, occurred_at (ISO 8601, microseconds), "
    "event_type, D(actor), D(citizen_pseudonym), D(appointment_id), D(payload)], where D(x) is the SHA-256 "
    "hex digest of x as canonical JSON (keys sorted, separators ',' and ':', UTF-8, null for none). "
    "Canonical JSON of the array uses the same rules. The events about this appointment are shown in "
    "full; the other events needed to keep the chain unbroken between them are redacted to their digests. "
    "The first event's prev_hash is start_hash (64 zeros: the chain's start). A pruned event (past the audit "
    "retention period) stores {'$pruned': {actor, citizen_pseudonym, payload digests}} as its payload and "
    "its digests are used as they are."
)


async def appointment_proof(
    uow_factory: UnitOfWorkFactory, agency_id: str, appointment_id: str
) -> dict[str, Any] | None:
    """A self-contained, verifiable extract of the chain for one appointment (None if it has no events).

    It holds the chain segment from the appointment's first event to its last: that appointment's events
    in full, the others in between redacted. `start_hash` is the hash the segment hangs from, and the
    current head is named so the extract can be compared with the live chain or a recorded head.
    """
    async with uow_factory() as uow:
        bounds = await uow.audit.appointment_bounds(agency_id, appointment_id)
        if bounds is None:
            return None
        first_id, last_id = bounds
        rows = await uow.audit.segment(agency_id, first_id, last_id)
        head = await uow.audit.newest(agency_id)
    events = [row.chained() for row in rows]
    start_hash = events[0].prev_hash if events else GENESIS
    report = verify_chain(events, start_hash=start_hash)
    return {
        "format": PROOF_FORMAT,
        "about": PROOF_ABOUT,
        "agency_id": agency_id,
        "appointment_id": appointment_id,
        "start_hash": start_hash,
        "starts_at_genesis": start_hash == GENESIS,
        "segment_verified": report.ok,
        "chain_head": {"id": head.id, "hash": head.hash} if head is not None else None,
        "events": [proof_entry(event, redacted=event.appointment_id != appointment_id) for event in events],
    }
