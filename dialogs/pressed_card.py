"""The answer to a pressed card button: in place of the pressed card, else as a message.

An Action.Execute comes as an invoke whose response is a card that Teams puts in place of the one
pressed (`TurnInfo.refreshed_card`): the outcome shows where the citizen pressed, and the used card
keeps no button to press twice. An Action.Submit (older clients) has no such response: in Teams, whose
submit names the pressed message (`replyToId`), the bot rewrites that message with the card, to the same
effect; elsewhere the answer is a message, or nothing where the replacement only retired a used card.
"""

from __future__ import annotations

from typing import Any

from botbuilder.core import TurnContext
from botframework.connector import Channels

from bot.replies import card_message
from bot.turn import turn_info


async def replace_pressed_card(context: TurnContext, card: dict[str, Any], *,
                               else_send: str | dict[str, Any] | None) -> None:
    """`card` replaces the pressed card (Action.Execute); otherwise `else_send` is sent: a text, a
    card, or None for nothing."""
    info = turn_info(context)
    pressed = context.activity.reply_to_id
    if info.action is not None and info.action.via_invoke:
        info.refreshed_card = card
    elif info.action is not None and pressed and context.activity.channel_id == Channels.ms_teams:
        update = card_message(card)
        update.id = pressed
        await context.update_activity(update)
    elif isinstance(else_send, dict):
        await context.send_activity(card_message(else_send))
    elif else_send is not None:
        await context.send_activity(else_send)
