"""A dialog that sends a card and waits for one of its buttons, refusing stale or foreign cards.

Every card sent through it carries a fresh `card_id` in each action's data; only an action carrying
the id of the card we are waiting on counts. An older card's button, a replayed action, or a
hand-made payload gets a polite "this card is no longer current" and changes nothing.
"""

from __future__ import annotations

import secrets
from typing import Any

from botbuilder.dialogs import Dialog, DialogContext, DialogTurnResult
from botbuilder.schema import ActivityTypes

from bot.i18n import t
from bot.replies import card_message
from bot.turn import turn_info
from cards.verbs import stamp_actions

CARD_ID = "card_id"


def stamp_card(card: dict[str, Any], card_id: str) -> dict[str, Any]:
    """Write `card_id` into every Submit/Execute action's data (fallbacks and nested cards included)."""
    return stamp_actions(card, {CARD_ID: card_id})


class AwaitCard(Dialog):
    """Options: {"card": dict, "verbs": [str], "text_ok": bool}. Result: {"verb", "data"} or {"text"}."""

    ID = "await_card"

    def __init__(self) -> None:
        super().__init__(self.ID)

    async def begin_dialog(self, dialog_context: DialogContext, options: Any = None) -> DialogTurnResult:
        card_id = secrets.token_urlsafe(9)
        state = dialog_context.active_dialog.state
        state["card_id"] = card_id
        # Plain strings, not Verb members: the dialog stack is saved every turn, and only plain JSON
        # values stay out of jsonpickle's much slower path (storage/state_documents.py).
        state["verbs"] = [str(verb) for verb in options.get("verbs", [])]
        state["text_ok"] = bool(options.get("text_ok", False))
        await dialog_context.context.send_activity(card_message(stamp_card(options["card"], card_id)))
        return Dialog.end_of_turn

    async def continue_dialog(self, dialog_context: DialogContext) -> DialogTurnResult:
        context = dialog_context.context
        state = dialog_context.active_dialog.state
        info = turn_info(context)
        action = info.action
        if action is not None:
            if action.data.get(CARD_ID) == state["card_id"] and action.verb in state["verbs"]:
                data = {k: v for k, v in action.data.items() if k not in (CARD_ID, "verb")}
                return await dialog_context.end_dialog({"verb": action.verb, "data": data})
            await context.send_activity(t(info.language, "conversation.stale_card"))
            return Dialog.end_of_turn
        if context.activity.type == ActivityTypes.message and state["text_ok"] and context.activity.text:
            return await dialog_context.end_dialog({"text": context.activity.text.strip()})
        await context.send_activity(t(info.language, "conversation.use_card_buttons"))
        return Dialog.end_of_turn
