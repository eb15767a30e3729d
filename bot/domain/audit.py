"""The audit trail's hash chain: how an event is hashed, and how a chain is checked.

Each event's hash covers its content and the previous event's hash, so editing or deleting any
event breaks every link after it. Personal data never enters the hashed content: events name the
citizen by a pseudonym (their random internal id), which erasure unlinks from any person.

The hash covers the fixed fields (time, agency, event type) in clear, and a SHA-256 digest of each
field that may name someone or say something about them (actor, pseudonym, appointment, payload).
That is what makes two things possible without ever recomputing a hash:

- retention can PRUNE an old event: the actor, pseudonym and payload are replaced by their digests
  (see `prune`), and the chain still verifies;
- a proof for one appointment can show the other events it needs for the chain in REDACTED form
  (digests only): anyone can check the links, nobody learns who the other events were about.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

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
    # Other outcomes (absent reported, client joined, agency late, nothing reported by the slot's end).
    OUTCOME_REPORTED = "appointment.outcome"
    # Someone pressed a counselor action on an appointment that is not theirs: refused, nothing changed.
    ACTION_REFUSED = "appointment.action_refused"
    # After a technical problem or an absent agency, a new time replaced the appointment.
    REBOOKED = "appointment.rebooked"
    DATA_EXPORTED = "privacy.exported"
    DATA_RECTIFIED = "privacy.rectified"
    DATA_ERASED = "privacy.erased"
    PROCESSING_RESTRICTED = "privacy.restricted"
    REMINDERS_CHANGED = "privacy.reminders_changed"
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



@dataclass(eq=False)
class AuditEvent:
    """One stored event of the chain (storage maps it); `ChainedEvent` is its immutable value."""

    agency_id: str
    occurred_at: datetime
    actor: str  # citizen:<pseudonym> | counselor:<id> | system | pruned
    event_type: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str
    citizen_pseudonym: str | None = None
    appointment_id: str | None = None
    id: int | None = None

    def chained(self) -> ChainedEvent:
        return ChainedEvent(
            id=self.id if self.id is not None else -1, agency_id=self.agency_id, occurred_at=self.occurred_at,
            actor=self.actor, event_type=self.event_type, citizen_pseudonym=self.citizen_pseudonym,
            appointment_id=self.appointment_id, payload=self.payload, prev_hash=self.prev_hash, hash=self.hash,
        )


class ChainHead(NamedTuple):
    """What appending after the newest event of a chain needs to know of it."""

    hash: str
    occurred_at: datetime


# A pruned event keeps, instead of its actor, pseudonym and payload, their digests under this key.
PRUNED_KEY = "$pruned"
PRUNED_ACTOR = "pruned"
DIGESTED_FIELDS = ("actor", "citizen_pseudonym", "appointment_id", "payload")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(value: Any) -> str:
    """SHA-256 of a field's canonical JSON (null, a string, or the payload object)."""
    return hashlib.sha256(_canonical(value).encode()).hexdigest()


