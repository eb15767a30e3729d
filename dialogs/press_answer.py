"""The answer to an Action.Execute whose dialog left the pressed card alone (its answer came as new
messages): Teams puts the invoke's answer in place of the pressed card, so it is always a card, never
the empty message Teams shows as an empty banner.

A long-lived card (the welcome, the list of appointments, a confirmation, a reminder) names itself in
its buttons' data (`cards.verbs.CardSource`) and comes back rebuilt as it stands now: an appointment
cancelled since shows as cancelled, its buttons gone. Any other card (a used step, a stale one)
becomes a pointer to the answer below it.
"""

from __future__ import annotations

from typing import Any

from botbuilder.core import TurnContext

from bot.domain.appointment import AppointmentStatus
from bot.services.booking import BookingService
from bot.services.container import Services
from bot.services.staff import StaffMember
from bot.turn import turn_info
from cards.booking import build_cancelled_card, build_confirmation_card, build_pressed_note_card
from cards.reminders import build_reminder_card
from cards.staff import build_staff_help_card, build_staff_welcome_card
from cards.verbs import SOURCE, SOURCE_ID, SOURCE_OFFSET, CardSource
from cards.welcome import build_help_card, build_welcome_card
from dialogs.booking.flow import appointments_card


class PressedCardAnswer:
    """`bot.teams_bot.PressAnswer` over the booking service."""

    def __init__(self, services: Services, booking: BookingService) -> None:
        self._services = services
        self._agency = services.agency
        self._booking = booking

    async def __call__(self, context: TurnContext) -> dict[str, Any]:
        info = turn_info(context)
        data = info.action.data if info.action else {}
        if info.staff is not None:
            card = self._staff_card(info.language, info.staff, data.get(SOURCE))
        else:
            card = await self._rebuilt(info.language, info.citizen_id, data)
        return card if card is not None else build_pressed_note_card(info.language)

    @staticmethod
    def _staff_card(language: str, staff: StaffMember, source: object) -> dict[str, Any] | None:
        if source == CardSource.WELCOME:
            return build_staff_welcome_card(language, name=staff.display_name, supervisor=staff.supervisor)
        if source == CardSource.HELP:
            return build_staff_help_card(language, supervisor=staff.supervisor)
        return None

    async def _rebuilt(self, language: str, citizen_id: str | None, data: dict[str, Any]) -> dict[str, Any] | None:
        """The pressed card as it stands now, when its buttons name it; None otherwise."""
        source = data.get(SOURCE)
        if source == CardSource.WELCOME:
            return build_welcome_card(self._agency, language)
        if source == CardSource.HELP:
            return build_help_card(self._agency, language)
        if citizen_id is None:
            return None
        if source == CardSource.APPOINTMENTS:
            return appointments_card(self._agency, self._booking, language, await self._booking.upcoming(citizen_id))
        if source not in (CardSource.APPOINTMENT, CardSource.REMINDER):
            return None
        appointment = await self._booking.get_own(citizen_id, data.get(SOURCE_ID))
        if appointment is None:
            return None
        if appointment.status == AppointmentStatus.CANCELLED:
            return build_cancelled_card(self._agency, language, appointment)
        changeable = self._booking.can_cancel(appointment)
        meetings = self._services.meetings is not None
        offset = data.get(SOURCE_OFFSET)
        if source == CardSource.REMINDER:
            return build_reminder_card(self._agency, language, appointment,
                                       offset_minutes=offset if type(offset) is int else None,
                                       changeable=changeable, meetings=meetings)
        return build_confirmation_card(self._agency, language, appointment,
                                       title_key="booking.confirmation.title_details", changeable=changeable,
                                       meetings=meetings)
