"""SQLAlchemy's aiosqlite dialect, with as few trips to the driver's thread as the work allows.

aiosqlite runs every call (cursor, execute, fetchall, close) on its own thread and wakes the event
loop for each; SQLAlchemy's adapter makes three or four such trips per statement. Each trip costs
a thread switch, and under load a wait for the GIL: on a busy bot that was most of a unit of work's
time. Here:
- a statement's cursor, execution, rows and close happen in a single trip (executemany too);
- the BEGIN that storage.db sends when a transaction starts travels with the transaction's first
  statement (it still runs first, on the same thread; if it fails the statement does not run and
  its error is raised as before);
- commit() and rollback() with no transaction open on the connection (read-only units of work, a
  transaction that never ran a statement) make no trip: sqlite3 would do nothing either.

Engines get this dialect from storage.db.create_engine (URL `sqlite+aiosqlite://…`, driver name
`guichet_aiosqlite` inside); everything else (pooling, transactions, server-side cursors for
streamed results) is SQLAlchemy's own aiosqlite code. The dialect adds two listeners to each engine
(see GuichetSQLiteDialect.engine_created) for the deferred BEGIN.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from typing import Any, cast

from sqlalchemy import event
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
    AsyncAdapt_aiosqlite_ss_cursor,
    SQLiteDialect_aiosqlite,
)
from sqlalchemy.engine import Engine
from sqlalchemy.engine.interfaces import ExceptionContext

DRIVER = "guichet_aiosqlite"

# The statements that open a transaction and may wait for the next statement's trip.
_BEGINS = frozenset({"BEGIN", "BEGIN DEFERRED", "BEGIN IMMEDIATE", "BEGIN EXCLUSIVE"})


class _BeginFailed(Exception):
    """A BEGIN sent ahead of a statement failed; the statement was not run.

    Carries the driver's error out of SQLAlchemy's statement error handling, which would otherwise
    wrap it as that statement's error; _raise_begin_failure raises the driver's error itself, as
    when BEGIN had a trip of its own.
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(f"BEGIN sent ahead of the statement failed: {error}")
        self.error = error


def _begin(connection: sqlite3.Connection, begin: str) -> None:
    try:
        connection.execute(begin).close()
    except Exception as error:
        raise _BeginFailed(error) from None


def _commit(connection: sqlite3.Connection) -> None:
    connection.commit()


def _rollback(connection: sqlite3.Connection) -> None:
    connection.rollback()


def _run_statement(connection: sqlite3.Connection, begin: str | None, operation: Any,
                   parameters: Any) -> tuple[Any, list[Any], Any, Any]:
    """On the driver's thread: (description, rows, lastrowid, rowcount) of one statement."""
    if begin is not None:
        _begin(connection, begin)
    cursor = connection.cursor()
    try:
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        if cursor.description:
            return cursor.description, cursor.fetchall(), -1, -1
        return None, [], cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


def _run_many(connection: sqlite3.Connection, begin: str | None, operation: Any,
              seq_of_parameters: Any) -> tuple[Any, Any]:
    """On the driver's thread: (lastrowid, rowcount) of one statement run for each parameter set."""
    if begin is not None:
        _begin(connection, begin)
    cursor = connection.cursor()
    try:
        cursor.executemany(operation, seq_of_parameters)
        return cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


class _OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            adapted = cast("_Connection", self._adapt_connection)
            begin, adapted._pending_begin = adapted._pending_begin, None
            description, rows, lastrowid, rowcount = adapted._trip(_run_statement, begin, operation, parameters)
            self.description = description
            self._rows = deque(rows)
            self.lastrowid = lastrowid
            self.rowcount = rowcount
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            adapted = cast("_Connection", self._adapt_connection)
            begin, adapted._pending_begin = adapted._pending_begin, None
            lastrowid, rowcount = adapted._trip(_run_many, begin, operation, seq_of_parameters)
            self.description = None
            self.lastrowid = lastrowid
            self.rowcount = rowcount
        except Exception as error:
            self._adapt_connection._handle_exception(error)


class _ServerSideCursor(AsyncAdapt_aiosqlite_ss_cursor):
    """Streamed results: SQLAlchemy's cursor over aiosqlite's, a trip per call, after any pending BEGIN."""

    __slots__ = ()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        adapted = cast("_Connection", self._adapt_connection)
        try:
            adapted._send_pending_begin()
        except Exception as error:
            adapted._handle_exception(error)
        # The trips of this cursor are not tracked: until a tracked trip is answered, none is trusted.
        adapted._settled = False
        return super().execute(operation, parameters)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        adapted = cast("_Connection", self._adapt_connection)
        try:
            adapted._send_pending_begin()
        except Exception as error:
            adapted._handle_exception(error)
        adapted._settled = False
        return super().executemany(operation, seq_of_parameters)


