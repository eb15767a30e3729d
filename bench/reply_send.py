"""Sending one reply to the connector: msrest's stock pipeline against the bot's (bot/connector_http.py).

Stock: the SDK's ConnectorClient as it comes, sending with `requests` in a thread executor and
serialising the Activity with msrest. Ours: the same ConnectorClient given our pipeline (aiohttp on
the event loop, one session for the process, bounded retry) and the quick Activity serialiser. Both
send the help card (an Adaptive Card) to the connector stand-in (bot/devtools) on loopback, one at a
time and 32 at once.
Run: `python -m bench.reply_send`.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from typing import Any

from botbuilder.core import MessageFactory, TurnContext
from botbuilder.schema import Activity, Attachment
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import MicrosoftAppCredentials

from bot.connector_http import ConnectorSession, RetryPolicy, install_pipeline
from bot.devtools.connector import ConnectorStandIn
from bot.domain.agency import load_agency
from bot.settings import DEFAULT_AGENCY
from cards.welcome import build_help_card

REPLIES = 600
WARMUP = 50


async def _measure(ours: bool, concurrency: int) -> dict[str, float]:
    card = build_help_card(load_agency(DEFAULT_AGENCY), "fr")
    async with ConnectorStandIn(history=False) as connector:
        url = connector.service_url
        client = ConnectorClient(MicrosoftAppCredentials.empty(), base_url=url)
        session = ConnectorSession()
        if ours:
            install_pipeline(client, session, RetryPolicy())
        incoming = Activity().deserialize({
            "type": "message", "id": "1", "serviceUrl": url, "channelId": "msteams", "from": {"id": "29:u"},
            "conversation": {"id": "a:c"}, "recipient": {"id": "28:b"}})
        reference = TurnContext.get_conversation_reference(incoming)

        async def worker(count: int) -> None:
            for _ in range(count):
                reply = MessageFactory.attachment(
                    Attachment(content_type="application/vnd.microsoft.card.adaptive", content=card))
                await client.conversations.reply_to_activity(
                    "a:c", "1", TurnContext.apply_conversation_reference(reply, reference))

        await worker(WARMUP)
        started = time.perf_counter()
        await asyncio.gather(*(worker(REPLIES // concurrency) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        await session.close()
    return {"ms_per_reply": seconds / REPLIES * 1000, "replies_per_s": REPLIES / seconds}


async def run() -> dict[str, Any]:
    rows: dict[str, dict[str, float]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # msrest's stock sender uses old asyncio calls
        for concurrency in (1, 32):
            stock = await _measure(ours=False, concurrency=concurrency)
            ours = await _measure(ours=True, concurrency=concurrency)
            rows[f"stock msrest, {concurrency} at once"] = stock
            speed_up = stock["ms_per_reply"] / ours["ms_per_reply"]
            rows[f"ours, {concurrency} at once"] = {**ours, "x_stock_speed": speed_up}
    return {"replies": REPLIES, "rows": rows}


def print_results(results: dict[str, Any]) -> None:
    print(f"Sending a card reply to the connector ({results['replies']} replies, loopback)")
    print(f"{'pipeline':<28}{'ms/reply':>10}{'replies/s':>11}{'speed-up':>10}")
    for name, row in results["rows"].items():
        speed = f"{row['x_stock_speed']:.1f}x" if "x_stock_speed" in row else ""
        print(f"{name:<28}{row['ms_per_reply']:>10.3f}{row['replies_per_s']:>11.0f}{speed:>10}")


if __name__ == "__main__":
    print_results(asyncio.run(run()))
