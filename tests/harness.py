"""Test harness: a fake Bot Connector that records replies, Teams-shaped activities, a Teams user.

Only the network boundary is faked: the bot under test is the real aiohttp app on a real port, and
it replies over HTTP to the `serviceUrl` the activity names, as it does in Teams.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from bot.app import create_app
from bot.domain.agency import Agency
from bot.domain.clock import Clock
from bot.settings import Settings
from storage.migrate import upgrade_database

BOT_ID = "28:guichet-test-bot"
TENANT_ID = "7e5b2c1a-0000-4000-8000-000000000001"
_ids = itertools.count(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Recorded:
    method: str
    path: str
    conversation_id: str
    activity: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str | None:
        return self.activity.get("text")

    @property
    def cards(self) -> list[dict[str, Any]]:
        return [
            a["content"] for a in self.activity.get("attachments") or []
            if a.get("contentType") == "application/vnd.microsoft.card.adaptive"
        ]


@dataclass(frozen=True)
class Failure:
    """How the fake connector answers one request badly: after `delay` seconds, `status` (with Retry-After)."""

    status: int = 503
    retry_after: str | None = None
    delay: float = 0.0


class FakeConnector:
    """Plays the Bot Connector service: accepts replies, updates and new conversations."""

    def __init__(self) -> None:
        self.received: list[Recorded] = []
        # How to answer the next requests, first come first served: an HTTP status or a Failure.
        self.fail_next: list[int | Failure] = []
        self.failed = 0  # requests answered from fail_next
        self._event = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v3/conversations/{cid}/activities", self._activity)
        app.router.add_post("/v3/conversations/{cid}/activities/{aid}", self._activity)
        app.router.add_put("/v3/conversations/{cid}/activities/{aid}", self._activity)
        app.router.add_post("/v3/conversations", self._create_conversation)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/"

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def _activity(self, request: web.Request) -> web.Response:
        if self.fail_next:
            failure = self.fail_next.pop(0)
            self.failed += 1
            if isinstance(failure, int):
                return web.Response(status=failure)
            if failure.delay:
                await asyncio.sleep(failure.delay)
            headers = {"Retry-After": failure.retry_after} if failure.retry_after is not None else {}
            return web.Response(status=failure.status, headers=headers)
        body = await request.json()
        self.received.append(Recorded(request.method, request.path, request.match_info["cid"], body,
                                      dict(request.headers)))
        self._event.set()
        return web.json_response({"id": f"reply-{next(_ids)}"})

    async def _create_conversation(self, request: web.Request) -> web.Response:
        body = await request.json()
        conversation_id = f"a:created-{next(_ids)}"
        self.received.append(Recorded("POST", request.path, conversation_id, body))
        return web.json_response({"id": conversation_id, "activityId": f"act-{next(_ids)}"})

    def messages_for(self, conversation_id: str) -> list[Recorded]:
        return [r for r in self.received if r.conversation_id == conversation_id]

    async def wait_for(self, predicate: Any, within: float = 5.0) -> Recorded:
        """Wait until a recorded activity satisfies `predicate` (for proactive messages)."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            for recorded in self.received:
                if predicate(recorded):
                    return recorded
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError("the expected activity never reached the connector")
            self._event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), remaining)


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
    """A Teams-shaped activity in a personal chat, as the Teams channel posts it."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    activity: dict[str, Any] = {
        "type": "message",
        "id": f"1{next(_ids):012d}",
        "timestamp": now,
        "localTimestamp": now,
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": {"id": user_id, "name": "Test Citizen", "aadObjectId": aad_object_id},
        "conversation": {"conversationType": "personal", "tenantId": tenant_id, "id": conversation_id},
        "recipient": {"id": BOT_ID, "name": "Guichet"},
        "locale": locale,
        "entities": [{"type": "clientInfo", "locale": locale, "country": "BE", "platform": "Windows",
                      "timezone": "Europe/Brussels"}],
        "channelData": {"tenant": {"id": tenant_id}},
    }
    activity.update(fields)
    return activity


@dataclass
class TeamsUser:
    """One person in one personal chat with the bot; each call is one real HTTP turn."""

    bot_url: str
    connector: FakeConnector
    http: aiohttp.ClientSession
    locale: str = "fr-BE"
    aad_object_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.user_id = f"29:{self.aad_object_id}"
        self.conversation_id = f"a:{uuid.uuid4().hex}"

    def activity(self, **fields: Any) -> dict[str, Any]:
        return teams_activity(service_url=self.connector.url, conversation_id=self.conversation_id,
                              user_id=self.user_id, aad_object_id=self.aad_object_id, locale=self.locale,
                              **fields)

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

    async def install(self) -> list[Recorded]:
        """What Teams sends when the person adds the app: installationUpdate then conversationUpdate."""
        replies = await self._turn(self.activity(type="installationUpdate", action="add"))
        replies += await self._turn(self.activity(
            type="conversationUpdate", membersAdded=[{"id": BOT_ID}],
        ))
        return replies

    async def say(self, text: str) -> list[Recorded]:
        return await self._turn(self.activity(text=text, textFormat="plain"))

    async def submit(self, data: dict[str, Any]) -> list[Recorded]:
        """Action.Submit: a message whose value is the action's data plus the inputs."""
        return await self._turn(self.activity(value=data))

    async def execute(self, verb: str, data: dict[str, Any], reply_to: str | None = None) -> tuple[Any, list[Recorded]]:
        """Action.Execute: an adaptiveCard/action invoke; returns (invoke response body, replies)."""
        before = len(self.replies())
        status, body = await self.post(self.activity(
            type="invoke", name="adaptiveCard/action", replyToId=reply_to or "card-1",
            value={"action": {"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"},
        ))
        assert status == 200, (status, body)
        return body, self.replies()[before:]


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
async def start_bot(settings: Settings, agency: Agency, clock: Clock | None = None) -> AsyncIterator[RunningBot]:
    """The real bot app on a free loopback port, with a migrated database."""
    await upgrade_database(settings.database_url)
    app = create_app(settings, agency=agency, clock=clock)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield RunningBot(f"http://127.0.0.1:{port}", app)
    finally:
        await runner.cleanup()
