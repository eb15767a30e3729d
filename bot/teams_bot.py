"""The Teams activity handler: remembers who is talking and where, then hands the turn to the dialogs."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from botbuilder.core import ConversationState, InvokeResponse, MessageFactory, TurnContext
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.dialogs import Dialog, DialogSet, DialogTurnStatus
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    AdaptiveCardInvokeResponse,
    Attachment,
    ChannelAccount,
)

from bot.domain.agency import Agency
from bot.turn import (
    TURN_INFO_KEY,
    TeamsIdentity,
    TurnInfo,
    card_action_of,
    identity_of,
    locale_of,
    pick_language,
)
from cards.welcome import build_welcome_card

log = logging.getLogger(__name__)

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


class PeopleDirectory(Protocol):
    """Remembers each person's Teams conversation, so reminders can reach them later."""

    async def touch(
        self, identity: TeamsIdentity, *, conversation_reference: dict[str, Any], locale: str | None
    ) -> tuple[str, str | None]:
        """Record the person's latest conversation; return (citizen id, stored locale)."""
        ...


def card_attachment(card: dict[str, Any]) -> Attachment:
    return Attachment(content_type=ADAPTIVE_CARD, content=card)


def card_message(card: dict[str, Any]) -> Activity:
    return MessageFactory.attachment(card_attachment(card))


class TeamsBot(TeamsActivityHandler):
    def __init__(
        self,
        *,
        agency: Agency,
        conversation_state: ConversationState,
        dialog: Dialog,
        people: PeopleDirectory,
    ) -> None:
        self._agency = agency
        self._conversation_state = conversation_state
        self._dialog = dialog
        # Built once: the SDK's DialogExtensions.run_dialog rebuilds a DialogSet and loads every
        # memory scope on each turn, which we do not use.
        self._dialogs = DialogSet(conversation_state.create_property("DialogState"))
        self._dialogs.add(dialog)
        self._people = people

    async def on_turn(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        if activity.type in (ActivityTypes.message, ActivityTypes.invoke,
                             ActivityTypes.conversation_update, ActivityTypes.installation_update):
            await self._prepare_turn(turn_context)
        await super().on_turn(turn_context)
        await self._conversation_state.save_changes(turn_context)

    async def _prepare_turn(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        identity = identity_of(activity)
        locale = locale_of(activity)
        reference = TurnContext.get_conversation_reference(activity).serialize()
        citizen_id, stored_locale = await self._people.touch(
            identity, conversation_reference=reference, locale=locale
        )
        turn_context.turn_state[TURN_INFO_KEY] = TurnInfo(
            identity=identity,
            language=pick_language(locale, stored_locale, self._agency.default_language),
            citizen_id=citizen_id,
            action=card_action_of(activity),
        )

    async def _run_dialog(self, turn_context: TurnContext) -> None:
        dialog_context = await self._dialogs.create_context(turn_context)
        result = await dialog_context.continue_dialog()
        if result.status == DialogTurnStatus.Empty:
            await dialog_context.begin_dialog(self._dialog.id)

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        await self._run_dialog(turn_context)

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse | None:
        if turn_context.activity.name != "adaptiveCard/action":
            return await super().on_invoke_activity(turn_context)
        # Universal Actions run through the same dialogs as Action.Submit; the dialog may leave a
        # refreshed card behind, which replaces the pressed one so it cannot be used twice.
        # (Handled here rather than in on_adaptive_card_invoke: botbuilder 4.17 serializes that
        # method's result twice under CloudAdapter and answers 500.)
        await self._run_dialog(turn_context)
        info: TurnInfo = turn_context.turn_state[TURN_INFO_KEY]
        if info.refreshed_card is not None:
            body = AdaptiveCardInvokeResponse(status_code=200, type=ADAPTIVE_CARD, value=info.refreshed_card)
        else:
            body = AdaptiveCardInvokeResponse(
                status_code=200, type="application/vnd.microsoft.activity.message", value=""
            )
        return InvokeResponse(status=200, body=body)

    async def on_members_added_activity(
        self, members_added: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        bot_id = turn_context.activity.recipient.id if turn_context.activity.recipient else None
        # Teams announces the bot's own arrival in a personal chat: that is the moment to greet.
        if any(member.id == bot_id for member in members_added):
            await self._welcome(turn_context)

    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        # Teams sends both installationUpdate and conversationUpdate on install; greet once, on the
        # conversationUpdate. The conversation reference is already stored by _prepare_turn.
        return

    async def _welcome(self, turn_context: TurnContext) -> None:
        info: TurnInfo = turn_context.turn_state[TURN_INFO_KEY]
        await turn_context.send_activity(card_message(build_welcome_card(self._agency, info.language)))
