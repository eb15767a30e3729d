"""The Teams meeting of each video appointment: planned with the change that needs it, made by a job.

A booking never waits for Microsoft Graph and is never lost because of it: the appointment is stored
first, its meeting "pending", and a durable job (in the same transaction) creates the meeting, retrying
as long as Graph asks to; the citizen gets the link in their chat as soon as it exists. Moving the
appointment moves the meeting; cancelling it (by the citizen, a no-show, an erasure...) cancels the
meeting. After repeated failure the counselor and the agency's channel are told to send a link by hand.

The meeting carries nothing about the citizen: no name, no attendee (they join as a guest by the link).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from bot.domain.agency import Agency, Mode, RecordingPolicy
from bot.domain.appointment import Appointment, MeetingState
from bot.domain.audit import EventType
from bot.domain.jobs import JobKind, NoticeKind
from bot.i18n import t, tn
from bot.services.audit import SYSTEM_ACTOR, AuditTrail
from bot.services.ports import Clock, Meeting, MeetingRequest, UnitOfWork, UnitOfWorkFactory

# Derives every meeting's Graph transactionId from its appointment: a retried creation finds the first.
_TRANSACTIONS = uuid.UUID("6b1f3c52-8f0e-4b8c-9a64-2f3e0c1d5a77")


async def plan_meeting_cancel(uow: UnitOfWork, appointment: Appointment, now: datetime,
                              event_id: str | None = None) -> None:
    """Inside the cancellation of an appointment: the job that cancels its meeting (or `event_id`, an event
    made for it but never linked to it). The job carries what it needs, since an erasure in the same
    transaction unlinks the meeting from the appointment."""
    event_id = event_id or appointment.meeting_id
    if not event_id:
        return
    await uow.jobs.schedule(str(JobKind.MEETING_CANCEL), now, {
        "event_id": event_id, "organizer_id": appointment.counselor_id,
        "language": appointment.interview_language, "appointment_id": appointment.id,
    }, f"{JobKind.MEETING_CANCEL}:{appointment.id}:{event_id}", now=now)


@dataclass(frozen=True)
class MeetingToMake:
    appointment: Appointment
    request: MeetingRequest


class MeetingService:
    def __init__(self, agency: Agency, uow: UnitOfWorkFactory, clock: Clock, audit: AuditTrail) -> None:
        self._agency = agency
        self._uow = uow
        self._clock = clock
        self._audit = audit

    async def to_make(self, appointment_id: str) -> MeetingToMake | None:
        """What the create job asks Graph for, or None when the appointment no longer needs a meeting."""
        async with self._uow.read() as uow:
            appointment = await uow.appointments.get(appointment_id)
        if appointment is None or not appointment.is_active(self._clock.now()) \
                or Mode(appointment.mode) is not Mode.VIDEO:
            return None
        return MeetingToMake(appointment, self.request_for(appointment))

    def request_for(self, appointment: Appointment) -> MeetingRequest:
        language = appointment.interview_language
        subject = self._agency.subject(appointment.subject_id)
        subject_name = (subject.name.get(language) or subject.name[self._agency.default_language]) if subject else ""
        agency_name = self._agency.display_name(language)
        transaction = uuid.uuid5(_TRANSACTIONS, f"{appointment.id}:{appointment.starts_at.isoformat()}")
        return MeetingRequest(
            appointment_id=appointment.id, organizer_id=appointment.counselor_id,
            starts_at=appointment.starts_at, ends_at=appointment.ends_at,
            subject=t(language, "meetings.subject", subject=subject_name, agency=agency_name),
            body=t(language, "meetings.body", agency=agency_name,
                   minutes=tn(language, "common.count.minutes", self._agency.no_show_minutes)),
            transaction_id=str(transaction),
            allow_recording=RecordingPolicy(self._agency.recording) is not RecordingPolicy.FORBIDDEN,
        )

    def cancel_comment(self, language: str) -> str:
        """What Graph sends with the cancellation, in the interview language (the agency's, if unknown)."""
        language = language if language in self._agency.languages else self._agency.default_language
        return t(language, "meetings.cancel_comment", agency=self._agency.display_name(language))

    async def record_made(self, uow: UnitOfWork, appointment_id: str, meeting: Meeting, *, moved: bool) -> None:
        """Inside the transaction completing the job: the link on the appointment, the citizen's message
        about it (when new or changed), the audit trace."""
        now = self._clock.now()
        appointment = await uow.appointments.get(appointment_id)
        if appointment is None:
            return
        changed = appointment.join_url is not None and appointment.join_url != meeting.join_url
        appointment.meeting_id = meeting.event_id
        appointment.join_url = meeting.join_url
        appointment.meeting_state = MeetingState.READY
        appointment.updated_at = now
        if not moved or changed:
            notice = NoticeKind.LINK_CHANGED if changed else NoticeKind.LINK
            await uow.jobs.schedule(str(JobKind.CITIZEN_NOTICE), now, {"appointment_id": appointment_id,
                                                                        "notice": notice},
                                    f"{JobKind.CITIZEN_NOTICE}:{appointment_id}:{notice}:{meeting.join_url}", now=now)
        if not moved:
            await self._audit.record(uow, EventType.MEETING_CREATED, actor=SYSTEM_ACTOR,
                                              citizen_id=appointment.citizen_id, appointment_id=appointment_id,
                                              payload={"event": "created"})

    async def record_failed(self, uow: UnitOfWork, appointment_id: str, left_event: str | None = None) -> None:
        """Creating the meeting failed for good: the counselor and the agency's channel are alerted.

        `left_event`: an event Graph created before refusing the agency's meeting policy on it. Its
        meeting has the tenant's defaults (no lobby, recording allowed), so it is never linked nor sent to
        the citizen: a job cancels it, retried like any meeting cancellation."""
        now = self._clock.now()
        appointment = await uow.appointments.get(appointment_id)
        if appointment is None:
            return
        appointment.meeting_state = MeetingState.FAILED
        if left_event:
            await plan_meeting_cancel(uow, appointment, now, event_id=left_event)
        await self._alert(uow, appointment_id, "meeting_failed", now)

    async def record_change_failed(self, uow: UnitOfWork, appointment_id: str, alert: str, event_id: str) -> None:
        """Moving or cancelling the meeting (`event_id`) failed for good: the counselor is alerted to do it by
        hand (`alert`: "meeting_move_failed" or "meeting_cancel_failed")."""
        await self._alert(uow, appointment_id, alert, self._clock.now(), event_id)

    @staticmethod
    async def _alert(uow: UnitOfWork, appointment_id: str, alert: str, now: datetime, about: str = "") -> None:
        key = ":".join(part for part in (str(JobKind.STAFF_ALERT), appointment_id, alert, about) if part)
        await uow.jobs.schedule(str(JobKind.STAFF_ALERT), now, {"appointment_id": appointment_id, "alert": alert},
                                key, now=now)
