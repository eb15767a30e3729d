"""Reminders in the citizen's chat: whether one is still due, what it is about, and what its sending leaves.

The chat or e-mail: with e-mail on, a citizen the chat does not reach (bot.domain.web_identity.reached_by_email)
and who gave an address gets the reminder, the link or the notice by e-mail instead (bot.services.emails).

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
from bot.domain.jobs import EmailKind, Job, JobResult
from bot.domain.reminders import reminder_is_late
from bot.domain.web_identity import reached_by_email
from bot.i18n import language_of
from bot.services.audit import SYSTEM_ACTOR, AuditTrail
from bot.services.emails import plan_notice_email, plan_reminder_email
from bot.services.ports import Clock, UnitOfWork, UnitOfWorkFactory


@dataclass(frozen=True)
class Recipient:
    """An appointment and the citizen's chat to write to about it."""

    appointment: Appointment
    citizen_id: str
    reference: dict[str, Any]
    language: str
    # The chat does not reach this citizen: the message goes by e-mail (their address is known).
    by_email: bool = False
    # Should Teams refuse the message for good, an e-mail can go instead.
    has_email: bool = False


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
    def __init__(self, agency: Agency, uow: UnitOfWorkFactory, clock: Clock, audit: AuditTrail, *,
                 email: bool = False) -> None:
        """`email`: this installation e-mails citizens (GUICHET_MAIL is not off)."""
        self._agency = agency
        self._uow = uow
        self._clock = clock
        self._audit = audit
        self._email = email

    async def recipient(self, appointment_id: object, *, reminder: bool) -> Recipient | JobResult:
        """The appointment and the citizen to write to about it, or the job result saying why not.

        Every message the runner sends about an appointment checks the same: a chat to write in (not
        erased, reachable in Teams once) that Teams has not refused since. A reminder also needs the
        appointment still active and the citizen not to have turned reminders off.

        With e-mail on, a citizen the chat does not reach (the agency's website, where the visitor has left
        the page; or Teams refused the bot) who gave an address is a recipient `by_email`; one without an
        address on the website gets nothing (a Web Chat message would wait in a conversation nobody reads).
        """
        appointment = citizen = None
        if isinstance(appointment_id, str):
            async with self._uow.read() as uow:
                appointment = await uow.appointments.get(appointment_id)
                citizen = await uow.citizens.get(appointment.citizen_id) \
                    if appointment is not None and appointment.citizen_id else None
        if reminder and (appointment is None or not appointment.is_active(self._clock.now())):
            return JobResult.SKIPPED_INACTIVE
        if appointment is None or citizen is None or citizen.erased_at is not None:
            return JobResult.SKIPPED_NO_CHAT
        reference = citizen.conversation_reference or {}
        language = language_of(citizen.locale) or self._agency.default_language
        blocked = citizen.unreachable_since is not None
        if self._email and reached_by_email(tenant_id=citizen.tenant_id, channel_id=reference.get("channelId"),
                                            blocked_the_bot=blocked):
            if reminder and not citizen.wants_reminders:
                return JobResult.SKIPPED_OPT_OUT
            if citizen.email:
                return Recipient(appointment, citizen.id, reference, language, by_email=True, has_email=True)
            return JobResult.SKIPPED_UNREACHABLE if blocked else JobResult.SKIPPED_NO_EMAIL
        if not reference:
            return JobResult.SKIPPED_NO_CHAT
        if reminder and not citizen.wants_reminders:
            return JobResult.SKIPPED_OPT_OUT
        if blocked:
            return JobResult.SKIPPED_UNREACHABLE
        return Recipient(appointment, citizen.id, reference, language, has_email=self._email and bool(citizen.email))

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

    async def hand_reminder_to_email(self, uow: UnitOfWork, reminder: DueReminder, *, refused: bool = False) -> None:
        """Inside the transaction completing the reminder job: the e-mail that carries the reminder instead
        (`refused`: Teams refused it for good, which is recorded too)."""
        if refused:
            await self.record_unreachable(uow, reminder.citizen_id)
        await plan_reminder_email(uow, reminder.appointment.id, reminder.appointment.starts_at,
                                  reminder.offset_minutes, self._clock.now())

    async def hand_notice_to_email(self, uow: UnitOfWork, recipient: Recipient, what: EmailKind, *,
                                   reason: str | None = None, refused: bool = False) -> None:
        """Inside the transaction completing a notice job: the e-mail that carries the notice instead."""
        if refused:
            await self.record_unreachable(uow, recipient.citizen_id)
        await plan_notice_email(uow, what, recipient.appointment.id, self._clock.now(),
                                join_url=recipient.appointment.join_url, reason=reason)
