"""The job runner's own guarantees: one runner per SQLite file, wake-ups that beat the poll, leases taken
over, the daily retention run at its local hour across clock changes, and the operator's commands."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from bot.app import SERVICES
from bot.cli import main
from bot.domain.agency import Agency, Mode
from bot.domain.clock import FixedClock
from bot.domain.jobs import Job, JobKind, next_daily_run
from bot.i18n import t
from bot.jobs.lock import RunnerLock, RunnerLockBusy
from bot.jobs.retention import ensure_retention_planned
from bot.jobs.runner import Finished, JobRunner, RetryLater, RunnerSettings
from bot.jobs.worker import running_jobs
from bot.services.booking import Booked
from bot.settings import PROJECT_ROOT, Settings
from bot.wiring import assemble_services, build_services, job_handlers
from storage.migrate import upgrade_database
from storage.unit_of_work import UnitOfWorkFactory
from tests.booking_support import booking_over, personal_data
from tests.harness import TENANT_ID, FakeConnector, TeamsUser, card_text, start_bot

BRUSSELS = ZoneInfo("Europe/Brussels")


class Recorder:
    """A handler that notes which jobs ran (and can ask for a retry)."""

    def __init__(self, result: Finished | RetryLater | None = None) -> None:
        self.ran: list[int] = []
        self.result = result or Finished("done")

    async def __call__(self, job: Job) -> Finished | RetryLater:
        self.ran.append(job.id)
        return self.result


async def _add(uow_factory: UnitOfWorkFactory, run_at: datetime, *, kind: str = "probe", now: datetime) -> int:
    async with uow_factory() as uow:
        job_id = await uow.jobs.schedule(kind, run_at, {}, now=now)
        await uow.commit()
    return job_id


def test_one_runner_per_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/jobs.db"
    first, second = RunnerLock(url), RunnerLock(url)
    first.acquire()
    with pytest.raises(RunnerLockBusy, match="GUICHET_JOBS=off"):
        second.acquire()
    first.release()
    second.acquire()  # free again once the first has stopped
    second.release()
    RunnerLock("postgresql+asyncpg://x@127.0.0.1/db").acquire()  # PostgreSQL runners share the work


async def test_a_second_worker_on_the_same_sqlite_file_exits_with_a_clear_message(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/jobs.db"
    await upgrade_database(url)
    agency = PROJECT_ROOT / "deployment" / "agencies" / "example-be" / "agency.toml"
    wiring = build_services(Settings(database_url=url, agency=agency, jobs="inline"))
    env = {**os.environ, "GUICHET_DATABASE_URL": url, "GUICHET_AGENCY": str(agency), "GUICHET_JOBS": "off"}
    try:
        async with running_jobs(wiring):
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "worker", env=env, cwd=PROJECT_ROOT,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            _out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        await wiring.close()
    assert process.returncode == 2
    assert b"another process already runs the jobs of this SQLite database" in err


async def test_a_job_due_now_starts_without_waiting_for_the_poll(
    uow_factory: UnitOfWorkFactory, agency: Agency, backend: str, migrated_database_url: str,
) -> None:
    """In the same process the unit of work wakes the runner; from another process PostgreSQL's NOTIFY does."""
    now = datetime.now(UTC)
    recorder = Recorder()
    runner = JobRunner(uow_factory, {"probe": recorder}, FixedClock(now),
                       settings=RunnerSettings(poll_seconds=60))
    uow_factory.on_due_jobs = runner.wake.wake
    stop = asyncio.Event()
    wakeup = None
    if backend == "postgres":
        from bot.jobs.wakeup import PostgresWakeup

        wakeup = PostgresWakeup(migrated_database_url, runner.wake)
        wakeup.start()
    task = asyncio.create_task(runner.serve(stop))
    try:
        await asyncio.sleep(0.3)  # the runner has looked once and sleeps for a minute
        job_id = await _add(uow_factory, now, now=now)
        await _until(lambda: job_id in recorder.ran, 3)
        if wakeup is not None:
            # A job added by another process: no in-process signal, only NOTIFY.
            other = UnitOfWorkFactory(uow_factory.session_factory)
            second = await _add(other, now, now=now)
            await _until(lambda: second in recorder.ran, 3)
    finally:
        stop.set()
        await task
        if wakeup is not None:
            await wakeup.stop()


async def test_an_expired_lease_is_taken_over(uow_factory: UnitOfWorkFactory) -> None:
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    clock = FixedClock(now)
    job_id = await _add(uow_factory, now, now=now)
    async with uow_factory() as uow:
        claimed = await uow.jobs.claim_due(now, 10, timedelta(minutes=5))  # a runner that then died
        await uow.commit()
    assert [job.id for job in claimed] == [job_id]
    recorder = Recorder()
    runner = JobRunner(uow_factory, {"probe": recorder}, clock)
    assert await runner.drain() == 0  # leased to the dead runner
    clock.advance(timedelta(minutes=5))
    assert await runner.drain() == 1 and recorder.ran == [job_id]
    async with uow_factory() as uow:
        job = await uow.jobs.get(job_id)
    assert job is not None and (job.status, job.attempts) == ("done", 2)


