"""The Teams activity handler: remembers who is talking and where, then hands the turn to the dialogs."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from botbuilder.core import ConversationState, InvokeResponse, TurnContext
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.dialogs import Dialog, DialogSet, DialogTurnStatus
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    ChannelAccount,
    TextFormatTypes,
)

from bot.activity_json import serialize
from bot.adapter import Outbox
from bot.domain.agency import Agency
from bot.domain.channels import is_web, set_reader_channel
from bot.domain.json_parts import json_object
from bot.domain.people import CLIENT_TIMEZONE_KEY, TeamsIdentity
from bot.i18n import t
from bot.replies import card_invoke_response, card_message
from bot.services.people import WebVisit
from bot.services.staff import StaffMember
from bot.turn import (
    FORGET_PERSON,
    TURN_INFO_KEY,
    CardAction,
    TurnInfo,
    card_action_of,
    chosen_title,
    identity_of,
    locale_of,
    pick_language,
    timezone_of,
)
from cards.booking import build_pressed_note_card
from cards.formatting import set_client_zone
from cards.staff import build_staff_welcome_card
from cards.welcome import build_welcome_card

log = logging.getLogger(__name__)

# The event Bot Framework Web Chat sends once connected (deployment/webchat/chat.js), with the page's language.
WEB_CHAT_JOIN = "webchat/join"


class StaffDirectory(Protocol):
    """Tells the agency's staff apart and remembers their chats (bot.services.staff.StaffService)."""

    def member(self, object_id: str | None) -> StaffMember | None: ...

    async def remember_chat(self, identity: TeamsIdentity, reference: dict[str, Any],
                            locale: str | None) -> str | None: ...


class PressAnswer(Protocol):
    """The card that answers an Action.Execute whose dialog left the pressed card alone
    (dialogs.press_answer.PressedCardAnswer)."""

    async def __call__(self, context: TurnContext) -> dict[str, Any]: ...


class PeopleDirectory(Protocol):
    """Remembers each person's Teams conversation, so reminders can reach them later."""

    async def touch(
        self, identity: TeamsIdentity, *, conversation_reference: dict[str, Any], locale: str | None
    ) -> tuple[str, str | None]:
        """Record the person's latest conversation; return (citizen id, stored locale)."""
        ...

    def forget(self, identity_key: str, citizen_id: str | None = None) -> None:
        """Drop what is remembered of the person (after erasure)."""
        ...

    async def touch_web(
        self, user_id: str, conversation_id: str, *, conversation_reference: dict[str, Any], locale: str | None,
        visitor_acted: bool,
    ) -> WebVisit:
        """Who a Web Chat turn is: the conversation's proven citizen, else its anonymous one."""
        ...