def _is_digest(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(ch in "0123456789abcdef" for ch in value)


def hash_from_digests(
    *, prev_hash: str, agency_id: str, occurred_at: datetime, event_type: str, digests: dict[str, str]
) -> str:
    """The event hash, given the digests of the fields that may name someone (see the module doc)."""
    canonical = _canonical([
        prev_hash, agency_id, occurred_at.isoformat(timespec="microseconds"), event_type,
        *(digests[name] for name in DIGESTED_FIELDS),
    ])
    return hashlib.sha256(canonical.encode()).hexdigest()


def field_digests(
    *, actor: str, citizen_pseudonym: str | None, appointment_id: str | None, payload: dict[str, Any]
) -> dict[str, str]:
    return {
        "actor": digest(actor),
        "citizen_pseudonym": digest(citizen_pseudonym),
        "appointment_id": digest(appointment_id),
        "payload": digest(payload),
    }


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
    return hash_from_digests(
        prev_hash=prev_hash, agency_id=agency_id, occurred_at=occurred_at, event_type=event_type,
        digests=field_digests(actor=actor, citizen_pseudonym=citizen_pseudonym, appointment_id=appointment_id,
                              payload=payload),
    )


def is_pruned(payload: Any) -> bool:
    return isinstance(payload, dict) and PRUNED_KEY in payload


@dataclass(frozen=True)
class PrunedFields:
    """What a pruned event stores in place of its actor, pseudonym and payload."""

    actor: str
    citizen_pseudonym: None
    payload: dict[str, Any]


def prune(event: ChainedEvent) -> PrunedFields:
    """The stored form of an event past its retention: no actor, no pseudonym, no payload, only
    their digests, so its hash (and every later link) still verifies. The appointment id stays: it
    points at an anonymised appointment kept for statistics, or at nothing."""
    if is_pruned(event.payload):
        return PrunedFields(event.actor, None, event.payload)
    digests = field_digests(actor=event.actor, citizen_pseudonym=event.citizen_pseudonym,
                            appointment_id=event.appointment_id, payload=event.payload)
    kept = {name: digests[name] for name in ("actor", "citizen_pseudonym", "payload")}
    return PrunedFields(PRUNED_ACTOR, None, {PRUNED_KEY: kept})


def _stored_digests(event: ChainedEvent) -> tuple[dict[str, str] | None, str | None]:
    """The digests an event's hash was computed from, or why its stored form is not a valid one."""
    if not is_pruned(event.payload):
        if event.actor == PRUNED_ACTOR:
            return None, "it is marked pruned but still has a payload"
        return field_digests(actor=event.actor, citizen_pseudonym=event.citizen_pseudonym,
                             appointment_id=event.appointment_id, payload=event.payload), None
    kept = event.payload.get(PRUNED_KEY)
    if (len(event.payload) != 1 or not isinstance(kept, dict)
            or set(kept) != {"actor", "citizen_pseudonym", "payload"} or not all(map(_is_digest, kept.values()))):
        return None, "its pruned payload is malformed"
    # A pruned row must name no one: otherwise anyone could put a name on it that the hash does not cover.
    if event.actor != PRUNED_ACTOR or event.citizen_pseudonym is not None:
        return None, "it is pruned but still names an actor or a citizen"
    return {**kept, "appointment_id": digest(event.appointment_id)}, None


@dataclass(frozen=True)
class ChainReport:
    checked: int
    broken_id: int | None = None
    reason: str | None = None
    # The hash of the last event checked: record it elsewhere to detect a truncated tail later.
    head_hash: str = GENESIS
    head_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.broken_id is None


def verify_chain(events: Iterable[ChainedEvent], *, start_hash: str = GENESIS) -> ChainReport:
    """Walk one agency's events in id order; report the first row whose link or content is wrong."""
    expected_prev = start_hash
    previous_id: int | None = None
    checked = 0
    for event in events:
        if event.prev_hash != expected_prev:
            after = f"event {previous_id}" if previous_id is not None else "the start of the chain"
            return ChainReport(checked, event.id, f"its link to {after} is broken: an event between them was "
                               "deleted, or one before it was changed", expected_prev, previous_id)
        digests, problem = _stored_digests(event)
        if digests is None:
            return ChainReport(checked, event.id, problem, expected_prev, previous_id)
        recomputed = hash_from_digests(prev_hash=event.prev_hash, agency_id=event.agency_id,
                                       occurred_at=event.occurred_at, event_type=event.event_type, digests=digests)
        if recomputed != event.hash:
            return ChainReport(checked, event.id, "its content does not match its hash (it was changed)",
                               expected_prev, previous_id)
        expected_prev = event.hash
        previous_id = event.id
        checked += 1
    return ChainReport(checked, head_hash=expected_prev, head_id=previous_id)


PROOF_FORMAT = "guichet.audit-proof/1"


def proof_entry(event: ChainedEvent, *, redacted: bool) -> dict[str, Any]:
    """One event as a proof shows it: in full, or (for events about others) by its digests only."""
    entry: dict[str, Any] = {
        "id": event.id, "agency_id": event.agency_id,
        "occurred_at": event.occurred_at.isoformat(timespec="microseconds"), "event_type": event.event_type,
    }
    if redacted:
        digests, _problem = _stored_digests(event)
        entry["redacted"] = True
        entry["digests"] = digests
    else:
        entry.update(redacted=False, actor=event.actor, citizen_pseudonym=event.citizen_pseudonym,
                     appointment_id=event.appointment_id, payload=event.payload)
    entry.update(prev_hash=event.prev_hash, hash=event.hash)
    return entry


def verify_proof(events: Iterable[dict[str, Any]], *, start_hash: str) -> ChainReport:
    """Check a proof's events (as `proof_entry` writes them) link from `start_hash` and match their hashes.

    Needs nothing but this module: a third party can run the same computation (see docs/privacy.md).
    """
    expected_prev = start_hash
    previous_id: int | None = None
    checked = 0
    for entry in events:
        raw_id = entry.get("id")
        entry_id = raw_id if isinstance(raw_id, int) else -1
        digests: dict[str, str] | None
        try:
            occurred_at = datetime.fromisoformat(str(entry["occurred_at"]))
            if entry.get("redacted"):
                digests = {name: str(entry["digests"][name]) for name in DIGESTED_FIELDS}
            else:
                digests, problem = _stored_digests(ChainedEvent(
                    id=entry_id, agency_id=str(entry["agency_id"]), occurred_at=occurred_at,
                    actor=str(entry["actor"]), event_type=str(entry["event_type"]),
                    citizen_pseudonym=entry.get("citizen_pseudonym"), appointment_id=entry.get("appointment_id"),
                    payload=entry["payload"], prev_hash=str(entry["prev_hash"]), hash=str(entry["hash"]),
                ))
                if digests is None:
                    return ChainReport(checked, entry_id, problem, expected_prev, previous_id)
            recomputed = hash_from_digests(prev_hash=str(entry["prev_hash"]), agency_id=str(entry["agency_id"]),
                                           occurred_at=occurred_at, event_type=str(entry["event_type"]),
                                           digests=digests)
        except (KeyError, TypeError, ValueError):
            return ChainReport(checked, entry_id, "the entry is incomplete or malformed", expected_prev, previous_id)
        if entry["prev_hash"] != expected_prev:
            return ChainReport(checked, entry_id, "its link to the previous entry is broken", expected_prev,
                               previous_id)
        if recomputed != entry["hash"]:
            return ChainReport(checked, entry_id, "its content does not match its hash", expected_prev, previous_id)
        expected_prev = str(entry["hash"])
        previous_id = entry_id
        checked += 1
    return ChainReport(checked, head_hash=expected_prev, head_id=previous_id)
