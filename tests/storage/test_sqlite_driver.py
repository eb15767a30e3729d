"""The one-trip SQLite driver (storage.sqlite_driver): fewer trips to its thread, same transactions.

A write transaction's BEGIN IMMEDIATE travels with its first statement, commit() and rollback()
make no trip without a transaction, executemany is one trip. These tests check what that must not
change: the write lock is taken at the first statement, a failed BEGIN raises the driver's error and
runs nothing, nothing is left open on a pooled connection, a commit is never skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, Table, bindparam, event, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from storage.db import create_engine, create_session_factory
from storage.unit_of_work import UnitOfWorkFactory

metadata = MetaData()
items = Table("items", metadata, Column("id", Integer, primary_key=True), Column("value", Integer))


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "driver.db")


@pytest.fixture
async def engine(path: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")

    @event.listens_for(engine.sync_engine, "connect")
    def _short_wait(dbapi_connection: Any, _record: Any) -> None:
        # After storage.db's own listener: a locked database answers at once, not after 30 s.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=50")
        cursor.close()

    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions sent to aiosqlite's thread, in order."""
    sent: list[str] = []
    execute = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, function: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(getattr(function, "__name__", repr(function)))
        return await execute(self, function, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return sent


@contextlib.contextmanager
def other_process(path: str) -> Any:
    connection = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        yield connection
    finally:
        connection.close()


def write_lock_is_free(path: str) -> bool:
    with other_process(path) as other:
        try:
            other.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            assert "locked" in str(error)
            return False
        other.execute("ROLLBACK")
        return True


def stored(path: str) -> list[tuple[int, int]]:
    with other_process(path) as other:
        return [tuple(row) for row in other.execute("SELECT id, value FROM items ORDER BY id")]


async def test_a_writer_holds_the_write_lock_from_its_first_statement_until_commit(
    engine: AsyncEngine, path: str, trips: list[str],
) -> None:
    uow_factory = UnitOfWorkFactory(create_session_factory(engine))
    trips.clear()
    async with uow_factory() as uow:
        assert await uow.session.scalar(select(items.c.value)) is None  # a read first, as use cases do
        assert not write_lock_is_free(path)
        await uow.session.execute(insert(items).values(id=1, value=10))
        await uow.commit()
    assert write_lock_is_free(path)
    assert stored(path) == [(1, 10)]
    # BEGIN IMMEDIATE went with the SELECT: three trips instead of four.
    assert trips == ["_run_statement", "_run_statement", "_commit"]


async def test_a_writer_that_fails_leaves_nothing_behind(engine: AsyncEngine, path: str) -> None:
    uow_factory = UnitOfWorkFactory(create_session_factory(engine))
    with pytest.raises(RuntimeError):
        async with uow_factory() as uow:
            await uow.session.execute(insert(items).values(id=1, value=10))
            raise RuntimeError("the use case changes its mind")
    assert stored(path) == []  # the INSERT ran inside the transaction, not on its own
    assert write_lock_is_free(path)


async def test_a_reader_makes_one_trip_per_statement_and_none_to_end(
    engine: AsyncEngine, path: str, trips: list[str],
) -> None:
    uow_factory = UnitOfWorkFactory(create_session_factory(engine))
    async with uow_factory() as uow:
        await uow.session.execute(insert(items).values(id=1, value=10))
        await uow.commit()
    trips.clear()
    async with uow_factory.read() as reader:
        assert await reader.session.scalar(select(items.c.value)) == 10
        assert write_lock_is_free(path)
    assert trips == ["_run_statement"]


async def test_a_failed_begin_raises_the_driver_error_and_the_statement_does_not_run(engine: AsyncEngine,
                                                                                      path: str) -> None:
    async with engine.connect() as connection:
        # A temporary table can be written without the database's write lock: it shows whether the
        # statement ran after its BEGIN failed.
        await connection.execute(text("CREATE TEMP TABLE probe (x INTEGER)"))
        await connection.commit()
        with other_process(path) as other:
            other.execute("BEGIN IMMEDIATE")
            # As when BEGIN had its own trip: sqlite3's error, not wrapped as the statement's.
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                await connection.execute(text("INSERT INTO probe VALUES (1)"))
            await connection.rollback()
            other.execute("ROLLBACK")
        assert await connection.scalar(text("SELECT count(*) FROM probe")) == 0
        await connection.commit()


async def test_a_statement_error_after_begin_is_still_the_statement_error(engine: AsyncEngine, path: str) -> None:
    async with engine.connect() as connection:
        with pytest.raises(IntegrityError):
            await connection.execute(insert(items), [{"id": 1, "value": 1}, {"id": 1, "value": 2}])
        assert not write_lock_is_free(path)  # BEGIN ran: the transaction is open until rollback
        await connection.rollback()
    assert write_lock_is_free(path)
    assert stored(path) == []


async def test_executemany_is_one_trip_with_its_row_count(engine: AsyncEngine, path: str, trips: list[str]) -> None:
    async with engine.begin() as connection:
        await connection.execute(insert(items), [{"id": n, "value": n} for n in range(1, 5)])
    trips.clear()
    async with engine.begin() as connection:
        changed = await connection.execute(
            update(items).where(items.c.id == bindparam("key")).values(value=bindparam("new")),
            [{"key": 1, "new": 100}, {"key": 3, "new": 300}, {"key": 9, "new": 900}],
        )
        assert changed.rowcount == 2
    assert stored(path) == [(1, 100), (2, 2), (3, 300), (4, 4)]
    assert trips == ["_run_many", "_commit"]  # BEGIN went with the executemany


async def test_a_streamed_first_statement_still_begins_the_transaction(engine: AsyncEngine, path: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(insert(items), [{"id": 1, "value": 1}, {"id": 2, "value": 2}])
    async with engine.connect() as connection:
        result = await connection.stream(select(items.c.value).order_by(items.c.id))
        assert not write_lock_is_free(path)
        assert [row.value async for row in result] == [1, 2]
        await connection.execute(update(items).values(value=0))
        await connection.rollback()
    assert stored(path) == [(1, 1), (2, 2)]


async def test_a_transaction_without_statements_makes_no_trip_and_takes_no_lock(
    engine: AsyncEngine, path: str, trips: list[str],
) -> None:
    trips.clear()
    async with engine.begin():
        assert write_lock_is_free(path)
    async with engine.connect() as connection:
        await connection.begin()
        await connection.rollback()
        await connection.begin()
        await connection.commit()
        assert trips == []
        assert write_lock_is_free(path)
        # The next transaction on the connection begins once, with its first statement.
        assert await connection.scalar(select(items.c.value)) is None
        assert not write_lock_is_free(path)
        await connection.rollback()
    assert trips == ["_run_statement", "_rollback"]
    assert write_lock_is_free(path)


async def test_a_begin_never_sent_does_not_follow_the_connection_back_into_the_pool(
    engine: AsyncEngine, path: str,
) -> None:
    async with engine.connect() as connection:
        # What storage.db's "begin" listener does, on a connection then handed back without the
        # transaction being ended (as a cancelled unit of work could).
        await connection.run_sync(lambda sync: sync.connection.dbapi_connection.execute("BEGIN IMMEDIATE"))
    reader = UnitOfWorkFactory(create_session_factory(engine)).read()
    async with reader:  # the same pooled connection: the engine has opened only one
        assert await reader.session.scalar(select(items.c.value)) is None
        assert write_lock_is_free(path), "the reader ran a stale BEGIN IMMEDIATE"
    assert engine.sync_engine.pool.checkedin() == 1


async def test_commit_sees_a_transaction_opened_outside_the_adapter(engine: AsyncEngine, path: str) -> None:
    async with engine.connect() as connection:
        await connection.begin()
        raw = await connection.get_raw_connection()
        if not raw.driver_connection.in_transaction:  # BEGIN waits for a statement: open it here
            await raw.driver_connection.execute("BEGIN IMMEDIATE")
        await raw.driver_connection.execute("INSERT INTO items (id, value) VALUES (7, 70)")
        await connection.commit()
    assert stored(path) == [(7, 70)]
    assert write_lock_is_free(path)


async def test_rollback_after_an_interrupted_trip_waits_for_it(engine: AsyncEngine, path: str) -> None:
    """A cancelled task's trip still runs on the driver's thread; rollback() must not trust the
    connection's state before it has ended (SQLAlchemy invalidates such connections, this is the
    driver's own guarantee)."""
    raw = await engine.raw_connection()
    adapter: Any = raw.dbapi_connection
    try:
        await greenlet_spawn(adapter.create_function, "pause", 1, time.sleep)

        async def interrupted(statement: str, after: float) -> None:
            task = asyncio.ensure_future(greenlet_spawn(adapter.cursor().execute, statement))
            await asyncio.sleep(after)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        await interrupted("SELECT pause(0.3)", 0.05)  # the driver's thread is busy for a while
        await greenlet_spawn(adapter.execute, "BEGIN IMMEDIATE")
        await interrupted("INSERT INTO items (id, value) VALUES (1, 1)", 0)
        await greenlet_spawn(adapter.rollback)
        await asyncio.sleep(0.4)  # anything still queued has run by now
        assert not adapter.driver_connection.in_transaction
        assert write_lock_is_free(path)
        assert stored(path) == []
    finally:
        await greenlet_spawn(raw.close)
