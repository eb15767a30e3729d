"""Teams meetings through Microsoft Graph (bot.integrations.graph), against the local Graph stand-in:
what ends up in the counselor's calendar and in the meeting's options, and what happens when Graph is
slow, throttles, or refuses."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from kiota_http.middleware import retry_handler

from bot.domain.agency import Agency, load_agency
from bot.integrations.graph import GraphMeetingProvider, build_meeting_provider
from bot.integrations.graph_client import GraphClient, build_graph_client
from bot.services.ports import MeetingRefused, MeetingRequest, MeetingUnavailable
from bot.settings import Settings
from tests.conftest import AGENCIES
from tests.fake_time import FakeTime
from tests.fixtures.graph import APP, FixedToken
from tests.graph_server import GraphServer

BRUSSELS = ZoneInfo("Europe/Brussels")
SUBJECT = "Entretien vidéo – Caisse fictive"
BODY = "Bonjour, voici votre entretien. Rejoignez par le lien."


def counselor(agency: Agency) -> tuple[str, str]:
    person = agency.counselors[0]
    assert person.email is not None
    return person.id, person.email


def request_for(organizer: str, *, transaction: str = "appt-1-v1", allow_recording: bool = False) -> MeetingRequest:
    # 10:00 in Brussels in winter: 09:00 UTC.
    starts = datetime(2026, 3, 2, 10, 0, tzinfo=BRUSSELS)
    return MeetingRequest(appointment_id="appt-1", organizer_id=organizer, starts_at=starts,
                          ends_at=starts + timedelta(minutes=30), subject=SUBJECT, body=BODY,
                          transaction_id=transaction, allow_recording=allow_recording)


class NoWait:
    """Stands in for asyncio.sleep while the provider waits for a Teams link; counts the waits."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def be() -> Agency:
    return load_agency(AGENCIES / "example-be" / "agency.toml")


@pytest.fixture
def fr() -> Agency:
    return load_agency(AGENCIES / "example-fr" / "agency.toml")


@pytest.fixture
async def provider(graph_settings: Settings, be: Agency, token: FixedToken) -> AsyncIterator[GraphMeetingProvider]:
    built = build_meeting_provider(graph_settings, be, credential=token)
    assert built is not None
    yield built
    await built.close()


async def test_create_puts_one_teams_event_in_the_calendar_with_the_strict_meeting_options(
        provider: GraphMeetingProvider, graph_server: GraphServer, be: Agency) -> None:
    organizer, _ = counselor(be)

    meeting = await provider.create(request_for(organizer))

    [event] = graph_server.live_events(organizer)
    assert meeting.event_id == event["id"]
    assert meeting.join_url == graph_server.meeting_of(event)["joinWebUrl"]
    [posted] = graph_server.requests_to("POST", r"/events$")
    assert posted.path == f"/users/{organizer}/events"
    body = posted.body
    assert body["start"] == {"dateTime": "2026-03-02T09:00:00", "timeZone": "UTC"}
    assert body["end"] == {"dateTime": "2026-03-02T09:30:00", "timeZone": "UTC"}
    assert (body["isOnlineMeeting"], body["onlineMeetingProvider"]) == (True, "teamsForBusiness")
    assert body["transactionId"] == "appt-1-v1"
    assert (body["allowNewTimeProposals"], body["showAs"]) == (False, "busy")
    assert body["subject"] == SUBJECT and body["body"] == {"contentType": "text", "content": BODY}
    assert "attendees" not in body  # the citizen joins as a guest, by the link
    options = graph_server.meeting_of(event)
    assert options["lobbyBypassSettings"] == {"scope": "organizer", "isDialInBypassEnabled": False}
    assert options["allowedPresenters"] == "organizer"
    # Belgian agency: nobody records or transcribes.
    assert (options["allowRecording"], options["allowTranscription"], options["recordAutomatically"]) == \
        (False, False, False)
    assert all(r.authorized for r in graph_server.requests)


