"""An appointment: its lifecycle status, the one rule for "active", and the entity storage maps.

Times are aware UTC datetimes; `counselor_id` is the counselor's Entra object id; the citizen is
named by their internal pseudonymous id (None once the appointment is anonymised for statistics).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class AppointmentStatus(StrEnum):
    """Where an appointment stands. Only BOOKED holds a future time; the others are final.

    The Teams meeting's own progress (link pending, ready, failed) is not a status but a
    `MeetingState`: a video appointment whose link is still coming is booked all the same, and every
    booking rule (active, changeable, busy time) treats it so.
    """

    BOOKED = "booked"
    # Ended before it took place; `cancel_reason` says by whom or why (CancelReason).
    CANCELLED = "cancelled"
    # The counselor verified the citizen's identity: the interview took place.
    ATTENDED = "attended"
    # The citizen had not appeared `no_show_minutes` after the start (the counselor confirmed it).
    NO_SHOW = "no_show"
    # The interview ended at the identity check (camera off, document mismatch, refused).
    NOT_VERIFIED = "not_verified"
    # The interview could not take place for a technical reason; the citizen is offered a new time.
    TECHNICAL_PROBLEM = "technical"
    # The slot ended and nobody reported what happened (counted apart from no-shows).
    NO_OUTCOME = "no_outcome"


class MeetingState(StrEnum):
    """The Teams meeting of a video appointment (office appointments have none)."""

    NONE = "none"
    # The appointment is confirmed; a job is creating the meeting and the link follows.
    PENDING = "pending"
    READY = "ready"
    # Creating it failed for good; the counselor and the agency were alerted.
    FAILED = "failed"


class CancelReason(StrEnum):
    CITIZEN = "citizen"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    ERASURE = "erasure"
    NO_SHOW = "no_show"
    TECHNICAL = "technical_problem"
    AGENCY = "agency"


def is_active(status: str, ends_at: datetime, now: datetime) -> bool:
    """Booked and not yet over (one in progress still counts: it can be joined, and reported on)."""
    return status == AppointmentStatus.BOOKED and ends_at > now


@dataclass(eq=False)
class Appointment:
    """One booked slot with one counselor (storage maps it onto the `appointments` table)."""

    id: str
    agency_id: str
    citizen_id: str | None
    counselor_id: str
    mode: str
    subject_id: str
    starts_at: datetime
    ends_at: datetime
    interview_language: str
    created_at: datetime
    updated_at: datetime
    office_id: str | None = None
    status: str = AppointmentStatus.BOOKED.value
    cancel_reason: str | None = None
    cancel_note: str | None = None
    meeting_id: str | None = None
    join_url: str | None = None
    identity_check: str | None = None
    anonymised_at: datetime | None = None

    def is_active(self, now: datetime) -> bool:
        return is_active(self.status, self.ends_at, now)
