"""Closing appointments whose slot has ended while still booked, every quarter of an hour (periodic job).

Each run is one job keyed by its quarter, so several runners make one run; each run plans the next
(bot/jobs/periodic.py).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bot.domain.agency import Agency
from bot.domain.jobs import Job, JobKind
from bot.jobs.periodic import Schedule, done_and_plan_next, ensure_planned, plan_next
from bot.jobs.runner import Result
from bot.services.container import Services
from bot.services.outcomes import CLOSE_EVERY, OutcomeService
from bot.services.ports import UnitOfWork

log = logging.getLogger(__name__)


def _next_quarter(_agency: Agency, after: datetime) -> tuple[datetime, str]:
    step = int(CLOSE_EVERY.total_seconds())
    epoch = int(after.timestamp())
    run_at = datetime.fromtimestamp((epoch // step + 1) * step, tz=UTC)
    return run_at, f"{run_at:%Y%m%dT%H%M}"


CLOSING = Schedule(JobKind.CLOSE_ENDED, _next_quarter)


async def plan_next_closing(uow: UnitOfWork, services: Services, after: datetime) -> None:
    await plan_next(uow, services, CLOSING, after)


async def ensure_closing_planned(services: Services) -> None:
    await ensure_planned(services, CLOSING)


class CloseEndedJob:
    def __init__(self, services: Services, outcomes: OutcomeService) -> None:
        self._services = services
        self._outcomes = outcomes

    async def __call__(self, job: Job) -> Result:
        closed = await self._outcomes.close_ended()
        if closed:
            log.info("closed %d appointment(s) whose slot ended", closed)
        return done_and_plan_next(self._services, CLOSING, job)
