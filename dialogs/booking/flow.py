"""What the booking dialogs share, held by each flow (`BookingSteps`) rather than inherited: what
they ask of the booking service alike (the citizen's own upcoming appointment, which one a flow is
about and whether it may still change, the list card, the confirmation with its calendar file) and
how they answer a pressed step card (what was chosen, why it was refused)."""

from __future__ import annotations

import base64
import logging
from typing import Any

from botbuilder.core import MessageFactory
from botbuilder.dialogs import DialogContext
from botbuilder.schema import Attachment

from bot.domain.agency import Agency
from bot.domain.appointment import AppointmentStatus, AppointmentView, is_active
from bot.domain.channels import file_needs_consent
from bot.i18n import t
from bot.replies import card_message
from bot.services.booking import Booked, BookingService, Refused
from bot.services.container import Services
from bot.turn import turn_info
from cards.booking import (
    FILE_CONSENT_CARD,
    build_appointments_card,
    build_calendar_file_offer,
    build_confirmation_card,
    build_cutoff_card,
    build_no_upcoming_card,
    build_pick_appointment_card,
    build_step_done_card,
    calendar_file_name,
)
from cards.calendar import build_ics
from dialogs.pressed_card import replace_pressed_card

log = logging.getLogger(__name__)


def refusal_text(language: str, refused: Refused) -> str:
    try:
        return t(language, refused.reason, **refused.params)
    except (KeyError, IndexError):
        log.warning("booking: refusal %s has no message", refused.reason)
        return t(language, "booking.message.refused")


def not_found_text(language: str) -> str:
    return t(language, "booking.message.not_found", command=t(language, "help.command.my_appointments"))


def calendar_attachment(channel_id: str | None, conversation_type: str | None, language: str, appointment_id: str,
                        ics: bytes) -> Attachment:
    """The calendar file as this chat can take it: a file consent card in a Teams personal chat, else a
    data URL (bot.domain.channels.file_needs_consent)."""
    name = calendar_file_name(language)
    if file_needs_consent(channel_id, conversation_type):
        return Attachment(content_type=FILE_CONSENT_CARD, name=name,
                          content=build_calendar_file_offer(language, appointment_id=appointment_id,
                                                            size_in_bytes=len(ics)))
    return Attachment(content_type="text/calendar", name=name,
                      content_url="data:text/calendar;base64," + base64.b64encode(ics).decode("ascii"))


def appointments_card(agency: Agency, booking: BookingService, language: str,
                      upcoming: list[AppointmentView]) -> dict[str, Any]:
    """The list card of upcoming appointments; move and cancel buttons where still allowed."""
    changeable = {appointment.id for appointment in upcoming if booking.can_cancel(appointment)}
    return build_appointments_card(agency, language, upcoming, changeable=changeable)


class BookingSteps:
    """What the booking dialogs ask of the booking service alike, held by each flow (not inherited)."""

    def __init__(self, services: Services, booking: BookingService) -> None:
        self._services = services
        self._agency = services.agency
        self._booking = booking

    async def _send_card(self, dc: DialogContext, card: dict[str, Any]) -> None:
        await dc.context.send_activity(card_message(card))

    async def own_active(self, dc: DialogContext, appointment_id: object) -> AppointmentView | None:
        """The citizen's own upcoming appointment, or None after telling them why not."""
        info = turn_info(dc.context)
        assert info.citizen_id is not None
        appointment = await self._booking.get_own(info.citizen_id, appointment_id)
        if appointment is None:
            # Someone else's id, a made-up one, or one erased since: the same answer for all three.
            await dc.context.send_activity(not_found_text(info.language))
            return None
        if not is_active(appointment.status, appointment.ends_at, self._services.clock.now()):
            # A button of a card sent before the appointment was cancelled, say, says so plainly.
            cancelled = appointment.status == AppointmentStatus.CANCELLED
            await dc.context.send_activity(t(info.language, "booking.message.already_cancelled" if cancelled
                                             else "booking.message.not_active"))
            return None
        return appointment

    async def _pick_or_single(self, dc: DialogContext, options: dict[str, Any], purpose: str) -> object | None:
        """The appointment id the flow is about: given by the button, the only upcoming one, or None
        after sending a card to pick one (or saying there is none)."""
        if options.get("appointment_id") is not None:
            return options["appointment_id"]
        info = turn_info(dc.context)
        assert info.citizen_id is not None
        upcoming = await self._booking.upcoming(info.citizen_id)
        if not upcoming:
            await self._send_card(dc, build_no_upcoming_card(info.language))
            return None
        if len(upcoming) == 1:
            return upcoming[0].id
        await self._send_card(dc, build_pick_appointment_card(self._agency, info.language, upcoming, purpose=purpose))
        return None

    async def send_appointments(self, dc: DialogContext, upcoming: list[AppointmentView]) -> None:
        """The list card of upcoming appointments; move and cancel buttons where still allowed."""
        language = turn_info(dc.context).language
        await self._send_card(dc, appointments_card(self._agency, self._booking, language, upcoming))

    async def changeable(self, dc: DialogContext, options: dict[str, Any], purpose: str) -> AppointmentView | None:
        """The appointment to move or cancel, if it may still be changed in the chat; None after
        sending the card that says why not (or the card to pick one)."""
        appointment_id = await self._pick_or_single(dc, options, purpose)
        if appointment_id is None:
            return None
        appointment = await self.own_active(dc, appointment_id)
        if appointment is None:
            return None
        if not self._booking.can_cancel(appointment):
            # Too close to the start: the cut-off card gives the agency's phone number instead.
            await self._send_card(dc, build_cutoff_card(self._agency, turn_info(dc.context).language, appointment))
            return None
        return appointment

    async def mark(self, dc: DialogContext, text: str, *, done: bool = True) -> None:
        """What was chosen (or, `done` False, what went wrong) in place of the pressed step card, so it
        cannot be used twice; nothing is sent for an Action.Submit."""
        card = build_step_done_card(turn_info(dc.context).language, text, done=done)
        await replace_pressed_card(dc.context, card, else_send=None)

    async def refused(self, dc: DialogContext, refused: Refused) -> None:
        """Why it could not be done: in the pressed card (Action.Execute), else as a message."""
        language = turn_info(dc.context).language
        text = refusal_text(language, refused)
        await replace_pressed_card(dc.context, build_step_done_card(language, text, done=False), else_send=text)

    async def send_confirmation(self, dc: DialogContext, booked: Booked, title_key: str) -> None:
        """The confirmation card (with when the reminders come), then the calendar file (offered in Teams,
        attached elsewhere)."""
        language = turn_info(dc.context).language
        appointment = booked.appointment
        card = build_confirmation_card(self._agency, language, appointment, title_key=title_key,
                                       changeable=self._booking.can_cancel(appointment), calendar_file=True,
                                       reminders=booked.reminders, meetings=self._services.meetings is not None)
        await self._send_card(dc, card)
        ics = build_ics(self._agency, appointment, language, now=self._services.clock.now(),
                        meetings=self._services.meetings is not None)
        activity = dc.context.activity
        conversation_type = activity.conversation.conversation_type if activity.conversation else None
        attachment = calendar_attachment(activity.channel_id, conversation_type, language, appointment.id, ics)
        await dc.context.send_activity(MessageFactory.attachment(attachment))
