"""Engine and session lifetime for SQLite and PostgreSQL.

Statement parameters are personal data (names, e-mails, national register numbers): they never reach
the logs, whatever the log level — SQLAlchemy hides them (also in error messages), and the debug
records that repeat them (aiosqlite's calls, SQLAlchemy's result rows) are dropped.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from storage import sqlite_driver

# How long a SQLite writer waits for the others of this process (SQLite's own busy timeout is as long).
SQLITE_WRITE_WAIT = 30.0
_write_locks: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()


def _drop_record(_record: logging.LogRecord) -> bool:
    return False


def _drop_debug(record: logging.LogRecord) -> bool:
    return record.levelno > logging.DEBUG


# Filters, not levels: a level is easily lowered again (GUICHET_LOG_LEVEL=DEBUG, a test's caplog).
# aiosqlite logs every call with its arguments; SQLAlchemy logs result rows at DEBUG.
logging.getLogger("aiosqlite").addFilter(_drop_record)
logging.getLogger("sqlalchemy.engine.Engine").addFilter(_drop_debug)


def create_engine(url: str) -> AsyncEngine:
    """An async engine tuned per backend (SQLite: WAL, busy timeout, foreign keys)."""
    if url.startswith("sqlite"):
        # No rollback-on-return: every unit of work ends its transaction itself, and the reset
        # listener below rolls back what might not have been (each driver call is a thread hop).
        # Same driver (aiosqlite), one thread trip per statement instead of four (storage.sqlite_driver).
        one_trip = make_url(url).set(drivername=f"sqlite+{sqlite_driver.DRIVER}")
        engine = create_async_engine(one_trip, connect_args={"timeout": 30}, pool_reset_on_return=None,
                                     hide_parameters=True)
        _configure_sqlite(engine.sync_engine)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True, hide_parameters=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # The driver's implicit BEGIN is replaced by our own BEGIN IMMEDIATE (below), so that a
        # writer takes the lock up front instead of failing with "database is locked" on upgrade.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if ":memory:" not in str(engine.url):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        # Straight to the driver: one call, where exec_driver_sql makes three (cursor, execute, close).
        connection.connection.dbapi_connection.execute("BEGIN IMMEDIATE")

    @event.listens_for(engine.pool, "reset")
    def _on_reset(dbapi_connection, _record, state):  # type: ignore[no-untyped-def]
        if not state.asyncio_safe or state.terminate_only:
            return  # garbage collection or invalidation: the connection is closed, not reused
        if dbapi_connection.driver_connection.in_transaction:
            dbapi_connection.rollback()


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def sqlite_write_lock(session_factory: async_sessionmaker[AsyncSession]) -> asyncio.Lock | None:
    """The lock this process's writers to a SQLite database take before BEGIN IMMEDIATE; None otherwise.

    SQLite has one writer at a time and makes the others poll, sleeping up to 100 ms between tries:
    under load some wait for seconds while others keep winning. Queuing the writers of one process
    on an asyncio lock first hands the database over in turn, without sleeping. (Other processes
    still meet SQLite's busy timeout.)
    """
    bind: Any = session_factory.kw.get("bind")
    engine = getattr(bind, "sync_engine", None)
    if engine is None or engine.dialect.name != "sqlite":
        return None
    lock = _write_locks.get(engine)
    if lock is None:
        lock = _write_locks[engine] = asyncio.Lock()
    return lock


async def acquire_write_lock(lock: asyncio.Lock) -> None:
    try:
        await asyncio.wait_for(lock.acquire(), SQLITE_WRITE_WAIT)
    except TimeoutError:
        # As SQLite itself would answer after its busy timeout; most likely a unit of work opened
        # inside another one in the same flow.
        raise TimeoutError("database is locked: another unit of work of this process holds it") from None
