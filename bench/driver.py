"""The client side of the benchmarks: one citizen per conversation, posting Teams or Web Chat activities, timed.

A `BenchCitizen` posts what the Teams channel posts (messages, Action.Execute invokes), built by
bot/devtools' activity builders, to a bot's /api/messages, and reads the bot's replies at bot/devtools'
connector stand-in (run with `history=False`: it keeps each conversation's replies until taken, nothing
more). With `channel=WEBCHAT` it is a visitor of the agency's website instead, as Direct Line posts them
(as tests/harness.py's `WebUser`): a `dl_` user without tenant, every button an Action.Submit message.
Each turn is timed from the first byte sent to the bot's HTTP answer: the bot sends its replies
during the turn, so by then they have reached the connector.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from bot.devtools.activities import (
    Identity,
    build_conversation_update,
    build_installation_update,
    build_invoke,
    build_message,
    execute_value,
    submit_payload,
)
from bot.devtools.connector import ConnectorStandIn, Recorded

BOT_ID = "28:guichet-bench-bot"
TENANT_ID = "7e5b2c1a-0000-4000-8000-00000000be00"
TEAMS = "msteams"
WEBCHAT = "webchat"


class TurnFailed(AssertionError):
    """The bot answered a turn with an unexpected HTTP status or without the expected reply."""


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction in 0..1) of a non-empty list."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summary(latencies_ms: list[float]) -> dict[str, float]:
    return {"turns": len(latencies_ms), "p50_ms": percentile(latencies_ms, 0.50),
            "p95_ms": percentile(latencies_ms, 0.95), "p99_ms": percentile(latencies_ms, 0.99),
            "max_ms": max(latencies_ms)}


@dataclass
class BenchCitizen:
    """One person in a personal chat; each call is one HTTP turn, its latency kept in `latencies_ms`."""

    bot_url: str
    connector: ConnectorStandIn
    http: aiohttp.ClientSession
    locale: str = "fr-BE"
    channel: str = TEAMS  # or WEBCHAT: a website visitor over Direct Line
    latencies_ms: list[float] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)  # what each timed turn was: "say" or the verb pressed

    def __post_init__(self) -> None:
        aad_object_id = str(uuid.uuid4())
        if self.channel == WEBCHAT:  # Direct Line's ids: the token endpoint's user, a short conversation id
            user_id, aad_object_id, conversation_id = f"dl_{uuid.uuid4().hex}", "", uuid.uuid4().hex[:22]
        else:
            user_id, conversation_id = f"29:{aad_object_id}", f"a:{uuid.uuid4().hex}"
        self.identity = Identity(role="citizen", user_id=user_id, aad_object_id=aad_object_id,
                                 name="Bench Citizen", tenant_id=TENANT_ID, conversation_id=conversation_id,
                                 bot_id=BOT_ID, locale=self.locale)

    @property
    def on_web(self) -> bool:
        return self.channel == WEBCHAT

    def web_activity(self, kind: str = "message", **fields: Any) -> dict[str, Any]:
        """An activity as Direct Line posts it for Web Chat: no tenant, no Entra id, no reply-to."""
        activity: dict[str, Any] = {
            "type": kind, "id": f"{self.identity.conversation_id}|{uuid.uuid4().hex[:7]}", "channelId": WEBCHAT,
            "serviceUrl": self.connector.service_url, "timestamp": datetime.now(UTC).isoformat(),
            "from": {"id": self.identity.user_id, "name": "", "role": "user"},
            "conversation": {"id": self.identity.conversation_id},
            "recipient": {"id": BOT_ID, "name": "Guichet", "role": "bot"},
            "locale": self.locale, "channelData": {"clientActivityID": uuid.uuid4().hex[:12]},
        }
        activity.update(fields)
        return activity

    async def post(self, activity: dict[str, Any]) -> tuple[int, Any]:
        body = _dumps(activity)
        started = time.perf_counter()
        async with self.http.post(f"{self.bot_url}/api/messages", data=body,
                                  headers={"Content-Type": "application/json"}) as response:
            payload = await response.read()
            status = response.status
        self.latencies_ms.append((time.perf_counter() - started) * 1000)
        if status not in (200, 201):
            raise TurnFailed(f"HTTP {status}: {payload[:200]!r}")
        return status, payload

    async def turn(self, activity: dict[str, Any]) -> list[Recorded]:
        """Post one activity; the replies it produced."""
        await self.post(activity)
        return self.connector.take(self.identity.conversation_id)

    async def say(self, text: str) -> list[Recorded]:
        self.steps.append("say")
        if self.on_web:
            return await self.turn(self.web_activity(text=text, textFormat="plain"))
        return await self.turn(build_message(self.identity, self.connector.service_url, text=text))

    async def join(self) -> list[Recorded]:
        """Web Chat's `webchat/join` event (the page's language): the welcome card. Not timed (kept out of
        `latencies_ms`): a Teams citizen's chat has no counterpart."""
        await self.post(self.web_activity("event", name="webchat/join", value={"language": self.locale}))
        self.latencies_ms.pop()
        return self.connector.take(self.identity.conversation_id)

    async def install(self) -> list[Recorded]:
        replies = await self.turn(build_installation_update(self.identity, self.connector.service_url))
        return replies + await self.turn(build_conversation_update(self.identity, self.connector.service_url))

    async def execute(self, action: dict[str, Any], inputs: dict[str, Any] | None = None
                      ) -> tuple[Any, list[Recorded]]:
        """Press an Action.Execute button (with the card's input values): (invoke body, replies)."""
        value = execute_value(action, inputs or {})
        self.steps.append(str(action.get("verb") or value["action"]["data"].get("verb")))
        activity = build_invoke(self.identity, self.connector.service_url, name="adaptiveCard/action",
                                value=value, reply_to_id="card")
        _status, payload = await self.post(activity)
        body = json.loads(payload) if payload else None
        return body, self.connector.take(self.identity.conversation_id)

    async def submit(self, action: dict[str, Any], inputs: dict[str, Any] | None = None) -> list[Recorded]:
        """Press an Action.Submit button: a message whose `value` is the action's data with the inputs."""
        _text, value = submit_payload(action, inputs or {})
        self.steps.append(str((action.get("data") or {}).get("verb")))
        if self.on_web:  # Web Chat sends no text and no replyToId
            return await self.turn(self.web_activity(value=value))
        return await self.turn(build_message(self.identity, self.connector.service_url, value=value,
                                             reply_to_id="card"))

    async def press(self, action: dict[str, Any], inputs: dict[str, Any] | None = None) -> list[Recorded]:
        """Press a card button as the card declares it: an Execute invoke or a Submit message."""
        if action.get("type") == "Action.Submit":
            return await self.submit(action, inputs)
        _body, replies = await self.execute(action, inputs)
        return replies


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def cards_of(replies: list[Recorded]) -> list[dict[str, Any]]:
    return [card for reply in replies for card in reply.cards]


def client_session(limit: int = 0) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit),
                                 timeout=aiohttp.ClientTimeout(total=60))
