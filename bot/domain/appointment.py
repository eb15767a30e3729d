"""An appointment: its lifecycle status, the one rule for "active", the entity storage maps, and the one
read model (`AppointmentView`) that cards, staff prompts, privacy and reminders read.

Times are aware UTC datetimes; `counselor_id` is the counselor's Entra object id; the citizen is
named by their internal pseudonymous id (None once the appointment is anonymised for statistics).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeGuard
from uuid import UUID

from bot.domain.agency import Mode


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


def is_active(status: AppointmentStatus, ends_at: datetime, now: datetime) -> bool:
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
    status: AppointmentStatus = AppointmentStatus.BOOKED
    cancel_reason: str | None = None
    cancel_note: str | None = None
    meeting_id: str | None = None
    join_url: str | None = None
    meeting_state: MeetingState = MeetingState.NONE
    identity_check: str | None = None
    anonymised_at: datetime | None = None

    def is_active(self, now: datetime) -> bool:
        return is_active(self.status, self.ends_at, now)

    def view(self) -> AppointmentView:
        return AppointmentView(
            id=self.id, mode=Mode(self.mode), subject_id=self.subject_id, office_id=self.office_id,
            starts_at=self.starts_at, ends_at=self.ends_at, status=self.status,
            interview_language=self.interview_language, join_url=self.join_url, counselor_id=self.counselor_id,
            cancel_reason=self.cancel_reason, updated_at=self.updated_at,
        )


@dataclass(frozen=True)
class AppointmentView:
    """What is shown of an appointment (cards, staff prompts, the "my data" overview, reminders).

    Storage reads it straight from the table where no entity is needed (a citizen's upcoming list).
    """

    id: str
    mode: Mode
    subject_id: str
    office_id: str | None
    starts_at: datetime
    ends_at: datetime
    status: AppointmentStatus
    interview_language: str
    join_url: str | None
    counselor_id: str
    cancel_reason: str | None
    # Last change; calendar files use it so a moved appointment replaces the old calendar entry.
    updated_at: datetime | None = None


class Outcome(StrEnum):
    """What happened at an appointment, as the counselor (or the citizen) reports it; kept per appointment
    (bot.domain.appointment.AppointmentOutcome) so the statistics can count each kind per week."""

    IDENTITY_VERIFIED = "identity_verified"
    IDENTITY_NOT_VERIFIED = "identity_not_verified"
    # The counselor says the citizen is not there yet, before the no-show delay has run out.
    ABSENT_REPORTED = "absent_reported"
    # Confirmed after the delay: the appointment is cancelled for that reason.
    NO_SHOW = "no_show"
    # The answer to "is the client still absent?": they came after all.
    CLIENT_JOINED = "client_joined"
    TECHNICAL_PROBLEM = "technical_problem"
    # The citizen waited past the agency's commitment without anyone joining.
    AGENCY_LATE = "agency_late"
    # The slot ended and nothing was reported.
    NO_OUTCOME = "no_outcome"


class NotVerifiedReason(StrEnum):
    CAMERA_OFF = "camera_off"
    DOCUMENT_MISMATCH = "document_mismatch"
    REFUSED = "refused"


# Outcomes that settle an appointment at once, and the status each gives it.
FINAL_STATUS: dict[Outcome, AppointmentStatus] = {
    Outcome.IDENTITY_VERIFIED: AppointmentStatus.ATTENDED,
    Outcome.IDENTITY_NOT_VERIFIED: AppointmentStatus.NOT_VERIFIED,
    Outcome.NO_SHOW: AppointmentStatus.NO_SHOW,
    Outcome.NO_OUTCOME: AppointmentStatus.NO_OUTCOME,
}
# Outcomes that say the citizen is there (no no-show question after them).
PRESENCE = frozenset({Outcome.IDENTITY_VERIFIED, Outcome.IDENTITY_NOT_VERIFIED, Outcome.CLIENT_JOINED})


def no_show_reached(starts_at: datetime, now: datetime, no_show_minutes: int) -> bool:
    """Whether the agency's no-show delay after the start has run out."""
    return now >= starts_at + timedelta(minutes=no_show_minutes)


def agency_late(starts_at: datetime, now: datetime, commitment_minutes: int) -> bool:
    """Whether nobody joining is now past what the agency commits to (its counselor within N minutes)."""
    return now >= starts_at + timedelta(minutes=commitment_minutes)


def closing_status(reported: set[Outcome]) -> AppointmentStatus:
    """The status of an appointment still booked when its slot has ended.

    A technical problem or an agency that did not come leaves it as a technical problem (the citizen was
    offered new times); otherwise nothing was reported, which is counted apart from no-shows.
    """
    if reported & {Outcome.TECHNICAL_PROBLEM, Outcome.AGENCY_LATE}:
        return AppointmentStatus.TECHNICAL_PROBLEM
    if Outcome.IDENTITY_VERIFIED in reported or Outcome.CLIENT_JOINED in reported:
        return AppointmentStatus.ATTENDED
    return AppointmentStatus.NO_OUTCOME


@dataclass(eq=False)
class AppointmentOutcome:
    """One reported outcome: what, why (for some), who (actor) and when. Storage maps it."""

    appointment_id: str
    agency_id: str
    outcome: Outcome
    actor: str  # counselor:<id> | citizen:<pseudonym> | system
    occurred_at: datetime
    reason: str | None = None
    id: int | None = None


def is_appointment_id(value: object) -> TypeGuard[str]:
    """A canonical uuid string, as appointments get; anything else came from a tampered card."""
    if not isinstance(value, str) or len(value) != 36:
        return False
    try:
        return str(UUID(value)) == value
    except ValueError:
        return False
