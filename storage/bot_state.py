"""Bot Framework `Storage` on the bot_state table, with the SDK's optimistic concurrency (e-tags).

Semantics follow botbuilder's own storages (MemoryStorage, BlobStorage, CosmosDbPartitionedStorage):

- Values are stored as jsonpickle documents, as the Azure storages do, so DialogState,
  DialogInstance, PromptOptions, datetimes... survive as JSON (storage/state_documents.py).
- Every item read carries its `e_tag` (dict key, or attribute of a StoreItem-like object).
- A write with an e-tag succeeds only if the stored e-tag is still that one; otherwise
  EtagConflict is raised and nothing is written (not even the other keys of the same call).
  An e-tag of "*" or None overwrites; an empty e-tag is an error.
- Unlike the SDK storages, a successful write gives the written item its new e-tag, so a second
  save of the same state within one turn does not conflict with the first.

Each key costs one statement: a compare-and-set UPDATE (checked by row count) or an upsert, so
two processes writing from the same e-tag cannot both win.

Every turn reads and most turns write this table, so on a SQLite file it bypasses SQLAlchemy's
async layer (one thread hop per driver call, ~1 ms a read): plain sqlite3 statements, on the event
loop unless another process holds the file (`_SqliteFile`). Reads take no write lock (no BEGIN
IMMEDIATE); writes still do. PostgreSQL and in-memory SQLite go through the session factory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import uuid4

from botbuilder.core import ConversationState, Storage, TurnContext
from botbuilder.core.bot_state import CachedBotState
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.domain.json_parts import object_at
from storage import speedups
from storage.db import acquire_write_lock, sqlite_write_lock
from storage.errors import EtagConflict
from storage.state_documents import ETAG as _ETAG
from storage.state_documents import from_document, to_document
from storage.tables import bot_state as _TABLE

log = logging.getLogger(__name__)

__all__ = ["DatabaseStorage", "EtagConflict", "state_keys_of"]

def _etag_of(item: object) -> str | None:
    if isinstance(item, dict):
        return item.get(_ETAG)
    return getattr(item, _ETAG, None)


def _set_etag(item: object, etag: str) -> None:
    if isinstance(item, dict):
        item[_ETAG] = etag
    elif hasattr(item, _ETAG):
        item.e_tag = etag  # type: ignore[attr-defined]


def state_keys_of(reference: Mapping[str, Any] | None) -> set[str]:
    """The keys botbuilder's ConversationState and UserState store a conversation reference's state under
    (`ConversationState.get_storage_key`, `UserState.get_storage_key`); a stored reference is camelCase."""
    if not isinstance(reference, Mapping):
        return set()
    channel = reference.get("channelId") or reference.get("channel_id")
    conversation, user = object_at(reference, "conversation"), object_at(reference, "user")
    keys: set[str] = set()
    if isinstance(channel, str) and channel:
        if isinstance(conversation.get("id"), str) and conversation["id"]:
            keys.add(f"{channel}/conversations/{conversation['id']}")
        if isinstance(user.get("id"), str) and user["id"]:
            keys.add(f"{channel}/users/{user['id']}")
    return keys


class DatabaseStorage(Storage):
    """Conversation and user state in the database; one short transaction per call."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        super().__init__()
        self._sessions = session_factory
        direct = speedups.ACTIVE.direct_state_io
        self._sqlite = _SqliteFile.of(session_factory) if direct else None
        self._write_lock = sqlite_write_lock(session_factory)
        self._postgres = _PostgresDirect.of(session_factory) if direct else None

    async def close(self) -> None:
        if self._sqlite is not None:
            await self._sqlite.close()

    async def read(self, keys: Iterable[str]) -> dict[str, Any]:
        if keys is None:
            raise ValueError("Keys are required when reading")
        return {key: item for key, (item, _document) in (await self.read_documents(keys)).items()}

    async def read_documents(self, keys: Iterable[str]) -> dict[str, tuple[Any, Any]]:
        """Each stored item with the document it was restored from (to tell later whether it changed)."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        if self._sqlite is not None:
            stored = await self._sqlite.run(_sqlite_read, wanted)
        elif self._postgres is not None:
            stored = await self._postgres.read(wanted)
        else:
            async with self._sessions() as session:
                rows = await session.execute(
                    select(_TABLE.c.key, _TABLE.c.etag, _TABLE.c.data).where(_TABLE.c.key.in_(wanted))
                )
                stored = [(key, etag, data) for key, etag, data in rows.all()]
        return {key: (from_document(data, etag), data) for key, etag, data in stored}

    async def write(self, changes: Mapping[str, Any]) -> None:
        if changes is None:
            raise ValueError("Changes are required when writing")
        await self.write_documents({key: (item, to_document(item)) for key, item in changes.items()})

    async def write_documents(self, changes: Mapping[str, tuple[Any, Any]]) -> None:
        """`write`, for items whose documents (`to_document`) the caller has already made."""
        if not changes:
            return
        now = datetime.now(UTC)
        planned: list[tuple[str, object, str | None, str, Any]] = []
        for key, (item, document) in changes.items():
            expected = _etag_of(item)
            if expected == "":
                raise ValueError(f"bot state write for {key!r}: empty e-tag")
            planned.append((key, item, None if expected == "*" else expected, uuid4().hex, document))

        if self._sqlite is not None:
            rows = [(key, expected, etag, json.dumps(document)) for key, _item, expected, etag, document in planned]
            assert self._write_lock is not None
            await acquire_write_lock(self._write_lock)
            try:
                conflict = await self._sqlite.run(_sqlite_write, rows, _sqlite_timestamp(now))
            finally:
                self._write_lock.release()
            if conflict is not None:
                log.info("bot state e-tag conflict on one key")
                raise EtagConflict(conflict)
        elif self._postgres is not None:
            rows = [(key, expected, etag, json.dumps(document)) for key, _item, expected, etag, document in planned]
            conflict = await self._postgres.write(rows, now)
            if conflict is not None:
                log.info("bot state e-tag conflict on one key")
                raise EtagConflict(conflict)
        else:
            await self._write_with_session(planned, now)
        for _key, item, _expected, new_etag, _document in planned:
            _set_etag(item, new_etag)

    async def _write_with_session(self, planned: list[tuple[str, object, str | None, str, Any]], now: datetime) -> None:
        async with self._sessions() as session, session.begin():
            for key, _item, expected, new_etag, document in planned:
                if expected is None:
                    await session.execute(_upsert(session, key, new_etag, document, now))
                    continue
                result = await session.execute(
                    update(_TABLE)
                    .where(_TABLE.c.key == key, _TABLE.c.etag == expected)
                    .values(etag=new_etag, data=document, updated_at=now)
                )
                if result.rowcount != 1:  # type: ignore[attr-defined]
                    # Leaving the block by exception rolls back the keys already written.
                    log.info("bot state e-tag conflict on one key")
                    raise EtagConflict(key)

    async def delete(self, keys: Iterable[str]) -> None:
        if keys is None:
            raise ValueError("Keys are required when deleting")
        doomed = list(dict.fromkeys(keys))
        if not doomed:
            return
        if self._sqlite is not None:
            assert self._write_lock is not None
            await acquire_write_lock(self._write_lock)
            try:
                await self._sqlite.run(_sqlite_delete, doomed)
            finally:
                self._write_lock.release()
            return
        if self._postgres is not None:
            await self._postgres.delete(doomed)
            return
        async with self._sessions() as session, session.begin():
            await session.execute(delete(_TABLE).where(_TABLE.c.key.in_(doomed)))


class _LoadedState(CachedBotState):
    """A turn's state and the document it was read from; the SDK's hash is only made if asked for."""

    def __init__(self, state: dict[str, Any] | None, document: Any) -> None:  # no super(): it would hash
        self.state = state if state is not None else {}
        self.document = document
        self._hash: str | None = None
        # After a save: (document before it, e-tag it wrote), so that the save can be taken back.
        self.undo: tuple[Any, str] | None = None

    @property  # type: ignore[override]
    def hash(self) -> str:
        if self._hash is None:
            self._hash = self.compute_hash(self.state)
        return self._hash

    @hash.setter
    def hash(self, value: str) -> None:
        self._hash = value


class DatabaseConversationState(ConversationState):
    """ConversationState that flattens the state once a turn instead of four times.

    The SDK hashes the state with jsonpickle on load, before saving and after saving, and the storage
    flattens it once more to write it: ~0.2 ms each. Here the document read is kept, the state is
    flattened once when the turn ends, and written only if that document differs from the one read.
    """

    def __init__(self, storage: DatabaseStorage) -> None:
        super().__init__(storage)
        self._documents = storage

    async def load(self, turn_context: TurnContext, force: bool = False) -> None:
        cached = self.get_cached_state(turn_context)
        if force or not cached or not cached.state:
            key = self.get_storage_key(turn_context)
            found = (await self._documents.read_documents([key])).get(key)
            item, document = found if found is not None else (None, to_document({}))
            turn_context.turn_state[self._context_service_key] = _LoadedState(item, document)

    async def save_changes(self, turn_context: TurnContext, force: bool = False) -> None:
        cached = self.get_cached_state(turn_context)
        if not isinstance(cached, _LoadedState):
            await super().save_changes(turn_context, force)  # e.g. after clear_state()
            return
        document = to_document(cached.state)
        if not force and document == cached.document:
            return
        await self._documents.write_documents({self.get_storage_key(turn_context): (cached.state, document)})
        cached.undo = (cached.document, _etag_of(cached.state) or "")
        cached.document = document
        cached._hash = None

    async def undo_save(self, turn_context: TurnContext) -> bool:
        """Put back the state as it was before this turn's save (if nobody wrote since); True if done.

        For a turn whose replies could not be sent after its state was saved: the person never saw
        the step's cards, so the conversation must stay at the step they can still see.
        """
        cached = self.get_cached_state(turn_context)
        if not isinstance(cached, _LoadedState) or cached.undo is None:
            return False
        previous, written_etag = cached.undo
        cached.undo = None
        key = self.get_storage_key(turn_context)
        try:
            await self._documents.write_documents({key: ({_ETAG: written_etag}, previous)})
        except EtagConflict:
            log.warning("bot state: could not take back a save, the conversation moved on meanwhile")
            return False
        cached.document = previous
        return True


def _upsert(session: AsyncSession, key: str, etag: str, document: Any, now: datetime) -> Any:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(_TABLE).values(key=key, etag=etag, data=document, updated_at=now)
    return statement.on_conflict_do_update(
        index_elements=[_TABLE.c.key],
        set_={"etag": statement.excluded.etag, "data": statement.excluded.data, "updated_at": now},
    )


# --- SQLite files: whole operations on one worker thread ---------------------------------------------

_T = TypeVar("_T")


class _SqliteFile:
    """Two sqlite3 connections to the engine's database file: one on the event loop, one on a worker thread.

    A bot-state read or write is one short statement on a local file (WAL, no fsync on commit): tens
    of microseconds, where handing it to a thread and back costs ~0.2 ms. So it runs on the event loop,
    on a connection that never waits (busy timeout 0) and never checkpoints the WAL (the engine's own
    connections do, on their threads). Only when the file is locked by another process's writer does
    the operation go to the worker thread, whose connection waits up to 30 s as SQLite's usually do.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None  # the worker thread's
        self._inline: sqlite3.Connection | None = None  # the event loop's
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bot-state")
        # Storages built in tests are dropped without close(); the thread must not outlive them.
        weakref.finalize(self, self._thread.shutdown, wait=False)

    @classmethod
    def of(cls, session_factory: async_sessionmaker[AsyncSession]) -> _SqliteFile | None:
        bind = session_factory.kw.get("bind")
        url = getattr(bind, "url", None)
        if url is None or url.get_backend_name() != "sqlite":
            return None
        database = url.database
        if not database or database == ":memory:" or url.query:
            return None  # an in-memory database is private to the engine's own connection
        return cls(database)

    def _open(self, *, waits: bool) -> sqlite3.Connection:
        # Autocommit: a lone SELECT is its own read transaction; writes BEGIN IMMEDIATE themselves.
        connection = sqlite3.connect(self._path, timeout=30 if waits else 0, isolation_level=None,
                                     check_same_thread=False)
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute(f"PRAGMA busy_timeout={30000 if waits else 0}")
        connection.execute("PRAGMA synchronous=NORMAL")
        if not waits:
            connection.execute("PRAGMA wal_autocheckpoint=0")  # a checkpoint syncs the file: not on the loop
        return connection

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = self._open(waits=True)
        return self._connection

    async def run(self, operation: Callable[..., _T], *args: Any) -> _T:
        if self._inline is None:
            self._inline = self._open(waits=False)
        try:
            return operation(self._inline, *args)
        except sqlite3.OperationalError as error:
            if getattr(error, "sqlite_errorcode", None) not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise
        log.debug("bot state: the database file is locked, waiting on the worker thread")

        def call() -> _T:
            return operation(self._connect(), *args)

        return await asyncio.get_running_loop().run_in_executor(self._thread, call)

    async def close(self) -> None:
        def close_connection() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        if self._inline is not None:
            self._inline.close()
            self._inline = None
        await asyncio.get_running_loop().run_in_executor(self._thread, close_connection)
        self._thread.shutdown(wait=False)


