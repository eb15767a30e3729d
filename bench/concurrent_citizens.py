"""Concurrent citizens: 200 people booking against one bot process, beside the baselines.

The bot runs as `python -m bot serve` in its own process (so that its peak memory, VmHWM, is its
own); this process plays the 200 Teams clients and the connector. Each citizen does a whole booking
(consent, choices, form, confirm: 9 or 10 turns); afterwards the database must hold exactly one
booked appointment per citizen. The baselines, each in its own process too, get as many citizens,
each sending as many text messages as a booking takes turns.

Two phases, because one number cannot say both things:
- saturation: the 200 citizens press their buttons back to back, without reading. Every server is
  then as busy as it can be, and its throughput (turns/s) is its capacity at that concurrency.
  Latency here is only queueing (about 200 / throughput), whatever the server.
- paced: the same 200 citizens take 1 to 5 seconds before each turn (reading a card, choosing), and
  arrive over 5 seconds. That is the load 200 people at once put on the bot; p99 latency under it
  is what they feel.

Targets: saturation throughput ≥ 2 × the stock echo bot's, paced p99 < 250 ms, no error, peak
memory of the bot process < 300 MB. Run: `python -m bench.concurrent_citizens`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from bench.booking_flow import book_appointment
from bench.common import postgres_database, postgres_reachable, server_process, sqlite_database
from bench.driver import BenchCitizen, TurnFailed, client_session, summary
from bot.devtools.connector import ConnectorStandIn
from bot.domain.agency import load_agency
from bot.settings import DEFAULT_AGENCY
from storage.db import create_engine, create_session_factory
from storage.migrate import upgrade_database
from storage.unit_of_work import UnitOfWorkFactory

CITIZENS = 200
TEXT_TURNS = 9  # a booking's turns, for the baselines
THINK_SECONDS = (1.0, 5.0)
TARGET_THROUGHPUT_VS_ECHO = 2.0
TARGET_P99_MS = 250.0
TARGET_PEAK_MB = 300.0
BACKENDS = ("sqlite", "postgres")  # PostgreSQL when reachable

log = logging.getLogger(__name__)
Journey = Callable[[BenchCitizen, random.Random, tuple[float, float] | None], Awaitable[int]]


async def _crowd(bot_url: str, connector: ConnectorStandIn, journey: Journey,
                 think: tuple[float, float] | None) -> dict[str, Any]:
    """Every citizen's journey at once; latencies, turns, errors and throughput."""
    async with client_session() as http:
        citizens = [BenchCitizen(bot_url, connector, http) for _ in range(CITIZENS)]
        rngs = [random.Random(i) for i in range(CITIZENS)]
        started = time.perf_counter()
        outcomes = await asyncio.gather(*(journey(c, r, think) for c, r in zip(citizens, rngs, strict=True)),
                                        return_exceptions=True)
        seconds = time.perf_counter() - started
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    for error in errors[:3]:
        log.warning("a citizen failed: %r", error)
    latencies = [ms for citizen in citizens for ms in citizen.latencies_ms]
    row: dict[str, Any] = summary(latencies) if latencies else {"turns": 0}
    row.update({"errors": len(errors), "seconds": seconds,
                "turns_per_s": len(latencies) / seconds if seconds else 0.0})
    return row


async def _texts(citizen: BenchCitizen, rng: random.Random, think: tuple[float, float] | None) -> int:
    if think is not None:
        await asyncio.sleep(rng.uniform(0, think[1]))
    for turn in range(TEXT_TURNS):
        if think is not None and turn:
            await asyncio.sleep(rng.uniform(*think))
        if not await citizen.say("bonjour"):
            raise TurnFailed("no reply")
    return TEXT_TURNS


async def _booked(database_url: str) -> int:
    """The booked appointments the bot left, read through the appointment repository."""
    agency_id = load_agency(DEFAULT_AGENCY).id
    engine = create_engine(database_url)
    try:
        async with UnitOfWorkFactory(create_session_factory(engine)).read() as uow:
            # Every booking ends before the far future; one more than expected shows a duplicate.
            booked = await uow.appointments.booked_ending_before(agency_id, datetime(3000, 1, 1, tzinfo=UTC),
                                                                 limit=2 * CITIZENS + 1)
    finally:
        await engine.dispose()
    return len(booked)


