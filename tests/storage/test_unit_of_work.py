"""Units of work: read-only ones neither queue behind writers nor write; lost PostgreSQL connections are replaced."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.people import Citizen
from storage.db import ReadOnlyViolation, create_engine, create_session_factory
from storage.tables import metadata
from storage.unit_of_work import UnitOfWorkFactory
from tests.fixtures.database import ADMIN_URL
from tests.storage.helpers import AGENCY, NOW, new_citizen

POSTGRES_ONLY = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


async def _opted_out(uow_factory: UnitOfWorkFactory, citizen_id: str) -> bool:
    async with uow_factory.read() as uow:
        return bool(await uow.session.scalar(select(Citizen.reminders_opt_out).where(Citizen.id == citizen_id)))


async def test_a_read_only_unit_of_work_reads_what_is_committed_and_writes_nothing(
    uow_factory: UnitOfWorkFactory,
) -> None:
    citizen_id = await new_citizen(uow_factory)

    async with uow_factory.read() as uow:
        citizen = await uow.citizens.get(citizen_id)
        assert citizen is not None and citizen.agency_id == AGENCY
        assert await uow.session.scalar(text("SELECT count(*) FROM citizens")) == 1
        with pytest.raises(ReadOnlyViolation):
            await uow.citizens.set_flags(citizen_id, reminders_opt_out=True)
        with pytest.raises(ReadOnlyViolation):
            await uow.session.execute(text("DELETE FROM citizens"))
        with pytest.raises(RuntimeError):
            await uow.commit()

    async with uow_factory.read() as uow:
        with pytest.raises(ReadOnlyViolation):
            await uow.citizens.upsert_identity(
                agency_id=AGENCY, tenant_id="tenant-1", aad_object_id="object-2", teams_user_id="29:object-2",
                conversation_reference=None, locale=None, now=NOW,
            )

    assert not await _opted_out(uow_factory, citizen_id)
    async with uow_factory() as uow:
        assert len(list(await uow.session.scalars(select(Citizen.id)))) == 1


async def test_readers_neither_wait_for_a_writer_nor_hold_it_up(uow_factory: UnitOfWorkFactory) -> None:
    citizen_id = await new_citizen(uow_factory)

    async with uow_factory() as writer:
        # The writer holds this process's SQLite write lock (and SQLite's): a reader that queued
        # behind it would never get in before the writer leaves.
        await writer.citizens.set_flags(citizen_id, reminders_opt_out=True)
        async with asyncio.timeout(5):
            assert not await _opted_out(uow_factory, citizen_id)  # what is committed, not the writer's change
        await writer.commit()
    assert await _opted_out(uow_factory, citizen_id)

    async with uow_factory.read() as reader:
        first = await reader.session.scalar(select(Citizen.reminders_opt_out).where(Citizen.id == citizen_id))
        async with asyncio.timeout(5), uow_factory() as writer:
            await writer.citizens.set_flags(citizen_id, reminders_opt_out=False)
            await writer.commit()
        again = await reader.session.scalar(select(Citizen.reminders_opt_out).where(Citizen.id == citizen_id))
    # Each statement reads what is committed when it starts, as READ COMMITTED transactions do.
    assert (first, again) == (True, False)


async def _terminate_backends(engine: AsyncEngine) -> None:
    """pg_terminate_backend on every connection to the engine's database, and wait until they are gone."""
    database = make_url(str(engine.url)).database
    admin = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()", database)
        assert killed >= 1
        for _ in range(500):
            if not await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", database):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the terminated connections are still there")
    finally:
        await admin.close()


@POSTGRES_ONLY
async def test_postgresql_connections_lost_while_idle_in_the_pool_are_replaced_unnoticed(
    uow_factory: UnitOfWorkFactory, migrated_engine: AsyncEngine,
) -> None:
    citizen_id = await new_citizen(uow_factory)
    await asyncio.gather(_opted_out(uow_factory, citizen_id), _opted_out(uow_factory, citizen_id))

    await _terminate_backends(migrated_engine)

    # Every pooled connection is dead: each checkout must notice and reconnect, for writers and readers.
    async with uow_factory() as uow:
        await uow.citizens.set_flags(citizen_id, reminders_opt_out=True)
        await uow.commit()
    assert await asyncio.gather(_opted_out(uow_factory, citizen_id), _opted_out(uow_factory, citizen_id)) == [
        True, True]


async def test_an_in_memory_sqlite_database_queues_its_readers_behind_the_writer() -> None:
    """Its one connection is everyone's: a reader must neither see nor end a writer's transaction."""
    engine = create_engine("sqlite+aiosqlite://")
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        uow_factory = UnitOfWorkFactory(create_session_factory(engine))

        async def citizens() -> int:
            async with uow_factory.read() as reader:
                return int(await reader.session.scalar(text("SELECT count(*) FROM citizens")) or 0)

        async with uow_factory() as writer:
            await writer.citizens.upsert_identity(
                agency_id=AGENCY, tenant_id="tenant-1", aad_object_id="object-1", teams_user_id="29:object-1",
                conversation_reference=None, locale=None, now=NOW,
            )
            reading = asyncio.create_task(citizens())
            await asyncio.sleep(0.05)
            assert not reading.done()
            await writer.commit()
        assert await reading == 1
    finally:
        await engine.dispose()