async def test_the_meeting_is_found_by_its_exact_join_link(provider: GraphMeetingProvider, graph_server: GraphServer,
                                                           be: Agency) -> None:
    organizer, _ = counselor(be)
    meeting = await provider.create(request_for(organizer))

    [lookup] = graph_server.requests_to("GET", r"/onlineMeetings$")
    # The link's own percent-escapes (19%3ameeting...) survive the query string.
    assert lookup.query["$filter"] == f"JoinWebUrl eq '{meeting.join_url}'"
    assert "%3a" in meeting.join_url
    [event] = graph_server.live_events(organizer)
    [patched] = graph_server.requests_to("PATCH", r"/onlineMeetings/")
    assert patched.path == f"/users/{organizer}/onlineMeetings/{graph_server.meeting_of(event)['id']}"


async def test_recording_stays_allowed_where_the_agency_allows_it_as_proof(
        graph_settings: Settings, fr: Agency, token: FixedToken, graph_server: GraphServer) -> None:
    organizer, _ = counselor(fr)
    provider = build_meeting_provider(graph_settings, fr, credential=token)
    assert provider is not None
    try:
        await provider.create(request_for(organizer, allow_recording=True))
    finally:
        await provider.close()

    [event] = graph_server.live_events(organizer)
    options = graph_server.meeting_of(event)
    assert options["allowRecording"] is True and options["allowTranscription"] is True
    [patched] = graph_server.requests_to("PATCH", r"/onlineMeetings/")
    assert not {"allowRecording", "allowTranscription", "recordAutomatically"} & set(patched.body)
    # The lobby and presenter rules hold everywhere.
    assert options["lobbyBypassSettings"]["scope"] == "organizer" and options["allowedPresenters"] == "organizer"


async def test_a_request_cannot_turn_recording_on_where_the_agency_forbids_it(
        provider: GraphMeetingProvider, graph_server: GraphServer, be: Agency) -> None:
    organizer, _ = counselor(be)
    await provider.create(request_for(organizer, allow_recording=True))

    [event] = graph_server.live_events(organizer)
    assert graph_server.meeting_of(event)["allowRecording"] is False


async def test_a_link_that_comes_late_is_waited_for_briefly(graph_client: GraphClient, graph_server: GraphServer,
                                                            be: Agency) -> None:
    organizer, _ = counselor(be)
    graph_server.link_after_reads = 2
    sleep = NoWait()
    provider = GraphMeetingProvider(graph_client, link_waits=(0.5, 1.0, 2.0), sleep=sleep)

    meeting = await provider.create(request_for(organizer))

    assert meeting.join_url.startswith("https://teams.microsoft.com/l/meetup-join/")
    assert len(graph_server.requests_to("GET", r"/events/")) == 3
    assert sleep.waits == [0.5, 1.0, 2.0]


async def test_a_link_that_never_comes_is_a_retry_later_not_an_endless_wait(
        graph_client: GraphClient, graph_server: GraphServer, be: Agency) -> None:
    organizer, _ = counselor(be)
    graph_server.link_after_reads = 100
    provider = GraphMeetingProvider(graph_client, link_waits=(0.5, 1.0), sleep=NoWait())

    with pytest.raises(MeetingUnavailable):
        await provider.create(request_for(organizer))

    assert len(graph_server.requests_to("GET", r"/events/")) == 2


async def test_a_creation_answered_503_after_the_event_was_made_leaves_one_event(
        provider: GraphMeetingProvider, graph_server: GraphServer, be: Agency) -> None:
    organizer, _ = counselor(be)
    graph_server.fail("unavailable", method="POST", path=r"/events$", effect=True)

    meeting = await provider.create(request_for(organizer))

    posts = graph_server.requests_to("POST", r"/events$")
    assert [p.status for p in posts] == [503, 201]
    assert {p.body["transactionId"] for p in posts} == {"appt-1-v1"}
    [event] = graph_server.live_events(organizer)
    assert meeting.event_id == event["id"]


