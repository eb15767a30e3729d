"""Metrics overhead: booking turns with the Prometheus metrics recorded against the same bot with them off.

The real bot on SQLite (where turns are quickest, so an overhead weighs most) in this process, its metrics
switched on and off between rounds (off: the recording calls do nothing; on: they record into its registry,
scraped once per round as Prometheus would). Whole bookings in both modes, one citizen at a time,
rounds alternating which mode goes first so that the machine's drift weighs on both alike. Also the cost
of the recording calls alone (one turn's: the turn, its histogram, two connector answers), timed over many
calls.

Target: the p50 turn latency with metrics on within 3 % of off. Run: `python -m bench.metrics_overhead`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import statistics
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import aiohttp

from bench.booking_flow import book_appointment
from bench.common import sqlite_database
from bench.driver import BenchCitizen, client_session, summary
from bench.servers import serving
from bot.app import create_app
from bot.devtools.connector import ConnectorStandIn
from bot.metrics import Metrics
from bot.settings import Settings
from bot.wiring import build_services
from storage.migrate import upgrade_database

ROUNDS = 40
BOOKINGS_PER_ROUND = 2
WARMUP_BOOKINGS = 3
TARGET_OVERHEAD = 0.03
RECORDING_CALLS = 200_000
SEED = 17
MODES = ("metrics on", "metrics off")


class Switchable(Metrics):
    """Metrics that can be turned off: then the recording calls the bot makes do nothing. One bot, one
    database, switched between rounds: two bots in one process differ by more than metrics cost (which
    was built first, whose objects the start-up freeze took out of the garbage collector's sight)."""

    def __init__(self) -> None:
        super().__init__()
        self.on = True

    def turn(self, kind: str, seconds: float) -> None:
        if self.on:
            super().turn(kind, seconds)

    def turn_failed(self, kind: str) -> None:
        if self.on:
            super().turn_failed(kind)

    def request_refused(self, status: int) -> None:
        if self.on:
            super().request_refused(status)

    def connector_observer(self, path: str) -> Callable[[int | None], None]:
        observe = super().connector_observer(path)

        def maybe(status: int | None) -> None:
            if self.on:
                observe(status)

        return maybe

    def graph_call(self, method: str, path: str, status: int | None, seconds: float) -> None:
        if self.on:
            super().graph_call(method, path, status, seconds)

    def job_run(self, kind: str, result: str) -> None:
        if self.on:
            super().job_run(kind, result)


@asynccontextmanager
async def guichet(database_url: str, metrics: Metrics) -> AsyncIterator[str]:
    await upgrade_database(database_url)
    settings = Settings(database_url=database_url)
    async with serving(create_app(settings, wiring=build_services(settings, metrics=metrics))) as url:
        yield url


class Bookings:
    """Whole bookings, each by a new citizen, the modes taking turns: each sees the calendar filling up alike."""

    def __init__(self, make_citizen: Callable[[], BenchCitizen]) -> None:
        self._make_citizen = make_citizen
        self._rng = random.Random(SEED)
        self.latencies_ms: dict[str, list[float]] = {mode: [] for mode in MODES}
        self.round_p50s: dict[str, list[float]] = {mode: [] for mode in MODES}
        # CPU time of this process (client, bot and connector stand-in) per turn: what other processes on
        # the machine do changes it far less than wall-clock latency.
        self.cpu_seconds: dict[str, float] = dict.fromkeys(MODES, 0.0)

    async def run(self, mode: str, bookings: int, *, keep: bool = True) -> None:
        latencies: list[float] = []
        cpu_started = time.process_time()
        for _ in range(bookings):
            citizen = self._make_citizen()
            await book_appointment(citizen, self._rng)
            latencies += citizen.latencies_ms
        if keep:
            self.cpu_seconds[mode] += time.process_time() - cpu_started
            self.latencies_ms[mode] += latencies
            self.round_p50s[mode].append(statistics.median(latencies))


def recording_cost_us() -> float:
    """Microseconds of the recording calls of one card-action turn (turn, histogram, two connector answers)."""
    metrics = Metrics()
    observe = metrics.connector_observer("reply")
    started = time.perf_counter()
    for _ in range(RECORDING_CALLS):
        metrics.turn("card_action", 0.0025)
        observe(200)
        observe(200)
    return (time.perf_counter() - started) / RECORDING_CALLS * 1e6


async def run() -> dict[str, Any]:
    logging.getLogger("bot").setLevel(logging.ERROR)  # "authentication is off" is expected here
    connector = ConnectorStandIn(history=False)
    metrics = Switchable()
    async with AsyncExitStack() as stack:
        http: aiohttp.ClientSession = await stack.enter_async_context(client_session())
        await stack.enter_async_context(connector)
        database_url = await stack.enter_async_context(sqlite_database())
        url = await stack.enter_async_context(guichet(database_url, metrics))
        bookings = Bookings(lambda: BenchCitizen(url, connector, http))
        await bookings.run("metrics on", WARMUP_BOOKINGS, keep=False)
        order = list(MODES)
        for _ in range(ROUNDS):
            for mode in order:
                metrics.on = mode == "metrics on"
                await bookings.run(mode, BOOKINGS_PER_ROUND)
            order.reverse()
            async with http.get(f"{url}/metrics") as response:  # a scrape per round, as Prometheus would
                assert response.status == 200
                scraped = await response.text()
    rows = {mode: summary(bookings.latencies_ms[mode]) for mode in MODES}
    for mode, row in rows.items():
        row["cpu_ms_per_turn"] = bookings.cpu_seconds[mode] * 1000 / row["turns"]
    overhead = rows["metrics on"]["p50_ms"] / rows["metrics off"]["p50_ms"] - 1
    paired = statistics.median(on / off - 1 for on, off in zip(bookings.round_p50s["metrics on"],
                                                               bookings.round_p50s["metrics off"], strict=True))
    cost_us = recording_cost_us()
    cpu_overhead = rows["metrics on"]["cpu_ms_per_turn"] / rows["metrics off"]["cpu_ms_per_turn"] - 1
    return {"rows": rows, "p50_overhead": overhead, "paired_round_p50_overhead": paired, "cpu_overhead": cpu_overhead,
            "recording_us_per_turn": cost_us,
            "recording_share_of_p50": cost_us / 1000 / rows["metrics off"]["p50_ms"],
            "target": f"p50 with metrics within {TARGET_OVERHEAD:.0%} of off",
            "target_met": overhead <= TARGET_OVERHEAD, "exposition_bytes": len(scraped)}


def print_results(results: dict[str, Any]) -> None:
    print("Metrics overhead (booking turns on SQLite, one at a time, rounds alternating)")
    print(f"{'mode':<14}{'turns':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'CPU ms/turn':>13}")
    for name, row in results["rows"].items():
        print(f"{name:<14}{row['turns']:>7}{row['p50_ms']:>9.2f}{row['p95_ms']:>9.2f}{row['p99_ms']:>9.2f}"
              f"{row['cpu_ms_per_turn']:>13.2f}")
    print(f"  p50 on vs off: {results['p50_overhead']:+.1%} (median of the rounds' paired p50s: "
          f"{results['paired_round_p50_overhead']:+.1%}); {results['target']}: "
          f"{'met' if results['target_met'] else 'MISSED'}; CPU per turn {results['cpu_overhead']:+.1%}")
    print(f"  recording calls of one turn: {results['recording_us_per_turn']:.1f} µs "
          f"({results['recording_share_of_p50']:.2%} of the p50 turn); "
          f"/metrics page {results['exposition_bytes']} bytes")


if __name__ == "__main__":
    print_results(asyncio.run(run()))
