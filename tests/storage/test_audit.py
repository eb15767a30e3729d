"""Audit events: the chain head per agency and reading the log back in order."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.domain.audit import AuditEvent, ChainHead
from storage.unit_of_work import UnitOfWorkFactory
from tests.storage.helpers import NOW


def _event(agency_id: str, number: int, prev_hash: str) -> AuditEvent:
    return AuditEvent(
        agency_id=agency_id,
        occurred_at=NOW + timedelta(seconds=number),
        actor="system",
        event_type="appointment.booked",
        citizen_pseudonym=f"p{number % 3}",
        appointment_id=None,
        payload={"n": number},
        prev_hash=prev_hash,
        hash=f"{agency_id}-{number}".ljust(64, "0"),
    )


async def test_last_is_the_head_of_each_agency_chain(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        assert await uow.audit.last("example-be") is None
        previous = "0" * 64
        for number in range(3):
            event = await uow.audit.append(_event("example-be", number, previous))
            previous = event.hash
        await uow.audit.append(_event("example-fr", 10, "0" * 64))
        await uow.commit()

    async with uow_factory() as uow:
        head_be = await uow.audit.last("example-be")
        head_fr = await uow.audit.last("example-fr")

    assert head_be is not None and head_be.payload == {"n": 2}
    assert head_fr is not None and head_fr.payload == {"n": 10}


async def test_iterate_returns_every_event_in_id_order_across_batches(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        for number in range(7):
            await uow.audit.append(_event("example-be" if number != 3 else "example-fr", number, "0" * 64))
        await uow.commit()

    async with uow_factory() as uow:
        everything = [event.payload["n"] async for event in uow.audit.iterate(batch_size=2)]
        belgian = [event.payload["n"] async for event in uow.audit.iterate("example-be", batch_size=2)]

    assert everything == list(range(7))
    assert belgian == [0, 1, 2, 4, 5, 6]


async def test_concurrent_appenders_extend_one_chain_without_forks(uow_factory: UnitOfWorkFactory) -> None:
    async def append(number: int) -> None:
        async with uow_factory() as uow:
            head = await uow.audit.last("example-be")
            await uow.audit.append(_event("example-be", number, head.hash if head else "0" * 64))
            await uow.commit()

    await asyncio.gather(*(append(number) for number in range(6)))

    async with uow_factory() as uow:
        chain = [event async for event in uow.audit.iterate("example-be")]
    assert len(chain) == 6
    assert chain[0].prev_hash == "0" * 64
    assert [event.prev_hash for event in chain[1:]] == [event.hash for event in chain[:-1]]


async def test_head_is_the_newest_event_and_add_after_appends_only_after_it(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        await uow.audit.lock_chain("example-be")
        assert await uow.audit.head("example-be") is None
        for number in range(2):
            await uow.audit.append(_event("example-be", number, "0" * 64))
        await uow.audit.append(_event("example-fr", 5, "0" * 64))
        head = await uow.audit.head("example-be")
        assert head == ChainHead(_event("example-be", 1, "").hash, NOW + timedelta(seconds=1))

        def values(number: int, prev_hash: str) -> dict[str, object]:
            event = _event("example-be", number, prev_hash)
            return {column.key: getattr(event, column.key) for column in AuditEvent.__table__.columns
                    if column.key != "id"}

        assert not await uow.audit.add_after(values(7, _event("example-be", 0, "").hash))  # not the head
        assert not await uow.audit.add_after(values(8, _event("example-fr", 5, "").hash))  # another chain's
        assert await uow.audit.add_after(values(2, head.hash))
        assert not await uow.audit.add_after(values(3, head.hash))  # no longer the head
        await uow.commit()

    async with uow_factory() as uow:
        chain = [event async for event in uow.audit.iterate("example-be")]
    assert [event.payload["n"] for event in chain] == [0, 1, 2]
    assert chain[2].prev_hash == chain[1].hash and chain[2].occurred_at == NOW + timedelta(seconds=2)
