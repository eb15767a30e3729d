"""The job runner as a process part: its handlers, its wake-ups, its lock; started by `guichet serve`
(GUICHET_JOBS=inline) or by `guichet worker`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from functools import partial

from bot.jobs.closing import ensure_closing_planned
from bot.jobs.lock import RunnerLock
from bot.jobs.retention import ensure_retention_planned
from bot.jobs.runner import JobRunner, RunnerSettings, WakeSignal
from bot.jobs.wakeup import PostgresWakeup
from bot.services.container import Services
from bot.wiring import Wiring, job_handlers

log = logging.getLogger(__name__)

# How long a stopping runner lets the jobs in flight finish (their leases cover the rest).
STOP_GRACE_SECONDS = 10.0


async def plan_periodic_jobs(services: Services) -> None:
    """At start-up (every instance; idempotent): the next retention run and the next closing of slots."""
    await ensure_retention_planned(services)
    await ensure_closing_planned(services)


def build_runner(wiring: Wiring) -> JobRunner:
    settings = wiring.settings
    wake = WakeSignal()
    # A job due now added by this process (a booking, a retry) starts at once.
    wiring.uow.on_due_jobs = wake.wake
    return JobRunner(
        wiring.services.uow, job_handlers(wiring.services, wiring.use_cases), wiring.services.clock,
        settings=RunnerSettings(batch=settings.job_batch, poll_seconds=settings.job_poll_seconds), wake=wake,
        observe=wiring.metrics.job_run,
    )


@contextlib.asynccontextmanager
async def running_jobs(wiring: Wiring) -> AsyncIterator[JobRunner]:
    """The runner working in the background of this process; raises RunnerLockBusy when another process
    already runs the jobs of this SQLite database."""
    lock = RunnerLock(wiring.settings.database_url)
    lock.acquire()
    runner = build_runner(wiring)
    wakeup = PostgresWakeup(wiring.settings.database_url, runner.wake) \
        if wiring.engine.dialect.name == "postgresql" else None
    stop = asyncio.Event()
    try:
        if wakeup is not None:
            wakeup.start()
        task = asyncio.create_task(runner.serve(stop, first=partial(plan_periodic_jobs, wiring.services)))
        try:
            yield runner
        finally:
            stop.set()
            runner.wake.wake()
            try:
                await asyncio.wait_for(asyncio.shield(task), STOP_GRACE_SECONDS)
            except TimeoutError:
                log.warning("job runner: jobs still running at shutdown; they run again after their lease")
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    finally:
        if wakeup is not None:
            await wakeup.stop()
        lock.release()
