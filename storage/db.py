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
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from storage import speedups, sqlite_driver

# How long a SQLite writer waits for the others of this process (SQLite's own busy timeout is as long).
SQLITE_WRITE_WAIT = 30.0
_write_locks: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()
# Pool record flag: the connection was opened for this checkout, no need to ping it.
_FRESH = "guichet.fresh"
# Execution option marking the connections of read-only units of work (see read_only_session_factory).
READ_ONLY_OPTION = "guichet_read_only"


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
        speedups.check_once()
        if speedups.ACTIVE.one_trip_driver:
            url = str(make_url(url).set(drivername=f"sqlite+{sqlite_driver.DRIVER}"))
        engine = create_async_engine(url, connect_args={"timeout": 30}, pool_reset_on_return=None,
                                     hide_parameters=True)
        _configure_sqlite(engine.sync_engine)
        return engine
    engine = create_async_engine(url, pool_size=10, max_overflow=10, hide_parameters=True)
    _ping_on_checkout(engine.sync_engine)
    return engine


def _ping_on_checkout(engine: Engine) -> None:
    """pool_pre_ping, in one round trip instead of three.

    SQLAlchemy's asyncpg ping wraps its probe in BEGIN ... ROLLBACK (for PgBouncer's transaction
    mode): three round trips each time a unit of work or bot state read takes a connection. A lone
    SELECT 1 on the simple query protocol is one, and runs anywhere, PgBouncer included. A dead
    connection fails it; DisconnectionError makes the pool replace it with a fresh one, as
    pool_pre_ping does (SQLAlchemy's "pessimistic" disconnect handling).
    """

    @event.listens_for(engine.pool, "connect")
    def _fresh(_dbapi_connection, record):  # type: ignore[no-untyped-def]
        record.info[_FRESH] = True

    @event.listens_for(engine.pool, "checkout")
    def _ping(dbapi_connection, record, _proxy):  # type: ignore[no-untyped-def]
        if record.info.pop(_FRESH, False):
            return  # just opened: nothing to check yet
        try:
            dbapi_connection.run_async(lambda connection: connection.execute("SELECT 1"))
        except Exception as error:
            raise DisconnectionError("connection lost; the pool replaces it") from error


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
        if connection.get_execution_options().get(READ_ONLY_OPTION, False):
            # A read-only unit of work: no BEGIN at all (one trip to the driver's thread less), each
            # SELECT is a read transaction of its own; in WAL mode it neither waits for the writer
            # nor blocks it.
            return
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


class ReadOnlyViolation(RuntimeError):
    """A statement other than SELECT was sent through a read-only unit of work."""


def read_only_session_factory(session_factory: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    """Sessions for units of work that only read: same pool, cheaper transactions, no write lock.

    Each statement reads what is committed when it starts, as in PostgreSQL's READ COMMITTED
    transactions (the writers' level there), on both backends:
    - SQLite: no BEGIN (instead of BEGIN IMMEDIATE) and no place in this process's writer queue; in
      WAL mode a reader neither waits for the writer nor blocks it.
    - PostgreSQL: autocommit, so no BEGIN and ROLLBACK round trips.
    Anything but a SELECT raises ReadOnlyViolation before reaching the database: without a
    transaction it would be committed on its own at once.

    An in-memory SQLite database has one connection for everyone: there a reader would run inside
    a writer's transaction (and end it), so readers get the writers' sessions and lock.
    """
    bind: Any = session_factory.kw.get("bind")
    if not isinstance(bind, AsyncEngine):
        raise TypeError("a read-only session factory needs a session factory bound to an AsyncEngine")
    if bind.dialect.name == "sqlite" and bind.url.database in (None, "", ":memory:"):
        return session_factory
    options: dict[str, Any] = {READ_ONLY_OPTION: True}
    if bind.dialect.name == "postgresql":
        options["isolation_level"] = "AUTOCOMMIT"
    engine = bind.execution_options(**options)
    # Listeners of an engine made by execution_options() are its own: writers are not checked.
    event.listen(engine.sync_engine, "before_cursor_execute", _refuse_writes)
    return async_sessionmaker(class_=session_factory.class_, **{**session_factory.kw, "bind": engine})


def _refuse_writes(_connection, _cursor, statement, _parameters, _context, _executemany):  # type: ignore[no-untyped-def]
    if statement.lstrip()[:6].upper() != "SELECT":
        raise ReadOnlyViolation("a read-only unit of work cannot write")


def sqlite_write_lock(session_factory: async_sessionmaker[AsyncSession]) -> asyncio.Lock | None:
    """The lock this process's writers to a SQLite database take before BEGIN IMMEDIATE; None otherwise
    (and for the read-only sessions of read_only_session_factory).

    SQLite has one writer at a time and makes the others poll, sleeping up to 100 ms between tries:
    under load some wait for seconds while others keep winning. Queuing the writers of one process
    on an asyncio lock first hands the database over in turn, without sleeping. (Other processes
    still meet SQLite's busy timeout.)
    """
    bind: Any = session_factory.kw.get("bind")
    engine = getattr(bind, "sync_engine", None)
    if engine is None or engine.dialect.name != "sqlite" or engine.get_execution_options().get(READ_ONLY_OPTION):
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
