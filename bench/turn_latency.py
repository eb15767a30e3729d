"""Turn latency: one booking-dialog turn of the real bot beside its two baselines, in one run.

All servers run in this process on loopback, with the client and the connector stand-in (as the baselines
were first measured): the bare aiohttp floor and the stock SDK echo bot answer text messages; our bot
runs whole bookings (consent, mode, subject, day, time, form, summary, confirm: every turn answers with
a card) with its state in SQLite, then in PostgreSQL, over Teams and (rows "guichet booking web") over the
agency's website: Web Chat's channel, every button an Action.Submit, each answer led by the pressed button's
title said back, the visitor looked up per turn by their web binding. One citizen at a time, so the figures are
latencies, not queueing. Rounds alternate between the servers so that a noisy neighbour on the
machine weighs on all of them alike.

Targets (booking turns): our p50 ≤ 0.5 × the echo bot's p50, and ≤ 5 × the bare floor's p50. A row
"guichet greeting" answers the baselines' own text with the welcome card: the edge's cost alone.
Run: `python -m bench.turn_latency`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import aiohttp

from bench.booking_flow import book_appointment
from bench.common import postgres_database, postgres_reachable, sqlite_database
from bench.driver import TEAMS, WEBCHAT, BenchCitizen, client_session, summary
from bench.servers import bare_app, echo_app, serving
from bot.app import create_app
from bot.devtools.connector import ConnectorStandIn
from bot.settings import Settings
from storage.migrate import upgrade_database

ROUNDS = 4
TEXT_TURNS_PER_ROUND = 150
BOOKINGS_PER_ROUND = 15
WARMUP_TEXT_TURNS = 50
WARMUP_BOOKINGS = 3
TARGET_VS_ECHO = 0.5
TARGET_VS_FLOOR = 5.0


@asynccontextmanager
async def guichet_server(database_url: str) -> AsyncIterator[str]:
    await upgrade_database(database_url)
    async with serving(create_app(Settings(database_url=database_url))) as url:
        yield url


class TextServer:
    """A baseline: one citizen sending text messages."""

    def __init__(self, citizen: BenchCitizen) -> None:
        self.citizen = citizen

    async def warm_up(self) -> None:
        for _ in range(WARMUP_TEXT_TURNS):
            await self.citizen.say("bonjour")
        self.citizen.latencies_ms.clear()

    async def round(self) -> None:
        for _ in range(TEXT_TURNS_PER_ROUND):
            replies = await self.citizen.say("bonjour")
            assert replies, "the baseline did not answer"


class BookingServer:
    """Our bot: a new citizen per booking, each turn timed, per step as well."""

    def __init__(self, make_citizen: Callable[[], BenchCitizen], seed: int) -> None:
        self._make_citizen = make_citizen
        self._rng = random.Random(seed)
        self.latencies_ms: list[float] = []
        self.by_step: dict[str, list[float]] = {}
        self.turns = 0

    async def _one(self, keep: bool) -> None:
        citizen = self._make_citizen()
        turns = await book_appointment(citizen, self._rng)
        if keep:
            self.turns += turns
            self.latencies_ms += citizen.latencies_ms
            for step, latency in zip(citizen.steps, citizen.latencies_ms, strict=True):
                self.by_step.setdefault(step, []).append(latency)

    async def warm_up(self) -> None:
        for _ in range(WARMUP_BOOKINGS):
            await self._one(keep=False)

    async def round(self) -> None:
        for _ in range(BOOKINGS_PER_ROUND):
            await self._one(keep=True)


async def run() -> dict[str, Any]:
    logging.getLogger("bot").setLevel(logging.ERROR)  # "authentication is off" is expected here
    connector = ConnectorStandIn(history=False)
    backends = ["sqlite"] + (["postgres"] if await postgres_reachable() else [])
    async with AsyncExitStack() as stack:
        http: aiohttp.ClientSession = await stack.enter_async_context(client_session())
        await stack.enter_async_context(connector)

        def citizen_of(url: str, channel: str = TEAMS) -> Callable[[], BenchCitizen]:
            return lambda: BenchCitizen(url, connector, http, channel=channel)

        servers: dict[str, TextServer | BookingServer] = {}
        for name, app in (("bare aiohttp", bare_app()), ("stock echo bot", echo_app())):
            url = await stack.enter_async_context(serving(app))
            servers[name] = TextServer(citizen_of(url)())
        for backend in backends:
            database = sqlite_database() if backend == "sqlite" else postgres_database()
            database_url = await stack.enter_async_context(database)
            url = await stack.enter_async_context(guichet_server(database_url))
            servers[f"guichet booking ({backend})"] = BookingServer(citizen_of(url), seed=len(servers))
            # The same bot and calendar, booked from the website.
            servers[f"guichet booking web ({backend})"] = BookingServer(citizen_of(url, WEBCHAT), seed=len(servers))
            if backend == "sqlite":
                # The same text the baselines get ("bonjour": the welcome card, state read, nothing
                # to write): what the bot's edge costs without a service behind the turn.
                servers["guichet greeting (sqlite)"] = TextServer(citizen_of(url)())

        for server in servers.values():
            await server.warm_up()
        for _ in range(ROUNDS):
            for server in servers.values():
                await server.round()

    rows: dict[str, dict[str, float]] = {}
    for name, server in servers.items():
        latencies = server.citizen.latencies_ms if isinstance(server, TextServer) else server.latencies_ms
        rows[name] = summary(latencies)
        if isinstance(server, BookingServer):
            rows[name]["steps_p50_ms"] = {step: summary(values)["p50_ms"] for step, values in server.by_step.items()}
    floor = rows["bare aiohttp"]["p50_ms"]
    echo = rows["stock echo bot"]["p50_ms"]
    for row in rows.values():
        row["x_floor_p50"] = row["p50_ms"] / floor
        row["x_echo_p50"] = row["p50_ms"] / echo
    ours = {name: row for name, row in rows.items() if name.startswith("guichet booking")}
    targets = {name: {"p50_vs_echo_met": row["x_echo_p50"] <= TARGET_VS_ECHO,
                      "p50_vs_floor_met": row["x_floor_p50"] <= TARGET_VS_FLOOR} for name, row in ours.items()}
    return {"rows": rows, "targets": targets,
            "target": f"p50 <= {TARGET_VS_ECHO} x echo p50 and <= {TARGET_VS_FLOOR} x floor p50"}


def print_results(results: dict[str, Any]) -> None:
    print("Turn latency (one turn at a time, loopback, client and servers in one process)")
    print(f"{'server':<32}{'turns':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'x floor':>9}{'x echo':>8}")
    for name, row in results["rows"].items():
        print(f"{name:<32}{row['turns']:>7}{row['p50_ms']:>9.2f}{row['p95_ms']:>9.2f}{row['p99_ms']:>9.2f}"
              f"{row['x_floor_p50']:>9.2f}{row['x_echo_p50']:>8.2f}")
    for name, verdict in results["targets"].items():
        marks = ", ".join(f"{key.removesuffix('_met')}: {'met' if ok else 'MISSED'}" for key, ok in verdict.items())
        print(f"  {name}: {marks}")
    for name, row in results["rows"].items():
        if "steps_p50_ms" in row:
            steps = ", ".join(f"{step} {ms:.1f}" for step, ms in row["steps_p50_ms"].items())
            print(f"  {name}, p50 ms per step: {steps}")


if __name__ == "__main__":
    print_results(asyncio.run(run()))
