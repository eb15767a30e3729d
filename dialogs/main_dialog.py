"""The root dialog: routes commands and menu buttons to feature dialogs, and handles interruptions.

Features register their dialogs and entry points in one table (`Feature`), so the whole
conversation map reads in one place: `build_main_dialog`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from botbuilder.dialogs import (
    ComponentDialog,
    Dialog,
    DialogContext,
    DialogReason,
    DialogTurnResult,
    DialogTurnStatus,
)
from botbuilder.schema import ActivityTypes

from bot.commands import Intent, recognize
from bot.domain.agency import Agency
from bot.domain.web_identity import tell_how_to_prove
from bot.i18n import t
from bot.replies import card_message
from bot.turn import turn_info
from cards.verbs import Verb
from cards.web_identity import build_proof_needed_card
from cards.welcome import build_help_card, build_welcome_card
from dialogs.await_card import AwaitCard

CONSENT_GATE = "consent_gate"


@dataclass(frozen=True)
class Entry:
    """Where a command or a menu button leads, and whether consent must be current first."""

    dialog_id: str
    needs_consent: bool = False
    # What the consent gate checks (bot.domain.consent.Purpose); None: the strictest (booking).
    purpose: str | None = None
    # A way in to what the citizen may have done outside this conversation (their list, their data, a privacy
    # right): on the agency's website a conversation that proved nothing is first told how to reach the rest,
    # then shown what it did itself (bot.domain.web_identity.tell_how_to_prove).
    needs_proof: bool = False


@dataclass
class Feature:
    dialogs: list[Dialog] = field(default_factory=list)
    intents: dict[Intent, Entry] = field(default_factory=dict)
    verbs: dict[str, Entry] = field(default_factory=dict)


class RouteDialog(Dialog):
    """One routing of a turn: starts the flow it leads to and ends with that flow's result."""

    ID = "main.route"

    def __init__(self, route: Callable[[DialogContext], Awaitable[DialogTurnResult]]) -> None:
        super().__init__(self.ID)
        self._route = route

    async def begin_dialog(self, dialog_context: DialogContext, options: Any = None) -> DialogTurnResult:
        return await self._route(dialog_context)

    async def resume_dialog(self, dialog_context: DialogContext, reason: DialogReason,
                            result: object = None) -> DialogTurnResult:
        return await dialog_context.end_dialog(result)


class MainDialog(ComponentDialog):
    ID = "main"

    def __init__(self, agency: Agency, features: list[Feature], *, web_sign_in: bool = False) -> None:
        super().__init__(self.ID)
        self._agency = agency
        self._web_sign_in = web_sign_in
        self._intents: dict[Intent, Entry] = {}
        self._verbs: dict[str, Entry] = {}
        self.add_dialog(AwaitCard())
        for feature in features:
            for dialog in feature.dialogs:
                self.add_dialog(dialog)
            self._intents.update(feature.intents)
            self._verbs.update(feature.verbs)
        self._has_consent_gate = any(d.id == CONSENT_GATE for f in features for d in f.dialogs)
        self.add_dialog(RouteDialog(self._route))
        self.initial_dialog_id = RouteDialog.ID

    async def on_continue_dialog(self, inner_dc: DialogContext) -> DialogTurnResult:
        interrupted = await self._interrupt(inner_dc)
        if interrupted is not None:
            return interrupted
        return await super().on_continue_dialog(inner_dc)

    async def _interrupt(self, inner_dc: DialogContext) -> DialogTurnResult | None:
        """Help, stop and start over work at any step; a menu button or command starts its flow."""
        context = inner_dc.context
        info = turn_info(context)
        if info.action is not None:
            if info.action.verb == Verb.MENU_HELP:
                # As the typed "help": the card, and the flow under way goes on.
                await context.send_activity(card_message(build_help_card(self._agency, info.language)))
                return DialogTurnResult(DialogTurnStatus.Waiting)
            entry = self._verbs.get(info.action.verb)
            if entry is None:
                return None
            await inner_dc.cancel_all_dialogs()
            return await inner_dc.begin_dialog(RouteDialog.ID)
        if context.activity.type != ActivityTypes.message:
            return None
        intent = recognize(context.activity.text, exact=True)
        if intent is None:
            return None
        if intent is Intent.HELP:
            await context.send_activity(card_message(build_help_card(self._agency, info.language)))
            return DialogTurnResult(DialogTurnStatus.Waiting)
        await inner_dc.cancel_all_dialogs()
        # Mid-flow, "cancel" means "stop what we are doing", not "cancel an appointment".
        if intent in (Intent.STOP, Intent.CANCEL_APPOINTMENT):
            await context.send_activity(t(info.language, "conversation.stopped"))
            return DialogTurnResult(DialogTurnStatus.Complete)
        return await inner_dc.begin_dialog(RouteDialog.ID)

    async def _route(self, dc: DialogContext) -> DialogTurnResult:
        context = dc.context
        info = turn_info(context)
        entry: Entry | None = None
        options: dict[str, Any] = {}
        if info.action is not None:
            if info.action.verb == Verb.MENU_HELP:
                # The welcome card's Help button (a menu button, not a flow).
                await context.send_activity(card_message(build_help_card(self._agency, info.language)))
                return await dc.end_dialog()
            entry = self._verbs.get(info.action.verb)
            options = dict(info.action.data)
            if entry is None:
                # A button from a card whose conversation step is over.
                await context.send_activity(t(info.language, "conversation.stale_card"))
                return await dc.end_dialog()
        else:
            intent = recognize(context.activity.text)
            if intent in (Intent.STOP, Intent.START_OVER, Intent.HELLO):
                await context.send_activity(card_message(build_welcome_card(self._agency, info.language)))
                return await dc.end_dialog()
            entry = self._intents.get(intent) if intent is not None else None
            if entry is None:
                if intent is None and context.activity.text:
                    await context.send_activity(t(info.language, "conversation.not_understood"))
                await context.send_activity(card_message(build_help_card(self._agency, info.language)))
                return await dc.end_dialog()
        if tell_how_to_prove(web_proof=info.web_proof, needs_proof=entry.needs_proof):
            card = build_proof_needed_card(info.language, sign_in=self._web_sign_in)
            await context.send_activity(card_message(card))
        if entry.needs_consent and self._has_consent_gate:
            return await dc.begin_dialog(
                CONSENT_GATE, {"next": entry.dialog_id, "options": options, "purpose": entry.purpose}
            )
        return await dc.begin_dialog(entry.dialog_id, options)


def build_main_dialog(agency: Agency, features: list[Feature] | None = None, *,
                      web_sign_in: bool = False) -> MainDialog:
    """`web_sign_in`: the agency's website signs citizens in (the bot holds its public key), so the card for
    an unproven web conversation may point there."""
    return MainDialog(agency, features or [], web_sign_in=web_sign_in)

