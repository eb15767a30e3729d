"""The audit trail's hash chain: how an event is hashed, and how a chain is checked.

Each event's hash covers its content and the previous event's hash, so editing or deleting any
event breaks every link after it. Personal data never enters the hashed content: events name the
citizen by a pseudonym (their random internal id), which erasure unlinks from any person.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

GENESIS = "0" * 64


class EventType(StrEnum):
    CONSENT_ACCEPTED = "consent.accepted"
    CONSENT_WITHDRAWN = "consent.withdrawn"
    BOOKED = "appointment.booked"
    RESCHEDULED = "appointment.rescheduled"
    CANCELLED = "appointment.cancelled"
    MEETING_CREATED = "appointment.meeting_created"
    REMINDER_SENT = "appointment.reminder_sent"
    COUNSELOR_PROMPTED = "appointment.counselor_prompted"
    IDENTITY_CHECKED = "appointment.identity_checked"
    NO_SHOW = "appointment.no_show"
    TECHNICAL_PROBLEM = "appointment.technical_problem"
    DATA_EXPORTED = "privacy.exported"
    DATA_RECTIFIED = "privacy.rectified"
    DATA_ERASED = "privacy.erased"
    PROCESSING_RESTRICTED = "privacy.restricted"
    RETENTION_RUN = "retention.run"


@dataclass(frozen=True)
class ChainedEvent:
    """What the hash covers, plus the stored hashes and the row id (for naming a broken row)."""

    id: int
    agency_id: str
    occurred_at: datetime
    actor: str
    event_type: str
    citizen_pseudonym: str | None
    appointment_id: str | None
    payload: dict[str, Any]
    prev_hash: str
    hash: str


def event_hash(
    *,
    prev_hash: str,
    agency_id: str,
    occurred_at: datetime,
    actor: str,
    event_type: str,
    citizen_pseudonym: str | None,
    appointment_id: str | None,
    payload: dict[str, Any],
) -> str:
    canonical = json.dumps(
        [prev_hash, agency_id, occurred_at.isoformat(timespec="microseconds"), actor, event_type,
         citizen_pseudonym, appointment_id, payload],
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class ChainReport:
    checked: int
    broken_id: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_id is None


def verify_chain(events: Iterable[ChainedEvent]) -> ChainReport:
    """Walk one agency's events in id order; report the first row whose link or content is wrong."""
    expected_prev = GENESIS
    checked = 0
    for event in events:
        if event.prev_hash != expected_prev:
            return ChainReport(checked, event.id, "its link to the previous event is broken "
                               "(an event before it was changed or deleted)")
        recomputed = event_hash(
            prev_hash=event.prev_hash, agency_id=event.agency_id, occurred_at=event.occurred_at,
            actor=event.actor, event_type=event.event_type, citizen_pseudonym=event.citizen_pseudonym,
            appointment_id=event.appointment_id, payload=event.payload,
        )
        if recomputed != event.hash:
            return ChainReport(checked, event.id, "its content does not match its hash (it was changed)")
        expected_prev = event.hash
        checked += 1
    return ChainReport(checked)
