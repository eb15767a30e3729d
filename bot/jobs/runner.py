"""The durable job runner: claims due jobs under a lease, runs their handlers, completes or retries them.

- Jobs live only in the database (bot.domain.jobs). A claimed job is `running` until its lease ends;
  a runner that dies leaves it to be claimed again once the lease has expired. On PostgreSQL several
  runners share the work (FOR UPDATE SKIP LOCKED); on SQLite one runner per database file
  (bot.jobs.lock).
- A handler returns what the run came to (`Finished`, `RetryLater`, `Failed`) and, with it, the
  writes that belong to that outcome (an audit event, a flag). The runner applies them in the same
  transaction that completes the job, so "sent" and "done" are one step: a retry never sends again a
  message that went out. What remains is the moment between the connector's answer and that commit:
  if the process is killed exactly then, the job runs again after its lease and the message is sent
  twice (at most once more per kill, per job in flight).
- Failures are retried with exponential backoff and jitter (`retry_delay`), or after the Retry-After
  a connector asked for, up to MAX_ATTEMPTS; then the job is failed for good, for an operator to see
  (`guichet jobs list --failed`) and retry (`guichet jobs retry ID`). A message for the agency's staff
  failed for good is logged as an error and ends with the outcome JobResult.STAFF_MESSAGE_LOST (counted in
  `RunStats.staff_messages_lost` and in the totals of `guichet jobs list`).
- Time comes from the injectable clock; the loop never sleeps longer than the poll interval, and a
  wake-up (a job added in this process, or PostgreSQL's NOTIFY) cuts the sleep short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from bot.domain.jobs import MAX_ATTEMPTS, STAFF_MESSAGE_KINDS, Job, JobResult, retry_delay
from bot.services.ports import Clock, MessageRejected, RecipientUnreachable, SendFailed, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

Record = Callable[[UnitOfWork], Awaitable[None]]


@dataclass(frozen=True)
class Finished:
    """The job is done; `outcome` says how. `record` writes what goes with it."""

    outcome: JobResult = JobResult.DONE
    record: Record | None = None


@dataclass(frozen=True)
class RetryLater:
    reason: str
    after: timedelta | None = None


@dataclass(frozen=True)
class Failed:
    """Nothing will change by retrying (the person blocked the bot, the job's data is unusable)."""

    reason: str
    record: Record | None = None


Result = Finished | RetryLater | Failed


class JobHandler(Protocol):
    async def __call__(self, job: Job) -> Result: ...


class WakeSignal:
    """Cuts the runner's sleep short: a job due now was added (in this process, or NOTIFY from another)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def wake(self) -> None:
        self._event.set()

    async def wait(self, seconds: float) -> None:
        """Until woken, or `seconds` at most."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._event.wait()
        self._event.clear()


@dataclass(frozen=True)
class RunnerSettings:
    batch: int = 50
    concurrency: int = 50
    # Longer than a batch can take: a job must be finished before another runner may take it over.
    lease: timedelta = timedelta(minutes=5)
    poll_seconds: float = 5.0
    max_attempts: int = MAX_ATTEMPTS


@dataclass
class RunStats:
    claimed: int = 0
    finished: int = 0
    retried: int = 0
    failed: int = 0
    # Of the failed: messages for the agency's staff (prompts, no-show questions, alerts) that reached nobody.
    staff_messages_lost: int = 0


class JobRunner:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        handlers: Mapping[str, JobHandler],
        clock: Clock,
        *,
        settings: RunnerSettings | None = None,
        wake: WakeSignal | None = None,
        observe: Callable[[str, str], None] | None = None,
    ) -> None:
        self._uow = uow
        # Told (kind, result) of each recorded run: a finished job's outcome, "retried" or "failed" (bot.metrics).
        self._observe = observe
        self._handlers = dict(handlers)
        self._clock = clock
        self.settings = settings or RunnerSettings()
        self.wake = wake or WakeSignal()
        self.stats = RunStats()

    async def drain(self) -> int:
        """Run every job due now, and what falls due while they run, until none is left; how many ran.
        For tests and tools: the clock they give decides what is due."""
        return await self._pump(None)

    async def serve(self, stop: asyncio.Event, *, first: Callable[[], Awaitable[None]] | None = None) -> None:
        """Run due jobs until `stop` is set; when none is due, sleep at most the poll interval.

        `first` (planning the periodic jobs) runs before the first batch, again until it succeeds.
        """
        log.info("job runner started (batch %d, poll %.1fs)", self.settings.batch, self.settings.poll_seconds)
        while not stop.is_set():
            try:
                if first is not None:
                    await first()
                    first = None
                await self._pump(stop)
            except Exception as error:  # the database may be away for a while: keep polling
                log.warning("job runner: claiming failed (%s); retrying after the poll interval",
                            type(error).__name__)
            if stop.is_set():
                break
            waiting = asyncio.ensure_future(self.wake.wait(self.settings.poll_seconds))
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            for task in (waiting, stopping):
                task.cancel()
        log.info("job runner stopped")

    async def _pump(self, stop: asyncio.Event | None) -> int:
        """Keep up to `concurrency` jobs running, claiming more as soon as a place frees up (so one slow job
        never holds a batch back), until nothing is due and nothing runs; how many ran."""
        running: set[asyncio.Task[None]] = set()
        total = 0
        try:
            while stop is None or not stop.is_set():
                free = self.settings.concurrency - len(running)
                # A job that ends while this claim waits on the database may have added one due now (an e-mail
                # handed over by a chat job) after the claim looked: with jobs running, look once more.
                busy = bool(running)
                jobs = await self._claim(min(self.settings.batch, free)) if free > 0 else []
                for job in jobs:
                    task = asyncio.create_task(self._run_one(job))
                    running.add(task)
                    task.add_done_callback(running.discard)
                total += len(jobs)
                if not running:
                    if busy:
                        continue
                    return total
                if jobs and len(jobs) == min(self.settings.batch, free):
                    continue  # more may be due right now
                # Until a job ends (a place frees up, a retry may have come due) or a new one is added.
                done_waiting = asyncio.ensure_future(self.wake.wait(self.settings.poll_seconds))
                await asyncio.wait({done_waiting, *running}, return_when=asyncio.FIRST_COMPLETED)
                done_waiting.cancel()
            return total
        finally:
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    async def _claim(self, limit: int) -> list[Job]:
        now = self._clock.now()
        async with self._uow() as uow:
            jobs = await uow.jobs.claim_due(now, limit, self.settings.lease)
            await uow.commit()
        self.stats.claimed += len(jobs)
        return jobs

    async def _run_one(self, job: Job) -> None:
        handler = self._handlers.get(job.kind)
        if handler is None:
            result: Result = Failed(f"no handler for job kind {job.kind!r}")
        else:
            try:
                result = await handler(job)
            except SendFailed as error:
                result = RetryLater(type(error).__name__,
                                    timedelta(seconds=error.retry_after) if error.retry_after else None)
            except (RecipientUnreachable, MessageRejected) as error:
                result = Failed(type(error).__name__)
            except Exception as error:  # any handler failure is retried; only its class is logged
                log.warning("job %s (%s) failed: %s", job.id, job.kind, type(error).__name__,
                            exc_info=log.isEnabledFor(logging.DEBUG))
                result = RetryLater(type(error).__name__)
        await self._complete(job, result)

    async def _complete(self, job: Job, result: Result) -> None:
        """Record the result with the job's new state in one transaction; retried on its own (never the run)."""
        for attempt in range(1, 6):
            try:
                async with self._uow() as uow:
                    recorded = await self._apply(uow, job, result)
                    await uow.commit()
                if self._observe is not None:
                    self._observe(job.kind, recorded)
                return
            except Exception as error:
                log.warning("job %s: recording its result failed (%s), attempt %d", job.id, type(error).__name__,
                            attempt)
                await asyncio.sleep(0.2 * 2 ** attempt)
        log.error("job %s: result not recorded; it runs again when its lease ends", job.id)

    async def _apply(self, uow: UnitOfWork, job: Job, result: Result) -> str:
        """Record the result; what it came to: the outcome of a finished job, "retried", or the failure's outcome."""
        now = self._clock.now()
        if isinstance(result, Finished):
            if await uow.jobs.mark_done(job.id, outcome=result.outcome, now=now) and result.record is not None:
                await result.record(uow)
            self.stats.finished += 1
            return result.outcome
        if isinstance(result, RetryLater) and job.attempts < self.settings.max_attempts:
            wait = result.after if result.after is not None else retry_delay(job.attempts)
            await uow.jobs.mark_failed(job.id, result.reason, now + wait, now=now)
            self.stats.retried += 1
            log.info("job %s (%s): retry in %.0fs (%s)", job.id, job.kind, wait.total_seconds(), result.reason)
            return "retried"
        lost = job.kind in STAFF_MESSAGE_KINDS
        outcome = JobResult.STAFF_MESSAGE_LOST if lost else JobResult.FAILED
        if await uow.jobs.mark_failed(job.id, result.reason, None, now=now, outcome=outcome) \
                and isinstance(result, Failed) and result.record is not None:
            await result.record(uow)
        self.stats.failed += 1
        if lost:
            # A counselor will not hear of a client: an error, never only a warning (ids only, no names).
            self.stats.staff_messages_lost += 1
            log.error("job %s (%s): a message for the agency's staff reached nobody and failed for good after "
                      "%d attempt(s): %s", job.id, job.kind, job.attempts, result.reason)
            return outcome
        log.warning("job %s (%s) failed for good after %d attempt(s): %s", job.id, job.kind, job.attempts,
                    result.reason)
        return outcome