class _Connection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("_pending_begin", "_settled")

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        # A BEGIN received through execute() and not sent yet: it goes with the next statement.
        self._pending_begin: str | None = None
        # False while a trip may still be running on the driver's thread: one whose wait was
        # interrupted (a cancelled task) or one made outside _trip (server-side cursors).
        self._settled = True

    def _trip(self, function: Any, *args: Any) -> Any:
        """function(sqlite3 connection, *args) on the driver's thread; waits for its answer."""
        driver = self._connection
        self._settled = False
        result = self.await_(driver._execute(function, driver._conn, *args))
        # The driver's thread runs its calls in order: every earlier trip has ended too.
        self._settled = True
        return result

    def _no_transaction(self) -> bool:
        """True when the driver's connection has no transaction open, known without a trip.

        sqlite3's in_transaction is a flag read, cheap on the event loop, and safe when the driver's
        thread is idle on this connection: every trip has been answered (_settled; a pooled
        connection has one user at a time). It is read live rather than remembered from the last
        trip, so that a transaction opened or ended some other way (the raw driver connection) is
        never missed. A stopped or closed connection answers False: the caller then makes its trip
        and gets the driver's usual error.
        """
        driver = self._connection
        connection = driver._connection
        return (self._settled and bool(driver._running) and connection is not None
                and not connection.in_transaction)

    def _send_pending_begin(self) -> None:
        """Send a pending BEGIN in a trip of its own, for calls that cannot take it along."""
        begin, self._pending_begin = self._pending_begin, None
        if begin is not None:
            self._trip(_begin, begin)

    def cursor(self, server_side: bool = False) -> AsyncAdapt_aiosqlite_cursor:
        if server_side:
            return _ServerSideCursor(self)
        return _OneTripCursor(self)

    def execute(self, *args: Any, **kw: Any) -> Any:
        operation = args[0] if len(args) == 1 and not kw else None
        if (isinstance(operation, str) and operation.upper() in _BEGINS and self._pending_begin is None
                and self._no_transaction()):
            # storage.db's "begin" listener: defer to the next statement's trip. Nothing runs on
            # this connection through this adapter in between without sending it first.
            self._pending_begin = operation
            return None
        try:
            self._send_pending_begin()
        except _BeginFailed as failed:
            raise failed.error from None
        self._settled = False
        result = super().execute(*args, **kw)
        self._settled = True
        return result

    def run_async(self, fn: Any) -> Any:
        try:
            self._send_pending_begin()
        except _BeginFailed as failed:
            raise failed.error from None
        self._settled = False
        result = super().run_async(fn)
        self._settled = True
        return result

    def rollback(self) -> None:
        self._end(_rollback)

    def commit(self) -> None:
        self._end(_commit)

    def _end(self, operation: Any) -> None:
        # A pending BEGIN never reached the database: BEGIN then COMMIT or ROLLBACK would change nothing.
        self._pending_begin = None
        if self._no_transaction():
            return  # sqlite3's commit() and rollback() would do nothing either
        try:
            self._trip(operation)
        except Exception as error:
            self._handle_exception(error)

    def close(self) -> None:
        self._pending_begin = None
        super().close()


class _DBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        if kw.get("async_fallback"):
            return super().connect(*arg, **kw)
        adapted = super().connect(*arg, **kw)
        return _Connection(self, adapted._connection)


def _raise_begin_failure(context: ExceptionContext) -> BaseException | None:
    """The driver's own error when a BEGIN sent with a statement failed (not the statement's error)."""
    failure = context.original_exception
    if isinstance(failure, _BeginFailed):
        return failure.error
    return None


def _forget_pending_begin(dbapi_connection: Any, _record: Any, _state: Any) -> None:
    # A connection back in the pool has no transaction of its user: a BEGIN that never went with a
    # statement goes too (storage.db's reset listener rolls back the ones that did).
    if isinstance(dbapi_connection, _Connection):
        dbapi_connection._pending_begin = None


class GuichetSQLiteDialect(SQLiteDialect_aiosqlite):
    driver = DRIVER
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> _DBAPI:  # type: ignore[override]
        return _DBAPI(__import__("aiosqlite"), __import__("sqlite3"))

    @classmethod
    def engine_created(cls, engine: Engine) -> None:
        super().engine_created(engine)
        event.listen(engine, "handle_error", _raise_begin_failure)
        event.listen(engine.pool, "reset", _forget_pending_begin)


registry.register(f"sqlite.{DRIVER}", __name__, "GuichetSQLiteDialect")
