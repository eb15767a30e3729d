"""The daily retention run as a periodic job: once a day at the agency's local hour, on one instance.

Each day's run is one job whose dedupe key names the agency's local date, so however many runners
start, the day has one run; each run plans the next day's when it completes (in the same transaction).
Local hours are turned into UTC day by day (bot.domain.jobs.next_daily_run), so the run stays at its
hour across daylight-saving changes.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bot.domain.jobs import Job, JobKind, next_daily_run
from bot.jobs.runner import Finished, Result
from bot.services.container import Services
from bot.services.ports import UnitOfWork
from bot.services.retention import RetentionService

log = logging.getLogger(__name__)


async def plan_next_retention(uow: UnitOfWork, services: Services, after: datetime) -> datetime:
    """Add the first daily run after `after` (nothing if that day's run exists); its due time."""
    agency = services.agency
    run_at = next_daily_run(agency.zone, agency.retention_hour, after)
    local_day = run_at.astimezone(agency.zone).date().isoformat()
    await uow.jobs.schedule(str(JobKind.RETENTION), run_at, {"agency_id": agency.id},
                            f"retention:{agency.id}:{local_day}", now=services.clock.now())
    return run_at


async def ensure_retention_planned(services: Services) -> None:
    """At start-up: the next daily run exists (idempotent; every instance may call it)."""
    async with services.uow() as uow:
        await plan_next_retention(uow, services, services.clock.now())
        await uow.commit()


class RetentionJob:
    def __init__(self, services: Services, retention: RetentionService) -> None:
        self._services = services
        self._retention = retention

    async def __call__(self, job: Job) -> Result:
        report = await self._retention.run()
        log.info("daily retention run: %d changes", report.total)

        async def plan_next(uow: UnitOfWork) -> None:
            await plan_next_retention(uow, self._services, max(job.run_at, self._services.clock.now()))

        return Finished("done", record=plan_next)
