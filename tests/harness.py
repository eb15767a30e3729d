"""Test harness: the Teams-channel stand-in of bot/devtools under the names the tests use, a Teams user.

Only the network boundary is faked: the bot under test is the real aiohttp app on a real port, and
it replies over HTTP to the `serviceUrl` the activity names, as it does in Teams. That `serviceUrl` is
bot/devtools' connector stand-in (`FakeConnector`), and every activity is built by bot/devtools'
builders, as `guichet chat` and the benchmarks build theirs.
"""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from bot.app import create_app
from bot.devtools.activities import (
    CLIENT_TIMEZONE,
    Identity,
    build_activity,
    build_conversation_update,
    build_installation_update,
    build_invoke,
    build_message,
    execute_value,
)
from bot.devtools.connector import ConnectorStandIn, Failure, Recorded
from bot.domain.agency import Agency
from bot.domain.clock import Clock
from bot.settings import Settings
from bot.wiring import Wiring
from storage.migrate import upgrade_database

__all__ = [
    "BOT_ID", "TENANT_ID", "Failure", "FakeConnector", "Recorded", "RunningBot", "TeamsUser", "WebUser",
    "action_with_verb",
    "actions_of", "card_nodes", "card_text", "free_port", "start_bot", "teams_activity",
]

BOT_ID = "28:guichet-test-bot"
TENANT_ID = "7e5b2c1a-0000-4000-8000-000000000001"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeConnector(ConnectorStandIn):
    """Plays the Bot Connector service (bot/devtools' stand-in): records replies, updates and new
    conversations, fails on demand (`fail_next`), waits for proactive messages (`wait_for`)."""

    @property
    def url(self) -> str:
        return self.service_url


def _person(*, user_id: str, aad_object_id: str, conversation_id: str, locale: str,
            tenant_id: str = TENANT_ID, timezone: str = CLIENT_TIMEZONE) -> Identity:
    return Identity(role="citizen", user_id=user_id, aad_object_id=aad_object_id, name="Test Citizen",
                    tenant_id=tenant_id, conversation_id=conversation_id, bot_id=BOT_ID, locale=locale,
                    timezone=timezone)


def teams_activity(
    *,
    service_url: str,
    conversation_id: str,
    user_id: str,
    aad_object_id: str,
    locale: str = "fr-BE",
    tenant_id: str = TENANT_ID,
    **fields: Any,
) -> dict[str, Any]:
    """A Teams-shaped activity in a personal chat, as the Teams channel posts it: a message, unless
    `fields` (set over the built activity) say otherwise."""
    person = _person(user_id=user_id, aad_object_id=aad_object_id, conversation_id=conversation_id,
                     locale=locale, tenant_id=tenant_id)
    activity = build_activity(person, service_url)
    activity.update(fields)
    return activity


class _Chatting:
    """What a person in one conversation does over HTTP, whichever channel: post an activity to the bot's
    /api/messages, read the replies the connector stand-in recorded for the conversation."""

    bot_url: str
    connector: FakeConnector
    http: aiohttp.ClientSession
    headers: dict[str, str]
    conversation_id: str

    async def post(self, activity: dict[str, Any]) -> tuple[int, Any]:
        async with self.http.post(f"{self.bot_url}/api/messages", json=activity, headers=self.headers) as resp:
            body = await resp.json() if resp.content_type == "application/json" else await resp.text()
            return resp.status, body

    def replies(self) -> list[Recorded]:
        return self.connector.messages_for(self.conversation_id)

    async def _turn(self, activity: dict[str, Any]) -> list[Recorded]:
        before = len(self.replies())
        status, body = await self.post(activity)
        assert status in (200, 201), (status, body)
        return self.replies()[before:]


@dataclass
class TeamsUser(_Chatting):
    """One person in one personal chat with the bot; each call is one real HTTP turn."""

    bot_url: str
    connector: FakeConnector
    http: aiohttp.ClientSession
    locale: str = "fr-BE"
    aad_object_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # The IANA zone the person's Teams client reports in its clientInfo entity.
    timezone: str = CLIENT_TIMEZONE
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.user_id = f"29:{self.aad_object_id}"
        self.conversation_id = f"a:{uuid.uuid4().hex}"
        # The connector then answers for this person as Teams does (their personal chat, their account).
        self.connector.add_person(self.identity)

    @property
    def identity(self) -> Identity:
        return _person(user_id=self.user_id, aad_object_id=self.aad_object_id,
                       conversation_id=self.conversation_id, locale=self.locale, timezone=self.timezone)

    def activity(self, **fields: Any) -> dict[str, Any]:
        return teams_activity(service_url=self.connector.url, conversation_id=self.conversation_id,
                              user_id=self.user_id, aad_object_id=self.aad_object_id, locale=self.locale,
                              **fields)

    async def install(self) -> list[Recorded]:
        """What Teams sends when the person adds the app: installationUpdate then conversationUpdate."""
        replies = await self._turn(build_installation_update(self.identity, self.connector.url))
        replies += await self._turn(build_conversation_update(self.identity, self.connector.url))
        return replies

    async def say(self, text: str) -> list[Recorded]:
        return await self._turn(build_message(self.identity, self.connector.url, text=text))

    async def submit(self, data: dict[str, Any], reply_to: str | None = None) -> list[Recorded]:
        """Action.Submit: a message whose value is the action's data plus the inputs; Teams names the pressed
        card's message in `replyToId` (`reply_to`)."""
        return await self._turn(build_message(self.identity, self.connector.url, value=data, reply_to_id=reply_to))

    async def execute(self, verb: str, data: dict[str, Any], reply_to: str | None = None) -> tuple[Any, list[Recorded]]:
        """Action.Execute: an adaptiveCard/action invoke; returns (invoke response body, replies)."""
        before = len(self.replies())
        status, body = await self.post(build_invoke(
            self.identity, self.connector.url, name="adaptiveCard/action",
            value=execute_value({"verb": verb, "data": data}, {}), reply_to_id=reply_to or "card-1",
        ))
        assert status == 200, (status, body)
        return body, self.replies()[before:]


