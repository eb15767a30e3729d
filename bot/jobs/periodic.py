"""Planning periodic jobs: each run is one job whose dedupe key names its period, and plans the next.

However many runners start, a period has one run (the dedupe key); a run plans the next one when it
completes, in the transaction that completes it (runner's `Finished.record`); at start-up every instance
makes sure the next run exists. The periodic jobs differ only in when they run and how a period is
named: a `Schedule`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.domain.agency import Agency
from bot.domain.jobs import Job, JobKind, JobResult
from bot.jobs.runner import Finished
from bot.services.container import Services
from bot.services.ports import UnitOfWork


@dataclass(frozen=True)
class Schedule:
    """A periodic job: its kind, and for an agency the first run after a moment with its period's name."""

    kind: JobKind
    next_run: Callable[[Agency, datetime], tuple[datetime, str]]


async def plan_next(uow: UnitOfWork, services: Services, schedule: Schedule, after: datetime) -> datetime:
    """Add the first run after `after` (nothing if that period's run exists); its due time."""
    agency = services.agency
    run_at, period = schedule.next_run(agency, after)
    await uow.jobs.schedule(str(schedule.kind), run_at, {"agency_id": agency.id},
                            f"{schedule.kind}:{agency.id}:{period}", now=services.clock.now())
    return run_at


async def ensure_planned(services: Services, schedule: Schedule) -> None:
    """At start-up: the next run exists (idempotent; every instance may call it)."""
    async with services.uow() as uow:
        await plan_next(uow, services, schedule, services.clock.now())
        await uow.commit()


def done_and_plan_next(services: Services, schedule: Schedule, job: Job) -> Finished:
    """A run's result: done, with the next run planned in the transaction that completes this one."""

    async def record(uow: UnitOfWork) -> None:
        await plan_next(uow, services, schedule, max(job.run_at, services.clock.now()))

    return Finished(JobResult.DONE, record=record)

