"""Storage errors the services act on, and how to recognise a uniqueness violation on each backend."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

# SQLSTATE: 23505 unique_violation, 23P01 exclusion_violation.
_PG_CONFLICT_STATES = frozenset({"23505", "23P01"})
_SQLITE_CONFLICT_NAMES = frozenset({"SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE"})


class StorageError(Exception):
    """Base of the errors the storage layer raises on purpose."""


class EtagConflict(StorageError):
    """A bot state item changed (or vanished) since it was read; nothing was written."""

    def __init__(self, key: str) -> None:
        super().__init__(f"e-tag conflict on bot state key {key!r}")
        self.key = key


def is_uniqueness_violation(error: IntegrityError) -> bool:
    """True when the statement collided with an existing row (not a foreign key or NOT NULL failure)."""
    original = error.orig
    state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if state is not None:
        return state in _PG_CONFLICT_STATES
    name = getattr(original, "sqlite_errorname", None)
    if name is not None:
        return name in _SQLITE_CONFLICT_NAMES
    text = str(original)
    return "UNIQUE constraint failed" in text or "duplicate key" in text
