"""Optional: when counselors are busy in Outlook, read through Microsoft Graph's getSchedule, so the
booking dialog can leave out slots a counselor has blocked in their own calendar.

A convenience, never a condition: when Graph fails (down, throttled, slow, a permission missing) the
answer is "no busy time known" (an empty mapping) and booking goes on with the agency's own rules. The
failure is logged once, not at every turn, until Graph answers again.

Which Outlook states count as busy: busy, out of office (oof) and tentative. Tentative counts because a
tentatively accepted meeting usually takes place and a double booking costs a citizen a trip; free and
unknown do not; workingElsewhere does not either: it marks where a counselor works (often a whole
"working from home" day), and a video interview can be held from anywhere.

Answers are cached for a short time per (counselors, window): a booking dialog's several turns over
the same days cost one call.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.default_query_parameters import QueryParameters
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.free_busy_status import FreeBusyStatus
from msgraph.generated.models.schedule_information import ScheduleInformation
from msgraph.generated.users.item.calendar.get_schedule.get_schedule_post_request_body import (
    GetSchedulePostRequestBody,
)

from bot.domain.clock import Clock, SystemClock
from bot.integrations.graph import graph_time
from bot.integrations.graph_client import GraphClient
from bot.integrations.graph_errors import Access, access_hint, code_of, is_graph_failure, status_of

log = logging.getLogger(__name__)

Interval = tuple[datetime, datetime]
CounselorMailbox = tuple[str, str | None]  # (counselor id, SMTP address or None)

BUSY = frozenset({FreeBusyStatus.Busy, FreeBusyStatus.Oof, FreeBusyStatus.Tentative})
# Graph's finest useful grid for a 15-minute slot grid.
VIEW_INTERVAL_MINUTES = 15
# getSchedule takes at most 100 addresses per call.
MAX_SCHEDULES = 100
CACHE_FOR = timedelta(minutes=2)
# After a failure, do not ask again at every turn of the dialog either.
FAILURE_CACHE_FOR = timedelta(seconds=30)

_LOCAL_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(\.\d+)?$")


class GraphAvailability:
    """Busy times of counselors from their Outlook calendars (see the module docstring)."""

    def __init__(self, graph: GraphClient, *, clock: Clock | None = None, mailbox: str | None = None,
                 cache_for: timedelta = CACHE_FOR) -> None:
        self._graph = graph
        self._clock = clock or SystemClock()
        # Whose calendar the request is made on; any mailbox works, by default the first counselor's.
        self._mailbox = mailbox
        self._cache_for = cache_for
        self._cache: dict[tuple[tuple[CounselorMailbox, ...], datetime, datetime],
                          tuple[datetime, dict[str, list[Interval]]]] = {}
        self._failing = False
        self._unreadable: set[str] = set()

    async def busy(self, counselors: Sequence[CounselorMailbox], start: datetime,
                   end: datetime) -> dict[str, list[Interval]]:
        """Counselor id -> busy intervals (UTC, merged, sorted) overlapping [start, end); every counselor
        with an address is a key. Empty when Graph could not tell: no busy time known."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("availability windows must be timezone-aware")
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        wanted = tuple(sorted({(cid, email) for cid, email in counselors if email}))
        if not wanted or end <= start:
            return {}
        now = self._clock.now()
        key = (wanted, start, end)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        self._cache = {k: v for k, v in self._cache.items() if v[0] > now}  # forget what expired
        result, ok = await self._ask(wanted, start, end)
        self._cache[key] = (now + (self._cache_for if ok else FAILURE_CACHE_FOR), result)
        return result

    async def _ask(self, wanted: tuple[CounselorMailbox, ...], start: datetime,
                   end: datetime) -> tuple[dict[str, list[Interval]], bool]:
        by_address = {email.lower(): cid for cid, email in wanted if email}
        owner = self._mailbox or wanted[0][0]
        calendar = self._graph.sdk.users.by_user_id(owner).calendar.get_schedule
        config: RequestConfiguration[QueryParameters] = RequestConfiguration()
        # Times back in UTC whatever the mailbox's own zone.
        config.headers.add("Prefer", 'outlook.timezone="UTC"')
        busy: dict[str, list[Interval]] = {cid: [] for cid, _ in wanted}
        addresses = list(by_address)
        try:
            for first in range(0, len(addresses), MAX_SCHEDULES):
                body = GetSchedulePostRequestBody(schedules=addresses[first:first + MAX_SCHEDULES],
                                                  start_time=graph_time(start), end_time=graph_time(end),
                                                  availability_view_interval=VIEW_INTERVAL_MINUTES)
                answer = await calendar.post(body, config)
                for schedule in (answer.value if answer and answer.value else []):
                    counselor = by_address.get((schedule.schedule_id or "").lower())
                    if counselor is None:
                        continue
                    busy[counselor] = _busy_intervals(schedule)
                    if schedule.error is not None and counselor not in self._unreadable:
                        # The counselor's id (not the address): enough to find the entry in the agency file.
                        self._unreadable.add(counselor)
                        log.warning("Outlook availability: the mailbox of counselor %s cannot be read; check "
                                    "their email in the agency file", counselor)
        except Exception as error:
            if not is_graph_failure(error):
                raise
            self._log_failure(error)
            return {}, False
        if self._failing:
            log.info("Outlook availability answers again")
            self._failing = False
        return busy, True

    def _log_failure(self, error: BaseException) -> None:
        if self._failing:
            return
        self._failing = True
        status = status_of(error)
        what = f"{status} {code_of(error)}" if status is not None else type(error).__name__
        hint = f"; {access_hint(Access.SCHEDULE, error, self._graph.client_id)}" if status == 403 else ""
        log.warning("Outlook availability unavailable (%s): slots are offered without it%s", what, hint)


def _busy_intervals(schedule: ScheduleInformation) -> list[Interval]:
    """The schedule's busy items as merged UTC intervals (a mailbox Graph could not read: none)."""
    intervals = []
    for item in schedule.schedule_items or []:
        if item.status not in BUSY or item.start is None or item.end is None:
            continue
        start, end = _utc(item.start), _utc(item.end)
        if start is not None and end is not None and end > start:
            intervals.append((start, end))
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _utc(value: DateTimeTimeZone) -> datetime | None:
    """A Graph dateTimeTimeZone as an aware UTC datetime; Graph writes seven fractional digits."""
    found = _LOCAL_TIME.match(value.date_time or "")
    if found is None:
        return None
    local = datetime.fromisoformat(found.group(1) + (found.group(2) or "")[:7])
    zone_name = value.time_zone or "UTC"
    try:
        zone = UTC if zone_name.upper() == "UTC" else ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return local.replace(tzinfo=zone).astimezone(UTC)