@asynccontextmanager
async def _database(backend: str) -> AsyncIterator[str]:
    database = sqlite_database() if backend == "sqlite" else postgres_database()
    async with database as url:
        await upgrade_database(url)
        yield url


async def _baseline(name: str, connector: ConnectorStandIn, think: tuple[float, float] | None) -> dict[str, Any]:
    async with server_process(["-m", "bench.servers", name], ready_path="/api/messages") as server:
        row = await _crowd(server.url, connector, _texts, think)
        row["peak_rss_mb"] = server.peak_rss_mb()
    return row


async def _guichet(backend: str, connector: ConnectorStandIn, think: tuple[float, float] | None) -> dict[str, Any]:
    async with _database(backend) as database_url:
        env = {"GUICHET_DATABASE_URL": database_url, "GUICHET_LOG_LEVEL": "ERROR"}
        async with server_process(["-m", "bot", "serve"], env) as server:
            row = await _crowd(server.url, connector, book_appointment, think)
            row["peak_rss_mb"] = server.peak_rss_mb()
            if row["errors"]:
                row["server_log_tail"] = server.errors()[-1500:]
        booked = await _booked(database_url)
    row["booked_appointments"] = booked
    # A citizen who saw no confirmation, or an appointment nobody saw confirmed, is an error too.
    row["errors"] = max(row["errors"], abs(CITIZENS - booked))
    return row


async def run() -> dict[str, Any]:
    backends = [backend for backend in BACKENDS if backend == "sqlite" or await postgres_reachable()]
    phases: dict[str, dict[str, dict[str, Any]]] = {"saturation": {}, "paced": {}}
    async with ConnectorStandIn(history=False) as connector:
        for phase, think in (("saturation", None), ("paced", THINK_SECONDS)):
            rows = phases[phase]
            if phase == "saturation":
                rows["bare aiohttp"] = await _baseline("bare", connector, think)
            rows["stock echo bot"] = await _baseline("echo", connector, think)
            for backend in backends:
                rows[f"guichet booking ({backend})"] = await _guichet(backend, connector, think)
    echo = phases["saturation"]["stock echo bot"]["turns_per_s"]
    for rows in phases.values():
        for row in rows.values():
            row["x_echo_throughput"] = row["turns_per_s"] / echo if echo else 0.0
    targets: dict[str, dict[str, bool]] = {}
    for name, row in phases["saturation"].items():
        if name.startswith("guichet"):
            paced = phases["paced"][name]
            targets[name] = {
                "throughput_met": row["x_echo_throughput"] >= TARGET_THROUGHPUT_VS_ECHO,
                "paced_p99_met": paced.get("p99_ms", float("inf")) < TARGET_P99_MS,
                "no_errors": row["errors"] == 0 and paced["errors"] == 0,
                "memory_met": max(row["peak_rss_mb"], paced["peak_rss_mb"]) < TARGET_PEAK_MB,
            }
    return {"citizens": CITIZENS, "think_seconds": list(THINK_SECONDS), "phases": phases, "targets": targets,
            "target": (f"saturation throughput >= {TARGET_THROUGHPUT_VS_ECHO} x echo, paced p99 < "
                       f"{TARGET_P99_MS:.0f} ms, 0 errors, peak RSS < {TARGET_PEAK_MB:.0f} MB")}


def print_results(results: dict[str, Any]) -> None:
    think = results["think_seconds"]
    print(f"Concurrent citizens ({results['citizens']} at once; each server in its own process; "
          f"paced: {think[0]:.0f}-{think[1]:.0f} s before each turn)")
    print(f"{'phase':<11}{'server':<28}{'turns':>7}{'turns/s':>9}{'x echo':>8}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'errors':>8}{'peak MB':>9}")
    for phase, rows in results["phases"].items():
        for name, row in rows.items():
            print(f"{phase:<11}{name:<28}{row['turns']:>7}{row['turns_per_s']:>9.1f}{row['x_echo_throughput']:>8.2f}"
                  f"{row.get('p50_ms', 0):>9.1f}{row.get('p99_ms', 0):>9.1f}{row['errors']:>8}"
                  f"{row['peak_rss_mb']:>9.1f}")
    for name, verdict in results["targets"].items():
        marks = ", ".join(f"{key.removesuffix('_met')}: {'met' if ok else 'MISSED'}" for key, ok in verdict.items())
        print(f"  {name}: {marks}")


if __name__ == "__main__":
    print_results(asyncio.run(run()))
