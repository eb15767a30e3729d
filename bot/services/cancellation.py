"""Cancelling a citizen's upcoming appointments inside a caller's transaction.

Shared by consent withdrawal, erasure and the booking service's own cancel, so that every way an
appointment ends releases its time, drops its pending jobs and leaves the same audit trace.
"""

from __future__ import annotations

from datetime import datetime

from bot.domain.appointment import Appointment, AppointmentStatus, CancelReason, is_active
from bot.domain.audit import EventType
from bot.services.audit import AuditTrail
from bot.services.meetings import plan_meeting_cancel
from bot.services.ports import UnitOfWork


async def cancel_appointment(
    uow: UnitOfWork, appointment: Appointment, *, reason: CancelReason, now: datetime, note: str | None = None
) -> None:
    """Mark one booked appointment cancelled; free its slot; drop its reminders and prompts; plan the
    cancellation of its Teams meeting."""
    appointment.status = AppointmentStatus.CANCELLED
    appointment.cancel_reason = reason
    appointment.cancel_note = note
    appointment.updated_at = now
    await uow.slot_claims.release(appointment.id)
    await uow.jobs.cancel_for_appointment(appointment.id)
    await plan_meeting_cancel(uow, appointment, now)


async def cancel_upcoming_for_citizen(
    uow: UnitOfWork, audit: AuditTrail, citizen_id: str, *, reason: CancelReason, actor: str, now: datetime
) -> list[Appointment]:
    """Cancel every upcoming booked appointment of a citizen; audit each (audit writes come last)."""
    upcoming = await uow.appointments.upcoming_for_citizen(citizen_id, now)
    cancelled = [a for a in upcoming if is_active(a.status, a.ends_at, now)]
    for appointment in cancelled:
        await cancel_appointment(uow, appointment, reason=reason, now=now)
    for appointment in cancelled:
        await audit.record(uow, EventType.CANCELLED, actor=actor, citizen_id=citizen_id,
                           appointment_id=appointment.id, payload={"reason": reason})
    return cancelled