def _sqlite_timestamp(moment: datetime) -> str:
    # The text SQLAlchemy's SQLite DateTime stores (naive UTC, microseconds always written).
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _sqlite_read(connection: sqlite3.Connection, keys: list[str]) -> list[tuple[str, str, Any]]:
    marks = ", ".join("?" * len(keys))
    rows = connection.execute(f"SELECT key, etag, data FROM bot_state WHERE key IN ({marks})", keys).fetchall()
    return [(key, etag, json.loads(data)) for key, etag, data in rows]


def _sqlite_write(connection: sqlite3.Connection, rows: list[tuple[str, str | None, str, str]], now: str) -> str | None:
    """Write every row or none; the key whose e-tag no longer matches, or None when all were written."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        for key, expected, new_etag, data in rows:
            if expected is None:
                connection.execute(
                    "INSERT INTO bot_state (key, etag, data, updated_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET etag = excluded.etag, data = excluded.data, "
                    "updated_at = excluded.updated_at",
                    (key, new_etag, data, now),
                )
                continue
            cursor = connection.execute(
                "UPDATE bot_state SET etag = ?, data = ?, updated_at = ? WHERE key = ? AND etag = ?",
                (new_etag, data, now, key, expected),
            )
            if cursor.rowcount != 1:
                connection.execute("ROLLBACK")
                return key
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    return None


def _sqlite_delete(connection: sqlite3.Connection, keys: list[str]) -> None:
    marks = ", ".join("?" * len(keys))
    connection.execute(f"DELETE FROM bot_state WHERE key IN ({marks})", keys)


# --- PostgreSQL: single statements on the pool's asyncpg connection -----------------------------------


class _PostgresDirect:
    """Bot state statements sent straight to the asyncpg connection of an engine's pool.

    Through a session, a read is four round trips (ping, BEGIN, SELECT, ROLLBACK) and a write four
    (ping, BEGIN, UPDATE, COMMIT). A lone statement needs no transaction: here a read or a one-key
    write is the pool's ping and the statement. Writes of several keys still run in one transaction.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @classmethod
    def of(cls, session_factory: async_sessionmaker[AsyncSession]) -> _PostgresDirect | None:
        bind = session_factory.kw.get("bind")
        if not isinstance(bind, AsyncEngine) or bind.dialect.name != "postgresql" or bind.dialect.driver != "asyncpg":
            return None
        return cls(bind)

    async def _run(self, operation: Callable[[Any], Awaitable[_T]]) -> _T:
        async with self._engine.connect() as connection:  # checked out (and pinged) by the pool
            raw = await connection.get_raw_connection()
            return await operation(raw.driver_connection)

    async def read(self, keys: list[str]) -> list[tuple[str, str, Any]]:
        async def read(driver: Any) -> list[tuple[str, str, Any]]:
            rows = await driver.fetch("SELECT key, etag, data FROM bot_state WHERE key = ANY($1::varchar[])", keys)
            # SQLAlchemy's connection setup gives asyncpg a JSON decoder; without it, text comes back.
            return [(row["key"], row["etag"], json.loads(data) if isinstance(data := row["data"], str) else data)
                    for row in rows]

        return await self._run(read)

    async def write(self, rows: list[tuple[str, str | None, str, str]], now: datetime) -> str | None:
        """Write every row or none; the key whose e-tag no longer matches, or None when all were written."""

        async def write_all(driver: Any) -> str | None:
            for key, expected, new_etag, data in rows:
                if expected is None:
                    await driver.execute(
                        "INSERT INTO bot_state (key, etag, data, updated_at) VALUES ($1, $2, $3::json, $4) "
                        "ON CONFLICT (key) DO UPDATE SET etag = excluded.etag, data = excluded.data, "
                        "updated_at = excluded.updated_at", key, new_etag, data, now)
                    continue
                status = await driver.execute(
                    "UPDATE bot_state SET etag = $1, data = $2::json, updated_at = $3 WHERE key = $4 AND etag = $5",
                    new_etag, data, now, key, expected)
                if status != "UPDATE 1":
                    return key
            return None

        async def write(driver: Any) -> str | None:
            if len(rows) == 1:
                return await write_all(driver)
            transaction = driver.transaction()
            await transaction.start()
            try:
                conflict = await write_all(driver)
            except BaseException:
                await transaction.rollback()
                raise
            if conflict is not None:
                await transaction.rollback()
            else:
                await transaction.commit()
            return conflict

        return await self._run(write)

    async def delete(self, keys: list[str]) -> None:
        async def delete(driver: Any) -> None:
            await driver.execute("DELETE FROM bot_state WHERE key = ANY($1::varchar[])", keys)

        await self._run(delete)
