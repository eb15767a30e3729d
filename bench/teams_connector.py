"""A Bot Connector stand-in that behaves like Teams under load, in its own process (bench/reminder_dispatch.py):
Teams' rate limits enforced with 429 + Retry-After, 5 % of the messages answered 503 at random. It
notes when each reminder arrived (wall clock, shared with the benchmark's process) and tells at /stats.

Run: `python -m bench.teams_connector --port P [--transient-rate 0.05]`.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from aiohttp import web

from bot.devtools.connector import ConnectorStandIn, Recorded, TeamsLimits


class TeamsUnderLoad(ConnectorStandIn):
    def __init__(self, transient_rate: float) -> None:
        super().__init__(history=False, on_activity=self._arrived)
        self.limits = TeamsLimits()
        self.transient_failure_rate = transient_rate
        self.arrivals: list[tuple[float, str]] = []

    def _arrived(self, recorded: Recorded) -> None:
        self.take(recorded.conversation_id)  # nothing kept but the arrival
        for card in recorded.cards:
            for action in card.get("actions", []):
                appointment_id = (action.get("data") or {}).get("appointment_id")
                if appointment_id:
                    self.arrivals.append((time.time(), appointment_id))
                    return

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"]
        if tail == "healthz":
            return web.json_response({"status": "ok"})
        if tail == "stats":
            stats: dict[str, Any] = {"arrivals": self.arrivals, "throttled": self.limits.throttled if self.limits
                                     else 0, "transient_failures": self.transient_failures}
            return web.json_response(stats)
        return await super()._dispatch(request)


async def main(port: int, transient_rate: float) -> None:
    connector = TeamsUnderLoad(transient_rate)
    await connector.start(port)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--transient-rate", type=float, default=0.05)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.port, arguments.transient_rate))
