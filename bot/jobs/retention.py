"""The daily retention run as a periodic job: once a day at the agency's local hour, on one instance.

Each day's run is one job whose dedupe key names the agency's local date, so however many runners
start, the day has one run; each run plans the next day's when it completes (bot/jobs/periodic.py).
Local hours are turned into UTC day by day (bot.domain.jobs.next_daily_run), so the run stays at its
hour across daylight-saving changes.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bot.domain.agency import Agency
from bot.domain.jobs import Job, JobKind, next_daily_run
from bot.jobs.periodic import Schedule, done_and_plan_next, ensure_planned, plan_next
from bot.jobs.runner import Result
from bot.services.container import Services
from bot.services.ports import UnitOfWork
from bot.services.retention import RetentionService

log = logging.getLogger(__name__)


def _next_day(agency: Agency, after: datetime) -> tuple[datetime, str]:
    run_at = next_daily_run(agency.zone, agency.retention_hour, after)
    return run_at, run_at.astimezone(agency.zone).date().isoformat()


DAILY_RETENTION = Schedule(JobKind.RETENTION, _next_day)


async def plan_next_retention(uow: UnitOfWork, services: Services, after: datetime) -> datetime:
    """Add the first daily run after `after` (nothing if that day's run exists); its due time."""
    return await plan_next(uow, services, DAILY_RETENTION, after)


async def ensure_retention_planned(services: Services) -> None:
    """At start-up: the next daily run exists (idempotent; every instance may call it)."""
    await ensure_planned(services, DAILY_RETENTION)


class RetentionJob:
    def __init__(self, services: Services, retention: RetentionService) -> None:
        self._services = services
        self._retention = retention

    async def __call__(self, job: Job) -> Result:
        report = await self._retention.run()
        log.info("daily retention run: %d changes", report.total)
        return done_and_plan_next(self._services, DAILY_RETENTION, job)
