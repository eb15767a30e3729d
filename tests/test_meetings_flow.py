"""Teams meetings end to end: a citizen books, moves and cancels a video appointment in their chat (real
HTTP), the job runner talks to the local Graph stand-in through the real msgraph client. Exactly one event
each time, the agency's meeting policy on it, the link in the chat as soon as it exists; Graph's faults
retried without a second event; repeated failure or a refusal alerts the agency; local mode says plainly
that no meeting exists."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import SERVICES
from bot.domain.agency import Agency, FallbackChannel
from bot.domain.appointment import MeetingState
from bot.domain.clock import FixedClock
from bot.domain.jobs import JobKind
from bot.i18n import t
from bot.jobs.runner import JobRunner
from bot.services.container import Services
from bot.settings import Settings
from bot.wiring import build_services, job_handlers
from cards.verbs import Verb
from tests.fixtures.graph import FixedToken, graph_settings_for
from tests.graph_server import GraphServer
from tests.harness import FakeConnector, TeamsUser, card_text, start_bot
from tests.test_booking_flow import BE_DETAILS, MONDAY_MORNING, Chat, book, choose_day_and_time, confirmation

CHANNEL = "19:agency-fallback@thread.tacv2"


@dataclass
class World:
    chat: Chat
    services: Services
    runner: JobRunner
    clock: FixedClock
    graph: GraphServer
    connector: FakeConnector

    async def run_jobs(self, after: timedelta = timedelta(0)) -> None:
        self.clock.advance(after)
        await self.runner.drain()

    async def appointment(self) -> Any:
        async with self.services.uow.read() as uow:
            rows = await uow.appointments.of_counselors_between(
                self.services.agency.id, MONDAY_MORNING, MONDAY_MORNING + timedelta(days=120))
        assert len(rows) == 1
        return rows[0]

    async def jobs(self, kind: JobKind) -> list[Any]:
        async with self.services.uow.read() as uow:
            return await uow.jobs.listing(kind=str(kind))

    def link_messages(self) -> list[dict[str, Any]]:
        title = t("fr", "reminders.link_title")
        return [card for card in self.chat.cards() if title in card_text(card)]


@pytest.fixture
async def world(tmp_path: Path, agency_path: Path, agency: Agency, graph_server: GraphServer,
                connector: FakeConnector, http: aiohttp.ClientSession) -> AsyncIterator[World]:
    settings = graph_settings_for(graph_server.url, database_url=f"sqlite+aiosqlite:///{tmp_path}/meet.db",
                                  agency=agency_path)
    with_channel = agency.model_copy(update={"fallback_channel": FallbackChannel(
        conversation_id=CHANNEL, service_url=connector.url, tenant_id="7e5b2c1a-0000-4000-8000-000000000001")})
    clock = FixedClock(MONDAY_MORNING)
    wiring = build_services(settings, agency=with_channel, clock=clock, graph_credential=FixedToken())
    async with start_bot(settings, with_channel, clock, wiring=wiring) as bot:
        services = bot.app[SERVICES]
        chat = Chat(TeamsUser(bot_url=bot.url, connector=connector, http=http))
        yield World(chat, services, JobRunner(services.uow, job_handlers(services), clock), clock, graph_server,
                    connector)


async def test_booking_moving_and_cancelling_make_exactly_one_meeting_with_the_agency_policy(world: World) -> None:
    await book(world.chat, mode="video", details={**BE_DETAILS, "postal_code": "4000"})
    text = card_text(confirmation(world.chat))
    assert t("fr", "booking.confirmation.link_pending") in text  # the truth: the link follows in this chat
    appointment = await world.appointment()
    assert appointment.meeting_state == MeetingState.PENDING

    # Graph creates the event, then answers 503, three times (the client's own two retries included): the
    # job's retry finds the same event (transactionId).
    world.graph.fail("unavailable", method="POST", path=r"/events$", effect=True, times=3)
    await world.run_jobs()
    assert world.link_messages() == []
    [job] = await world.jobs(JobKind.MEETING_CREATE)
    assert (job.status, job.last_error) == ("pending", "MeetingUnavailable")
    await world.run_jobs(job.run_at - world.clock.now())

    events = world.graph.live_events(appointment.counselor_id)
    assert len(events) == 1 and len(world.graph.requests_to("POST", r"/events$")) == 4
    meeting = world.graph.meeting_of(events[0])
    assert meeting["lobbyBypassSettings"]["scope"] == "organizer"
    assert meeting["allowedPresenters"] == "organizer"
    assert meeting["allowRecording"] is False and meeting["allowTranscription"] is False  # example-be forbids it
    appointment = await world.appointment()
    assert appointment.meeting_state == MeetingState.READY and appointment.join_url == meeting["joinWebUrl"]
    # The event says nothing about the citizen.
    stored = str(events[0])
    assert "Marie" not in stored and "Hondt" not in stored and "example.org" not in stored

    # The link reaches the chat as soon as it exists, with the guide.
    [message] = world.link_messages()
    assert appointment.join_url in str(message)
    assert t("fr", "booking.confirmation.access_mobile") in card_text(message)

    # Moving the appointment moves the event; the link is kept (and the confirmation shows it).
    await world.chat.press(Verb.APPT_RESCHEDULE, card=confirmation(world.chat))
    new_start = await choose_day_and_time(world.chat, day_index=1)
    await world.chat.press(Verb.BOOK_CONFIRM)
    assert appointment.join_url in str(confirmation(world.chat))
    await world.run_jobs()
    events = world.graph.live_events(appointment.counselor_id)
    assert len(events) == 1
    moved = world.graph.requests_to("PATCH", r"/events/")
    assert moved and datetime.fromisoformat(new_start) == datetime.fromisoformat(
        moved[-1].body["start"]["dateTime"] + "+00:00")
    assert len(world.link_messages()) == 1  # same link: no new message

    # Cancelling cancels the meeting, with a comment in the interview language.
    await world.chat.press(Verb.APPT_CANCEL, card=confirmation(world.chat))
    await world.chat.press(Verb.APPT_CANCEL_CONFIRM, {"reason": ""})
    await world.run_jobs()
    assert world.graph.live_events(appointment.counselor_id) == []
    [cancel] = world.graph.requests_to("POST", r"/cancel$")
    assert cancel.body["Comment"] == t("fr", "meetings.cancel_comment",
                                       agency=world.services.agency.display_name("fr"))


async def test_a_move_that_brings_a_new_link_tells_the_citizen_the_link_changed(world: World) -> None:
    await book(world.chat, mode="video", details={**BE_DETAILS, "postal_code": "4000"})
    await world.run_jobs()
    first = (await world.appointment()).join_url
    assert first and len(world.link_messages()) == 1
    world.graph.new_link_on_move = True  # Exchange gives the moved event a new Teams meeting

    await world.chat.press(Verb.APPT_RESCHEDULE, card=confirmation(world.chat))
    await choose_day_and_time(world.chat, day_index=1)
    await world.chat.press(Verb.BOOK_CONFIRM)
    await world.run_jobs()

    appointment = await world.appointment()
    assert appointment.join_url and appointment.join_url != first
    changed_title = t("fr", "reminders.link_changed_title")
    [changed] = [card for card in world.chat.cards() if changed_title in card_text(card)]
    assert appointment.join_url in str(changed) and first not in str(changed)
    # The new meeting has the agency's policy too.
    [event] = world.graph.live_events(appointment.counselor_id)
    assert world.graph.meeting_of(event)["lobbyBypassSettings"]["scope"] == "organizer"


async def test_the_job_waits_as_long_as_graphs_retry_after_says(world: World) -> None:
    await book(world.chat, mode="video", details={**BE_DETAILS, "postal_code": "4000"})
    world.graph.fail("throttled", method="POST", path=r"/events$", times=100, retry_after="600")
    await world.run_jobs()
    [job] = await world.jobs(JobKind.MEETING_CREATE)
    # Not the runner's own backoff (30 s first): Graph's ten minutes, to the second.
    assert (job.status, job.last_error, job.run_at) == ("pending", "MeetingUnavailable",
                                                         world.clock.now() + timedelta(seconds=600))
    await world.run_jobs(timedelta(seconds=599))
    assert len(world.graph.requests_to("POST", r"/events$")) == 1  # not before


async def test_a_meeting_graph_keeps_refusing_alerts_the_counselor_and_the_agency(
    world: World, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two tries instead of six: each try already waits for the client's own retries.
    monkeypatch.setattr("bot.jobs.meetings.MAX_TRIES", 2)
    await book(world.chat, mode="video", details={**BE_DETAILS, "postal_code": "4000"})
    world.graph.fail("throttled", method="POST", path=r"/events$", times=100, retry_after="0")
    for _ in range(2):
        [job] = await world.jobs(JobKind.MEETING_CREATE)
        await world.run_jobs(max(job.run_at - world.clock.now(), timedelta(0)))
    [job] = await world.jobs(JobKind.MEETING_CREATE)
    assert job.status == "failed"
    appointment = await world.appointment()
    assert appointment.meeting_state == MeetingState.FAILED
    await world.run_jobs()  # the alert
    alerts = [r for r in world.connector.received if r.conversation_id == CHANNEL]
    assert alerts and t("fr", "outcomes.alert.title_meeting_failed") in card_text(alerts[-1].cards[0])
    assert world.link_messages() == []


@pytest.mark.parametrize("change", ["move", "cancel"])
async def test_a_meeting_move_or_cancel_graph_keeps_refusing_alerts_the_counselor(
    world: World, monkeypatch: pytest.MonkeyPatch, change: str,
) -> None:
    monkeypatch.setattr("bot.jobs.meetings.MAX_TRIES", 2)
    await book(world.chat, mode="video", details={**BE_DETAILS, "postal_code": "4000"})
    await world.run_jobs()
    link = (await world.appointment()).join_url
    assert link
    await world.chat.press(Verb.APPT_RESCHEDULE if change == "move" else Verb.APPT_CANCEL,
                           card=confirmation(world.chat))
    if change == "move":
        world.graph.fail("throttled", method="PATCH", path=r"/events/", times=100, retry_after="0")
        await choose_day_and_time(world.chat, day_index=1)
        await world.chat.press(Verb.BOOK_CONFIRM)
    else:
        world.graph.fail("throttled", method="POST", path=r"/cancel$", times=100, retry_after="0")
        await world.chat.press(Verb.APPT_CANCEL_CONFIRM, {"reason": ""})
    kind = JobKind.MEETING_MOVE if change == "move" else JobKind.MEETING_CANCEL
    for _ in range(2):
        [job] = await world.jobs(kind)
        await world.run_jobs(max(job.run_at - world.clock.now(), timedelta(0)))
    [job] = await world.jobs(kind)
    assert job.status == "failed"
    await world.run_jobs()  # the alert (this counselor has no chat with the bot: the agency's channel)
    alerts = [r for r in world.connector.received if r.conversation_id == CHANNEL]
    assert alerts and t("fr", f"outcomes.alert.title_meeting_{change}_failed") in card_text(alerts[-1].cards[0])
    assert (await world.appointment()).join_url == link  # the citizen's link is kept


@pytest.mark.parametrize(("method", "path"), [("GET", r"/onlineMeetings$"), ("PATCH", r"/onlineMeetings/")])
async def test_a_missing_teams_policy_fails_at_once_names_what_to_fix_and_sends_no_meeting_without_it(
    world: World, caplog: pytest.LogCaptureFixture, method: str, path: str,
) -> None:
    await book(world.chat, mode="video", details={**BE_DETAILS, "postal_code": "4000"})
    counselor = (await world.appointment()).counselor_id
    # Graph creates the event, then refuses to look up or set its meeting's options (no access policy).
    world.graph.fail("access_policy", method=method, path=path)
    await world.run_jobs()
    [job] = await world.jobs(JobKind.MEETING_CREATE)
    assert (job.status, job.attempts, job.last_error) == ("failed", 1, "MeetingRefused")
    assert any("Grant-CsApplicationAccessPolicy" in record.getMessage() for record in caplog.records)
    assert "Marie" not in caplog.text and "example.org" not in caplog.text

    await world.run_jobs()  # the alert, and the left event's cancellation
    # The event Graph made carries the tenant's defaults, not the agency's policy: it leaves the counselor's
    # calendar, and the citizen never gets its link.
    assert world.graph.live_events(counselor) == []
    assert len(world.graph.requests_to("POST", r"/cancel$")) == 1
    appointment = await world.appointment()
    assert (appointment.meeting_state, appointment.join_url) == (MeetingState.FAILED, None)
    assert world.link_messages() == []
    alerts = [r for r in world.connector.received if r.conversation_id == CHANNEL]
    assert alerts and t("fr", "outcomes.alert.title_meeting_failed") in card_text(alerts[-1].cards[0])


async def test_in_local_mode_the_confirmation_says_no_meeting_was_created(
    bot_settings: Settings, agency: Agency, connector: FakeConnector, http: aiohttp.ClientSession,
) -> None:
    async with start_bot(bot_settings, agency, FixedClock(MONDAY_MORNING)) as bot:
        chat = Chat(TeamsUser(bot_url=bot.url, connector=connector, http=http))
        await book(chat, mode="video", details={**BE_DETAILS, "postal_code": "4000"})
        text = card_text(confirmation(chat))
        assert t("fr", "booking.confirmation.link_local_mode") in text
        assert t("fr", "booking.confirmation.link_pending") not in text
        # The joining block says what happens instead of telling them to open a link that will not come.
        assert t("fr", "booking.confirmation.access_local_mode", phone=agency.contact.phone) in text
        for opening_the_link in ("access_heading", "access_computer", "access_mobile"):
            assert t("fr", f"booking.confirmation.{opening_the_link}") not in text
