"""The activities Microsoft Teams posts to a bot, built as Teams builds them, and how Teams reads the answers.

One person in a personal chat with the bot is an `Identity`; every builder takes one and the `serviceUrl`
where the bot must send its replies (the connector stand-in's). Card actions are sent as Teams sends them:
Action.Submit as a message whose `value` holds the action's data and the inputs (`submit_payload`),
Action.Execute as an `adaptiveCard/action` invoke (`execute_value`) whose HTTP answer Teams reads
(`interpret_invoke_response`). Nothing here does I/O: the tests, the benchmarks and `guichet chat` post
what these functions build.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

# Where the Teams client the tools play is; dates and times in cards are shown in this zone too.
CLIENT_TIMEZONE = "Europe/Brussels"

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
HERO_CARD = "application/vnd.microsoft.card.hero"
THUMBNAIL_CARD = "application/vnd.microsoft.card.thumbnail"
FILE_CONSENT_CARD = "application/vnd.microsoft.teams.card.file.consent"
FILE_INFO_CARD = "application/vnd.microsoft.teams.card.file.info"
INVOKE_MESSAGE = "application/vnd.microsoft.activity.message"
INVOKE_ERROR = "application/vnd.microsoft.error"
INVOKE_LOGIN = "application/vnd.microsoft.activity.loginRequest"


@dataclass(frozen=True)
class Identity:
    """The Teams user being played, and their personal chat with the bot."""

    role: str
    user_id: str
    aad_object_id: str
    name: str
    tenant_id: str
    conversation_id: str
    bot_id: str
    bot_name: str = "Guichet"
    locale: str = "fr-BE"
    timezone: str = CLIENT_TIMEZONE

    @property
    def country(self) -> str:
        parts = self.locale.split("-")
        return parts[1].upper() if len(parts) > 1 else ""

    @property
    def email(self) -> str:
        local = re.sub(r"[^a-z0-9]+", ".", self.name.lower()).strip(".")
        return f"{local}@example.test"

    def account(self) -> dict[str, Any]:
        """The user as the connector's member APIs describe a Teams account."""
        given, _, surname = self.name.partition(" ")
        return {
            "id": self.user_id,
            "name": self.name,
            "aadObjectId": self.aad_object_id,
            "givenName": given,
            "surname": surname,
            "email": self.email,
            "userPrincipalName": self.email,
            "tenantId": self.tenant_id,
            "userRole": "user",
        }


class _ActivityIds:
    """Teams message ids are millisecond timestamps; keep them unique within the process."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns() // 1_000_000)
            return str(self._last)


_IDS = _ActivityIds()


def new_activity_id() -> str:
    """A message id as Teams gives one (for what the user sends, and what the connector accepts)."""
    return _IDS.next()


def _utc_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_activity(
    identity: Identity,
    service_url: str,
    kind: str = "message",
    *,
    activity_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The fields every activity from `identity`'s personal chat carries; the builders below add the rest."""
    moment = now or datetime.now(UTC)
    return {
        "type": kind,
        "id": activity_id or _IDS.next(),
        "timestamp": _utc_stamp(moment),
        "localTimestamp": moment.astimezone(ZoneInfo(identity.timezone)).isoformat(timespec="milliseconds"),
        "localTimezone": identity.timezone,
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": {"id": identity.user_id, "name": identity.name, "aadObjectId": identity.aad_object_id},
        "conversation": {
            "conversationType": "personal",
            "tenantId": identity.tenant_id,
            "id": identity.conversation_id,
        },
        "recipient": {"id": identity.bot_id, "name": identity.bot_name},
        "entities": [
            {
                "type": "clientInfo",
                "locale": identity.locale,
                "country": identity.country,
                "platform": "Windows",
                "timezone": identity.timezone,
            }
        ],
        "channelData": {"tenant": {"id": identity.tenant_id}},
        "locale": identity.locale,
    }


def _reply_fields(activity: dict[str, Any], reply_to_id: str | None) -> None:
    # Teams marks actions taken on a card with the card's message id, twice.
    if reply_to_id:
        activity["replyToId"] = reply_to_id
        activity["channelData"]["source"] = {"name": "message"}
        activity["channelData"]["legacy"] = {"replyToId": reply_to_id}


