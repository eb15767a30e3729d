"""My appointments: the card listing the citizen's upcoming appointments, with their buttons."""

from __future__ import annotations

from typing import Any

from botbuilder.dialogs import DialogContext, DialogTurnResult

from bot.services.booking import BookingService
from bot.services.container import Services
from cards.booking import build_appointments_card
from dialogs.booking.flow import BookingFlow
from dialogs.card_flow import NoState


class MyAppointmentsDialog(BookingFlow[NoState]):
    ID = "booking.list"

    def __init__(self, services: Services, booking: BookingService) -> None:
        super().__init__(self.ID, services, booking, NoState)

    async def _start(self, dc: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        info = self._info(dc)
        assert info.citizen_id is not None
        upcoming = await self._booking.upcoming(info.citizen_id)
        changeable = {appointment.id for appointment in upcoming if self._booking.can_cancel(appointment)}
        await self._send_card(dc, build_appointments_card(self._agency, info.language, upcoming,
                                                          changeable=changeable))
        return await dc.end_dialog()
