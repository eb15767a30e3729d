"""Durable jobs: added in the transaction that needs them, claimed under a lease, completed or retried."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.jobs import Job, JobResult, JobStatus, NewJob
from storage.repositories.statements import NO_SYNC, RowsInserts, dialect_insert, is_postgres
from storage.tables import scheduled_jobs as _JOBS

_J = _JOBS.c
# The outcome of a message job that came too late to be worth sending (bot.services.reminders).
DROPPED_LATE = "dropped_late"
# ON CONFLICT is spelled the same on SQLite and PostgreSQL.
_INSERT_JOBS = RowsInserts(
    _JOBS, ["kind", "run_at", "payload", "dedupe_key"], shared=["appointment_id", "status", "attempts", "created_at"],
    tail=" ON CONFLICT (dedupe_key) DO NOTHING",
)


# PostgreSQL tells listening runners (bot.jobs.wakeup) at commit that a job is due now.
NOTIFY_CHANNEL = "guichet_jobs"
_NOTIFY = text(f"SELECT pg_notify('{NOTIFY_CHANNEL}', '')")
# A job due within this much of being added wakes the runners; later ones wait for a poll.
WAKE_HORIZON = timedelta(seconds=5)


class JobRepository:
    """Durable jobs. A claimed job is 'running' under a lease; an expired lease makes it claimable again."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        # Whether this transaction added a job due now (the unit of work wakes the runner on commit).
        self.due_now_added = False

    async def _added(self, run_at: datetime, now: datetime) -> None:
        if run_at <= now + WAKE_HORIZON and not self.due_now_added:
            self.due_now_added = True
            if is_postgres(self._session):
                await self._session.execute(_NOTIFY)

    async def schedule_many(self, jobs: Sequence[NewJob], *, appointment_id: str | None, now: datetime) -> None:
        """Add pending jobs in one statement, as `schedule` does one by one; a job whose dedupe key
        is already known is left out (the existing one stays as it is)."""
        if not jobs:
            return
        await self._session.execute(
            _INSERT_JOBS.statement(len(jobs)),
            _INSERT_JOBS.parameters(jobs, {"appointment_id": appointment_id, "status": JobStatus.PENDING.value,
                                           "attempts": 0, "created_at": now}),
        )
        await self._added(min(job.run_at for job in jobs), now)

    async def schedule(
        self,
        kind: str,
        run_at: datetime,
        payload: dict[str, Any],
        dedupe_key: str | None = None,
        *,
        appointment_id: str | None = None,
        now: datetime | None = None,
    ) -> int:
        """Add a pending job and return its id; with a known dedupe key, the existing job's id.

        Put in the key whatever makes two jobs different (e.g. the appointment's start time), so a
        moved appointment gets new reminders instead of the already-sent ones.
        """
        now = now or datetime.now(UTC)
        values = {
            "kind": kind,
            "run_at": run_at,
            "payload": payload,
            "dedupe_key": dedupe_key,
            "appointment_id": appointment_id,
            "status": JobStatus.PENDING.value,
            "attempts": 0,
            "created_at": now,
        }
        await self._added(run_at, now)
        if dedupe_key is None:
            result = await self._session.execute(insert(_JOBS).values(**values).returning(_J.id))
            return int(result.scalar_one())
        statement = (
            dialect_insert(self._session, _JOBS)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[_J.dedupe_key])
            .returning(_J.id)
        )
        inserted = (await self._session.execute(statement)).scalar_one_or_none()
        if inserted is not None:
            return int(inserted)
        existing = await self._session.scalar(select(_J.id).where(_J.dedupe_key == dedupe_key))
        return int(existing)  # type: ignore[arg-type]

    async def get(self, job_id: int) -> Job | None:
        return await self._session.get(Job, job_id)

    async def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[Job]:
        """Mark up to `limit` due jobs running until now + lease and return them, oldest first.

        Due: pending with run_at <= now, or running with an expired lease (its worker died).
        PostgreSQL: FOR UPDATE SKIP LOCKED lets concurrent claimers take disjoint jobs.
        SQLite: the write transaction (BEGIN IMMEDIATE) already excludes other claimers.
        """
        due = (
            select(_J.id)
            .where(
                ((_J.status == JobStatus.PENDING.value) & (_J.run_at <= now))
                | ((_J.status == JobStatus.RUNNING.value) & (_J.locked_until <= now))
            )
            .order_by(_J.run_at, _J.id)
            .limit(limit)
        )
        if is_postgres(self._session):
            due = due.with_for_update(skip_locked=True)
        # MATERIALIZED: the locked selection is computed once, never re-run inside the update.
        due_cte = due.cte("due").prefix_with("MATERIALIZED", dialect="postgresql")
        statement = (
            update(Job)
            .where(_J.id.in_(select(due_cte.c.id)))
            .values(status=JobStatus.RUNNING.value, locked_until=now + lease, attempts=_J.attempts + 1)
            .returning(Job)
            .add_cte(due_cte)
        )
        result = await self._session.scalars(
            statement, execution_options={"synchronize_session": False, "populate_existing": True}
        )
        return sorted(result.all(), key=lambda job: (job.run_at, job.id))

    async def mark_done(self, job_id: int, *, outcome: str = "done", now: datetime | None = None) -> bool:
        """A running job finished (`outcome` says how); False if it was not running any more."""
        result = await self._session.execute(
            update(Job)
            .where(_J.id == job_id, _J.status == JobStatus.RUNNING.value)
            .values(status=JobStatus.DONE.value, locked_until=None, outcome=outcome[:32], finished_at=now),
            execution_options=NO_SYNC,
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def mark_failed(self, job_id: int, error: str, retry_at: datetime | None, *,
                          now: datetime | None = None, outcome: JobResult = JobResult.FAILED) -> bool:
        """Back to pending at `retry_at`, or failed for good when retry_at is None (`outcome` says how)."""
        values: dict[str, Any] = {"locked_until": None, "last_error": error[:2000]}
        if retry_at is None:
            values.update(status=JobStatus.FAILED.value, outcome=outcome[:32], finished_at=now)
        else:
            values.update(status=JobStatus.PENDING.value, run_at=retry_at)
        result = await self._session.execute(
            update(Job).where(_J.id == job_id, _J.status == JobStatus.RUNNING.value).values(**values),
            execution_options=NO_SYNC,
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def retry(self, job_id: int, now: datetime) -> bool:
        """An operator's retry of a failed job: pending again now, with a fresh count of attempts."""
        result = await self._session.execute(
            update(Job)
            .where(_J.id == job_id, _J.status == JobStatus.FAILED.value)
            .values(status=JobStatus.PENDING.value, run_at=now, attempts=0, outcome=None, finished_at=None),
            execution_options=NO_SYNC,
        )
        await self._added(now, now)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def listing(self, *, status: str | None = None, kind: str | None = None, limit: int = 100) -> list[Job]:
        """Jobs for an operator, newest due first."""
        statement = select(Job)
        if status is not None:
            statement = statement.where(_J.status == status)
        if kind is not None:
            statement = statement.where(_J.kind == kind)
        return list(await self._session.scalars(statement.order_by(_J.run_at.desc(), _J.id.desc()).limit(limit)))

    async def outcome_counts(self, *, kind: str | None = None) -> dict[tuple[str, str | None], int]:
        """How many jobs stand in each (status, outcome)."""
        statement = select(_J.status, _J.outcome, func.count()).group_by(_J.status, _J.outcome)
        if kind is not None:
            statement = statement.where(_J.kind == kind)
        return {(status, outcome): count for status, outcome, count in await self._session.execute(statement)}

    async def state_counts(self, now: datetime, late_after: timedelta) -> dict[tuple[str, str], int]:
        """The queue by (kind, state) for monitoring: `due` (pending, due now), `late` (due for over
        `late_after`), `running`, `failed` (for good), `dropped_late` (finished unsent because too late,
        due within the last day). Each part reads the (status, run_at) index."""
        late_cut = now - late_after
        late = func.sum(case((_J.run_at <= late_cut, 1), else_=0))
        statement = (
            select(_J.kind, _J.status, func.count(), late)
            .where(((_J.status == JobStatus.PENDING.value) & (_J.run_at <= now))
                   | _J.status.in_([JobStatus.RUNNING.value, JobStatus.FAILED.value]))
            .group_by(_J.kind, _J.status)
        )
        counts: dict[tuple[str, str], int] = {}
        names = {JobStatus.PENDING.value: "due", JobStatus.RUNNING.value: "running", JobStatus.FAILED.value: "failed"}
        for kind, status, count, late_count in await self._session.execute(statement):
            counts[(kind, names[status])] = int(count)
            if status == JobStatus.PENDING.value:
                counts[(kind, "late")] = int(late_count or 0)
        dropped = (
            select(_J.kind, func.count())
            .where(_J.status == JobStatus.DONE.value, _J.run_at > now - timedelta(days=1), _J.run_at <= now,
                   _J.outcome == DROPPED_LATE)
            .group_by(_J.kind)
        )
        for kind, count in await self._session.execute(dropped):
            counts[(kind, "dropped_late")] = int(count)
        return counts

    async def cancel_for_appointment(self, appointment_id: str) -> int:
        """Cancel the appointment's jobs that have not started; returns how many."""
        result = await self._session.execute(
            update(Job)
            .where(_J.appointment_id == appointment_id, _J.status == JobStatus.PENDING.value)
            .values(status=JobStatus.CANCELLED.value, locked_until=None),
            execution_options=NO_SYNC,
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def for_appointment(self, appointment_id: str) -> list[Job]:
        statement = select(Job).where(_J.appointment_id == appointment_id).order_by(_J.run_at)
        return list(await self._session.scalars(statement))
