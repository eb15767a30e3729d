"""Statement helpers the repositories share: multi-row inserts built once, ON CONFLICT per backend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, TextClause, bindparam, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

NO_SYNC = {"synchronize_session": False}


def _rows_insert(table: Table, columns: Sequence[str], shared: Sequence[str], count: int, tail: str = "") -> TextClause:
    """One INSERT of `count` rows: `columns` take one value per row (`<name>_<i>`), `shared` one for all.

    Written as text because SQLAlchemy caches neither a multi-row insert().values() nor the
    dialects' ON CONFLICT inserts (both compiled again on every call); the parameters carry
    the columns' types, so values are converted as the tables say.
    """
    names = [*columns, *shared]
    rows = ", ".join(
        "(" + ", ".join(f":{name}_{i}" if name in columns else f":{name}" for name in names) + ")"
        for i in range(count)
    )
    parameters = [bindparam(f"{name}_{i}", type_=table.c[name].type) for i in range(count) for name in columns]
    parameters += [bindparam(name, type_=table.c[name].type) for name in shared]
    statement = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES {rows}{tail}"
    return text(statement).bindparams(*parameters)


class RowsInserts:
    """`_rows_insert` statements by row count, built on first use and kept."""

    def __init__(self, table: Table, columns: Sequence[str], shared: Sequence[str] = (), tail: str = "") -> None:
        self._arguments = (table, tuple(columns), tuple(shared))
        self._tail = tail
        self._columns = tuple(columns)
        self._statements: dict[int, TextClause] = {}

    def statement(self, count: int) -> TextClause:
        statement = self._statements.get(count)
        if statement is None:
            statement = self._statements[count] = _rows_insert(*self._arguments, count, self._tail)
        return statement

    def parameters(self, rows: Sequence[Sequence[Any]], shared: Mapping[str, Any]) -> dict[str, Any]:
        """Bound values: `rows` hold the per-row values in `columns` order."""
        values = dict(shared)
        for i, row in enumerate(rows):
            for name, value in zip(self._columns, row, strict=True):
                values[f"{name}_{i}"] = value
        return values


def dialect_insert(session: AsyncSession, entity: Any) -> postgresql.Insert | sqlite.Insert:
    """INSERT that knows ON CONFLICT for the session's backend (both spell it the same way)."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(entity)
    if name == "sqlite":
        return sqlite.insert(entity)
    raise NotImplementedError(f"unsupported database dialect {name!r}")


def is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def row_count(result: Any) -> int:
    return int(result.rowcount or 0)