def build_message(
    identity: Identity,
    service_url: str,
    *,
    text: str | None = None,
    value: Any = None,
    reply_to_id: str | None = None,
    activity_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A message activity: typed text, or a card submit (`value`, no text, `replyToId` = the card)."""
    activity = build_activity(identity, service_url, "message", activity_id=activity_id, now=now)
    if text is not None:
        activity["text"] = text
        activity["textFormat"] = "plain"
    if value is not None:
        activity["value"] = value
    _reply_fields(activity, reply_to_id)
    return activity


def build_invoke(
    identity: Identity,
    service_url: str,
    *,
    name: str,
    value: Any,
    reply_to_id: str | None = None,
    activity_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """An invoke activity (`adaptiveCard/action`, `fileConsent/invoke`): the bot answers in the HTTP body."""
    activity = build_activity(
        identity, service_url, "invoke", activity_id=activity_id or f"f:{uuid.uuid4()}", now=now
    )
    activity["name"] = name
    activity["value"] = value
    _reply_fields(activity, reply_to_id)
    return activity


def build_conversation_update(
    identity: Identity, service_url: str, *, activity_id: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """What Teams posts when the app is installed in a personal chat: the bot joined the conversation."""
    activity = build_activity(
        identity, service_url, "conversationUpdate", activity_id=activity_id or f"f:{uuid.uuid4()}", now=now
    )
    activity["membersAdded"] = [{"id": identity.bot_id}]
    return activity


def build_installation_update(
    identity: Identity,
    service_url: str,
    *,
    action: str = "add",
    activity_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """What Teams posts when the person adds (`action="add"`) or removes the app."""
    activity = build_activity(
        identity, service_url, "installationUpdate", activity_id=activity_id or f"f:{uuid.uuid4()}", now=now
    )
    activity["action"] = action
    return activity


class CardActionFields(Protocol):
    """What Teams reads of a card action to send it (the terminal client's CardAction has these)."""

    @property
    def data(self) -> Any: ...

    @property
    def verb(self) -> str | None: ...

    @property
    def action_id(self) -> str | None: ...


def _action_fields(action: CardActionFields | Mapping[str, Any]) -> tuple[str | None, str | None, Any]:
    """(id, verb, data) of an action, read from the card's JSON or from the terminal client's CardAction."""
    if isinstance(action, Mapping):
        return action.get("id"), action.get("verb"), action.get("data")
    return action.action_id, action.verb, action.data


def _with_inputs(data: Any, inputs: Mapping[str, Any]) -> Any:
    # The renderers copy object data and add the inputs over it; non-object data is sent as it is.
    if data is None:
        return dict(inputs)
    if isinstance(data, Mapping):
        return {**data, **inputs}
    return data


def submit_payload(
    action: CardActionFields | Mapping[str, Any], inputs: Mapping[str, Any]
) -> tuple[str | None, Any]:
    """(text, value) of the message Teams sends for an Action.Submit; honours msteams imBack/messageBack."""
    _, _, data = _action_fields(action)
    msteams = data.get("msteams") if isinstance(data, Mapping) else None
    if isinstance(msteams, Mapping):
        kind = msteams.get("type")
        if kind == "imBack":
            return str(msteams.get("value", "")), None
        if kind == "messageBack":
            value = msteams.get("value")
            if isinstance(value, str):
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            merged = _with_inputs(value, inputs) if value is not None or inputs else None
            return msteams.get("text"), merged
    return None, _with_inputs(data, inputs)


def execute_value(
    action: CardActionFields | Mapping[str, Any], inputs: Mapping[str, Any], *, trigger: str = "manual"
) -> dict[str, Any]:
    """The `value` of the `adaptiveCard/action` invoke Teams sends for an Action.Execute.

    `action` is the action as the card declares it (its JSON object) or as the terminal client read it.
    """
    action_id, verb, data = _action_fields(action)
    invoke_action: dict[str, Any] = {"type": "Action.Execute"}
    if action_id:
        invoke_action["id"] = action_id
    if verb is not None:
        invoke_action["verb"] = verb
    invoke_action["data"] = _with_inputs(data, inputs)
    return {"action": invoke_action, "trigger": trigger}


def adaptive_cards(activity: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Adaptive Cards an activity carries as attachments, in order."""
    return [
        attachment["content"]
        for attachment in activity.get("attachments") or []
        if isinstance(attachment, Mapping)
        and attachment.get("contentType") == ADAPTIVE_CARD
        and isinstance(attachment.get("content"), dict)
    ]


@dataclass(frozen=True)
class InvokeOutcome:
    """What Teams does with the HTTP answer to an invoke."""

    kind: str  # "card", "message", "error", "login", "empty", "http_error"
    card: dict[str, Any] | None = None
    text: str = ""


def interpret_invoke_response(status: int, body: Any) -> InvokeOutcome:
    if status >= 300:
        return InvokeOutcome("http_error", text=f"HTTP {status}")
    if not isinstance(body, Mapping):
        return InvokeOutcome("empty", text="no invoke response body; Teams would show an error on the card")
    kind = body.get("type")
    value = body.get("value")
    if kind == ADAPTIVE_CARD and isinstance(value, dict):
        return InvokeOutcome("card", card=value)
    if kind == INVOKE_MESSAGE:
        return InvokeOutcome("message", text=str(value if value is not None else ""))
    if kind == INVOKE_ERROR:
        detail = value if isinstance(value, Mapping) else {}
        return InvokeOutcome(
            "error", text=f"{detail.get('code', 'error')}: {detail.get('message', '')}".strip()
        )
    if kind == INVOKE_LOGIN:
        return InvokeOutcome("login", text="the bot asks the user to sign in")
    return InvokeOutcome("empty", text=f"unexpected invoke response {json.dumps(body)[:200]}")
