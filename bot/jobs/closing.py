"""Closing appointments whose slot has ended while still booked, every quarter of an hour (periodic job).

Each run is one job keyed by its quarter, so several runners make one run; each run plans the next.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bot.domain.jobs import Job, JobKind
from bot.jobs.runner import Finished, Result
from bot.services.container import Services
from bot.services.outcomes import CLOSE_EVERY, OutcomeService
from bot.services.ports import UnitOfWork

log = logging.getLogger(__name__)


def _next_quarter(after: datetime) -> datetime:
    step = int(CLOSE_EVERY.total_seconds())
    epoch = int(after.timestamp())
    return datetime.fromtimestamp((epoch // step + 1) * step, tz=UTC)


async def plan_next_closing(uow: UnitOfWork, services: Services, after: datetime) -> None:
    run_at = _next_quarter(after)
    await uow.jobs.schedule(str(JobKind.CLOSE_ENDED), run_at, {"agency_id": services.agency.id},
                            f"close_ended:{services.agency.id}:{run_at:%Y%m%dT%H%M}", now=services.clock.now())


async def ensure_closing_planned(services: Services) -> None:
    async with services.uow() as uow:
        await plan_next_closing(uow, services, services.clock.now())
        await uow.commit()


class CloseEndedJob:
    def __init__(self, services: Services, outcomes: OutcomeService) -> None:
        self._services = services
        self._outcomes = outcomes

    async def __call__(self, job: Job) -> Result:
        closed = await self._outcomes.close_ended()
        if closed:
            log.info("closed %d appointment(s) whose slot ended", closed)

        async def plan_next(uow: UnitOfWork) -> None:
            await plan_next_closing(uow, self._services, max(job.run_at, self._services.clock.now()))

        return Finished("done", record=plan_next)