class TeamsBot(TeamsActivityHandler):
    def __init__(
        self,
        *,
        agency: Agency,
        conversation_state: ConversationState,
        dialog: Dialog,
        people: PeopleDirectory,
        staff: StaffDirectory | None = None,
        staff_dialog: Dialog | None = None,
        answer_press: PressAnswer | None = None,
    ) -> None:
        self._agency = agency
        self._answer_press = answer_press
        self._conversation_state = conversation_state
        self._dialog = dialog
        # Counselors and supervisors talk to their own root dialog (their day, their reports).
        self._staff_dialog = staff_dialog
        # Built once: the SDK's DialogExtensions.run_dialog rebuilds a DialogSet and loads every
        # memory scope on each turn, which we do not use.
        self._dialogs = DialogSet(conversation_state.create_property("DialogState"))
        self._dialogs.add(dialog)
        if staff_dialog is not None:
            self._dialogs.add(staff_dialog)
        self._people = people
        self._staff = staff

    async def on_turn(self, turn_context: TurnContext) -> None:
        # Replies wait until the conversation state is saved (bot.adapter.Outbox): if the turn fails
        # before, nothing it meant to say is said; if they cannot be sent after, the save is undone.
        # Either way the person's last card stays the live one, and pressing it again works.
        outbox = Outbox.start(turn_context)
        # Cards and wording follow the channel this turn is read on (Teams, or the agency's website).
        set_reader_channel(turn_context.activity.channel_id)
        try:
            saved = await self._turn(turn_context)
        except BaseException:
            outbox.discard()
            raise
        try:
            await outbox.flush()
        except Exception:
            undo = getattr(self._conversation_state, "undo_save", None)
            if saved and undo is not None:
                await undo(turn_context)
            raise

    async def _turn(self, turn_context: TurnContext) -> bool:
        """The turn up to its saved state; False when the state was deleted instead of saved."""
        activity = turn_context.activity
        if activity.type in (ActivityTypes.message, ActivityTypes.invoke, ActivityTypes.installation_update) or (
                activity.type == ActivityTypes.conversation_update and not is_web(activity.channel_id)):
            # Not for a web page that merely connected (Direct Line's conversationUpdate): a visitor who
            # says nothing leaves no trace; the page's webchat/join event greets (on_event_activity).
            await self._prepare_turn(turn_context)
        await super().on_turn(turn_context)
        info = turn_context.turn_state.get(TURN_INFO_KEY)
        if isinstance(info, TurnInfo) and info.extras.get(FORGET_PERSON):
            await self._conversation_state.load(turn_context)
            await self._conversation_state.delete(turn_context)
            self._people.forget(info.identity.key, info.citizen_id)
            return False
        await self._conversation_state.save_changes(turn_context)
        return True

    async def _prepare_turn(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        identity = identity_of(activity)
        locale = locale_of(activity)
        reference = serialize(TurnContext.get_conversation_reference(activity))
        if identity.tenant_id and isinstance(reference.get("conversation"), dict):
            # botbuilder drops conversation.tenantId; proactive messages (rate limits per tenant) and new
            # conversations need it, so the stored reference carries it.
            reference["conversation"]["tenantId"] = identity.tenant_id
        zone = timezone_of(activity)
        # This turn's cards name the agency's zone when the client's clock differs; kept with the chat
        # so that reminders sent later do too.
        set_client_zone(zone)
        if zone:
            reference[CLIENT_TIMEZONE_KEY] = zone
        if is_web(activity.channel_id):
            await self._prepare_web_turn(turn_context, identity, reference, locale)
            return
        member = self._staff.member(identity.aad_object_id) if self._staff is not None else None
        if member is not None:
            # Staff are not citizens: no citizen record, their chat is kept for the prompts.
            known = await self._staff.remember_chat(identity, reference, locale)  # type: ignore[union-attr]
            turn_context.turn_state[TURN_INFO_KEY] = TurnInfo(
                identity=identity, language=pick_language(locale, known, self._agency.default_language),
                staff=member, action=card_action_of(activity))
            return
        citizen_id, stored_locale = await self._people.touch(
            identity, conversation_reference=reference, locale=locale
        )
        turn_context.turn_state[TURN_INFO_KEY] = TurnInfo(
            identity=identity,
            language=pick_language(locale, stored_locale, self._agency.default_language),
            citizen_id=citizen_id,
            action=card_action_of(activity),
        )

    async def _prepare_web_turn(self, turn_context: TurnContext, identity: TeamsIdentity,
                                reference: dict[str, Any], locale: str | None) -> None:
        """A turn from the agency's website. A page says what it likes in `from` and `channelData`, so no
        tenant, Entra object id or staff role is read from them: the conversation is its proven citizen or
        the anonymous citizen of this conversation, made when the visitor first writes or presses."""
        activity = turn_context.activity
        web_identity = TeamsIdentity(tenant_id=None, aad_object_id=None, teams_user_id=identity.teams_user_id)
        if isinstance(reference.get("conversation"), dict):
            reference["conversation"].pop("tenantId", None)
        conversation_id = activity.conversation.id if activity.conversation is not None else ""
        visit = await self._people.touch_web(
            web_identity.teams_user_id, conversation_id or "", conversation_reference=reference, locale=locale,
            visitor_acted=activity.type in (ActivityTypes.message, ActivityTypes.invoke))
        turn_context.turn_state[TURN_INFO_KEY] = TurnInfo(
            identity=web_identity,
            language=pick_language(locale, visit.locale, self._agency.default_language),
            citizen_id=visit.citizen_id, web_proof=visit.proven, action=card_action_of(activity),
        )

    async def _run_dialog(self, turn_context: TurnContext) -> None:
        dialog_context = await self._dialogs.create_context(turn_context)
        result = await dialog_context.continue_dialog()
        if result.status == DialogTurnStatus.Empty:
            await dialog_context.begin_dialog(self._root(turn_context).id)

    def _root(self, turn_context: TurnContext) -> Dialog:
        info = turn_context.turn_state.get(TURN_INFO_KEY)
        staff = isinstance(info, TurnInfo) and info.staff is not None
        return self._staff_dialog if staff and self._staff_dialog is not None else self._dialog

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        chosen = chosen_title(turn_context.activity)
        if chosen is not None:
            # On the web the pressed card stays as it was (Teams would replace it): say what was chosen
            # first, as plain text (the title came from the client), before the answer.
            info: TurnInfo = turn_context.turn_state[TURN_INFO_KEY]
            await turn_context.send_activity(Activity(
                type=ActivityTypes.message, text=t(info.language, "conversation.you_chose", choice=chosen),
                text_format=TextFormatTypes.plain))
        await self._run_dialog(turn_context)

    async def on_event_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        if activity.name == WEB_CHAT_JOIN and is_web(activity.channel_id):
            await self._greet_web_visitor(turn_context)
            return
        await super().on_event_activity(turn_context)

    async def _greet_web_visitor(self, turn_context: TurnContext) -> None:
        """The citizen's welcome when the agency's web page opens the chat, in the page's language.

        Nothing is looked up or stored: a visitor who leaves without a word leaves no citizen record
        (their first message or button does what any turn does)."""
        activity = turn_context.activity
        page_language = json_object(activity.value).get("language")
        language = pick_language(page_language if isinstance(page_language, str) else None,
                                 locale_of(activity), self._agency.default_language)
        await turn_context.send_activity(card_message(build_welcome_card(self._agency, language)))

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse | None:
        if turn_context.activity.name != "adaptiveCard/action":
            return await super().on_invoke_activity(turn_context)
        # Universal Actions run through the same dialogs as Action.Submit; the dialog may leave a
        # refreshed card behind, which replaces the pressed one so it cannot be used twice.
        # (Handled here rather than in on_adaptive_card_invoke: botbuilder 4.17 serializes that
        # method's result twice under CloudAdapter and answers 500.)
        await self._run_dialog(turn_context)
        info: TurnInfo = turn_context.turn_state[TURN_INFO_KEY]
        card = info.refreshed_card
        if card is None:
            # Never an empty message, which Teams shows as an empty banner on the card: a card (the
            # pressed one as it stands now where it names itself, else a pointer to the answer below).
            card = await self._answer_press(turn_context) if self._answer_press is not None \
                else build_pressed_note_card(info.language)
        # A plain dict: bot.app writes the body as JSON as it stands.
        return card_invoke_response(card)

    async def on_teams_file_consent(self, turn_context: TurnContext, file_consent_card_response: Any) -> InvokeResponse:
        # The answer to a file the bot offered (FileConsentCard) whose context names a verb runs through
        # the dialogs like a card action, with the answer and the upload address as data (the privacy
        # export). Other offers go to on_teams_file_consent_accept / _decline.
        value = json_object(turn_context.activity.value)
        context = json_object(value.get("context"))
        verb = context.get("verb")
        if not isinstance(verb, str) or not verb:
            return await super().on_teams_file_consent(turn_context, file_consent_card_response)
        info: TurnInfo = turn_context.turn_state[TURN_INFO_KEY]
        info.action = CardAction(
            verb=verb,
            data={**context, "file_action": value.get("action"), "upload_info": value.get("uploadInfo")},
            via_invoke=True,
        )
        await self._run_dialog(turn_context)
        return InvokeResponse(status=200)

    async def on_members_added_activity(
        self, members_added: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        if is_web(turn_context.activity.channel_id):
            # Direct Line adds the bot and the visitor when the page connects: the page's webchat/join
            # event greets, in the page's language (on_event_activity).
            return
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
        if info.staff is not None:
            card = build_staff_welcome_card(info.language, name=info.staff.display_name,
                                            supervisor=info.staff.supervisor)
        else:
            card = build_welcome_card(self._agency, info.language)
        await turn_context.send_activity(card_message(card))
