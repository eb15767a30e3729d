"""Durable jobs: what the bot does on its own later (reminders, counselor prompts, no-show checks, retention).

A job lives only in the database: its kind, payload (ids, never personal data), due time, attempts,
lease and last error (an error class name). Storage maps `Job` onto the `scheduled_jobs` table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple


class JobKind(StrEnum):
    REMINDER = "reminder"
    COUNSELOR_PROMPT = "counselor_prompt"
    NO_SHOW_CHECK = "no_show_check"


class JobStatus(StrEnum):
    PENDING = "pending"
    # Claimed by a worker until `locked_until`; an expired lease makes it claimable again.
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class NewJob(NamedTuple):
    """A job to add; `dedupe_key` makes adding it twice harmless."""

    kind: str
    run_at: datetime
    payload: dict[str, Any]
    dedupe_key: str


@dataclass(eq=False)
class Job:
    id: int
    kind: str
    run_at: datetime
    created_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)
    dedupe_key: str | None = None
    # Lets a cancelled or moved appointment withdraw its pending jobs in one indexed update.
    appointment_id: str | None = None
    status: str = JobStatus.PENDING.value
    attempts: int = 0
    locked_until: datetime | None = None
    last_error: str | None = None
