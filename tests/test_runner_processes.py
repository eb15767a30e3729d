"""Two job-runner processes on one PostgreSQL database: every due reminder is sent exactly once; when one
process is killed mid-batch, the other takes its jobs over once their lease ends, and nothing is lost.

The runners are real processes (tests/runner_process.py) sending over HTTP to the connector stand-in,
which counts what each conversation received.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from bot.domain.appointment import Appointment
from bot.domain.jobs import JobKind
from bot.settings import PROJECT_ROOT
from storage.db import create_engine, create_session_factory
from storage.migrate import upgrade_database
from storage.unit_of_work import UnitOfWorkFactory
from tests.harness import FakeConnector

pytestmark = pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)],
                                     indirect=True)

AGENCY = PROJECT_ROOT / "deployment" / "agencies" / "example-be" / "agency.toml"
COUNSELORS = ["09f16cfb-d20e-427d-a50e-e70ab4c9b4f5", "3a7787b8-8107-4039-928f-bedcb99c321e",
              "cf1590b8-f33b-4ade-9bf1-e963c0fd9455", "b7f2e885-affc-4419-b062-81739713700c"]


async def _due_reminders(database_url: str, connector_url: str, count: int) -> list[str]:
    """`count` citizens, each with an appointment and one reminder due now; their conversation ids."""
    await upgrade_database(database_url)
    engine = create_engine(database_url)
    uow_factory = UnitOfWorkFactory(create_session_factory(engine))
    now = datetime.now(UTC)
    conversations = []
    try:
        async with uow_factory() as uow:
            for i in range(count):
                conversation_id = f"a:runner-{i}-{uuid4().hex[:6]}"
                citizen = await uow.citizens.upsert_identity(
                    agency_id="example-be", tenant_id="tenant-1", aad_object_id=str(uuid4()),
                    teams_user_id=f"29:{i}", locale="fr-BE", now=now,
                    conversation_reference={"serviceUrl": connector_url, "channelId": "msteams",
                                            "conversation": {"id": conversation_id, "tenantId": "tenant-1"},
                                            "user": {"id": f"29:{i}"}, "bot": {"id": "28:bot"}})
                start = (now + timedelta(hours=3, minutes=30 * i)).replace(microsecond=0)
                appointment = await uow.appointments.add(Appointment(
                    id=str(uuid4()), agency_id="example-be", citizen_id=citizen.id,
                    counselor_id=COUNSELORS[i % len(COUNSELORS)], mode="video", subject_id="temporary-unemployment",
                    starts_at=start, ends_at=start + timedelta(minutes=30), interview_language="fr",
                    created_at=now, updated_at=now))
                offset = int((start - now).total_seconds() // 60)
                await uow.jobs.schedule(str(JobKind.REMINDER), now - timedelta(seconds=1),
                                        {"appointment_id": appointment.id, "offset_minutes": offset},
                                        f"reminder:{appointment.id}", appointment_id=appointment.id, now=now)
                conversations.append(conversation_id)
            await uow.commit()
    finally:
        await engine.dispose()
    return conversations


@dataclass
class Runner:
    """A runner process and the jobs it reports having run: (job id, attempt)."""

    process: asyncio.subprocess.Process
    ran: list[tuple[int, int]] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            kind, *values = line.decode().split()
            if kind == "ran":
                self.ran.append((int(values[0]), int(values[1])))


async def _start_runner(database_url: str, lease: float, batch: int, hang_after: int | None = None) -> Runner:
    env = {**os.environ, "GUICHET_JOBS": "inline", "MicrosoftAppId": "", "GUICHET_LOG_LEVEL": "WARNING"}
    hang = ["--hang-after", str(hang_after)] if hang_after is not None else []
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.runner_process", "--database-url", database_url, "--agency", str(AGENCY),
        "--lease", str(lease), "--batch", str(batch), *hang, cwd=PROJECT_ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    assert line.strip() == b"ready", line
    runner = Runner(process)
    runner.reader = asyncio.create_task(runner.read())
    return runner


async def _stop(runner: Runner) -> None:
    if runner.process.returncode is None:
        runner.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(runner.process.wait(), 30)
    assert runner.reader is not None
    await asyncio.wait_for(runner.reader, 10)


def _received(connector: FakeConnector, conversations: list[str]) -> Counter[str]:
    wanted = set(conversations)
    return Counter(r.conversation_id for r in connector.received if r.conversation_id in wanted)


async def _until(predicate, within: float) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "the runners did not get there in time"
        await asyncio.sleep(0.05)


async def test_two_runners_send_every_due_reminder_exactly_once(database_url: str, connector: FakeConnector) -> None:
    await upgrade_database(database_url)
    connector.delay = 0.05  # each send takes a moment, as Teams' does: one runner cannot take it all
    runners = [await _start_runner(database_url, lease=30, batch=10) for _ in range(2)]
    # Due once both are running: a runner started first would otherwise be done before the second starts.
    conversations = await _due_reminders(database_url, connector.url, 120)
    try:
        await _until(lambda: sum(_received(connector, conversations).values()) >= len(conversations), 60)
        await asyncio.sleep(0.5)  # anything sent twice would show up by now
    finally:
        for runner in runners:
            await _stop(runner)
    received = _received(connector, conversations)
    assert set(received) == set(conversations), "every reminder arrived"
    assert [c for c, n in received.items() if n > 1] == [], "none arrived twice"
    # The work was shared, and no job ran in both.
    first, second = ({job for job, _ in runner.ran} for runner in runners)
    assert first and second, (len(first), len(second))
    assert not first & second and len(first | second) == len(conversations)


async def test_a_runner_killed_mid_batch_loses_nothing_and_the_other_takes_over_after_the_lease(
    database_url: str, connector: FakeConnector,
) -> None:
    await upgrade_database(database_url)
    connector.delay = 0.05
    batch = 10
    # The victim stops making progress after 15 reminders, holding the jobs it has claimed, then is killed.
    victim = await _start_runner(database_url, lease=3, batch=batch, hang_after=15)
    survivor = await _start_runner(database_url, lease=3, batch=batch)
    conversations = await _due_reminders(database_url, connector.url, 120)
    try:
        await _until(lambda: len(victim.ran) >= 15, 60)
        victim.process.send_signal(signal.SIGKILL)
        await victim.process.wait()
        await _until(lambda: set(_received(connector, conversations)) == set(conversations), 90)
        await asyncio.sleep(0.5)
    finally:
        await _stop(survivor)
    assert victim.reader is not None
    await asyncio.wait_for(victim.reader, 10)
    received = _received(connector, conversations)
    assert set(received) == set(conversations), "nothing was lost"
    # Both ran reminders; the survivor ran again, once their lease had ended, jobs the victim had claimed.
    assert len(victim.ran) == 15 and survivor.ran
    taken_over = {job for job, attempt in survivor.ran if attempt > 1}
    # Among them, the ones the victim hung on (it may also have sent some of its batch without recording it).
    assert taken_over - {job for job, _ in victim.ran}, "no job was taken over after the lease"
    duplicates = sum(n - 1 for n in received.values())
    # Only what the killed process had sent but not yet recorded as done can go twice: one batch at most.
    assert duplicates <= batch, duplicates
