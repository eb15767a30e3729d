"""SQLAlchemy's aiosqlite dialect, with each statement run in one trip to the driver's thread.

aiosqlite runs every call (cursor, execute, fetchall, close) on its own thread and wakes the event
loop for each; SQLAlchemy's adapter makes three or four such trips per statement. Each trip costs
a thread switch, and under load a wait for the GIL: on a busy bot that was most of a unit of work's
time. Here a statement's cursor, execution, rows and close happen in a single trip.

Engines get this dialect from storage.db.create_engine (URL `sqlite+aiosqlite://…`, driver name
`guichet_aiosqlite` inside); everything else (pooling, transactions, server-side cursors for
streamed results) is SQLAlchemy's own aiosqlite code.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from typing import Any

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)

DRIVER = "guichet_aiosqlite"


def _run_statement(connection: sqlite3.Connection, operation: Any, parameters: Any) -> tuple[Any, list[Any], Any, Any]:
    """On the driver's thread: (description, rows, lastrowid, rowcount) of one statement."""
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


class _OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            connection = self._connection
            description, rows, lastrowid, rowcount = self.await_(
                connection._execute(_run_statement, connection._conn, operation, parameters)
            )
            self.description = description
            self._rows = deque(rows)
            self.lastrowid = lastrowid
            self.rowcount = rowcount
        except Exception as error:
            self._adapt_connection._handle_exception(error)


class _Connection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    def cursor(self, server_side: bool = False) -> AsyncAdapt_aiosqlite_cursor:
        if server_side:
            return super().cursor(server_side=True)
        return _OneTripCursor(self)


class _DBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        if kw.get("async_fallback"):
            return super().connect(*arg, **kw)
        adapted = super().connect(*arg, **kw)
        return _Connection(self, adapted._connection)


class GuichetSQLiteDialect(SQLiteDialect_aiosqlite):
    driver = DRIVER
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> _DBAPI:  # type: ignore[override]
        return _DBAPI(__import__("aiosqlite"), __import__("sqlite3"))


registry.register(f"sqlite.{DRIVER}", __name__, "GuichetSQLiteDialect")
