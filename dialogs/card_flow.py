"""The card-flow base every feature can build on: a dialog as a small state machine over cards.

Each state sends one card through AwaitCard and names the state whose handler reads its answer, so
steps can loop (a form shown again with its errors, "more days", "change the date", a time taken
meanwhile) without nesting dialogs. What a card sends back is checked against what the flow offered
before anything is asked of a service, which checks again.

A flow's state is a dataclass (`FlowState`) it reads and writes by attribute; it is not what is
stored. The dialog stack is saved every turn, and storage/state_documents.py writes plain JSON
values (dicts with string keys, lists, strings, numbers, booleans, None) directly but hands any other
object to jsonpickle, which is much slower. So the flow's dataclass is made from the stack's plain
dict when a card's answer comes (`from_dict`) and turned back into one when the next card is sent
(`to_dict`): between turns the stack holds only plain values.

A flow declares all its states in one table, `STATES = {"mode": _on_mode, ...}` at the end of its
class (as python-telegram-bot's ConversationHandler does): the state's name, and the method that reads
the answer to the card sent in that state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

from botbuilder.dialogs import Dialog, DialogContext, DialogReason, DialogTurnResult

from bot.i18n import t
from bot.replies import card_message
from bot.services.container import Services
from bot.turn import TurnInfo, turn_info
from cards.verbs import Verb
from dialogs.await_card import AwaitCard

_AWAITING = "awaiting"


class FlowState(Protocol):
    """What a flow remembers between turns, and its plain JSON form in the dialog stack."""

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any]) -> Self: ...

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values only, in containers made afresh (see the module docstring)."""
        ...


@dataclass
class NoState:
    """The state of a flow that answers with one card and ends: nothing to remember."""

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any]) -> Self:
        return cls()

    def to_dict(self) -> dict[str, Any]:
        return {}


@dataclass
class Announced:
    """The state of a confirmation whose card announced a count (the upcoming appointments an erasure or
    a withdrawal cancels): kept here, not read back from the card, which could be edited."""

    announced: int = 0

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any]) -> Self:
        announced = stored.get("announced")
        return cls(announced=announced if isinstance(announced, int) else 0)

    def to_dict(self) -> dict[str, Any]:
        return {"announced": self.announced}


S = TypeVar("S", bound=FlowState)

# Reads the answer to the card sent by `_ask`: (the flow, dialog context, the flow's state, verb, data).
Handler = Callable[[Any, DialogContext, S, str, dict[str, Any]], Awaitable[DialogTurnResult]]


class CardFlow(Dialog, Generic[S]):
    """A flow of cards: `_ask` sends a card and records the state (in STATES) whose handler reads its answer."""

    # Every state of the flow: its name → the method that reads the answer to the card sent in it.
    STATES: ClassVar[Mapping[str, Handler[Any]]] = {}
    # A citizen's flow answers a turn with no citizen record with an error; staff flows set this False.
    CITIZENS_ONLY: ClassVar[bool] = True

    def __init__(self, dialog_id: str, services: Services, state_type: type[S]) -> None:
        super().__init__(dialog_id)
        self._services = services
        self._agency = services.agency
        self._state_type = state_type

    async def begin_dialog(self, dialog_context: DialogContext, options: Any = None) -> DialogTurnResult:
        info = turn_info(dialog_context.context)
        if self.CITIZENS_ONLY and info.citizen_id is None:
            await dialog_context.context.send_activity(t(info.language, "conversation.error_generic"))
            return await dialog_context.end_dialog()
        return await self._start(dialog_context, dict(options) if isinstance(options, Mapping) else {})

    async def resume_dialog(
        self, dialog_context: DialogContext, reason: DialogReason, result: object = None
    ) -> DialogTurnResult:
        stored = dialog_context.active_dialog.state
        awaiting = stored.pop(_AWAITING, None)
        handler = self.STATES.get(awaiting) if isinstance(awaiting, str) else None
        if handler is None:
            return await dialog_context.end_dialog()
        answer = result if isinstance(result, dict) else {}
        data = answer.get("data")
        return await handler(self, dialog_context, self._state_type.from_dict(stored), str(answer.get("verb") or ""),
                             data if isinstance(data, dict) else {})

    async def _start(self, dc: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        raise NotImplementedError

    async def _ask(self, dc: DialogContext, state: S, awaiting: str, card: dict[str, Any],
                   verbs: list[Verb]) -> DialogTurnResult:
        """Send `card`; its answer goes to the handler of the state `awaiting`, with `state` as stored now."""
        assert awaiting in self.STATES, f"{type(self).__name__} has no state {awaiting!r}"
        dc.active_dialog.state = {**state.to_dict(), _AWAITING: awaiting}
        return await dc.begin_dialog(AwaitCard.ID, {"card": card, "verbs": verbs})

    @staticmethod
    def _info(dc: DialogContext) -> TurnInfo:
        return turn_info(dc.context)

    def _now(self) -> datetime:
        return self._services.clock.now()

    async def _say(self, dc: DialogContext, text: str) -> None:
        await dc.context.send_activity(text)

    async def _send_card(self, dc: DialogContext, card: dict[str, Any]) -> None:
        await dc.context.send_activity(card_message(card))
