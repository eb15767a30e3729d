"""What the services need from the outside world, as Protocols: the unit of work and its repositories,
the clock, the notifier that writes to a stored Teams conversation, and the Teams meeting provider.

Services import these and the domain, nothing else: `storage` implements the unit of work,
`bot.proactive` the notifier, `bot.integrations.graph` the meeting provider, and tests pass fakes
written by hand. Entities crossing these ports are the domain's (bot.domain.*).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from types import TracebackType
from typing import Any, Protocol

from bot.domain.appointment import Appointment, AppointmentOutcome, AppointmentView
from bot.domain.audit import AuditEvent, ChainHead
from bot.domain.clock import Clock
from bot.domain.consent import ConsentRecord, LatestConsentRecord
from bot.domain.jobs import Job, JobResult, NewJob
from bot.domain.people import Citizen, CounselorAccount, ReminderFlags

__all__ = [
    "AppInstaller", "AppointmentRepository", "AuditRepository", "AvailabilityProvider",
    "CitizenRepository", "Clock", "ConsentRepository", "CounselorRepository", "ErasureRepository", "JobRepository",
    "Meeting", "MeetingProvider", "MeetingRefused", "MeetingRequest", "MeetingUnavailable", "MessageRejected",
    "Notifier", "OutcomeRepository", "OutgoingMessage", "RecipientUnreachable", "SendFailed", "SlotClaimRepository",
    "UnitOfWork", "UnitOfWorkFactory",
]


# --- Storage --------------------------------------------------------------------------------------


class CitizenRepository(Protocol):
    async def get(self, citizen_id: str) -> Citizen | None: ...

    async def upsert_identity(
        self, *, agency_id: str, tenant_id: str | None, aad_object_id: str | None, teams_user_id: str | None,
        conversation_reference: dict[str, Any] | None, locale: str | None, now: datetime,
    ) -> Citizen:
        """The citizen with this Teams identity, created on first contact, refreshed afterwards."""
        ...

    async def save_personal_data(self, citizen_id: str, values: Mapping[str, str | date | None]) -> None: ...

    async def save_personal_data_for_booking(
        self, citizen_id: str, values: Mapping[str, str | date | None]
    ) -> ReminderFlags | None:
        """Store the fields; the citizen's reminder flags, None when there is no such citizen."""
        ...

    async def set_flags(self, citizen_id: str, *, processing_restricted: bool | None = None,
                        reminders_opt_out: bool | None = None) -> None: ...

    async def mark_unreachable(self, citizen_id: str, now: datetime) -> None: ...

    async def inactive_since(self, agency_id: str, cutoff: datetime, limit: int = 500) -> list[Citizen]: ...


class CounselorRepository(Protocol):
    async def get(self, counselor_id: str) -> CounselorAccount | None: ...

    async def list_for_agency(self, agency_id: str, *, active_only: bool = True) -> list[CounselorAccount]: ...

    async def upsert(self, counselor_id: str, agency_id: str, display_name: str, *, active: bool = True) -> None: ...

    async def set_conversation_reference(self, counselor_id: str, reference: dict[str, Any],
                                         locale: str | None = None) -> None: ...


class ConsentRepository(Protocol):
    """Append-only: there is no update or delete."""

    async def add(
        self, *, citizen_id: str, agency_id: str, document_kind: str, version: str, content_hash: str,
        language: str, action: str, channel: str, activity_id: str | None, occurred_at: datetime,
    ) -> None: ...

    async def latest_per_kind(self, citizen_id: str) -> dict[str, LatestConsentRecord]: ...

    async def history(self, citizen_id: str) -> list[ConsentRecord]: ...


class AppointmentRepository(Protocol):
    async def book(self, values: Mapping[str, Any], steps: Sequence[datetime]) -> None:
        """A booked appointment with the slot claims of `steps`, or SlotTaken and nothing written."""
        ...

    async def move(self, appointment: Appointment, *, counselor_id: str, starts_at: datetime, ends_at: datetime,
                   office_id: str | None, steps: Sequence[datetime], now: datetime) -> None:
        """The appointment at its new time with claims of `steps`, or SlotTaken and no change."""
        ...

    async def get(self, appointment_id: str) -> Appointment | None: ...

    async def get_for_citizen(self, appointment_id: str, citizen_id: str) -> Appointment | None: ...

    async def get_own_for_update(self, appointment_id: str, citizen_id: str) -> Appointment | None:
        """The citizen's appointment, locked until the end of the transaction."""
        ...

    async def upcoming_for_citizen(self, citizen_id: str, now: datetime) -> list[Appointment]: ...

    async def upcoming_views_for_citizen(self, citizen_id: str, now: datetime) -> list[AppointmentView]: ...

    async def all_for_citizen(self, citizen_id: str) -> list[Appointment]: ...

    async def busy_between_us(self, agency_id: str, start: datetime, end: datetime) -> list[tuple[str, int, int]]:
        """Booked (counselor, start, end) overlapping [start, end), times in epoch microseconds."""
        ...

    async def load_by_counselor(
        self, agency_id: str, start: datetime, end: datetime, *, exclude_statuses: Iterable[str] = ...,
        counselor_ids: Sequence[str] | None = None,
    ) -> dict[str, int]: ...

    async def not_anonymised_before(self, agency_id: str, cutoff: datetime, limit: int = 500) -> list[Appointment]: ...

    async def booked_ending_before(self, agency_id: str, cutoff: datetime, limit: int = 500) -> list[Appointment]: ...

    async def of_counselors_between(self, agency_id: str, start: datetime, end: datetime,
                                    counselor_ids: Sequence[str] | None = None) -> list[Appointment]: ...

    async def get_for_update(self, appointment_id: str) -> Appointment | None: ...


