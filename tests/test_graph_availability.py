"""Outlook availability through getSchedule (bot.integrations.graph_availability), against the local
Graph stand-in: busy intervals in UTC, the cache that spares a dialog's turns, and failures that
never block booking."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.domain.agency import Mode, load_agency
from bot.domain.clock import FixedClock
from bot.integrations.graph_availability import GraphAvailability
from bot.integrations.graph_client import GraphClient, build_graph_client
from bot.settings import Settings
from bot.wiring import assemble_services
from storage.unit_of_work import UnitOfWorkFactory
from tests.booking_support import booking_over
from tests.conftest import AGENCIES
from tests.fixtures.graph import FixedToken
from tests.graph_server import BusyItem, GraphServer

ELISE = ("09f16cfb-d20e-427d-a50e-e70ab4c9b4f5", "elise.marchal@caisse-fictive.example")
PIETER = ("1b2f9a64-5c0e-4d1b-9a51-3f8e0c2d7b11", "pieter.vermeulen@caisse-fictive.example")
DAY = datetime(2026, 3, 2, tzinfo=UTC)


def hours(h: float) -> datetime:
    return DAY + timedelta(hours=h)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def availability(graph_client: GraphClient, clock: FixedClock) -> GraphAvailability:
    return GraphAvailability(graph_client, clock=clock)


@pytest.fixture
def calendars(graph_server: GraphServer) -> GraphServer:
    graph_server.calendars = {
        ELISE[1]: [
            BusyItem("busy", hours(9), hours(10)),
            BusyItem("tentative", hours(9.5), hours(11)),  # overlaps: merged with the one before
            BusyItem("free", hours(13), hours(14)),
            BusyItem("workingElsewhere", hours(0), hours(24)),
            BusyItem("oof", hours(15), hours(16)),
            BusyItem("busy", hours(30), hours(31)),  # the next day: outside the window
        ],
        PIETER[1]: [],
    }
    return graph_server


async def test_busy_intervals_come_back_in_utc_per_counselor(availability: GraphAvailability,
                                                             calendars: GraphServer) -> None:
    brussels = ZoneInfo("Europe/Brussels")
    # The window given in local time; the answer in UTC.
    start = datetime(2026, 3, 2, 8, 0, tzinfo=brussels)
    end = datetime(2026, 3, 2, 18, 0, tzinfo=brussels)

    busy = await availability.busy([ELISE, PIETER], start, end)

    assert busy == {
        ELISE[0]: [(hours(9), hours(11)), (hours(15), hours(16))],
        PIETER[0]: [],
    }
    assert all(moment.tzinfo == UTC for intervals in busy.values() for pair in intervals for moment in pair)
    [call] = calendars.requests_to("POST", r"/getSchedule$")
    assert call.path == f"/users/{ELISE[0]}/calendar/getSchedule"
    assert call.headers["prefer"] == 'outlook.timezone="UTC"'
    assert sorted(call.body["Schedules"]) == sorted([ELISE[1], PIETER[1]])
    assert call.body["StartTime"] == {"dateTime": "2026-03-02T07:00:00", "timeZone": "UTC"}
    assert call.body["EndTime"] == {"dateTime": "2026-03-02T17:00:00", "timeZone": "UTC"}
    assert call.body["AvailabilityViewInterval"] == 15


async def test_a_dialogs_turns_cost_one_call_until_the_cache_expires(
        availability: GraphAvailability, calendars: GraphServer, clock: FixedClock) -> None:
    first = await availability.busy([ELISE, PIETER], hours(6), hours(18))
    clock.advance(timedelta(seconds=90))
    again = await availability.busy([PIETER, ELISE], hours(6), hours(18))  # same set, other order

    assert again == first
    assert len(calendars.requests_to("POST", r"/getSchedule$")) == 1

    await availability.busy([ELISE, PIETER], hours(6), hours(20))  # another window
    assert len(calendars.requests_to("POST", r"/getSchedule$")) == 2

    clock.advance(timedelta(minutes=2))
    calendars.calendars[PIETER[1]] = [BusyItem("busy", hours(7), hours(8))]
    fresh = await availability.busy([ELISE, PIETER], hours(6), hours(18))
    assert fresh[PIETER[0]] == [(hours(7), hours(8))]
    assert len(calendars.requests_to("POST", r"/getSchedule$")) == 3


async def test_a_graph_failure_means_no_busy_time_known_and_is_logged_once(
        availability: GraphAvailability, calendars: GraphServer, clock: FixedClock,
        caplog: pytest.LogCaptureFixture) -> None:
    calendars.fail("unavailable", path=r"/getSchedule$", retry_after="0", times=100)

    with caplog.at_level(logging.WARNING):
        first = await availability.busy([ELISE, PIETER], hours(6), hours(18))
        clock.advance(timedelta(minutes=1))
        second = await availability.busy([ELISE, PIETER], hours(6), hours(18))

    assert first == {} and second == {}
    assert len(calendars.requests_to("POST", r"/getSchedule$")) == 6  # two calls, each retried twice
    [line] = [r for r in caplog.records if r.name == "bot.integrations.graph_availability"]
    assert "503" in line.getMessage()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert ELISE[1] not in logged and PIETER[1] not in logged

    calendars.failures.clear()
    clock.advance(timedelta(minutes=1))
    assert (await availability.busy([ELISE, PIETER], hours(6), hours(18)))[ELISE[0]] != []


async def test_a_missing_permission_names_it_and_booking_goes_on(
        availability: GraphAvailability, calendars: GraphServer, caplog: pytest.LogCaptureFixture) -> None:
    calendars.fail("calendar_permission", path=r"/getSchedule$")

    with caplog.at_level(logging.WARNING):
        assert await availability.busy([ELISE], hours(6), hours(18)) == {}

    [line] = caplog.records
    assert "Calendars.ReadWrite" in line.getMessage()


async def test_a_slow_graph_is_no_busy_time_known(graph_settings: Settings, token: FixedToken,
                                                  calendars: GraphServer, clock: FixedClock) -> None:
    client = build_graph_client(graph_settings, token, timeout=0.3)
    availability = GraphAvailability(client, clock=clock)
    calendars.fail(None, path=r"/getSchedule$", delay=1.0)
    try:
        assert await availability.busy([ELISE], hours(6), hours(18)) == {}
    finally:
        await client.close()


async def test_a_mailbox_graph_cannot_read_is_free_for_this_purpose_and_named_by_id(
        availability: GraphAvailability, calendars: GraphServer, caplog: pytest.LogCaptureFixture) -> None:
    unknown = ("2c3d4e5f-0000-4000-8000-000000000001", "nobody@caisse-fictive.example")

    with caplog.at_level(logging.WARNING):
        busy = await availability.busy([ELISE, unknown], hours(6), hours(18))

    assert busy[unknown[0]] == [] and busy[ELISE[0]] != []
    [line] = caplog.records
    assert unknown[0] in line.getMessage() and unknown[1] not in line.getMessage()


async def test_counselors_without_an_address_are_not_asked_about(availability: GraphAvailability,
                                                                 calendars: GraphServer) -> None:
    assert await availability.busy([("no-mail", None)], hours(6), hours(18)) == {}
    assert calendars.requests_to("POST", r"/getSchedule$") == []


async def test_outlook_busy_times_remove_the_times_offered_to_citizens(
        graph_client: GraphClient, graph_server: GraphServer, uow_factory: UnitOfWorkFactory) -> None:
    agency = load_agency(AGENCIES / "example-be" / "agency.toml").model_copy(update={"outlook_availability": True})
    clock = FixedClock(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))  # Monday
    day = datetime(2026, 11, 25).date()  # Wednesday

    async def offered() -> set[datetime]:
        availability = GraphAvailability(graph_client, clock=clock)  # a fresh cache each time
        booking = booking_over(assemble_services(agency, uow_factory, clock, availability=availability))
        offers = await booking.slots(mode=Mode.VIDEO, subject_id="temporary-unemployment", day=day, language="fr")
        return {offer.start for offer in offers}

    free = await offered()
    # Every counselor busy in Outlook from 10:00 to 11:00 local (09:00-10:00 UTC).
    morning = (datetime(2026, 11, 25, 9, 0, tzinfo=UTC), datetime(2026, 11, 25, 10, 0, tzinfo=UTC))
    graph_server.calendars = {c.email: [BusyItem("busy", *morning)] for c in agency.counselors if c.email}
    busy = await offered()

    overlapping = {start for start in free if start < morning[1] and start + timedelta(minutes=30) > morning[0]}
    assert overlapping, "the calendar offered times in that hour before"
    assert busy == free - overlapping
