"""The card-flow base every feature can build on: a dialog as a small state machine over cards.

Each state sends one card through AwaitCard and names the handler that reads its answer, so steps
can loop (a form shown again with its errors, "more days", "change the date", a time taken
meanwhile) without nesting dialogs. What a card sends back is checked against what the flow offered
before anything is asked of a service, which checks again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from botbuilder.dialogs import Dialog, DialogContext, DialogReason, DialogTurnResult

from bot.i18n import t
from bot.services.container import Services
from bot.teams_bot import card_message
from bot.turn import TurnInfo, turn_info
from cards.verbs import Verb
from dialogs.await_card import AwaitCard

_AWAITING = "awaiting"

Handler = Callable[[DialogContext, str, dict[str, Any]], Awaitable[DialogTurnResult]]


class CardFlow(Dialog):
    """A flow of cards: `_ask` sends a card and records which handler reads its answer."""

    def __init__(self, dialog_id: str, services: Services) -> None:
        super().__init__(dialog_id)
        self._services = services
        self._agency = services.agency
        self._handlers: dict[str, Handler] = {}

    async def begin_dialog(self, dialog_context: DialogContext, options: Any = None) -> DialogTurnResult:
        info = turn_info(dialog_context.context)
        if info.citizen_id is None:
            await dialog_context.context.send_activity(t(info.language, "conversation.error_generic"))
            return await dialog_context.end_dialog()
        return await self._start(dialog_context, dict(options) if isinstance(options, Mapping) else {})

    async def resume_dialog(
        self, dialog_context: DialogContext, reason: DialogReason, result: object = None
    ) -> DialogTurnResult:
        awaiting = dialog_context.active_dialog.state.pop(_AWAITING, None)
        handler = self._handlers.get(awaiting) if isinstance(awaiting, str) else None
        if handler is None:
            return await dialog_context.end_dialog()
        answer = result if isinstance(result, dict) else {}
        data = answer.get("data")
        return await handler(dialog_context, str(answer.get("verb") or ""), data if isinstance(data, dict) else {})

    async def _start(self, dc: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        raise NotImplementedError

    async def _ask(self, dc: DialogContext, awaiting: str, card: dict[str, Any], verbs: list[Verb]) -> DialogTurnResult:
        dc.active_dialog.state[_AWAITING] = awaiting
        return await dc.begin_dialog(AwaitCard.ID, {"card": card, "verbs": [str(verb) for verb in verbs]})

    @staticmethod
    def _state(dc: DialogContext) -> dict[str, Any]:
        return dc.active_dialog.state

    @staticmethod
    def _info(dc: DialogContext) -> TurnInfo:
        return turn_info(dc.context)

    def _now(self) -> datetime:
        return self._services.clock.now()

    async def _say(self, dc: DialogContext, text: str) -> None:
        await dc.context.send_activity(text)

    async def _send_card(self, dc: DialogContext, card: dict[str, Any]) -> None:
        await dc.context.send_activity(card_message(card))
