"""Moving an appointment: which one, then a new time (TimeChoice), the summary, and the move."""

from __future__ import annotations

from typing import Any

from botbuilder.dialogs import DialogContext, DialogTurnResult

from bot.domain.agency import PersonalField
from bot.domain.interview_language import LanguageReason, language_reason
from bot.services.booking import Booked, BookingService, Refused, SlotGone
from bot.services.container import Services
from dialogs.booking.state import RescheduleState
from dialogs.booking.time_choice import TimeChoice


class RescheduleDialog(TimeChoice[RescheduleState]):
    """Which appointment (the button's, or pick one) → day → time → summary → move."""

    ID = "booking.reschedule"

    def __init__(self, services: Services, booking: BookingService) -> None:
        super().__init__(self.ID, services, booking, RescheduleState)

    async def _start(self, dc: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        appointment = await self._changeable(dc, options, "reschedule")
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
        return await self._ask_day(dc, state, first_page=True)

    async def _after_slot(self, dc: DialogContext, state: RescheduleState) -> DialogTurnResult:
        return await self._ask_summary(dc, state)

    def _summary_card(self, dc: DialogContext, state: RescheduleState) -> dict[str, Any]:
        reason = LanguageReason(state.language_reason) if state.language_reason in set(LanguageReason) else None
        return self._summary(dc, state, previous_start=state.previous_start, language_reason=reason)

    async def _commit(self, dc: DialogContext, state: RescheduleState) -> Booked | SlotGone | Refused:
        info = self._info(dc)
        assert info.citizen_id is not None
        return await self._booking.reschedule(citizen_id=info.citizen_id, appointment_id=state.appointment_id,
                                              start=state.chosen_slot.start, office_id=state.chosen_office)

    async def _on_booked(self, dc: DialogContext, booked: Booked) -> None:
        await self._send_confirmation(dc, booked, "booking.confirmation.title_rescheduled")

    STATES = TimeChoice.TIME_STATES
