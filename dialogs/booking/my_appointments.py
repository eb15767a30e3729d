"""My appointments: the card listing the citizen's upcoming appointments, with their buttons."""

from __future__ import annotations

from typing import Any

from botbuilder.dialogs import DialogContext, DialogTurnResult

from bot.services.booking import BookingService
from bot.services.container import Services
from dialogs.booking.flow import BookingSteps
from dialogs.card_flow import CardFlow, NoState


class MyAppointmentsDialog(CardFlow[NoState]):
    ID = "booking.list"

    def __init__(self, services: Services, booking: BookingService) -> None:
        super().__init__(self.ID, services, NoState)
        self._booking = booking
        self._steps = BookingSteps(services, booking)

    async def _start(self, dc: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        info = self._info(dc)
        assert info.citizen_id is not None
        await self._steps.send_appointments(dc, await self._booking.upcoming(info.citizen_id))
        return await dc.end_dialog()
