"""Durable jobs: idempotent scheduling, leases, and claims that never hand one job to two workers."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.domain.jobs import NewJob
from storage.unit_of_work import UnitOfWorkFactory
from tests.storage.helpers import NOW

LEASE = timedelta(minutes=5)


async def _schedule(
    uow_factory: UnitOfWorkFactory, count: int, appointment_id: str | None = None
) -> list[int]:
    async with uow_factory() as uow:
        ids = [
            await uow.jobs.schedule(
                "reminder",
                NOW + timedelta(seconds=number),
                {"n": number},
                appointment_id=appointment_id,
                now=NOW,
            )
            for number in range(count)
        ]
        await uow.commit()
    return ids


async def _claim(uow_factory: UnitOfWorkFactory, limit: int, at: timedelta = timedelta(hours=1)) -> list[int]:
    async with uow_factory() as uow:
        jobs = await uow.jobs.claim_due(NOW + at, limit, LEASE)
        await uow.commit()
    return [job.id for job in jobs]


async def test_schedule_with_a_known_dedupe_key_returns_the_existing_job(
    uow_factory: UnitOfWorkFactory,
) -> None:
    async with uow_factory() as uow:
        first = await uow.jobs.schedule("reminder", NOW, {"v": 1}, "reminder:a1:24h", now=NOW)
        again = await uow.jobs.schedule(
            "reminder", NOW + timedelta(hours=1), {"v": 2}, "reminder:a1:24h", now=NOW
        )
        other = await uow.jobs.schedule("reminder", NOW, {"v": 3}, "reminder:a1:1h", now=NOW)
        plain = [await uow.jobs.schedule("retention", NOW, {}, now=NOW) for _ in range(2)]
        await uow.commit()

    assert first == again
    assert len({first, other, *plain}) == 4
    async with uow_factory() as uow:
        job = await uow.jobs.get(first)
    assert job is not None and job.payload == {"v": 1} and job.run_at == NOW


async def test_claim_due_takes_only_due_jobs_oldest_first_and_leases_them(
    uow_factory: UnitOfWorkFactory,
) -> None:
    async with uow_factory() as uow:
        late = await uow.jobs.schedule("reminder", NOW + timedelta(minutes=2), {}, now=NOW)
        early = await uow.jobs.schedule("reminder", NOW + timedelta(minutes=1), {}, now=NOW)
        future = await uow.jobs.schedule("reminder", NOW + timedelta(days=1), {}, now=NOW)
        await uow.commit()

    async with uow_factory() as uow:
        claimed = await uow.jobs.claim_due(NOW + timedelta(minutes=3), 10, LEASE)
        await uow.commit()

    assert [job.id for job in claimed] == [early, late]
    assert all(job.status == "running" and job.attempts == 1 for job in claimed)
    assert all(job.locked_until == NOW + timedelta(minutes=3) + LEASE for job in claimed)
    assert await _claim(uow_factory, 10, timedelta(minutes=4)) == []  # leased, not yet expired
    assert future not in await _claim(uow_factory, 10, timedelta(hours=1))


async def test_an_expired_lease_makes_the_job_claimable_again(uow_factory: UnitOfWorkFactory) -> None:
    (job_id,) = await _schedule(uow_factory, 1)
    assert await _claim(uow_factory, 1, timedelta(minutes=1)) == [job_id]

    assert await _claim(uow_factory, 1, timedelta(minutes=1) + LEASE) == [job_id]

    async with uow_factory() as uow:
        job = await uow.jobs.get(job_id)
    assert job is not None and job.attempts == 2


async def test_concurrent_claimers_never_share_a_job(uow_factory: UnitOfWorkFactory) -> None:
    scheduled = await _schedule(uow_factory, 40)

    batches = await asyncio.gather(*(_claim(uow_factory, 7) for _ in range(8)))

    claimed = [job_id for batch in batches for job_id in batch]
    assert len(claimed) == len(set(claimed)) == len(scheduled)
    async with uow_factory() as uow:
        jobs = [await uow.jobs.get(job_id) for job_id in scheduled]
    assert all(job is not None and job.attempts == 1 for job in jobs)


async def test_done_failed_and_retried_jobs(uow_factory: UnitOfWorkFactory) -> None:
    done_id, retry_id, failed_id = await _schedule(uow_factory, 3)
    await _claim(uow_factory, 3)

    retry_at = NOW + timedelta(hours=2)
    async with uow_factory() as uow:
        assert await uow.jobs.mark_done(done_id)
        assert await uow.jobs.mark_failed(retry_id, "Graph answered 503", retry_at)
        assert await uow.jobs.mark_failed(failed_id, "x" * 5000, None)
        assert not await uow.jobs.mark_done(done_id)  # not running any more
        await uow.commit()

    async with uow_factory() as uow:
        done, retry, failed = [await uow.jobs.get(job_id) for job_id in (done_id, retry_id, failed_id)]
    assert done is not None and done.status == "done" and done.locked_until is None
    assert retry is not None and (retry.status, retry.run_at, retry.last_error) == (
        "pending",
        retry_at,
        "Graph answered 503",
    )
    assert failed is not None and failed.status == "failed" and len(failed.last_error or "") == 2000
    assert await _claim(uow_factory, 10, timedelta(hours=1)) == []
    assert await _claim(uow_factory, 10, timedelta(hours=2)) == [retry_id]


async def test_cancel_for_appointment_withdraws_its_pending_jobs_only(uow_factory: UnitOfWorkFactory) -> None:
    claimed_a, waiting_a = await _schedule(uow_factory, 2, appointment_id="appointment-a")
    (pending_b,) = await _schedule(uow_factory, 1, appointment_id="appointment-b")
    async with uow_factory() as uow:
        await uow.jobs.claim_due(NOW + timedelta(seconds=1), 1, LEASE)  # takes claimed_a (oldest)
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.jobs.cancel_for_appointment("appointment-a") == 1
        await uow.commit()

    async with uow_factory() as uow:
        statuses = {job.id: job.status for job in await uow.jobs.for_appointment("appointment-a")}
        other = await uow.jobs.get(pending_b)
    assert statuses == {claimed_a: "running", waiting_a: "cancelled"}
    assert other is not None and other.status == "pending"


async def test_schedule_many_stores_each_job_in_one_go_and_leaves_known_keys_alone(
    uow_factory: UnitOfWorkFactory,
) -> None:
    async with uow_factory() as uow:
        kept = await uow.jobs.schedule("reminder", NOW, {"v": "old"}, "reminder:a1:24h", now=NOW)
        await uow.jobs.schedule_many([
            NewJob("reminder", NOW + timedelta(hours=1), {"v": "new"}, "reminder:a1:24h"),
            NewJob("reminder", NOW + timedelta(hours=2), {"offset_minutes": 60}, "reminder:a1:1h"),
            NewJob("no_show_check", NOW + timedelta(hours=3), {}, "no_show:a1"),
        ], appointment_id="a1", now=NOW - timedelta(minutes=1))
        await uow.jobs.schedule_many([NewJob("counselor_prompt", NOW, {"n": 1}, "prompt:a2")], appointment_id="a2",
                                     now=NOW)
        await uow.jobs.schedule_many([], appointment_id="a3", now=NOW)
        await uow.commit()

    async with uow_factory() as uow:
        first = await uow.jobs.for_appointment("a1")
        second = await uow.jobs.for_appointment("a2")
        old = await uow.jobs.get(kept)
    assert old is not None and (old.payload, old.run_at, old.appointment_id) == ({"v": "old"}, NOW, None)
    assert [(job.kind, job.run_at, job.payload, job.dedupe_key) for job in first] == [
        ("reminder", NOW + timedelta(hours=2), {"offset_minutes": 60}, "reminder:a1:1h"),
        ("no_show_check", NOW + timedelta(hours=3), {}, "no_show:a1"),
    ]
    assert {(job.status, job.attempts, job.created_at, job.locked_until) for job in first} == {
        ("pending", 0, NOW - timedelta(minutes=1), None)}
    assert [(job.kind, job.payload, job.status, job.run_at) for job in second] == [
        ("counselor_prompt", {"n": 1}, "pending", NOW)]
    # They are due like any other job.
    assert len(await _claim(uow_factory, 10, at=timedelta(hours=4))) == 4