class SlotClaimRepository(Protocol):
    async def release(self, appointment_id: str) -> int: ...

    async def release_citizen(self, appointment_id: str) -> None: ...


class JobRepository(Protocol):
    async def schedule_many(self, jobs: Sequence[NewJob], *, appointment_id: str | None, now: datetime) -> None: ...

    async def schedule(self, kind: str, run_at: datetime, payload: dict[str, Any], dedupe_key: str | None = None, *,
                       appointment_id: str | None = None, now: datetime | None = None) -> int: ...

    async def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[Job]: ...

    async def mark_done(self, job_id: int, *, outcome: str = "done", now: datetime | None = None) -> bool: ...

    async def mark_failed(self, job_id: int, error: str, retry_at: datetime | None, *,
                          now: datetime | None = None, outcome: JobResult = JobResult.FAILED) -> bool: ...

    async def retry(self, job_id: int, now: datetime) -> bool: ...

    async def listing(self, *, status: str | None = None, kind: str | None = None, limit: int = 100) -> list[Job]: ...

    async def outcome_counts(self, *, kind: str | None = None) -> dict[tuple[str, str | None], int]: ...

    async def state_counts(self, now: datetime, late_after: timedelta) -> dict[tuple[str, str], int]: ...

    async def cancel_for_appointment(self, appointment_id: str) -> int: ...

    async def for_appointment(self, appointment_id: str) -> list[Job]: ...


class AuditRepository(Protocol):
    async def lock_chain(self, agency_id: str) -> None: ...

    async def head(self, agency_id: str) -> ChainHead | None: ...

    async def add(self, values: Mapping[str, Any]) -> None: ...

    async def add_after(self, values: Mapping[str, Any]) -> bool: ...

    def iterate(self, agency_id: str | None = None, *, batch_size: int = 500) -> AsyncIterator[AuditEvent]: ...

    async def newest(self, agency_id: str) -> AuditEvent | None: ...

    async def appointment_bounds(self, agency_id: str, appointment_id: str) -> tuple[int, int] | None: ...

    async def segment(self, agency_id: str, first_id: int, last_id: int) -> list[AuditEvent]: ...

    async def about(self, citizen_pseudonym: str, appointment_ids: Sequence[str]) -> list[AuditEvent]: ...

    async def unpruned_before(self, agency_id: str, cutoff: datetime, limit: int) -> list[AuditEvent]: ...

    async def store_pruned(self, event_id: int, *, actor: str, payload: dict[str, Any]) -> None: ...


class ErasureRepository(Protocol):
    """The writes only erasure and retention make: unlinking, anonymising, deleting."""

    async def erase_identity(self, citizen_id: str, now: datetime) -> None: ...

    async def appointment_ids_of(self, citizen_id: str) -> list[str]: ...

    async def anonymise_appointments(self, ids: Sequence[str], now: datetime) -> int: ...

    async def delete_appointments(self, ids: Sequence[str]) -> int: ...

    async def delete_idle_jobs(self, appointment_ids: Sequence[str]) -> int: ...

    async def cancel_pending_jobs(self, appointment_ids: Sequence[str], kinds: Iterable[str]) -> int: ...

    async def delete_bot_state_of(self, conversations: Iterable[Mapping[str, Any]]) -> int:
        """Delete the bot state (conversation and user state) of these conversation references."""
        ...

    async def delete_bot_state_before(self, cutoff: datetime) -> int: ...

    async def delete_expired_consents(self, agency_id: str, cutoff: datetime) -> int: ...

    async def delete_erased_shells(self, agency_id: str) -> int: ...


class OutcomeRepository(Protocol):
    async def add(self, *, appointment_id: str, agency_id: str, outcome: str, actor: str, occurred_at: datetime,
                  reason: str | None = None) -> None: ...

    async def for_appointment(self, appointment_id: str) -> list[AppointmentOutcome]: ...

    async def between(self, agency_id: str, start: datetime, end: datetime) -> list[tuple[str, datetime]]: ...


class WebIdentityRepository(Protocol):
    async def bind(self, user_id: str, conversation_id: str, citizen_id: str, *, proof: str,
                   now: datetime) -> None: ...

    async def citizen_of(self, user_id: str, conversation_id: str) -> str | None: ...

    async def link_epoch(self, citizen_id: str) -> int: ...

    async def revoke(self, citizen_id: str) -> int:
        """Revoke the citizen's manage links and web bindings; the bindings removed."""
        ...


