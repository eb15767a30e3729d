"""Bookable slots: which start times and counselors an agency can offer for a subject on a day.

Opening hours are local wall-clock times in the agency's zone; every result is an aware UTC
datetime. Public holidays (the `holidays` package, agency country) and the agency's closure days
are closed. Busy appointments are indexed per counselor (sorted starts, bisect) so a day search
over hundreds of counselors stays in the millisecond range.

Hours resolution, per mode: an office that has opening hours of its own for that mode follows
only those (a full week: days it does not list are closed); every other office follows the hours
without an office. In video mode a counselor follows the hours of each of their offices (union);
a counselor without an office follows the hours without an office.

Slot starts lie on a grid of `booking.slot_step_minutes` counted from each window's start, in
local wall-clock time, so a window 08:30-12:00 stays 08:30-12:00 on daylight-saving change days;
local times that do not exist (spring gap) are skipped, ambiguous ones (autumn) use fold=0.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

import holidays

from bot.domain.agency import Agency, Mode, Subject

# Claims use one fixed grid whatever the agency's slot step: the uniqueness of slot claims only
# holds between appointments claimed on the same grid, and the slot step may change in the
# agency file while appointments booked under the old step are still upcoming.
CLAIM_STEP_MINUTES = 5

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_US_PER_MINUTE = 60_000_000
_US_PER_DAY = 1440 * _US_PER_MINUTE
_ONE_DAY = timedelta(days=1)
# Cached day plans are tiny; the cap only keeps a long-running process from growing forever.
_PLAN_CACHE_LIMIT = 20_000
_NAIVE = "naive datetime: the slot engine needs timezone-aware datetimes"

Window = tuple[time, time]
_PlanKey = tuple[Mode, tuple[str | None, ...], date, int]


def epoch_us(value: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime (the unit of BusyIndex.from_epoch_us)."""
    return _to_us(value)


def _to_us(value: datetime) -> int:
    """Microseconds since the Unix epoch; exact integers make adjacency comparisons reliable."""
    try:
        # Subtracting an aware epoch is what refuses naive datetimes.
        return (value - _EPOCH) // _ONE_US
    except TypeError as exc:
        raise ValueError(_NAIVE) from exc


def _from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


class SlotTaken(Exception):
    """Another booked appointment already holds part of this counselor's time (raised by storage,
    which has the last word on races: the losing booking is offered alternatives)."""


class CitizenBusy(SlotTaken):
    """The citizen already holds an overlapping appointment (booked meanwhile, in another transaction):
    no other counselor can help, and the booking is offered alternatives."""


@dataclass(frozen=True)
class Busy:
    """An existing booked appointment of a counselor (aware datetimes, normally UTC)."""

    counselor_id: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Slot:
    """One bookable start time and the counselors free for all of it, fairest first."""

    start: datetime
    end: datetime
    counselor_ids: tuple[str, ...]
    # Office mode: the office the citizen goes to; video: None.
    office_id: str | None


