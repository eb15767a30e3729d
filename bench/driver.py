"""The client side of the benchmarks: Teams-shaped activities, one citizen per conversation, timings.

A `BenchCitizen` posts exactly what the Teams channel posts (messages, Action.Execute invokes) to a
bot's /api/messages and reads the bot's replies at the `BenchConnector`. Each turn is timed from
the first byte sent to the bot's HTTP answer: the bot sends its replies during the turn, so by then
they have reached the connector.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from bench.servers import BenchConnector

BOT_ID = "28:guichet-bench-bot"
TENANT_ID = "7e5b2c1a-0000-4000-8000-00000000be00"
_ids = itertools.count(1)


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
    connector_url: str
    connector: BenchConnector
    http: aiohttp.ClientSession
    locale: str = "fr-BE"
    latencies_ms: list[float] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)  # what each timed turn was: "say" or the verb pressed

    def __post_init__(self) -> None:
        self.aad_object_id = str(uuid.uuid4())
        self.user_id = f"29:{self.aad_object_id}"
        self.conversation_id = f"a:{uuid.uuid4().hex}"

    def activity(self, **fields: Any) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        activity: dict[str, Any] = {
            "type": "message", "id": f"1{next(_ids):012d}", "timestamp": now, "localTimestamp": now,
            "channelId": "msteams", "serviceUrl": self.connector_url,
            "from": {"id": self.user_id, "name": "Bench Citizen", "aadObjectId": self.aad_object_id},
            "conversation": {"conversationType": "personal", "tenantId": TENANT_ID, "id": self.conversation_id},
            "recipient": {"id": BOT_ID, "name": "Guichet"}, "locale": self.locale,
            "entities": [{"type": "clientInfo", "locale": self.locale, "country": "BE", "platform": "Windows",
                          "timezone": "Europe/Brussels"}],
            "channelData": {"tenant": {"id": TENANT_ID}},
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

    async def turn(self, activity: dict[str, Any]) -> list[dict[str, Any]]:
        """Post one activity; the replies it produced."""
        await self.post(activity)
        return self.connector.take(self.conversation_id)

    async def say(self, text: str) -> list[dict[str, Any]]:
        self.steps.append("say")
        return await self.turn(self.activity(text=text, textFormat="plain"))

    async def install(self) -> list[dict[str, Any]]:
        replies = await self.turn(self.activity(type="installationUpdate", action="add"))
        return replies + await self.turn(self.activity(type="conversationUpdate", membersAdded=[{"id": BOT_ID}]))

    async def execute(self, action: dict[str, Any], inputs: dict[str, Any] | None = None
                      ) -> tuple[Any, list[dict[str, Any]]]:
        """Press an Action.Execute button (with the card's input values): (invoke body, replies)."""
        data = {**(action.get("data") or {}), **(inputs or {})}
        self.steps.append(str(action.get("verb") or data.get("verb")))
        activity = self.activity(type="invoke", name="adaptiveCard/action", replyToId="card",
                                 value={"action": {"type": "Action.Execute", "verb": action.get("verb"),
                                                   "data": data}, "trigger": "manual"})
        _status, payload = await self.post(activity)
        body = json.loads(payload) if payload else None
        return body, self.connector.take(self.conversation_id)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def cards_of(replies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a["content"] for reply in replies for a in reply.get("attachments") or []
            if a.get("contentType") == "application/vnd.microsoft.card.adaptive"]


def client_session(limit: int = 0) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit),
                                 timeout=aiohttp.ClientTimeout(total=60))