class UnitOfWork(Protocol):
    """One transaction: `async with factory() as uow: ...; await uow.commit()`; leaving without commit
    rolls back. Entities read inside stay readable after the block."""

    # Read-only members: an implementation may hold its own repository classes that fit these ports.
    @property
    def citizens(self) -> CitizenRepository: ...

    @property
    def counselors(self) -> CounselorRepository: ...

    @property
    def consents(self) -> ConsentRepository: ...

    @property
    def appointments(self) -> AppointmentRepository: ...

    @property
    def slot_claims(self) -> SlotClaimRepository: ...

    @property
    def jobs(self) -> JobRepository: ...

    @property
    def audit(self) -> AuditRepository: ...

    @property
    def privacy(self) -> ErasureRepository: ...

    @property
    def outcomes(self) -> OutcomeRepository: ...

    @property
    def web_identities(self) -> WebIdentityRepository: ...

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork:
        """A unit of work that may write."""
        ...

    def read(self) -> UnitOfWork:
        """A unit of work for a use case that only reads (cheaper; it cannot commit)."""
        ...


# --- Teams: messages the bot sends on its own -------------------------------------------------------


@dataclass(frozen=True)
class OutgoingMessage:
    """A message for a stored conversation: text, an Adaptive Card, or both (the text as a summary)."""

    text: str | None = None
    card: dict[str, Any] | None = None


class SendFailed(Exception):
    """The message did not go out this time (throttled, connector down); worth retrying later."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class MessageRejected(Exception):
    """The connector refused the message itself (a 4xx other than throttling or a blocked person)."""


class RecipientUnreachable(Exception):
    """The person blocked or removed the bot (Teams' 403 MessageWritesBlocked), or the conversation is
    gone: retrying cannot help until they write to the bot again."""


class Mailer(Protocol):
    async def send(self, message: EmailMessage, *, key: str) -> None:
        """Send an e-mail built with the standard library; `key` names it once (the job's idempotency key).

        Raises SendFailed (retry later) or MessageRejected (stop).
        """
        ...


class Notifier(Protocol):
    async def send(self, reference: Mapping[str, Any], message: OutgoingMessage) -> str | None:
        """Post `message` to the conversation of a stored conversation reference; the new activity's id.

        Raises SendFailed (retry later) or RecipientUnreachable (stop).
        """
        ...


# --- Teams meetings (Microsoft Graph) --------------------------------------------------------------


@dataclass(frozen=True)
class MeetingRequest:
    """A Teams meeting for one video appointment, in the counselor's calendar."""

    appointment_id: str
    organizer_id: str  # the counselor's Entra object id
    starts_at: datetime
    ends_at: datetime
    subject: str
    body: str
    # Derived from the appointment: a retried creation finds the event made the first time.
    transaction_id: str
    allow_recording: bool = False
    # Whether `body` is HTML (else plain text).
    body_html: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Meeting:
    event_id: str
    join_url: str


class MeetingUnavailable(Exception):
    """Microsoft Graph could not be reached or asked to wait (throttled, busy, timed out): worth retrying
    later, after `retry_after` seconds when Graph said how long."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class MeetingRefused(Exception):
    """Microsoft Graph refused the request itself (missing permission or Teams policy, unknown person,
    invalid request): retrying cannot help until an administrator changes something.

    `event_id`: the calendar event already created when the refusal came after it (the meeting policy
    could not be applied), so a caller that gives up can cancel it; None otherwise."""

    def __init__(self, reason: str, *, event_id: str | None = None) -> None:
        super().__init__(reason)
        self.event_id = event_id


class MeetingProvider(Protocol):
    """Teams meetings in the counselors' calendars. Every method raises MeetingUnavailable (retry later)
    or MeetingRefused (stop)."""

    async def create(self, request: MeetingRequest) -> Meeting:
        """The event with its Teams meeting and join link; a retry with the same `transaction_id` returns
        the event made the first time."""
        ...

    async def move(self, organizer_id: str, event_id: str, starts_at: datetime, ends_at: datetime) -> Meeting:
        """The meeting at its new time; its join link, kept or new."""
        ...

    async def cancel(self, organizer_id: str, event_id: str, comment: str) -> None:
        """The event cancelled; an event already gone counts as cancelled."""
        ...


class AppInstaller(Protocol):
    """Installs the bot in a staff member's Teams (Graph), so the bot gets a chat with them."""

    async def install_for(self, user_id: str) -> bool:
        """Whether the app is (now, or already) installed for this Entra user."""
        ...


class AvailabilityProvider(Protocol):
    """Counselors' busy times from their own calendars (Outlook), beside the bot's appointments."""

    async def busy(self, counselors: Sequence[tuple[str, str | None]], start: datetime,
                   end: datetime) -> dict[str, list[tuple[datetime, datetime]]]:
        """Counselor id → busy (start, end) in UTC overlapping [start, end); {} when nothing is known."""
        ...
