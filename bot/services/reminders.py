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
from bot.domain.audit import EventType
from bot.domain.jobs import Job
from bot.domain.reminders import reminder_is_late
from bot.i18n import language_of
from bot.services.audit import SYSTEM_ACTOR, AuditTrail
from bot.services.booking import AppointmentView, appointment_view
from bot.services.ports import Clock, UnitOfWork, UnitOfWorkFactory


class Skip:
    """Why a reminder is not sent (the job's outcome)."""

    INACTIVE = "skipped_inactive"  # cancelled, moved (a newer reminder exists), or over
    OPTED_OUT = "skipped_opt_out"  # reminders off, or processing restricted
    NO_CHAT = "skipped_no_chat"  # erased, or never reachable in Teams
    UNREACHABLE = "skipped_unreachable"  # blocked the bot earlier
    LATE = "dropped_late"


@dataclass(frozen=True)
class DueReminder:
    appointment: AppointmentView
    citizen_id: str
    reference: dict[str, Any]
    language: str
    offset_minutes: int | None


class ReminderService:
    def __init__(self, agency: Agency, uow: UnitOfWorkFactory, clock: Clock, audit: AuditTrail) -> None:
        self._agency = agency
        self._uow = uow
        self._clock = clock
        self._audit = audit

    async def due(self, job: Job) -> DueReminder | str:
        """The reminder to send now, or the Skip outcome saying why not."""
        appointment_id = job.payload.get("appointment_id")
        if not isinstance(appointment_id, str):
            return Skip.INACTIVE
        now = self._clock.now()
        async with self._uow.read() as uow:
            appointment = await uow.appointments.get(appointment_id)
            citizen = await uow.citizens.get(appointment.citizen_id) \
                if appointment is not None and appointment.citizen_id else None
        if appointment is None or not appointment.is_active(now):
            return Skip.INACTIVE
        if citizen is None or citizen.erased_at is not None or not citizen.conversation_reference:
            return Skip.NO_CHAT
        if not citizen.wants_reminders:
            return Skip.OPTED_OUT
        if citizen.unreachable_since is not None:
            return Skip.UNREACHABLE
        offset = job.payload.get("offset_minutes")
        # Its planned moment: a retry moves the job's own due time, not the reminder's.
        due_at = appointment.starts_at - timedelta(minutes=offset) if isinstance(offset, int) else job.run_at
        tolerance = timedelta(minutes=self._agency.reminder_late_tolerance_minutes)
        if reminder_is_late(due_at=due_at, starts_at=appointment.starts_at, now=now, tolerance=tolerance):
            return Skip.LATE
        return DueReminder(
            appointment=appointment_view(self._agency, appointment), citizen_id=citizen.id,
            reference=citizen.conversation_reference,
            language=language_of(citizen.locale) or self._agency.default_language,
            offset_minutes=offset if isinstance(offset, int) else None,
        )

    async def record_sent(self, uow: UnitOfWork, reminder: DueReminder) -> None:
        """Inside the transaction that completes the job: the audit trace of the reminder."""
        await self._audit.record(
            uow, EventType.REMINDER_SENT, actor=SYSTEM_ACTOR, citizen_id=reminder.citizen_id,
            appointment_id=reminder.appointment.id, payload={"offset_minutes": reminder.offset_minutes},
        )

    async def record_unreachable(self, uow: UnitOfWork, citizen_id: str) -> None:
        """Teams refused the message: no more attempts until the citizen writes to the bot again."""
        await uow.citizens.mark_unreachable(citizen_id, self._clock.now())
