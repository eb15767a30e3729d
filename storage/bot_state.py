"""Bot Framework `Storage` on the bot_state table, with the SDK's optimistic concurrency (e-tags).

Semantics follow botbuilder's own storages (MemoryStorage, BlobStorage, CosmosDbPartitionedStorage):

- Values are flattened with jsonpickle's Pickler and restored with its Unpickler, as the Azure
  storages do, so DialogState, DialogInstance, PromptOptions, datetimes... survive as JSON.
- Every item read carries its `e_tag` (dict key, or attribute of a StoreItem-like object).
- A write with an e-tag succeeds only if the stored e-tag is still that one; otherwise
  EtagConflict is raised and nothing is written (not even the other keys of the same call).
  An e-tag of "*" or None overwrites; an empty e-tag is an error.
- Unlike the SDK storages, a successful write gives the written item its new e-tag, so a second
  save of the same state within one turn does not conflict with the first.

Each key costs one statement: a compare-and-set UPDATE (checked by row count) or an upsert, so
two processes writing from the same e-tag cannot both win.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, cast
from uuid import uuid4

from botbuilder.core import Storage
from jsonpickle.pickler import Pickler
from jsonpickle.unpickler import Unpickler
from sqlalchemy import Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.errors import EtagConflict
from storage.models import BotStateItem

log = logging.getLogger(__name__)

__all__ = ["DatabaseStorage", "EtagConflict"]

_TABLE = cast(Table, BotStateItem.__table__)
_ETAG = "e_tag"


def _etag_of(item: object) -> str | None:
    if isinstance(item, dict):
        return item.get(_ETAG)
    return getattr(item, _ETAG, None)


def _set_etag(item: object, etag: str) -> None:
    if isinstance(item, dict):
        item[_ETAG] = etag
    elif hasattr(item, _ETAG):
        item.e_tag = etag  # type: ignore[attr-defined]


def to_document(item: object) -> Any:
    """The JSON document stored for an item: jsonpickle's flattening, without the e-tag."""
    document = Pickler().flatten(item)
    if isinstance(document, dict):
        document.pop(_ETAG, None)
    return document


def from_document(document: Any, etag: str) -> Any:
    """The item for a stored document, with its e-tag put back where the SDK expects it."""
    if isinstance(document, dict):
        document = {**document, _ETAG: etag}
    # safe=True: never eval() a py/repr entry, whatever the table holds.
    return Unpickler(safe=True).restore(document)


class DatabaseStorage(Storage):
    """Conversation and user state in the database; one short transaction per call."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        super().__init__()
        self._sessions = session_factory

    async def read(self, keys: Iterable[str]) -> dict[str, Any]:
        if keys is None:
            raise ValueError("Keys are required when reading")
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        async with self._sessions() as session:
            rows = await session.execute(
                select(_TABLE.c.key, _TABLE.c.etag, _TABLE.c.data).where(_TABLE.c.key.in_(wanted))
            )
            stored = rows.all()
        return {key: from_document(data, etag) for key, etag, data in stored}

    async def write(self, changes: Mapping[str, Any]) -> None:
        if changes is None:
            raise ValueError("Changes are required when writing")
        if not changes:
            return
        now = datetime.now(UTC)
        planned: list[tuple[str, object, str | None, str, Any]] = []
        for key, item in changes.items():
            expected = _etag_of(item)
            if expected == "":
                raise ValueError(f"bot state write for {key!r}: empty e-tag")
            planned.append((key, item, None if expected == "*" else expected, uuid4().hex, to_document(item)))

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
        for _key, item, _expected, new_etag, _document in planned:
            _set_etag(item, new_etag)

    async def delete(self, keys: Iterable[str]) -> None:
        if keys is None:
            raise ValueError("Keys are required when deleting")
        doomed = list(dict.fromkeys(keys))
        if not doomed:
            return
        async with self._sessions() as session, session.begin():
            await session.execute(delete(_TABLE).where(_TABLE.c.key.in_(doomed)))


def _upsert(session: AsyncSession, key: str, etag: str, document: Any, now: datetime) -> Any:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(_TABLE).values(key=key, etag=etag, data=document, updated_at=now)
    return statement.on_conflict_do_update(
        index_elements=[_TABLE.c.key],
        set_={"etag": statement.excluded.etag, "data": statement.excluded.data, "updated_at": now},
    )
