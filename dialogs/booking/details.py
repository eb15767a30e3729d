"""One appointment's details: the confirmation card again, from a button of the list."""

from __future__ import annotations

from typing import Any

from botbuilder.dialogs import DialogContext, DialogTurnResult

from bot.services.booking import BookingService
from bot.services.container import Services
from cards.booking import build_confirmation_card
from dialogs.booking.flow import BookingSteps
from dialogs.card_flow import CardFlow, NoState


class AppointmentDetailsDialog(CardFlow[NoState]):
    ID = "booking.details"

    def __init__(self, services: Services, booking: BookingService) -> None:
        super().__init__(self.ID, services, NoState)
        self._booking = booking
        self._steps = BookingSteps(services, booking)

    async def _start(self, dc: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        appointment = await self._steps.own_active(dc, options.get("appointment_id"))
        if appointment is not None:
            card = build_confirmation_card(self._agency, self._info(dc).language, appointment,
                                           title_key="booking.confirmation.title_details",
                                           changeable=self._booking.can_cancel(appointment))
            await self._send_card(dc, card)
        return await dc.end_dialog()