async def test_a_creation_that_timed_out_after_the_event_was_made_leaves_one_event_when_retried(
        graph_settings: Settings, token: FixedToken, graph_server: GraphServer, be: Agency) -> None:
    organizer, _ = counselor(be)
    client = build_graph_client(graph_settings, token, timeout=0.3)
    provider = GraphMeetingProvider(client)
    graph_server.fail(None, method="POST", path=r"/events$", delay=1.0, effect=True)
    try:
        with pytest.raises(MeetingUnavailable) as first:
            await provider.create(request_for(organizer))
        assert first.value.retry_after is None
        assert len(graph_server.live_events(organizer)) == 1  # Graph made it; the answer came too late

        # The durable job tries again with the same request.
        meeting = await provider.create(request_for(organizer))
    finally:
        await provider.close()

    [event] = graph_server.live_events(organizer)
    assert meeting.event_id == event["id"]
    assert graph_server.meeting_of(event)["lobbyBypassSettings"]["scope"] == "organizer"


async def test_another_appointment_gets_its_own_event(provider: GraphMeetingProvider, graph_server: GraphServer,
                                                      be: Agency) -> None:
    organizer, _ = counselor(be)
    first = await provider.create(request_for(organizer, transaction="appt-1-v1"))
    second = await provider.create(request_for(organizer, transaction="appt-2-v1"))

    assert first.event_id != second.event_id and first.join_url != second.join_url
    assert len(graph_server.live_events(organizer)) == 2


async def test_move_changes_the_time_and_returns_the_link(provider: GraphMeetingProvider, graph_server: GraphServer,
                                                          be: Agency) -> None:
    organizer, _ = counselor(be)
    meeting = await provider.create(request_for(organizer))
    later = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)

    moved = await provider.move(organizer, meeting.event_id, later, later + timedelta(minutes=45))

    assert moved == meeting  # Graph kept the link
    [patch] = graph_server.requests_to("PATCH", r"/events/")
    assert patch.body == {"@odata.type": "#microsoft.graph.event",
                          "start": {"dateTime": "2026-03-03T14:00:00", "timeZone": "UTC"},
                          "end": {"dateTime": "2026-03-03T14:45:00", "timeZone": "UTC"}}
    [event] = graph_server.live_events(organizer)
    assert event["start"]["dateTime"] == "2026-03-03T14:00:00"
    assert len(graph_server.requests_to("PATCH", r"/onlineMeetings/")) == 1  # only the creation's


async def test_a_move_that_brings_a_new_link_returns_it_with_the_same_options(
        provider: GraphMeetingProvider, graph_server: GraphServer, be: Agency) -> None:
    organizer, _ = counselor(be)
    meeting = await provider.create(request_for(organizer))
    graph_server.new_link_on_move = True
    later = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)

    moved = await provider.move(organizer, meeting.event_id, later, later + timedelta(minutes=30))

    assert moved.event_id == meeting.event_id and moved.join_url != meeting.join_url
    [event] = graph_server.live_events(organizer)
    options = graph_server.meeting_of(event)
    assert options["joinWebUrl"] == moved.join_url
    assert options["lobbyBypassSettings"]["scope"] == "organizer" and options["allowRecording"] is False


async def test_cancel_posts_the_comment_and_an_event_already_gone_is_fine(
        provider: GraphMeetingProvider, graph_server: GraphServer, be: Agency) -> None:
    organizer, _ = counselor(be)
    meeting = await provider.create(request_for(organizer))

    await provider.cancel(organizer, meeting.event_id, "Rendez-vous annulé")
    await provider.cancel(organizer, meeting.event_id, "Rendez-vous annulé")  # 404 now: already gone

    assert graph_server.live_events(organizer) == []
    assert graph_server.cancelled[meeting.event_id]["comment"] == "Rendez-vous annulé"
    cancels = graph_server.requests_to("POST", r"/cancel$")
    assert [c.status for c in cancels] == [202, 404]
    assert cancels[0].path == f"/users/{organizer}/events/{meeting.event_id}/cancel"


