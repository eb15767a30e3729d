"""Reminders in the citizen's chat: whether one is still due, what it is about, and what its sending leaves.

A reminder job names its appointment; at run time everything is checked again, because a lot may have
happened since the booking: the appointment moved or was cancelled, the citizen opted out, restricted
processing, erased their data or blocked the bot, or the reminder itself is late (after an outage).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.domain.agency import Agency
from bot.domain.appointment import Appointment, AppointmentView
from bot.domain.audit import EventType
from bot.domain.jobs import Job, JobResult
from bot.domain.reminders import reminder_is_late
from bot.i18n import language_of
from bot.services.audit import SYSTEM_ACTOR, AuditTrail
from bot.services.ports import Clock, UnitOfWork, UnitOfWorkFactory


@dataclass(frozen=True)
class Recipient:
    """An appointment and the citizen's chat to write to about it."""

    appointment: Appointment
    citizen_id: str
    reference: dict[str, Any]
    language: str


@dataclass(frozen=True)
class DueReminder:
    """A reminder to send now: whom to write to about which appointment, at which of the agency's offsets."""

    recipient: Recipient
    offset_minutes: int | None

    @property
    def appointment(self) -> AppointmentView:
        return self.recipient.appointment.view()

    @property
    def citizen_id(self) -> str:
        return self.recipient.citizen_id

    @property
    def reference(self) -> dict[str, Any]:
        return self.recipient.reference

    @property
    def language(self) -> str:
        return self.recipient.language


class ReminderService:
    def __init__(self, agency: Agency, uow: UnitOfWorkFactory, clock: Clock, audit: AuditTrail) -> None:
        self._agency = agency
        self._uow = uow
        self._clock = clock
        self._audit = audit

    async def recipient(self, appointment_id: object, *, reminder: bool) -> Recipient | JobResult:
        """The appointment and the citizen to write to about it, or the job result saying why not.

        Every message the runner sends about an appointment checks the same: a chat to write in (not
        erased, reachable in Teams once) that Teams has not refused since. A reminder also needs the
        appointment still active and the citizen not to have turned reminders off.
        """
        appointment = citizen = None
        if isinstance(appointment_id, str):
            async with self._uow.read() as uow:
                appointment = await uow.appointments.get(appointment_id)
                citizen = await uow.citizens.get(appointment.citizen_id) \
                    if appointment is not None and appointment.citizen_id else None
        if reminder and (appointment is None or not appointment.is_active(self._clock.now())):
            return JobResult.SKIPPED_INACTIVE
        if appointment is None or citizen is None or citizen.erased_at is not None \
                or not citizen.conversation_reference:
            return JobResult.SKIPPED_NO_CHAT
        if reminder and not citizen.wants_reminders:
            return JobResult.SKIPPED_OPT_OUT
        if citizen.unreachable_since is not None:
            return JobResult.SKIPPED_UNREACHABLE
        return Recipient(appointment, citizen.id, citizen.conversation_reference,
                         language_of(citizen.locale) or self._agency.default_language)

    async def due(self, job: Job) -> DueReminder | JobResult:
        """The reminder to send now, or the job result saying why not."""
        found = await self.recipient(job.payload.get("appointment_id"), reminder=True)
        if isinstance(found, JobResult):
            return found
        appointment = found.appointment
        offset = job.payload.get("offset_minutes")
        # Its planned moment: a retry moves the job's own due time, not the reminder's.
        due_at = appointment.starts_at - timedelta(minutes=offset) if isinstance(offset, int) else job.run_at
        tolerance = timedelta(minutes=self._agency.reminder_late_tolerance_minutes)
        if reminder_is_late(due_at=due_at, starts_at=appointment.starts_at, now=self._clock.now(),
                            tolerance=tolerance):
            return JobResult.DROPPED_LATE
        return DueReminder(found, offset_minutes=offset if isinstance(offset, int) else None)

    async def record_sent(self, uow: UnitOfWork, reminder: DueReminder) -> None:
        """Inside the transaction that completes the job: the audit trace of the reminder."""
        await self._audit.record(
            uow, EventType.REMINDER_SENT, actor=SYSTEM_ACTOR, citizen_id=reminder.citizen_id,
            appointment_id=reminder.appointment.id, payload={"offset_minutes": reminder.offset_minutes},
        )

    async def record_unreachable(self, uow: UnitOfWork, citizen_id: str) -> None:
        """Teams refused the message: no more attempts until the citizen writes to the bot again."""
        await uow.citizens.mark_unreachable(citizen_id, self._clock.now())
