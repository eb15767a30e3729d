"""Cancelling an appointment: which one, the cut-off, confirmation with an optional reason, then cancel."""

from __future__ import annotations

import logging
from typing import Any

from botbuilder.dialogs import DialogContext, DialogTurnResult

from bot.i18n import t
from bot.replies import card_message
from bot.services.booking import BookingService, Cancelled
from bot.services.container import Services
from cards.booking import (
    CANCEL_NOTE_MAX_LENGTH,
    build_cancel_confirm_card,
    build_cancelled_card,
    build_step_done_card,
)
from cards.verbs import SOURCE, CardSource, Verb
from dialogs.booking.flow import BookingSteps, appointments_card
from dialogs.booking.state import CancelState
from dialogs.card_flow import CardFlow
from dialogs.pressed_card import replace_pressed_card

log = logging.getLogger(__name__)


class CancelDialog(CardFlow[CancelState]):
    """Which appointment → before the cut-off? → confirm with an optional reason → cancel."""

    ID = "booking.cancel"

    def __init__(self, services: Services, booking: BookingService) -> None:
        super().__init__(self.ID, services, CancelState)
        self._booking = booking
        self._steps = BookingSteps(services, booking)

    async def _start(self, dc: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        appointment = await self._steps.changeable(dc, options, "cancel")
        if appointment is None:
            return await dc.end_dialog()
        card = build_cancel_confirm_card(self._agency, self._info(dc).language, appointment)
        action = self._info(dc).action
        from_list = action is not None and action.data.get(SOURCE) == CardSource.APPOINTMENTS
        state = CancelState(appointment_id=appointment.id,
                            list_activity_id=dc.context.activity.reply_to_id if from_list else None)
        return await self._ask(dc, state, "confirm", card, [Verb.APPT_CANCEL_CONFIRM, Verb.APPT_KEEP])

    async def _on_confirm(self, dc: DialogContext, state: CancelState, verb: str,
                          data: dict[str, Any]) -> DialogTurnResult:
        info = self._info(dc)
        language = info.language
        assert info.citizen_id is not None
        if verb == Verb.APPT_KEEP:
            await replace_pressed_card(dc.context, build_step_done_card(language, t(language, "booking.step.kept")),
                                       else_send=t(language, "booking.message.kept"))
            return await dc.end_dialog()
        reason = data.get("reason")
        note = reason.strip()[:CANCEL_NOTE_MAX_LENGTH] if isinstance(reason, str) and reason.strip() else None
        outcome = await self._booking.cancel(citizen_id=info.citizen_id,
                                             appointment_id=state.appointment_id, reason_note=note)
        if isinstance(outcome, Cancelled):
            card = build_cancelled_card(self._agency, language, outcome.appointment)
            await replace_pressed_card(dc.context, card, else_send=card)
            if state.list_activity_id:
                await self._update_list(dc, state.list_activity_id)
            return await dc.end_dialog(outcome.appointment.id)
        await self._steps.refused(dc, outcome)
        return await dc.end_dialog()

    async def _update_list(self, dc: DialogContext, activity_id: str) -> None:
        """The list card the Cancel was pressed on, as it stands now: no live button for what is cancelled."""
        info = self._info(dc)
        assert info.citizen_id is not None
        card = appointments_card(self._agency, self._booking, info.language,
                                 await self._booking.upcoming(info.citizen_id))
        update = card_message(card)
        update.id = activity_id
        try:
            await dc.context.update_activity(update)
        except Exception as error:  # the message may be gone; its buttons then answer kindly when pressed
            log.warning("cancel: could not update the list card: %s", type(error).__name__)

    STATES = {"confirm": _on_confirm}
