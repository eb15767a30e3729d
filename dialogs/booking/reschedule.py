"""Moving an appointment: which one, then a new time (time_choice), the summary, and the move."""

from __future__ import annotations

from typing import Any

from botbuilder.dialogs import DialogContext, DialogTurnResult

from bot.domain.agency import PersonalField
from bot.domain.interview_language import LanguageReason, language_reason
from bot.services.booking import Booked, BookingService, Refused, SlotGone
from bot.services.container import Services
from dialogs.booking.flow import BookingSteps
from dialogs.booking.state import RescheduleState
from dialogs.booking.time_choice import ask_day, ask_summary, on_day, on_slot, on_summary, on_taken, summary
from dialogs.card_flow import CardFlow


class RescheduleDialog(CardFlow[RescheduleState]):
    """Which appointment (the button's, or pick one) → day → time → summary → move."""

    ID = "booking.reschedule"

    def __init__(self, services: Services, booking: BookingService) -> None:
        super().__init__(self.ID, services, RescheduleState)
        self._booking = booking
        self._steps = BookingSteps(services, booking)

    async def _start(self, dc: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        appointment = await self._steps.changeable(dc, options, "reschedule")
        if appointment is None:
            return await dc.end_dialog()
        info = self._info(dc)
        assert info.citizen_id is not None
        postal_code = (await self._booking.saved_personal_data(info.citizen_id)).get(PersonalField.POSTAL_CODE)
        reason = language_reason(self._agency, postal_code=postal_code if isinstance(postal_code, str) else None,
                                 interview_language=appointment.interview_language)
        state = RescheduleState(
            appointment_id=appointment.id, previous_start=appointment.starts_at, mode=appointment.mode.value,
            subject=appointment.subject_id, office=appointment.office_id,
            search_language=appointment.interview_language, exclude=appointment.id,
            interview_language=appointment.interview_language, language_reason=reason.value if reason else None,
        )
        return await ask_day(self, dc, state, first_page=True)

    async def _after_slot(self, dc: DialogContext, state: RescheduleState) -> DialogTurnResult:
        return await ask_summary(self, dc, state)

    async def _on_change_details(self, dc: DialogContext, state: RescheduleState) -> DialogTurnResult:
        # A move has no details of its own to change: the days start again.
        return await ask_day(self, dc, state, first_page=True)

    def _summary_card(self, dc: DialogContext, state: RescheduleState) -> dict[str, Any]:
        reason = LanguageReason(state.language_reason) if state.language_reason in set(LanguageReason) else None
        return summary(self, dc, state, previous_start=state.previous_start, language_reason=reason)

    async def _commit(self, dc: DialogContext, state: RescheduleState) -> Booked | SlotGone | Refused:
        info = self._info(dc)
        assert info.citizen_id is not None
        return await self._booking.reschedule(citizen_id=info.citizen_id, appointment_id=state.appointment_id,
                                              start=state.chosen_slot.start, office_id=state.chosen_office)

    async def _on_booked(self, dc: DialogContext, booked: Booked) -> None:
        await self._steps.send_confirmation(dc, booked, "booking.confirmation.title_rescheduled")

    STATES = {"day": on_day, "slot": on_slot, "summary": on_summary, "taken": on_taken}
