"""Moving an appointment: which one, then a new time (TimeChoice), the summary, and the move."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botbuilder.dialogs import DialogContext, DialogTurnResult

from bot.services.booking import AppointmentView, Booked, BookingService, Refused, SlotGone
from bot.services.container import Services
from cards.booking import build_cutoff_card, build_summary_card
from dialogs.booking.time_choice import TimeChoice


class RescheduleDialog(TimeChoice):
    """Which appointment (the button's, or pick one) → day → time → summary → move."""

    ID = "booking.reschedule"

    def __init__(self, services: Services, booking: BookingService) -> None:
        super().__init__(self.ID, services, booking)

    async def _start(self, dc: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        appointment_id = await self._pick_or_single(dc, options, "reschedule")
        if appointment_id is None:
            return await dc.end_dialog()
        appointment = await self._own_active(dc, appointment_id)
        if appointment is None:
            return await dc.end_dialog()
        if not self._booking.can_cancel(appointment):
            await self._send_card(dc, build_cutoff_card(self._agency, self._info(dc).language, appointment))
            return await dc.end_dialog()
        state = self._state(dc)
        state.update({
            "appointment_id": appointment.id, "mode": appointment.mode.value, "subject": appointment.subject_id,
            "office": appointment.office_id, "search_language": appointment.interview_language,
            "exclude": appointment.id, "previous_start": appointment.starts_at.isoformat(),
            "interview_language": appointment.interview_language,
        })
        return await self._ask_day(dc, first_page=True)

    async def _after_slot(self, dc: DialogContext) -> DialogTurnResult:
        return await self._ask_summary(dc)

    async def _summary_card(self, dc: DialogContext) -> dict[str, Any]:
        state = self._state(dc)
        return build_summary_card(
            self._agency, self._info(dc).language, mode=state["mode"], subject_id=state["subject"],
            office_id=state.get("slot_office") or state.get("office"), start=datetime.fromisoformat(state["start"]),
            end=datetime.fromisoformat(state["end"]), interview_language=state["interview_language"],
            previous_start=datetime.fromisoformat(state["previous_start"]),
        )

    async def _commit(self, dc: DialogContext) -> Booked | SlotGone | Refused:
        state = self._state(dc)
        info = self._info(dc)
        assert info.citizen_id is not None
        return await self._booking.reschedule(
            citizen_id=info.citizen_id, appointment_id=state["appointment_id"],
            start=datetime.fromisoformat(state["start"]), office_id=state.get("slot_office") or state.get("office"),
        )

    async def _on_booked(self, dc: DialogContext, appointment: AppointmentView) -> None:
        await self._send_confirmation(dc, appointment, "booking.confirmation.title_rescheduled")
