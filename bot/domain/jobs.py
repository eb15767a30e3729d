"""Durable jobs: what the bot does on its own later (reminders, counselor prompts, no-show checks, retention).

A job lives only in the database: its kind, payload (ids, never personal data), due time, attempts,
lease and last error (an error class name). Storage maps `Job` onto the `scheduled_jobs` table.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo


class JobKind(StrEnum):
    REMINDER = "reminder"
    COUNSELOR_PROMPT = "counselor_prompt"
    NO_SHOW_CHECK = "no_show_check"
    # Periodic: the agency's retention run, once a day at a local hour.
    RETENTION = "retention"
    # Periodic: appointments whose slot ended while still booked get their final status.
    CLOSE_ENDED = "close_ended"
    # A message to the citizen about their appointment (no-show, identity not verified, technical problem).
    CITIZEN_NOTICE = "citizen_notice"
    # A message to the counselor and the agency's fallback channel (the citizen waits, a meeting failed).
    STAFF_ALERT = "staff_alert"
    # The Teams meeting of a video appointment, through Microsoft Graph.
    MEETING_CREATE = "meeting_create"
    MEETING_MOVE = "meeting_move"
    MEETING_CANCEL = "meeting_cancel"
    # An e-mail to a citizen the chat cannot reach (the agency's website, or a blocked bot); payload "what": EmailKind.
    EMAIL = "email"


# Messages for the agency's staff. One that fails for good leaves a counselor unaware of a client (a prompt, a
# no-show question, an alert): an error for the operator, counted apart from other failures.
STAFF_MESSAGE_KINDS = frozenset({JobKind.COUNSELOR_PROMPT, JobKind.NO_SHOW_CHECK, JobKind.STAFF_ALERT})


class JobResult(StrEnum):
    """What a finished job came to (its stored `outcome`), as `guichet jobs list` and the metrics count it."""

    DONE = "done"
    SENT = "sent"
    # The counselor could not be reached in Teams: the agency's fallback channel got the message.
    SENT_TO_CHANNEL = "sent_to_channel"
    # The no-show question is moot (the citizen is there, or the appointment was settled).
    NOT_NEEDED = "not_needed"
    # Cancelled, moved (a newer job exists), or over.
    SKIPPED_INACTIVE = "skipped_inactive"
    # Reminders off, or processing restricted.
    SKIPPED_OPT_OUT = "skipped_opt_out"
    # Erased, or never reachable in Teams.
    SKIPPED_NO_CHAT = "skipped_no_chat"
    # Blocked the bot earlier.
    SKIPPED_UNREACHABLE = "skipped_unreachable"
    # An e-mail for a citizen without an address, or whom the chat reaches anyway.
    SKIPPED_NO_EMAIL = "skipped_no_email"
    # A chat message for a citizen the chat does not reach: an e-mail job carries it instead.
    HANDED_TO_EMAIL = "handed_to_email"
    # A reminder whose moment passed while the bot was down.
    DROPPED_LATE = "dropped_late"
    MEETING_CREATED = "created"
    # The appointment already has its meeting (the job ran twice).
    MEETING_EXISTS = "exists"
    MEETING_MOVED = "moved"
    MEETING_CANCELLED = "cancelled"
    # A move of an appointment that has no meeting to move.
    NO_MEETING = "no_meeting"
    # A staff message (STAFF_MESSAGE_KINDS) that failed for good: a counselor unaware of a client.
    STAFF_MESSAGE_LOST = "staff_message_lost"
    # Any other job that failed for good.
    FAILED = "failed"


class NoticeKind(StrEnum):
    """What a CITIZEN_NOTICE job tells the citizen (its payload's "notice")."""

    LINK = "link"
    # The meeting moved with the appointment: a new link replaces the one sent.
    LINK_CHANGED = "link_changed"
    NO_SHOW = "no_show"
    NOT_VERIFIED = "not_verified"
    # A technical problem: new times are offered, the same counselor first.
    TECHNICAL = "technical"


class EmailKind(StrEnum):
    """What an EMAIL job tells the citizen (its payload's "what"): the confirmation, or what a chat message
    would have carried (a reminder, the join link, a notice after an outcome)."""

    CONFIRMATION = "confirmation"
    REMINDER = "reminder"
    LINK = "link"
    LINK_CHANGED = "link_changed"
    NO_SHOW = "no_show"
    NOT_VERIFIED = "not_verified"
    TECHNICAL = "technical"
    # The citizen said nobody joined, past the agency's commitment (their own report; new times in the chat).
    AGENCY_LATE = "agency_late"


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
    status: JobStatus = JobStatus.PENDING
    attempts: int = 0
    locked_until: datetime | None = None
    last_error: str | None = None
    # What the run came to, once finished.
    outcome: JobResult | None = None
    finished_at: datetime | None = None


# Retries: the first after about FIRST_RETRY, each next one twice as late, never more than MAX_RETRY.
FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(hours=1)
MAX_ATTEMPTS = 8


def retry_delay(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """How long to wait before attempt `attempts + 1`: exponential backoff with "equal jitter" (half
    fixed, half random), so that jobs failing together (a connector outage) do not retry together."""
    exponential = min(MAX_RETRY, FIRST_RETRY * (2 ** max(0, attempts - 1)))
    jitter = (rng or random).uniform(0.5, 1.0)
    return exponential * jitter


def next_daily_run(zone: ZoneInfo, hour: int, after: datetime) -> datetime:
    """The first moment strictly after `after` when the local clock of `zone` reads `hour`:00 (UTC).

    On the spring change day a missing hour (02:00 in Brussels) becomes the first valid moment after
    the gap (03:00); on the autumn day a repeated hour runs once, at its first occurrence.
    """
    local_day = after.astimezone(zone).date()
    for offset in range(3):
        candidate = _local_moment(zone, local_day + timedelta(days=offset), hour)
        if candidate > after:
            return candidate
    raise AssertionError("a local hour occurs at least once in three days")  # pragma: no cover


def _local_moment(zone: ZoneInfo, day: date, hour: int) -> datetime:
    # fold=0 (the default) reads a wall time in the spring gap with the offset before the change,
    # which lands on the gap's end, and a repeated autumn time at its first occurrence.
    return datetime.combine(day, time(hour), tzinfo=zone).astimezone(ZoneInfo("UTC"))