async def test_a_handler_that_fails_is_retried_later_and_its_error_class_is_kept(
    uow_factory: UnitOfWorkFactory,
) -> None:
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    class Broken:
        async def __call__(self, job: Job) -> Finished:
            raise ValueError("details that could be personal")

    job_id = await _add(uow_factory, now, now=now)
    await JobRunner(uow_factory, {"probe": Broken()}, FixedClock(now)).drain()
    async with uow_factory() as uow:
        job = await uow.jobs.get(job_id)
    assert job is not None and job.status == "pending" and job.last_error == "ValueError"
    assert now + timedelta(seconds=15) <= job.run_at <= now + timedelta(seconds=30)


async def test_the_daily_retention_run_happens_once_a_day_at_its_local_hour_across_clock_changes(
    uow_factory: UnitOfWorkFactory, agency: Agency,
) -> None:
    clock = FixedClock(datetime(2026, 10, 23, 12, 0, tzinfo=UTC))  # Friday before summer time ends
    services = assemble_services(agency, uow_factory, clock)
    runner = JobRunner(uow_factory, job_handlers(services), clock)
    await ensure_retention_planned(services)
    await ensure_retention_planned(services)  # a second instance starting: still one run per day
    runs: list[datetime] = []
    for _ in range(4):
        async with uow_factory() as uow:
            pending = [job for job in await uow.jobs.listing(kind=JobKind.RETENTION) if job.status == "pending"]
        assert len(pending) == 1
        clock.set(pending[0].run_at)
        await runner.drain()
        runs.append(pending[0].run_at)
    local_runs = [moment.astimezone(BRUSSELS) for moment in runs]
    assert [(moment.day, moment.hour) for moment in local_runs] == [(24, 3), (25, 3), (26, 3), (27, 3)]
    assert [moment.utcoffset() for moment in local_runs][1:3] == [timedelta(hours=1), timedelta(hours=1)]
    assert local_runs[0].utcoffset() == timedelta(hours=2)
    async with uow_factory() as uow:
        events = [event async for event in uow.audit.iterate(agency.id)]
    assert [event.event_type for event in events] == ["retention.run"] * 4


def test_next_daily_run_skips_the_missing_hour_and_runs_a_repeated_hour_once() -> None:
    spring = next_daily_run(BRUSSELS, 2, datetime(2026, 3, 28, 12, tzinfo=UTC))
    assert spring.astimezone(BRUSSELS).replace(tzinfo=None) == datetime(2026, 3, 29, 3, 0)  # 02:00 does not exist
    autumn = next_daily_run(BRUSSELS, 2, datetime(2026, 10, 24, 12, tzinfo=UTC))
    assert autumn == datetime(2026, 10, 25, 0, 0, tzinfo=UTC)  # the first 02:00 (summer time)
    assert next_daily_run(BRUSSELS, 2, autumn).date() == datetime(2026, 10, 26).date()  # not the second 02:00


async def test_an_operator_lists_failed_jobs_and_retries_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/ops.db"
    await upgrade_database(url)
    now = datetime.now(UTC)
    settings = Settings(database_url=url)
    wiring = build_services(settings)
    try:
        job_id = await _add(wiring.uow, now, now=now)
        await JobRunner(wiring.uow, {"probe": Recorder(RetryLater("SendFailed"))}, FixedClock(now),
                        settings=RunnerSettings(max_attempts=1)).drain()
    finally:
        await wiring.close()
    monkeypatch.setenv("GUICHET_DATABASE_URL", url)
    assert await asyncio.to_thread(main, ["jobs", "list", "--failed"]) == 0
    listed = capsys.readouterr().out
    assert f"{job_id:>8}  probe" in listed and "failed" in listed and "SendFailed" in listed
    assert await asyncio.to_thread(main, ["jobs", "retry", str(job_id)]) == 0
    assert await asyncio.to_thread(main, ["jobs", "retry", str(job_id)]) == 1  # pending now, not failed
    assert "is not a failed job" in capsys.readouterr().err


async def _until(predicate, within: float) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "not in time"
        await asyncio.sleep(0.02)


async def test_guichet_serve_runs_the_jobs_and_the_reminder_reaches_the_citizens_chat(
    bot_settings: Settings, agency: Agency, connector: FakeConnector, http: aiohttp.ClientSession,
) -> None:
    clock = FixedClock(datetime(2026, 11, 23, 9, 0, tzinfo=BRUSSELS))
    settings = bot_settings.model_copy(update={"jobs": "inline", "job_poll_seconds": 0.2})
    async with start_bot(settings, agency, clock) as bot:
        citizen = TeamsUser(bot_url=bot.url, connector=connector, http=http)
        await citizen.say("bonjour")
        services = bot.app[SERVICES]
        async with services.uow.read() as uow:
            found = await uow.citizens.get_by_identity(agency.id, TENANT_ID, citizen.aad_object_id)
        assert found is not None
        start = datetime(2026, 11, 25, 10, 0, tzinfo=BRUSSELS)
        booked = await booking_over(services).book(
            citizen_id=found.id, mode=Mode.VIDEO, subject_id="temporary-unemployment", office_id=None, start=start,
            personal_data=personal_data("1000"), interview_language="fr")
        assert isinstance(booked, Booked)
        clock.set(start - timedelta(days=1))
        reminder = await connector.wait_for(
            lambda r: r.conversation_id == citizen.conversation_id and any(
                t("fr", "reminders.title_day") in card_text(card) for card in r.cards), within=10)
    assert "mercredi 25 novembre 2026" in card_text(reminder.cards[0])
