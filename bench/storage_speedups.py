"""What each storage speed-up still buys: booking turns with it and without it, beside the echo bot.

The speed-ups switched in storage/speedups.py (the one-trip SQLite driver, bot state read and written
outside SQLAlchemy, jsonpickle's format written by hand) each cost code that leans on another
library's internals. Here the real bot runs whole bookings (as bench/turn_latency.py) with every
speed-up on, then with each one off, then all off; rounds alternate between the variants so that a
noisy neighbour weighs on all alike. A variant's figure is its p50 booking turn as a ratio of the stock
echo bot's p50 in the same run, and the difference that switching the one speed-up off makes.
Run: `python -m bench storage_speedups`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any

import aiohttp

from bench.common import postgres_database, postgres_reachable, sqlite_database
from bench.driver import BenchCitizen, client_session, summary
from bench.servers import echo_app, serving
from bench.turn_latency import BookingServer, TextServer, guichet_server
from bot.devtools.connector import ConnectorStandIn
from storage import speedups

ROUNDS = 4
BOOKINGS_PER_ROUND = 10
TEXT_TURNS_PER_ROUND = 100
ALL_ON = speedups.Speedups()
VARIANTS: dict[str, speedups.Speedups] = {
    "all on": ALL_ON,
    "without one_trip_driver": replace(ALL_ON, one_trip_driver=False),
    "without direct_state_io": replace(ALL_ON, direct_state_io=False),
    "without fast_state_documents": replace(ALL_ON, fast_state_documents=False),
    "all off": speedups.Speedups(False, False, False),
}
# The one-trip driver is SQLite's: on PostgreSQL that variant is "all on" again.
POSTGRES_VARIANTS = ("all on", "without direct_state_io", "without fast_state_documents", "all off")


async def run() -> dict[str, Any]:
    logging.getLogger("bot").setLevel(logging.ERROR)
    connector = ConnectorStandIn(history=False)
    backends = ["sqlite"] + (["postgres"] if await postgres_reachable() else [])
    servers: dict[str, tuple[speedups.Speedups, TextServer | BookingServer]] = {}
    async with AsyncExitStack() as stack:
        http: aiohttp.ClientSession = await stack.enter_async_context(client_session())
        await stack.enter_async_context(connector)

        def citizen_of(url: str) -> Callable[[], BenchCitizen]:
            return lambda: BenchCitizen(url, connector, http)

        echo_url = await stack.enter_async_context(serving(echo_app()))
        servers["stock echo bot"] = (ALL_ON, TextServer(citizen_of(echo_url)()))
        for backend in backends:
            for variant in VARIANTS if backend == "sqlite" else POSTGRES_VARIANTS:
                switches = VARIANTS[variant]
                with speedups.using(switches):  # engines and storages take their switches when built
                    database = sqlite_database() if backend == "sqlite" else postgres_database()
                    database_url = await stack.enter_async_context(database)
                    url = await stack.enter_async_context(guichet_server(database_url))
                servers[f"{backend}, {variant}"] = (switches, BookingServer(citizen_of(url), seed=len(servers)))

        for switches, server in servers.values():
            with speedups.using(switches):
                await server.warm_up()
        cpu_seconds = dict.fromkeys(servers, 0.0)
        for _ in range(ROUNDS):
            for name, (switches, server) in servers.items():
                started = time.process_time()
                with speedups.using(switches):
                    if isinstance(server, TextServer):
                        for _ in range(TEXT_TURNS_PER_ROUND):
                            await server.citizen.say("bonjour")
                    else:
                        for _ in range(BOOKINGS_PER_ROUND):
                            await server._one(keep=True)
                cpu_seconds[name] += time.process_time() - started

    rows: dict[str, dict[str, Any]] = {}
    for name, (_switches, server) in servers.items():
        latencies = server.citizen.latencies_ms if isinstance(server, TextServer) else server.latencies_ms
        rows[name] = summary(latencies)
        # CPU of the whole process (client, connector stand-in and server) per turn: steadier than
        # latency on a shared machine, and the client's share is the same for every variant.
        rows[name]["cpu_ms_per_turn"] = 1000 * cpu_seconds[name] / max(1, len(latencies))
    echo = rows["stock echo bot"]["p50_ms"]
    for name, row in rows.items():
        row["x_echo_p50"] = row["p50_ms"] / echo
        backend = name.split(",")[0]
        if f"{backend}, all on" in rows and name != f"{backend}, all on":
            row["p50_ms_vs_all_on"] = row["p50_ms"] - rows[f"{backend}, all on"]["p50_ms"]
            row["cpu_ms_vs_all_on"] = row["cpu_ms_per_turn"] - rows[f"{backend}, all on"]["cpu_ms_per_turn"]
    return {"rows": rows}


def print_results(results: dict[str, Any]) -> None:
    print("Storage speed-ups: booking turns with each one switched off (one at a time, loopback)")
    print(f"{'server':<42}{'turns':>7}{'p50 ms':>9}{'p95 ms':>9}{'x echo':>8}{'p50 - all on':>14}"
          f"{'CPU ms/turn':>13}{'CPU - all on':>14}")
    for name, row in results["rows"].items():
        delta = row.get("p50_ms_vs_all_on")
        cpu_delta = row.get("cpu_ms_vs_all_on")
        shown = f"{delta:+.2f}" if delta is not None else ""
        cpu_shown = f"{cpu_delta:+.2f}" if cpu_delta is not None else ""
        print(f"{name:<42}{row['turns']:>7}{row['p50_ms']:>9.2f}{row['p95_ms']:>9.2f}{row['x_echo_p50']:>8.2f}"
              f"{shown:>14}{row['cpu_ms_per_turn']:>13.2f}{cpu_shown:>14}")


if __name__ == "__main__":
    print_results(asyncio.run(run()))
