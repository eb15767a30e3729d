"""Reminder dispatch and the job runner's claim throughput.

Dispatch: 5,000 reminders due at once across 1,000 conversations of one tenant, sent by the real job
runner and notifier to the connector stand-in, which enforces Teams' limits (per conversation 7/s, 8/2 s,
60/30 s, 1,800/h; 50/s per tenant), answers 429 with Retry-After to any excess, and 503 to 5 % of the
messages at random. Reported: the send rate achieved as a share of the allowed 50/s (target ≥ 0.95),
messages lost (0), duplicates (0), 429s provoked (near 0), time from due to sent p50/p99.

Claim throughput: 20,000 jobs with a handler that does nothing, claimed and completed by one runner on
SQLite, and by two runners (two engines) on one PostgreSQL database; jobs run twice are counted (0).

Run: `python -m bench.reminder_dispatch`.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import aiohttp
from botbuilder.integration.aiohttp import ConfigurationBotFrameworkAuthentication
from sqlalchemy import insert

from bench.common import postgres_database, postgres_reachable, server_process, sqlite_database
from bot.adapter import ReusingAuthentication, bot_framework_configuration
from bot.connector_http import RetryPolicy
from bot.domain.agency import load_agency
from bot.domain.clock import SystemClock
from bot.domain.jobs import Job, JobKind, JobResult
from bot.jobs.reminders import ReminderJob
from bot.jobs.runner import Finished, JobRunner, RunnerSettings
from bot.proactive import TeamsNotifier
from bot.rate_limit import TENANT_PER_SECOND, RateLimiter
from bot.settings import DEFAULT_AGENCY, Settings
from bot.wiring import assemble_services, build_use_cases
from storage import tables
from storage.db import create_engine, create_session_factory
from storage.migrate import upgrade_database
from storage.unit_of_work import UnitOfWorkFactory

CONVERSATIONS = 1000
PER_CONVERSATION = 5
TENANT = "7e5b2c1a-0000-4000-8000-00000000bench"
TRANSIENT_503_RATE = 0.05
CLAIM_JOBS = 20_000
TARGET_RATE_RATIO = 0.95


async def _seed_reminders(url: str, service_url: str, now: datetime) -> None:
    """Citizens with a stored chat, each with PER_CONVERSATION appointments whose reminder is due now."""
    agency = load_agency(DEFAULT_AGENCY)
    counselors = [c.id for c in agency.counselors]
    citizens, appointments, jobs = [], [], []
    for c in range(CONVERSATIONS):
        citizen_id = str(uuid4())
        citizens.append({
            "id": citizen_id, "agency_id": agency.id, "tenant_id": TENANT, "aad_object_id": str(uuid4()),
            "teams_user_id": f"29:bench-{c}", "locale": "fr-BE", "created_at": now, "last_seen_at": now,
            "processing_restricted": False, "reminders_opt_out": False,
            "conversation_reference": {"serviceUrl": service_url, "channelId": "msteams", "bot": {"id": "28:bench"},
                                       "user": {"id": f"29:bench-{c}"},
                                       "conversation": {"id": f"a:bench-{c}", "tenantId": TENANT}},
        })
        for r in range(PER_CONVERSATION):
            index = c * PER_CONVERSATION + r
            start = now + timedelta(hours=3, minutes=30 * (index // len(counselors)))
            appointment_id = str(uuid4())
            appointments.append({
                "id": appointment_id, "agency_id": agency.id, "citizen_id": citizen_id,
                "counselor_id": counselors[index % len(counselors)], "mode": "video",
                "subject_id": "temporary-unemployment", "starts_at": start, "ends_at": start + timedelta(minutes=30),
                "status": "booked", "interview_language": "fr", "created_at": now, "updated_at": now,
                "meeting_state": "none",
            })
            jobs.append({"kind": str(JobKind.REMINDER), "run_at": now, "dedupe_key": f"bench:{appointment_id}",
                         "payload": {"appointment_id": appointment_id,
                                     "offset_minutes": int((start - now).total_seconds() // 60)},
                         "appointment_id": appointment_id, "status": "pending", "attempts": 0, "created_at": now})
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(tables.citizens), citizens)
            await connection.execute(insert(tables.appointments), appointments)
            await connection.execute(insert(tables.scheduled_jobs), jobs)
    finally:
        await engine.dispose()


async def _dispatch(url: str) -> dict[str, Any]:
    """The dispatch, with Teams played by bench/teams_connector.py in its own process."""
    async with server_process(["-m", "bench.teams_connector", "--transient-rate", str(TRANSIENT_503_RATE)]) as teams:
        await upgrade_database(url)
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        await _seed_reminders(url, teams.url + "/", now)
        settings = Settings(database_url=url)
        engine = create_engine(url)
        auth = ReusingAuthentication(ConfigurationBotFrameworkAuthentication(bot_framework_configuration(settings)),
                                     retry=RetryPolicy(attempts=1))
        limiter = RateLimiter(tenant_per_second=settings.tenant_messages_per_second)
        notifier = TeamsNotifier(auth, app_id="", limiter=limiter)
        uow = UnitOfWorkFactory(create_session_factory(engine))
        services = assemble_services(load_agency(DEFAULT_AGENCY), uow, SystemClock(), notifier=notifier)
        reminders = build_use_cases(services).reminders
        runner = JobRunner(uow, {str(JobKind.REMINDER): ReminderJob(services, reminders, notifier, meetings=False)},
                           SystemClock(), settings=RunnerSettings(batch=100, concurrency=100,
                                                                  lease=timedelta(minutes=10)))
        expected = CONVERSATIONS * PER_CONVERSATION
        started = time.time()
        try:
            while True:
                await runner.drain()
                async with uow.read() as reading:
                    counts = await reading.jobs.outcome_counts(kind=str(JobKind.REMINDER))
                if sum(n for (status, _), n in counts.items() if status in ("done", "failed")) >= expected:
                    break
                await asyncio.sleep(0.2)  # retries of 503s and 429s come due
            finished = time.time()
            async with aiohttp.ClientSession() as http, http.get(teams.url + "/stats") as response:
                stats = await response.json()
        finally:
            await auth.connector_session.close()
            await engine.dispose()
    arrivals: list[tuple[float, str]] = [(moment, appointment_id) for moment, appointment_id in stats["arrivals"]]
    delivered = Counter(appointment_id for _, appointment_id in arrivals)
    times = sorted(moment for moment, _ in arrivals)
    waits = [moment - started for moment in times]
    span = times[-1] - times[0] if len(times) > 1 else 1.0
    rate = (len(times) - 1) / span if span > 0 else 0.0
    return {
        "reminders": expected, "delivered": len(delivered), "lost": expected - len(delivered),
        "duplicates": sum(n - 1 for n in delivered.values()), "throttled_429": stats["throttled"],
        "injected_503": stats["transient_failures"], "seconds": round(finished - started, 1),
        "rate_per_second": round(rate, 2), "rate_ratio": round(rate / TENANT_PER_SECOND, 3),
        "due_to_sent_p50_s": round(statistics.median(waits), 1),
        "due_to_sent_p99_s": round(waits[int(0.99 * (len(waits) - 1))], 1),
        "outcomes": {f"{status}/{outcome}": n for (status, outcome), n in counts.items()},
    }


class _Probe:
    def __init__(self) -> None:
        self.ran: Counter[int] = Counter()

    async def __call__(self, job: Job) -> Finished:
        self.ran[job.id] += 1
        return Finished(JobResult.DONE)


async def _claim_throughput(urls: list[str]) -> dict[str, Any]:
    """CLAIM_JOBS no-op jobs, one runner per URL (the same database given twice: two workers)."""
    await upgrade_database(urls[0])
    now = datetime.now(UTC)
    engines = [create_engine(url) for url in urls]
    try:
        async with engines[0].begin() as connection:
            await connection.execute(insert(tables.scheduled_jobs), [
                {"kind": "probe", "run_at": now, "payload": {}, "status": "pending", "attempts": 0, "created_at": now}
                for _ in range(CLAIM_JOBS)])
        probe = _Probe()
        runners = [JobRunner(UnitOfWorkFactory(create_session_factory(engine)), {"probe": probe}, SystemClock(),
                             settings=RunnerSettings(batch=200, concurrency=200)) for engine in engines]
        started = time.perf_counter()
        await asyncio.gather(*(runner.drain() for runner in runners))
        seconds = time.perf_counter() - started
    finally:
        for engine in engines:
            await engine.dispose()
    return {"jobs": CLAIM_JOBS, "workers": len(urls), "seconds": round(seconds, 2),
            "jobs_per_second": round(CLAIM_JOBS / seconds), "ran": sum(probe.ran.values()),
            "ran_twice": sum(1 for n in probe.ran.values() if n > 1)}


async def run() -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with sqlite_database() as url:
        results["dispatch_sqlite"] = await _dispatch(url)
    async with sqlite_database() as url:
        results["claims_sqlite"] = await _claim_throughput([url])
    if await postgres_reachable():
        async with postgres_database() as url:
            results["claims_postgres_two_workers"] = await _claim_throughput([url, url])
    results["target_met"] = (results["dispatch_sqlite"]["rate_ratio"] >= TARGET_RATE_RATIO
                             and results["dispatch_sqlite"]["lost"] == 0
                             and results["dispatch_sqlite"]["duplicates"] == 0)
    return results


def print_results(results: dict[str, Any]) -> None:
    dispatch = results["dispatch_sqlite"]
    print(f"reminder dispatch (SQLite): {dispatch['reminders']} reminders, {CONVERSATIONS} conversations, one tenant")
    print(f"  sent rate {dispatch['rate_per_second']}/s = {dispatch['rate_ratio']} of the allowed "
          f"{TENANT_PER_SECOND}/s (target ≥ {TARGET_RATE_RATIO})")
    print(f"  lost {dispatch['lost']}, duplicates {dispatch['duplicates']}, 429s provoked {dispatch['throttled_429']}, "
          f"503s injected {dispatch['injected_503']}")
    print(f"  due → sent p50 {dispatch['due_to_sent_p50_s']} s, p99 {dispatch['due_to_sent_p99_s']} s "
          f"({dispatch['seconds']} s in all)")
    for key, label in (("claims_sqlite", "SQLite, one runner"),
                       ("claims_postgres_two_workers", "PostgreSQL, two runners")):
        if key in results:
            claims = results[key]
            print(f"claim throughput ({label}): {claims['jobs_per_second']} jobs/s "
                  f"({claims['jobs']} jobs in {claims['seconds']} s, run twice: {claims['ran_twice']})")
    print(f"targets: {'met' if results['target_met'] else 'MISSED'}")


if __name__ == "__main__":
    print_results(asyncio.run(run()))
