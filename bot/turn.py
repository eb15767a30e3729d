"""What one turn needs to know, read once from the Teams activity: identity, language, card action."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ActivityTypes

from bot.domain.channels import CHOSEN_KEY, CHOSEN_MAX_LENGTH, is_web
from bot.domain.json_parts import json_object, object_at
from bot.domain.people import TeamsIdentity
from bot.i18n import LANGUAGES, language_of
from bot.services.staff import StaffMember

TURN_INFO_KEY = "guichet.turn"
# Set in TurnInfo.extras by a dialog that erased the person: their conversation state is deleted at
# the end of the turn instead of saved, and their cached identity forgotten (next turn starts afresh).
FORGET_PERSON = "guichet.forget_person"


@dataclass(frozen=True)
class CardAction:
    """A card button press, whether it came as Action.Execute (invoke) or Action.Submit (message value)."""

    verb: str
    data: dict[str, Any]
    via_invoke: bool


@dataclass
class TurnInfo:
    identity: TeamsIdentity
    language: str
    citizen_id: str | None = None
    # On the agency's website: whether the conversation proved who the citizen is (a manage link, the agency's
    # sign-in). False: the anonymous citizen of this conversation, who sees only what it did here. None: Teams.
    web_proof: bool | None = None
    # Set when the person is one of the agency's counselors or supervisors (no citizen record then).
    staff: StaffMember | None = None
    action: CardAction | None = None
    # A card to return in the invoke response, replacing the card whose button was pressed.
    refreshed_card: dict[str, Any] | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def identity_of(activity: Activity) -> TeamsIdentity:
    sender = activity.from_property
    tenant = object_at(json_object(activity.channel_data), "tenant")
    tenant_id = tenant.get("id") if isinstance(tenant.get("id"), str) else None
    return TeamsIdentity(
        tenant_id=tenant_id,
        aad_object_id=getattr(sender, "aad_object_id", None) or None,
        teams_user_id=getattr(sender, "id", None) or "",
    )


def locale_of(activity: Activity) -> str | None:
    """The activity's locale, else the Teams clientInfo entity's."""
    if activity.locale:
        return activity.locale
    for entity in activity.entities or []:
        props = entity.additional_properties if hasattr(entity, "additional_properties") else {}
        if getattr(entity, "type", None) == "clientInfo" and isinstance(props.get("locale"), str):
            return props["locale"]
    return None


def timezone_of(activity: Activity) -> str | None:
    """The IANA time zone of the person's Teams client ("America/New_York"), from its clientInfo entity."""
    for entity in activity.entities or []:
        props = entity.additional_properties if hasattr(entity, "additional_properties") else {}
        if getattr(entity, "type", None) == "clientInfo" and isinstance(props.get("timezone"), str):
            return props["timezone"][:64]
    return None


def pick_language(locale: str | None, stored: str | None, agency_default: str) -> str:
    """Interface language: the Teams locale, then what we knew of the person, then the agency's first."""
    return language_of(locale, LANGUAGES) or language_of(stored, LANGUAGES) or agency_default


def card_action_of(activity: Activity) -> CardAction | None:
    """The card action carried by an invoke (Action.Execute) or a message value (Action.Submit)."""
    if activity.type == ActivityTypes.invoke and activity.name == "adaptiveCard/action":
        action = json_object(json_object(activity.value).get("action"))
        data = json_object(action.get("data"))
        verb = action.get("verb") if isinstance(action.get("verb"), str) else data.get("verb")
        return CardAction(verb=verb if isinstance(verb, str) else "", data=data, via_invoke=True)
    if activity.type == ActivityTypes.message and isinstance(activity.value, dict):
        verb = activity.value.get("verb")
        # The pressed button's title (web Submits, see chosen_title) is for the echo, not for the flows.
        data = {key: value for key, value in activity.value.items() if key != CHOSEN_KEY}
        return CardAction(verb=verb if isinstance(verb, str) else "", data=data, via_invoke=False)
    return None


def chosen_title(activity: Activity) -> str | None:
    """The title of the button a web visitor pressed (carried in its Submit's data, cards.verbs.execute_action),
    as one short line of plain text; None outside the web or for a button that carries none.

    Teams replaces a pressed card with its answer; on the website the card stays as it was, so the bot
    says back what was chosen. The title comes from the client and may have been tampered with: only a
    string, its control characters and line breaks turned into spaces, cut to CHOSEN_MAX_LENGTH.
    """
    if activity.type != ActivityTypes.message or not is_web(activity.channel_id):
        return None
    title = activity.value.get(CHOSEN_KEY) if isinstance(activity.value, dict) else None
    if not isinstance(title, str):
        return None
    line = " ".join("".join(" " if not char.isprintable() else char for char in title[:1000]).split())
    return line[:CHOSEN_MAX_LENGTH] or None


def turn_info(context: TurnContext) -> TurnInfo:
    info = context.turn_state.get(TURN_INFO_KEY)
    if info is None:
        raise RuntimeError("turn info is set by TeamsBot.on_turn before any dialog runs")
    return info
