"""When a reminder may still go out, and which reminders a booking plans.

Reminders are a convenience, so they are sent on time or not at all: one whose moment has passed by
more than the agency's tolerance (after an outage, say), or whose appointment has already started,
is dropped, not sent late. Offsets are absolute minutes before the start (a day before is 24 hours
before, whatever the clock change in between).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.domain.agency import Agency
from bot.domain.booking_rules import plan_jobs
from bot.domain.jobs import JobKind


def reminder_is_late(*, due_at: datetime, starts_at: datetime, now: datetime, tolerance: timedelta) -> bool:
    """Whether a reminder due at `due_at` should be dropped rather than sent at `now`."""
    return now >= starts_at or now - due_at > tolerance


def reminder_times(agency: Agency, starts_at: datetime, now: datetime, *, allowed: bool) -> list[datetime]:
    """The moments (UTC, earliest first) a booking made at `now` gets reminders, as the booking plans them."""
    return sorted(job.run_at for job in plan_jobs(agency, starts_at, now, reminders_allowed=allowed)
                  if job.kind is JobKind.REMINDER)
