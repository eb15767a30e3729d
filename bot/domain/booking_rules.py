"""Booking rules: change cut-off, upcoming-appointment limit, a citizen's own times, counselor choice, the
jobs a booking plans.

Pure functions over the agency's configuration; the booking service applies them inside its
transaction. Times are aware datetimes (UTC in storage); durations are whole minutes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from bot.domain.agency import Agency, BookingRules
from bot.domain.jobs import JobKind

# At most this many alternatives follow "this time was just taken": enough to choose from,
# few enough to fit one card on a phone.
MAX_ALTERNATIVES = 6


@dataclass(frozen=True)
class PlannedJob:
    kind: JobKind
    run_at: datetime
    # Reminders only: how long before the start the reminder goes out.
    offset_minutes: int | None = None


def change_deadline(starts_at: datetime, rules: BookingRules) -> datetime:
    """The last moment the citizen may cancel or move the appointment in the chat."""
    return starts_at - timedelta(minutes=rules.cancellation_cutoff_minutes)


def can_change(starts_at: datetime, now: datetime, rules: BookingRules) -> bool:
    """Cancelling and rescheduling share one cut-off: past it, only the agency's phone line helps."""
    return now <= change_deadline(starts_at, rules)


def has_room_for_another(upcoming: int, rules: BookingRules) -> bool:
    """Whether a citizen holding `upcoming` appointments may book one more."""
    return upcoming < rules.max_upcoming_per_citizen


class _Held(Protocol):
    """An active appointment of the citizen, as any read model has it."""

    @property
    def id(self) -> str: ...

    @property
    def starts_at(self) -> datetime: ...

    @property
    def ends_at(self) -> datetime: ...


def own_times(own: Iterable[_Held], *, moving: str | None = None) -> list[tuple[datetime, datetime]]:
    """The times a citizen's active appointments hold for them, except the one being moved or replaced.

    One person cannot sit in two interviews at once, whatever the counselors: a time overlapping one of
    these is neither offered nor booked for this citizen. The appointment being moved (or rebooked after
    a technical problem) gives its time up in the same change, so its own time stays open to it.
    """
    return [(held.starts_at, held.ends_at) for held in own if held.id != moving]


def clashes_with_own(start: datetime, end: datetime, own: Iterable[_Held], *, moving: str | None = None) -> bool:
    """Whether [start, end) overlaps one of the citizen's own times (see `own_times`)."""
    return any(held_start < end and start < held_end for held_start, held_end in own_times(own, moving=moving))


def counselor_preference(fairest_first: Sequence[str], *, keep: str | None = None) -> tuple[str, ...]:
    """The order in which to try the counselors free at a slot.

    The slot engine already lists them fairest first (fewest booked appointments). A moved
    appointment tries its own counselor first when they are free: the citizen already knows the
    name, and the counselor may have prepared the file.
    """
    if keep is not None and keep in fairest_first:
        return (keep, *(cid for cid in fairest_first if cid != keep))
    return tuple(fairest_first)


def can_replace_at(start: datetime, failed_start: datetime, now: datetime) -> bool:
    """Whether `start` may be offered or booked in place of an appointment that could not take place
    (a technical problem, an agency that did not come): a time still to come, and never the failed
    appointment's own start, the very time that just went wrong (its slot counts as free again)."""
    return start > now and start != failed_start


def plan_jobs(agency: Agency, starts_at: datetime, now: datetime, *, reminders_allowed: bool) -> list[PlannedJob]:
    """Reminders, the counselor's prompt and the no-show check of an appointment starting at `starts_at`.

    Reminders whose time has passed are dropped (a booking three hours ahead gets no "tomorrow"
    reminder), and none are planned for a citizen who opted out or restricted processing. The
    counselor prompt and the no-show check always run: the agency needs them even when late.
    """
    jobs: list[PlannedJob] = []
    if reminders_allowed:
        for offset in sorted(set(agency.reminder_offsets_minutes), reverse=True):
            run_at = starts_at - timedelta(minutes=offset)
            if run_at > now:
                jobs.append(PlannedJob(JobKind.REMINDER, run_at, offset))
    jobs.append(PlannedJob(JobKind.COUNSELOR_PROMPT, starts_at - timedelta(minutes=agency.counselor_prompt_minutes)))
    jobs.append(PlannedJob(JobKind.NO_SHOW_CHECK, starts_at + timedelta(minutes=agency.no_show_minutes)))
    return jobs


class _Timed(Protocol):
    @property
    def start(self) -> datetime: ...


T = TypeVar("T", bound=_Timed)


def pick_alternatives(
    requested: datetime, same_day: Iterable[T], later: Iterable[T], *, limit: int = MAX_ALTERNATIVES
) -> list[T]:
    """Offers to show after a slot was taken: the same day's nearest times first, then later days.

    Same-day offers are chosen by closeness to the requested time (the citizen picked that part of
    the day for a reason) and shown in time order; later days fill the remaining places in order.
    """
    nearest = sorted(same_day, key=lambda offer: (abs(offer.start - requested), offer.start))[:limit]
    chosen = sorted(nearest, key=lambda offer: offer.start)
    for offer in later:
        if len(chosen) >= limit:
            break
        chosen.append(offer)
    return chosen