async def test_an_event_exchange_will_not_cancel_is_deleted_instead(
        provider: GraphMeetingProvider, graph_server: GraphServer, be: Agency) -> None:
    organizer, _ = counselor(be)
    meeting = await provider.create(request_for(organizer))
    graph_server.fail("bad_request", path=r"/cancel$")

    await provider.cancel(organizer, meeting.event_id, "Rendez-vous annulé")

    assert graph_server.live_events(organizer) == []
    assert [r.method for r in graph_server.requests if meeting.event_id in r.path][-2:] == ["POST", "DELETE"]


@pytest.fixture
def graph_waits(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    """The SDK's retry handler waits with asyncio.sleep: its waits are recorded instead of waited."""
    fake = FakeTime()
    monkeypatch.setattr(retry_handler, "asyncio", SimpleNamespace(sleep=fake.sleep))
    return fake


async def test_a_throttled_call_waits_as_graph_asks_then_goes_through(
        provider: GraphMeetingProvider, graph_server: GraphServer, be: Agency, graph_waits: FakeTime) -> None:
    organizer, _ = counselor(be)
    graph_server.fail("throttled", method="POST", path=r"/events$", retry_after="1")

    await provider.create(request_for(organizer))

    assert graph_waits.sleeps == [1.0]
    assert [p.status for p in graph_server.requests_to("POST", r"/events$")] == [429, 201]


async def test_throttling_that_lasts_gives_up_after_bounded_retries_with_graphs_wait(
        provider: GraphMeetingProvider, graph_server: GraphServer, be: Agency, graph_waits: FakeTime) -> None:
    organizer, _ = counselor(be)
    graph_server.fail("throttled", method="POST", path=r"/events$", retry_after="1", times=10)

    with pytest.raises(MeetingUnavailable) as raised:
        await provider.create(request_for(organizer))

    assert raised.value.retry_after == 1.0
    assert graph_waits.sleeps == [1.0, 1.0]  # two retries, each after the second Graph asked for
    assert len(graph_server.requests_to("POST", r"/events$")) == 3
    assert graph_server.live_events(organizer) == []


async def test_a_long_retry_after_goes_back_to_the_caller_at_once(
        provider: GraphMeetingProvider, graph_server: GraphServer, be: Agency, graph_waits: FakeTime) -> None:
    organizer, _ = counselor(be)
    graph_server.fail("throttled", method="POST", path=r"/events$", retry_after="120", times=10)

    with pytest.raises(MeetingUnavailable) as raised:
        await provider.create(request_for(organizer))

    assert raised.value.retry_after == 120.0
    assert graph_waits.sleeps == []
    assert len(graph_server.requests_to("POST", r"/events$")) == 1


async def test_a_retry_after_given_as_an_http_date_is_read_as_the_wait_until_then(
        provider: GraphMeetingProvider, graph_server: GraphServer, be: Agency, graph_waits: FakeTime) -> None:
    organizer, _ = counselor(be)
    until = datetime.now(UTC) + timedelta(minutes=10)
    graph_server.fail("throttled", method="POST", path=r"/events$", retry_after=format_datetime(until, usegmt=True),
                      times=10)

    with pytest.raises(MeetingUnavailable) as raised:
        await provider.create(request_for(organizer))

    # Ten minutes, less what passed since (and the date's whole seconds): far from "now" and from None.
    assert raised.value.retry_after is not None and 540 < raised.value.retry_after <= 600
    assert graph_waits.sleeps == []
    assert len(graph_server.requests_to("POST", r"/events$")) == 1


@pytest.mark.parametrize("kind", ["unavailable", "gateway_timeout"])
async def test_a_server_that_stays_unavailable_is_a_retry_later(
        provider: GraphMeetingProvider, graph_server: GraphServer, be: Agency, kind: str) -> None:
    organizer, _ = counselor(be)
    graph_server.fail(kind, method="POST", path=r"/events$", retry_after="0", times=10)

    with pytest.raises(MeetingUnavailable):
        await provider.create(request_for(organizer))

    assert len(graph_server.requests_to("POST", r"/events$")) == 3


async def test_graph_out_of_reach_is_a_retry_later(graph_settings: Settings, token: FixedToken,
                                                   graph_server: GraphServer, be: Agency) -> None:
    organizer, _ = counselor(be)
    await graph_server.stop()
    provider = GraphMeetingProvider(build_graph_client(graph_settings, token))
    try:
        with pytest.raises(MeetingUnavailable):
            await provider.create(request_for(organizer))
    finally:
        await provider.close()


def _personal_data_absent(caplog: pytest.LogCaptureFixture, agency: Agency) -> None:
    organizer, email = counselor(agency)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in (organizer, email, agency.counselors[0].display_name, SUBJECT, BODY):
        assert secret not in logged


async def test_a_missing_calendar_permission_is_refused_and_named_for_the_administrator(
        provider: GraphMeetingProvider, graph_server: GraphServer, be: Agency,
        caplog: pytest.LogCaptureFixture) -> None:
    organizer, _ = counselor(be)
    graph_server.fail("calendar_permission", method="POST", path=r"/events$")

    with caplog.at_level(logging.WARNING), pytest.raises(MeetingRefused):
        await provider.create(request_for(organizer))

    [line] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "Calendars.ReadWrite" in line.getMessage() and APP in line.getMessage()
    assert "API permissions" in line.getMessage()
    _personal_data_absent(caplog, be)
    assert len(graph_server.requests_to("POST", r"/events$")) == 1  # a refusal is not retried


async def test_a_missing_teams_access_policy_is_refused_and_the_fix_is_logged(
        provider: GraphMeetingProvider, graph_server: GraphServer, be: Agency,
        caplog: pytest.LogCaptureFixture) -> None:
    organizer, _ = counselor(be)
    graph_server.fail("access_policy", method="PATCH", path=r"/onlineMeetings/")

    with caplog.at_level(logging.WARNING), pytest.raises(MeetingRefused) as refused:
        await provider.create(request_for(organizer))

    [event] = graph_server.live_events(organizer)
    assert refused.value.event_id == event["id"]  # so the caller can cancel it if it gives up
    [line] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    message = line.getMessage()
    assert "application access policy" in message
    assert "New-CsApplicationAccessPolicy" in message and "Grant-CsApplicationAccessPolicy" in message
    assert APP in message
    _personal_data_absent(caplog, be)


async def test_a_missing_online_meetings_permission_names_it(
        provider: GraphMeetingProvider, graph_server: GraphServer, be: Agency,
        caplog: pytest.LogCaptureFixture) -> None:
    organizer, _ = counselor(be)
    graph_server.fail("meeting_permission", method="GET", path=r"/onlineMeetings$")

    with caplog.at_level(logging.WARNING), pytest.raises(MeetingRefused):
        await provider.create(request_for(organizer))

    [line] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "OnlineMeetings.ReadWrite.All" in line.getMessage()
    assert "access policy" not in line.getMessage()


async def test_an_unknown_counselor_is_refused_without_quoting_graph(
        provider: GraphMeetingProvider, graph_server: GraphServer, be: Agency,
        caplog: pytest.LogCaptureFixture) -> None:
    organizer, _ = counselor(be)
    graph_server.users = {"someone-else"}

    with caplog.at_level(logging.DEBUG), pytest.raises(MeetingRefused) as refused:
        await provider.create(request_for(organizer))

    assert "404" in str(refused.value) and organizer not in str(refused.value)
    _personal_data_absent(caplog, be)