@dataclass
class WebUser(_Chatting):
    """One visitor of the agency's website in one Web Chat conversation, as Azure's Direct Line channel
    posts their activities (channelId `webchat`, a `dl_` user id, no tenant, no Entra object id); each
    call is one real HTTP turn. The connector stand-in plays Direct Line's side the bot answers to.

    `user_id`: the id the token endpoint made (a bound one, to play a proven conversation);
    `conversation_id`: the Direct Line conversation (the one the token was made for)."""

    bot_url: str
    connector: FakeConnector
    http: aiohttp.ClientSession
    locale: str = "fr-BE"
    user_id: str = field(default_factory=lambda: "dl_" + uuid.uuid4().hex)
    conversation_id: str = field(default_factory=lambda: uuid.uuid4().hex[:22])
    channel_id: str = "webchat"
    headers: dict[str, str] = field(default_factory=dict)

    def activity(self, kind: str = "message", **fields: Any) -> dict[str, Any]:
        activity: dict[str, Any] = {
            "type": kind, "id": f"{self.conversation_id}|{uuid.uuid4().hex[:7]}", "channelId": self.channel_id,
            "serviceUrl": self.connector.url, "timestamp": datetime.now(UTC).isoformat(),
            "from": {"id": self.user_id, "name": "", "role": "user"},
            "conversation": {"id": self.conversation_id},
            "recipient": {"id": BOT_ID, "name": "Guichet", "role": "bot"},
            "locale": self.locale, "channelData": {"clientActivityID": uuid.uuid4().hex[:12]},
        }
        activity.update(fields)
        return activity

    async def open_page(self) -> list[Recorded]:
        """What Direct Line sends when Web Chat connects: a conversationUpdate adding the bot and the visitor."""
        members = [{"id": BOT_ID, "name": "Guichet"}, {"id": self.user_id, "name": ""}]
        return await self._turn(self.activity("conversationUpdate", membersAdded=members))

    async def join(self, language: str | None = None) -> list[Recorded]:
        """Web Chat's `webchat/join` event, which the example page sends with the page's language."""
        return await self._turn(self.activity("event", name="webchat/join",
                                              value={"language": language or self.locale}))

    async def say(self, text: str) -> list[Recorded]:
        return await self._turn(self.activity(text=text, textFormat="plain"))

    async def submit(self, data: dict[str, Any]) -> list[Recorded]:
        """Action.Submit as Web Chat sends it: a message with the action's data and the inputs as `value`,
        no text and no replyToId."""
        return await self._turn(self.activity(value=data))


def card_nodes(card: Any, *, prune: Callable[[dict[str, Any]], bool] = lambda _node: False
               ) -> Iterator[dict[str, Any]]:
    """Every JSON object of a card, in reading order (depth first); below a pruned one, nothing."""
    stack: list[Any] = [card]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(reversed(node))
        elif isinstance(node, dict):
            yield node
            if not prune(node):
                stack.extend(reversed(list(node.values())))


def _is_action(node: dict[str, Any]) -> bool:
    return node.get("type") in ("Action.Execute", "Action.Submit") and "title" in node


def actions_of(card: dict[str, Any]) -> list[dict[str, Any]]:
    """Every Submit/Execute action in a card, nested ones included, in reading order."""
    # Below an action is only its fallback: the same action for older clients.
    return [node for node in card_nodes(card, prune=_is_action) if _is_action(node)]


def action_with_verb(card: dict[str, Any], verb: str) -> dict[str, Any]:
    for action in actions_of(card):
        if action.get("verb") == verb or (action.get("data") or {}).get("verb") == verb:
            return action
    raise AssertionError(f"no action {verb!r} in card; have {[a.get('verb') for a in actions_of(card)]}")


def card_text(card: dict[str, Any]) -> str:
    """All visible and hidden text of a card, for assertions about what the person can read."""
    parts = [node[key] for node in card_nodes(card)
             for key in ("text", "title", "label", "placeholder", "value") if isinstance(node.get(key), str)]
    return "\n".join(parts)


@dataclass
class RunningBot:
    url: str
    app: web.Application


@contextlib.asynccontextmanager
async def start_bot(settings: Settings, agency: Agency, clock: Clock | None = None, *,
                    wiring: Wiring | None = None) -> AsyncIterator[RunningBot]:
    """The real bot app on a free loopback port, with a migrated database (over `wiring` when given)."""
    await upgrade_database(settings.database_url)
    app = create_app(settings, agency=agency, clock=clock, wiring=wiring)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield RunningBot(f"http://127.0.0.1:{port}", app)
    finally:
        await runner.cleanup()