class BusyIndex:
    """Busy intervals per counselor, sorted by start, answering overlap and count queries by bisection.

    Build it once per request with `from_busy` and pass it to several engine calls; the engine
    also accepts a plain iterable of `Busy` and indexes it itself.
    """

    __slots__ = ("_by_counselor",)

    def __init__(self, by_counselor: Mapping[str, tuple[list[int], list[int]]]) -> None:
        # counselor id -> (starts ascending, running maximum of ends), both in epoch microseconds.
        self._by_counselor = dict(by_counselor)

    @classmethod
    def from_busy(cls, busy: Iterable[Busy]) -> BusyIndex:
        return cls.from_intervals((item.counselor_id, item.start, item.end) for item in busy)

    @classmethod
    def from_intervals(cls, intervals: Iterable[tuple[str, datetime, datetime]]) -> BusyIndex:
        """`from_busy` for plain (counselor id, start, end) triples, such as database rows."""
        epoch, one_us = _EPOCH, _ONE_US  # inlined _to_us: this loop runs once per booked appointment
        try:
            return cls.from_epoch_us([(counselor_id, (start - epoch) // one_us, (end - epoch) // one_us)
                                      for counselor_id, start, end in intervals])
        except TypeError as exc:
            raise ValueError(_NAIVE) from exc

    @classmethod
    def from_epoch_us(cls, busy: Iterable[tuple[str, int, int]]) -> BusyIndex:
        """`from_intervals` with times already in microseconds since the Unix epoch (see `epoch_us`)."""
        grouped: dict[str, list[tuple[int, int]]] = {}
        for counselor_id, start, end in busy:
            if end > start:  # an empty interval overlaps nothing
                grouped.setdefault(counselor_id, []).append((start, end))
        by_counselor: dict[str, tuple[list[int], list[int]]] = {}
        for counselor_id, intervals in grouped.items():
            intervals.sort()
            starts: list[int] = []
            reach: list[int] = []
            furthest = intervals[0][1]
            for start, end in intervals:
                furthest = max(furthest, end)
                starts.append(start)
                reach.append(furthest)
            by_counselor[counselor_id] = (starts, reach)
        return cls(by_counselor)

    def __len__(self) -> int:
        return sum(len(starts) for starts, _ in self._by_counselor.values())

    def is_free(self, counselor_id: str, start: datetime, end: datetime) -> bool:
        """True when no busy interval of the counselor overlaps [start, end)."""
        return self._free_us(counselor_id, _to_us(start), _to_us(end))

    def count_starting(self, counselor_id: str, start: datetime, end: datetime) -> int:
        """How many busy intervals of the counselor start in [start, end)."""
        return self._count_us(counselor_id, _to_us(start), _to_us(end))

    def _free_us(self, counselor_id: str, start: int, end: int) -> bool:
        entry = self._by_counselor.get(counselor_id)
        if entry is None:
            return True
        starts, reach = entry
        # Intervals [0, i) start before `end`; the running maximum of their ends tells whether
        # any of them is still running at `start`, even if busy intervals overlap each other.
        i = bisect_left(starts, end)
        return i == 0 or reach[i - 1] <= start

    def _count_us(self, counselor_id: str, start: int, end: int) -> int:
        entry = self._by_counselor.get(counselor_id)
        if entry is None:
            return 0
        starts = entry[0]
        return bisect_left(starts, end) - bisect_left(starts, start)

    def _entry(self, counselor_id: str) -> tuple[list[int], list[int]] | None:
        return self._by_counselor.get(counselor_id)


def claim_steps(start: datetime, end: datetime, step_minutes: int = CLAIM_STEP_MINUTES) -> list[datetime]:
    """The UTC grid steps an appointment [start, end) touches, for the slot_claims table.

    The grid counts `step_minutes` from the Unix epoch. Every step that intersects the
    appointment is claimed, so two overlapping appointments always share the step holding a
    common instant; appointments starting on the grid that do not overlap share none.
    Local grids of Europe/* zones fall on this grid because their UTC offsets are whole hours.
    """
    if step_minutes <= 0:
        raise ValueError("step_minutes must be positive")
    start_us, end_us = _to_us(start), _to_us(end)
    if end_us <= start_us:
        raise ValueError("an appointment must end after it starts")
    step_us = step_minutes * _US_PER_MINUTE
    first = start_us - start_us % step_us
    return [_from_us(step) for step in range(first, end_us, step_us)]


def ordered_by_load(slot: Slot, load: Mapping[str, int]) -> Slot:
    """The slot with its counselors fairest first for `load`, as `SlotEngine.slots_at` orders them."""
    return replace(slot, counselor_ids=order_by_load(slot.counselor_ids, load, salt=slot.start.isoformat()))


def order_by_load(
    counselor_ids: Iterable[str], load: Mapping[str, int], *, salt: str = ""
) -> tuple[str, ...]:
    """Fewest booked appointments first; ties broken by a stable hash of `salt` and the id.

    Pass the slot start as `salt` so that among equally loaded counselors a different one
    comes first from one slot to the next, yet the same slot always lists them in one order.
    """
    return tuple(sorted(counselor_ids, key=lambda cid: (load.get(cid, 0), _tie_break(salt, cid), cid)))


def _tie_break(salt: str, counselor_id: str) -> bytes:
    # Python's hash() is salted per process; the order must be the same in every worker.
    return hashlib.blake2b(f"{salt}\0{counselor_id}".encode(), digest_size=8).digest()


def claim_grid_problems(agency: Agency, step_minutes: int = CLAIM_STEP_MINUTES) -> list[str]:
    """Opening-hours windows whose slot starts fall off the claim grid (bot.app warns at start-up).

    Off-grid starts stay safe (no double booking) but two back-to-back appointments may then
    claim the same step and the second booking would be refused.
    """
    problems: list[str] = []
    if _US_PER_DAY % (step_minutes * _US_PER_MINUTE):
        problems.append(f"claim step {step_minutes} min does not divide a day")
    slot_step = agency.booking.slot_step_minutes
    if slot_step % step_minutes:
        problems.append(f"booking.slot_step_minutes {slot_step} is not a multiple of the claim step "
                        f"{step_minutes}")
    offsets = _zone_offsets_minutes(agency)
    for i, hours in enumerate(agency.opening_hours):
        minute_of_day = hours.start.hour * 60 + hours.start.minute
        if hours.start.second or hours.start.microsecond or any(
            (minute_of_day - offset) % step_minutes for offset in offsets
        ):
            problems.append(f"opening_hours[{i}].start {hours.start} is off the {step_minutes}-minute "
                            f"claim grid in UTC")
    return problems


def _zone_offsets_minutes(agency: Agency) -> set[int]:
    offsets: set[int] = set()
    for month in (1, 7):
        offset = datetime(2026, month, 15, 12, tzinfo=agency.zone).utcoffset()
        if offset is not None:
            offsets.add(int(offset.total_seconds()) // 60)
    return offsets


@dataclass(frozen=True)
class _Group:
    """Counselors that share the same opening hours (and office, in office mode)."""

    office_id: str | None
    sources: tuple[str | None, ...]
    counselor_ids: tuple[str, ...]


@dataclass(frozen=True)
class _Moment:
    """What `now` means for one search."""

    now_us: int
    earliest_us: int
    today: date
    last_day: date
    horizon_end_us: int


@dataclass(slots=True)
class _Found:
    """A start time with its free counselors, gathered across groups before ordering."""

    start_us: int
    end_us: int
    office_id: str | None
    counselor_ids: list[str]


class SlotEngine:
    """Slot search over one agency's configuration; cheap to call, build it once per agency."""

    def __init__(self, agency: Agency) -> None:
        self._agency = agency
        self._zone = agency.zone
        self._step = timedelta(minutes=agency.booking.slot_step_minutes)
        self._lead_us = agency.booking.min_lead_minutes * _US_PER_MINUTE
        self._horizon = timedelta(days=agency.booking.max_horizon_days)
        self._closure_days = frozenset(agency.closure_days)
        self._subjects = {subject.id: subject for subject in agency.subjects}
        self._office_ids = {office.id for office in agency.offices}
        try:
            holidays.country_holidays(agency.country, years=[])
        except NotImplementedError as exc:
            raise ValueError(f"no public-holiday calendar for country {agency.country!r}") from exc
        self._holidays_by_year: dict[int, frozenset[date]] = {}

        windows: dict[tuple[Mode, str | None], dict[int, set[Window]]] = {}
        for hours in agency.opening_hours:
            per_day = windows.setdefault((hours.mode, hours.office), {})
            for weekday in hours.days:
                per_day.setdefault(weekday.number, set()).add((hours.start, hours.end))
        self._windows: dict[tuple[Mode, str | None], dict[int, tuple[Window, ...]]] = {
            key: {day: tuple(sorted(spans)) for day, spans in per_day.items()}
            for key, per_day in windows.items()
        }
        self._groups_cache: dict[tuple[Mode, str | None, str | None], tuple[_Group, ...]] = {}
        self._plan_cache: dict[_PlanKey, tuple[tuple[int, int], ...]] = {}

    # -- public API -------------------------------------------------------------------------

    def times_for_day(
        self,
        *,
        mode: Mode | str,
        subject_id: str,
        day: date,
        now: datetime,
        busy: Iterable[Busy] | BusyIndex,
        language: str | None = None,
        office_id: str | None = None,
    ) -> list[tuple[datetime, datetime, str | None]]:
        """(start, end, office id) of each free slot of one local day, earliest first (then by office): what
        a list of times shows, without ordering each slot's counselors by load (the costly part).

        Office mode without `office_id` searches every office. In video mode `office_id`, when given,
        keeps only counselors attached to that office."""
        found = self._search(
            mode=Mode(mode), subject_id=subject_id, day=day, moment=self._moment(now), index=_as_index(busy),
            language=language, office_id=office_id,
        )
        return [(_from_us(item.start_us), _from_us(item.end_us), item.office_id) for item in found]

    def slots_at(
        self,
        *,
        mode: Mode | str,
        subject_id: str,
        start: datetime,
        now: datetime,
        busy: Iterable[Busy] | BusyIndex,
        language: str | None = None,
        office_id: str | None = None,
        load: Mapping[str, int] | None = None,
    ) -> list[Slot]:
        """The free slots that start at `start` (one per office at most), counselors fairest first for
        `load` (by default the busy appointments starting between now and the horizon's end): what a
        confirmation re-checks, without searching and ordering the rest of the day."""
        at_us = _to_us(start)
        day = start.astimezone(self._zone).date()
        return self._slots(mode=Mode(mode), subject_id=subject_id, day=day, now=now, busy=busy, language=language,
                           office_id=office_id, load=load, at_us=at_us)

    def _slots(
        self,
        *,
        mode: Mode,
        subject_id: str,
        day: date,
        now: datetime,
        busy: Iterable[Busy] | BusyIndex,
        language: str | None,
        office_id: str | None,
        load: Mapping[str, int] | None,
        at_us: int | None = None,
    ) -> list[Slot]:
        index = _as_index(busy)
        moment = self._moment(now)
        found = self._search(
            mode=mode, subject_id=subject_id, day=day, moment=moment, index=index,
            language=language, office_id=office_id, at_us=at_us,
        )
        if not found:
            return []
        if load is None:
            everyone = {cid for item in found for cid in item.counselor_ids}
            load = {cid: index._count_us(cid, moment.now_us, moment.horizon_end_us) for cid in everyone}
        slots: list[Slot] = []
        for item in found:
            slot = Slot(start=_from_us(item.start_us), end=_from_us(item.end_us),
                        counselor_ids=tuple(item.counselor_ids), office_id=item.office_id)
            slots.append(ordered_by_load(slot, load))
        return slots

    def days_with_slots(
        self,
        *,
        mode: Mode | str,
        subject_id: str,
        now: datetime,
        busy: Iterable[Busy] | BusyIndex,
        language: str | None = None,
        office_id: str | None = None,
        limit: int = 10,
        from_day: date | None = None,
    ) -> list[date]:
        """The next local days (from today, or `from_day`) with at least one free slot, up to `limit`."""
        mode = Mode(mode)
        index = _as_index(busy)
        moment = self._moment(now)
        self._subject(subject_id)
        found_days: list[date] = []
        day = moment.today if from_day is None else max(from_day, moment.today)
        while day <= moment.last_day and len(found_days) < limit:
            if self._search(mode=mode, subject_id=subject_id, day=day, moment=moment, index=index,
                            language=language, office_id=office_id, first_only=True):
                found_days.append(day)
            day += _ONE_DAY
        return found_days

    def is_bookable(
        self,
        *,
        slot_start: datetime,
        counselor_id: str,
        mode: Mode | str,
        subject_id: str,
        now: datetime,
        busy: Iterable[Busy] | BusyIndex,
        language: str | None = None,
        office_id: str | None = None,
    ) -> bool:
        """Whether `counselor_id` can still take the slot starting at `slot_start` (confirmation re-check)."""
        mode = Mode(mode)
        if mode is Mode.OFFICE and office_id is None:
            raise ValueError("office mode: is_bookable needs the office of the slot")
        start_us = _to_us(slot_start)
        day = slot_start.astimezone(self._zone).date()
        found = self._search(
            mode=mode, subject_id=subject_id, day=day, moment=self._moment(now), index=_as_index(busy),
            language=language, office_id=office_id, only=counselor_id,
        )
        return any(item.start_us == start_us for item in found)

    def is_closed(self, day: date) -> bool:
        """Public holiday of the agency's country or closure day of the agency."""
        return day in self._closure_days or day in self._holidays(day.year)

    # -- search -----------------------------------------------------------------------------

    def _search(
        self,
        *,
        mode: Mode,
        subject_id: str,
        day: date,
        moment: _Moment,
        index: BusyIndex,
        language: str | None,
        office_id: str | None,
        only: str | None = None,
        first_only: bool = False,
        at_us: int | None = None,
    ) -> list[_Found]:
        subject = self._subject(subject_id)
        if office_id is not None and office_id not in self._office_ids:
            raise ValueError(f"unknown office {office_id!r}")
        if mode not in subject.modes or not (moment.today <= day <= moment.last_day) or self.is_closed(day):
            return []
        earliest = moment.earliest_us
        found: dict[tuple[int, str | None], _Found] = {}
        for group in self._groups(mode, office_id, language):
            ids = group.counselor_ids if only is None else tuple(c for c in group.counselor_ids if c == only)
            if not ids:
                continue
            entries = [(cid, index._entry(cid)) for cid in ids]
            for start, end in self._day_plan(mode, group.sources, day, subject.duration_minutes):
                if start < earliest or (at_us is not None and start != at_us):
                    continue
                free: list[str] = []
                for cid, entry in entries:
                    if entry is None:
                        free.append(cid)
                        continue
                    starts, reach = entry
                    i = bisect_left(starts, end)
                    if i == 0 or reach[i - 1] <= start:
                        free.append(cid)
                if not free:
                    continue
                key = (start, group.office_id)
                existing = found.get(key)
                if existing is None:
                    found[key] = _Found(start, end, group.office_id, free)
                else:
                    existing.counselor_ids.extend(free)
                if first_only:
                    return list(found.values())
        return sorted(found.values(), key=lambda item: (item.start_us, item.office_id or ""))

    def _subject(self, subject_id: str) -> Subject:
        subject = self._subjects.get(subject_id)
        if subject is None:
            raise ValueError(f"unknown subject {subject_id!r}")
        return subject

    def _moment(self, now: datetime) -> _Moment:
        now_us = _to_us(now)
        today = now.astimezone(self._zone).date()
        last_day = today + self._horizon
        horizon_end = datetime.combine(last_day + _ONE_DAY, time(0), tzinfo=self._zone)
        return _Moment(now_us=now_us, earliest_us=now_us + self._lead_us, today=today, last_day=last_day,
                       horizon_end_us=_to_us(horizon_end))

    def _holidays(self, year: int) -> frozenset[date]:
        dates = self._holidays_by_year.get(year)
        if dates is None:
            dates = frozenset(holidays.country_holidays(self._agency.country, years=year).keys())
            self._holidays_by_year[year] = dates
        return dates

    # -- hours ------------------------------------------------------------------------------

    def _source(self, mode: Mode, office_id: str | None) -> str | None:
        """Whose hours an office follows for `mode`: its own when it has some, else the general ones."""
        if office_id is not None and (mode, office_id) in self._windows:
            return office_id
        return None

    def _groups(self, mode: Mode, office_id: str | None, language: str | None) -> tuple[_Group, ...]:
        key = (mode, office_id, language)
        cached = self._groups_cache.get(key)
        if cached is not None:
            return cached
        counselors = [
            c for c in self._agency.counselors
            if mode in c.modes and (language is None or language in c.languages)
        ]
        groups: list[_Group] = []
        if mode is Mode.OFFICE:
            office_ids = [office_id] if office_id is not None else [o.id for o in self._agency.offices]
            for oid in office_ids:
                ids = tuple(c.id for c in counselors if oid in c.offices)
                if ids:
                    groups.append(_Group(oid, (self._source(mode, oid),), ids))
        else:
            if office_id is not None:
                counselors = [c for c in counselors if office_id in c.offices]
            by_sources: dict[tuple[str | None, ...], list[str]] = {}
            for c in counselors:
                sources = {self._source(mode, oid) for oid in c.offices} or {None}
                ordered = tuple(sorted(sources, key=lambda s: (s is not None, s or "")))
                by_sources.setdefault(ordered, []).append(c.id)
            groups = [_Group(None, sources, tuple(ids)) for sources, ids in by_sources.items()]
        result = tuple(groups)
        self._groups_cache[key] = result
        return result

    def _day_plan(
        self, mode: Mode, sources: tuple[str | None, ...], day: date, duration_minutes: int
    ) -> tuple[tuple[int, int], ...]:
        """(start, end) in epoch microseconds of every grid start of the day that fits its window."""
        key = (mode, sources, day, duration_minutes)
        cached = self._plan_cache.get(key)
        if cached is not None:
            return cached
        duration_us = duration_minutes * _US_PER_MINUTE
        zone = self._zone
        plan: set[tuple[int, int]] = set()
        for source in sources:
            for window_start, window_end in self._windows.get((mode, source), {}).get(day.weekday(), ()):
                limit = datetime.combine(day, window_end)
                # The earlier reading of an ambiguous or non-existent end: never run past it.
                end_us = min(_to_us(limit.replace(tzinfo=zone)), _to_us(limit.replace(tzinfo=zone, fold=1)))
                wall = datetime.combine(day, window_start)
                while wall < limit:
                    start_us = _to_us(wall.replace(tzinfo=zone))
                    # A wall time in the spring gap does not come back the same: skip it.
                    if (start_us + duration_us <= end_us
                            and _from_us(start_us).astimezone(zone).replace(tzinfo=None) == wall):
                        plan.add((start_us, start_us + duration_us))
                    wall += self._step
        result = tuple(sorted(plan))
        if len(self._plan_cache) >= _PLAN_CACHE_LIMIT:
            self._plan_cache.clear()
        self._plan_cache[key] = result
        return result


def _as_index(busy: Iterable[Busy] | BusyIndex) -> BusyIndex:
    return busy if isinstance(busy, BusyIndex) else BusyIndex.from_busy(busy)
