"""What the chat cannot carry goes by e-mail: the join link, each reminder, the notices after an outcome.

A citizen of the agency's website (their chat is a Web Chat conversation they left) gets them by e-mail and
nothing in the chat; a Teams citizen who blocked the bot gets them by e-mail once Teams refuses; a Teams
citizen the chat reaches gets no e-mail. Each e-mail is a job, sent once, in the citizen's language, plain
text and HTML, with the manage link. Through the runner, on SQLite and PostgreSQL, with the injectable clock.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from bot.domain.agency import Agency, Mode
from bot.domain.appointment import NotVerifiedReason, Outcome
from bot.domain.channels import web_reader
from bot.domain.clock import FixedClock
from bot.domain.jobs import EmailKind, JobKind
from bot.domain.web_identity import SIGN_IN_TENANT
from bot.i18n import t
from bot.integrations.graph_client import GraphClient
from bot.integrations.mail import FolderMailer, GraphMailer
from bot.jobs.runner import JobRunner
from bot.jobs.worker import job_handlers
from bot.services.booking import Booked
from bot.services.container import Services
from bot.services.emails import EmailChannel, plan_notice_email
from bot.services.outcomes import OutcomeService
from bot.services.ports import Mailer, Meeting, MeetingRequest, OutgoingMessage, RecipientUnreachable
from bot.wiring import assemble_services, build_use_cases
from cards.booking import when_text
from storage.unit_of_work import UnitOfWorkFactory
from tests.booking_support import booking_over, personal_data
from tests.graph_server import GraphServer

BRUSSELS = ZoneInfo("Europe/Brussels")
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=BRUSSELS)
START = datetime(2026, 11, 25, 10, 0, tzinfo=BRUSSELS)  # Wednesday 10:00
SECRET = "link-secret-for-the-mail-tests-0123"
PAGE = "https://www.agency.example/chat"
MAILBOX = "rendez-vous@agency.example"
ADDRESS = "camille.dupont@example.org"
SUBJECT = "temporary-unemployment"
TEAMS_REFERENCE = {"serviceUrl": "https://smba.example/emea/", "channelId": "msteams",
                   "conversation": {"id": "a:citizen", "tenantId": "tenant-1"}, "user": {"id": "29:citizen"},
                   "bot": {"id": "28:bot"}}
WEB_REFERENCE = {"serviceUrl": "https://directline.example/", "channelId": "webchat",
                 "conversation": {"id": "dl-conversation"}, "user": {"id": "dl_visitor"}, "bot": {"id": "guichet"}}


class FakeNotifier:
    """Records what would reach the chat; `failures` are raised first, one per send."""

    def __init__(self) -> None:
        self.sent: list[Mapping[str, Any]] = []
        self.failures: list[Exception] = []

    async def send(self, reference: Mapping[str, Any], message: OutgoingMessage) -> str | None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(reference)
        return f"activity-{len(self.sent)}"


class FakeMeetings:
    """Teams meetings with a join link per event; a move gives a new link."""

    def __init__(self) -> None:
        self.made = 0

    async def create(self, request: MeetingRequest) -> Meeting:
        self.made += 1
        return Meeting(event_id=f"event-{self.made}", join_url=f"https://teams.example/l/meetup-join/{self.made}")

    async def move(self, organizer_id: str, event_id: str, starts_at: datetime, ends_at: datetime) -> Meeting:
        self.made += 1
        return Meeting(event_id=event_id, join_url=f"https://teams.example/l/meetup-join/{self.made}")

    async def cancel(self, organizer_id: str, event_id: str, comment: str) -> None:
        return None


class CountingMailer:
    """The folder mailer, counting the sends (the folder rewrites a file sent twice)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.inner = FolderMailer(folder)
        self.keys: list[str] = []

    async def send(self, message: EmailMessage, *, key: str) -> None:
        self.keys.append(key)
        await self.inner.send(message, key=key)


class World:
    def __init__(self, agency: Agency, uow: UnitOfWorkFactory, folder: Path, mailer: Mailer | None = None,
                 *, links: bool = True) -> None:
        self.clock = FixedClock(MONDAY)
        self.notifier = FakeNotifier()
        self.mailer = CountingMailer(folder)
        self.folder = folder
        self.uow = uow
        self.services: Services = assemble_services(
            agency, uow, self.clock, notifier=self.notifier, meetings=FakeMeetings(),
            email=EmailChannel(mailer or self.mailer, sender=MAILBOX, link_secret=SECRET if links else "",
                               manage_page=PAGE))
        self.booking = booking_over(self.services)
        self.outcomes: OutcomeService = build_use_cases(self.services).outcomes
        self.runner = JobRunner(uow, job_handlers(self.services), self.clock)

    async def citizen(self, *, web: bool, locale: str, blocked: bool = False, signed_in: bool = False) -> str:
        """`signed_in`: a citizen of the agency's own sign-in, who has no chat the bot could write to."""
        async with self.uow() as uow:
            if signed_in:
                citizen = await uow.citizens.upsert_identity(
                    agency_id=self.services.agency.id, tenant_id=SIGN_IN_TENANT, aad_object_id="subject-key",
                    teams_user_id=None, conversation_reference=None, locale=locale, now=self.clock.now())
            else:
                citizen = await uow.citizens.upsert_identity(
                    agency_id=self.services.agency.id, tenant_id=None if web else "tenant-1",
                    aad_object_id=None if web else f"object-{locale}",
                    teams_user_id=f"dl_visitor-{locale}" if web else "29:citizen",
                    conversation_reference=WEB_REFERENCE if web else TEAMS_REFERENCE, locale=locale,
                    now=self.clock.now())
            if blocked:
                await uow.citizens.mark_unreachable(citizen.id, self.clock.now())
            await uow.commit()
        return citizen.id

    async def book(self, citizen_id: str, *, email_address: bool = True) -> Booked:
        booked = await self.booking.book(citizen_id=citizen_id, mode=Mode.VIDEO, subject_id=SUBJECT, office_id=None,
                                         start=START, personal_data=personal_data("1000"), interview_language="fr")
        assert isinstance(booked, Booked), booked
        if not email_address:  # this agency asks for one; another may not
            async with self.uow() as uow:
                stored = await uow.citizens.get(citizen_id)
                assert stored is not None
                stored.email = None
                await uow.commit()
        await self.runner.drain()  # the meeting, its link, the confirmation
        return booked

    async def at(self, moment: datetime) -> int:
        self.clock.set(moment)
        return await self.runner.drain()

    async def report(self, booked: Booked, outcome: Outcome, reason: str | None = None) -> None:
        appointment = booked.appointment
        await self.outcomes.report_by_staff(appointment.counselor_id, appointment.id, outcome, reason)
        await self.runner.drain()

    def emails(self, what: str) -> list[EmailMessage]:
        """The e-mails of one kind the folder holds, oldest key first."""
        found = []
        for path in sorted(self.folder.glob("*.eml")):
            match = re.match(r"email_(.+?)_[0-9a-f]{8}-", path.name)
            if match and match.group(1) == what:
                found.append(email.message_from_bytes(path.read_bytes(), policy=email.policy.default))
        return found  # type: ignore[return-value]

    async def one(self, what: str) -> EmailMessage:
        """The one e-mail of this kind; else a failure that lists the jobs."""
        found = self.emails(what)
        if len(found) != 1:
            async with self.uow() as uow:
                jobs = await uow.jobs.listing(limit=1000)
            pytest.fail(f"{len(found)} e-mails {what!r}; jobs: " + "; ".join(
                f"{job.kind} {job.payload} {job.status} {job.outcome} {job.last_error} {job.run_at}" for job in jobs))
        return found[0]

    async def job_outcomes(self, kind: str) -> list[str | None]:
        async with self.uow() as uow:
            return sorted(str(job.outcome) for job in await uow.jobs.listing(kind=kind, limit=1000))


@pytest.fixture
def world(agency: Agency, uow_factory: UnitOfWorkFactory, tmp_path: Path) -> World:
    return World(agency, uow_factory, tmp_path / "outbox")


def parts(message: EmailMessage) -> tuple[str, str]:
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    return plain.get_content(), html.get_content()


def manage_link(message: EmailMessage) -> str:
    plain, html = parts(message)
    link = next(line for line in plain.splitlines() if line.startswith(PAGE + "#manage="))
    assert f'href="{link}"' in html
    return link


def no_personal_data(message: EmailMessage) -> None:
    plain, html = parts(message)
    for text in (plain, html, str(message["Subject"])):
        assert personal_data()["national_register_number"] not in text and "30/07/1985" not in text
        assert "Dupont" not in text  # not even the family name: the greeting is "Hello,"


@pytest.mark.parametrize(("locale", "language"), [("fr-BE", "fr"), ("nl-BE", "nl")])
async def test_a_web_citizen_gets_the_link_and_each_reminder_by_email_and_nothing_in_the_chat(
        world: World, locale: str, language: str) -> None:
    citizen = await world.citizen(web=True, locale=locale)
    booked = await world.book(citizen)
    assert world.notifier.sent == []

    [link] = world.emails("link")
    assert link["Subject"] == t(language, "email.link_subject", agency=world.services.agency.display_name(language))
    plain, html = parts(link)
    join_url = "https://teams.example/l/meetup-join/1"
    assert join_url in plain.splitlines() and f'href="{join_url}"' in html
    assert t(language, "email.join_intro") in plain and t(language, "booking.confirmation.access_mobile") in plain
    manage_link(link)
    no_personal_data(link)
    [ics] = list(link.iter_attachments())
    event = Calendar.from_ical(ics.get_content()).walk("VEVENT")[0]
    assert str(event["URL"]) == join_url and str(event["UID"]).startswith(booked.appointment.id)

    # The day before, then an hour before: each reminder by e-mail, none in the chat.
    await world.at(START - timedelta(days=1))
    await world.at(START - timedelta(hours=1))
    assert world.notifier.sent == []
    reminders = world.emails("reminder")
    [day] = [message for message in reminders if t(language, "reminders.title_day") in parts(message)[0]]
    [soon] = [message for message in reminders if message is not day]
    for message in (day, soon):
        plain, html = parts(message)
        assert message["Content-Language"] == language and f'<html lang="{language}">' in html
        assert message["To"] == ADDRESS and message["From"].addresses[0].addr_spec == MAILBOX
        assert message["Subject"] == t(language, "email.reminder_subject",
                                       agency=world.services.agency.display_name(language),
                                       when=when_text(world.services.agency, language, START))
        assert join_url in plain and f'href="{join_url}"' in html
        for key in ("booking.confirmation.access_computer", "booking.confirmation.check_devices",
                    "booking.confirmation.camera_rule"):
            assert t(language, key) in plain
        assert t(language, "reminders.technical_problem") not in plain  # a chat button, not in an e-mail
        assert manage_link(message)
        no_personal_data(message)
    assert t(language, "reminders.title_day") in parts(day)[0]
    with web_reader():  # e-mails read as the website does: "here" is not the chat
        too_late = t(language, "reminders.too_late_to_change", phone=world.services.agency.contact.phone)
    assert too_late in parts(soon)[0]
    assert await world.job_outcomes(JobKind.REMINDER) == ["handed_to_email", "handed_to_email"]
    async with world.uow() as uow:
        events = [event async for event in uow.audit.iterate(world.services.agency.id)]
    assert sorted(event.payload["offset_minutes"] for event in events
                  if event.event_type == "appointment.reminder_sent") == [60, 1440]


async def test_a_moved_meeting_sends_the_new_link(world: World) -> None:
    citizen = await world.citizen(web=True, locale="fr-BE")
    booked = await world.book(citizen)
    offers = await world.booking.slots(mode=Mode.VIDEO, subject_id=SUBJECT, day=date(2026, 11, 26))
    moved = await world.booking.reschedule(citizen_id=citizen, appointment_id=booked.appointment.id,
                                           start=offers[0].start)
    assert isinstance(moved, Booked), moved
    await world.runner.drain()
    [changed] = world.emails("link_changed")
    assert changed["Subject"] == t("fr", "email.link_changed_subject",
                                   agency=world.services.agency.display_name("fr"))
    assert "https://teams.example/l/meetup-join/2" in parts(changed)[0]
    assert world.notifier.sent == []


@pytest.mark.parametrize(("locale", "language"), [("fr-BE", "fr"), ("nl-BE", "nl")])
async def test_a_no_show_notice_reaches_a_web_citizen_by_email(world: World, agency: Agency, locale: str,
                                                               language: str) -> None:
    citizen = await world.citizen(web=True, locale=locale)
    booked = await world.book(citizen)
    await world.at(START + timedelta(minutes=agency.no_show_minutes))
    await world.report(booked, Outcome.NO_SHOW)
    message = await world.one("no_show")
    plain, html = parts(message)
    assert message["Subject"] == t(language, "email.no_show_subject", agency=agency.display_name(language))
    assert message["Content-Language"] == language
    assert t(language, "outcomes.no_show.title") in plain and t(language, "email.book_again_link") in plain
    assert f"<strong>{t(language, 'outcomes.no_show.title')}</strong>" in html
    manage_link(message)
    no_personal_data(message)
    assert world.notifier.sent == []


@pytest.mark.parametrize(("locale", "language"), [("fr-BE", "fr"), ("nl-BE", "nl")])
async def test_an_identity_not_verified_notice_says_what_to_do_next_time(world: World, agency: Agency, locale: str,
                                                                         language: str) -> None:
    citizen = await world.citizen(web=True, locale=locale)
    booked = await world.book(citizen)
    await world.at(START)
    await world.report(booked, Outcome.IDENTITY_NOT_VERIFIED, NotVerifiedReason.CAMERA_OFF.value)
    [message] = world.emails("not_verified")
    plain, html = parts(message)
    assert message["Subject"] == t(language, "email.not_verified_subject", agency=agency.display_name(language))
    assert t(language, "outcomes.not_verified.camera_off") in plain
    assert html.count("<a href=") == 1  # the manage link only
    manage_link(message)
    assert world.notifier.sent == []


async def test_a_technical_problem_says_how_to_pick_a_new_time(world: World) -> None:
    citizen = await world.citizen(web=True, locale="nl-BE")
    booked = await world.book(citizen)
    await world.at(START + timedelta(minutes=3))
    await world.report(booked, Outcome.TECHNICAL_PROBLEM)
    [message] = world.emails("technical")
    plain, _ = parts(message)
    assert t("nl", "email.technical_link") in plain and t("nl", "email.technical_text") in plain
    link = manage_link(message)
    assert plain.index(t("nl", "email.technical_link")) < plain.index(link)
    assert world.notifier.sent == []


async def test_a_teams_citizen_who_blocked_the_bot_gets_the_email_instead(world: World) -> None:
    citizen = await world.citizen(web=False, locale="nl-BE")
    booked = await world.book(citizen)
    assert len(world.notifier.sent) == 1 and world.emails("link") == []  # Teams still reaches them

    world.notifier.failures.append(RecipientUnreachable("MessageWritesBlocked"))  # they block the bot
    await world.at(START - timedelta(days=1))
    [day] = world.emails("reminder")
    assert t("nl", "reminders.title_day") in parts(day)[0]
    async with world.uow() as uow:
        stored = await uow.citizens.get(citizen)
        assert stored is not None and stored.unreachable_since is not None  # Teams is not asked again
    # Once refused, the next messages go by e-mail without asking Teams again.
    await world.at(START - timedelta(hours=1))
    assert len(world.emails("reminder")) == 2 and len(world.notifier.sent) == 1
    assert await world.job_outcomes(JobKind.REMINDER) == ["handed_to_email", "handed_to_email"]
    await world.at(START + timedelta(minutes=10))
    await world.report(booked, Outcome.NO_SHOW)
    [no_show] = world.emails("no_show")
    assert t("nl", "outcomes.no_show.title") in parts(no_show)[0]
    assert len(world.notifier.sent) == 1


async def test_a_teams_citizen_the_chat_reaches_gets_no_email(world: World) -> None:
    citizen = await world.citizen(web=False, locale="fr-BE")
    booked = await world.book(citizen)
    await world.at(START - timedelta(days=1))
    await world.at(START + timedelta(minutes=10))
    await world.report(booked, Outcome.NO_SHOW)
    assert len(world.notifier.sent) == 3  # the link, a reminder, the no-show notice
    assert world.mailer.keys == [] and list(world.folder.glob("*.eml")) == []
    assert await world.job_outcomes(JobKind.EMAIL) == ["skipped_no_email"]  # the confirmation, decided at run


async def test_a_web_citizen_without_an_address_gets_nothing_in_the_chat_either(world: World) -> None:
    citizen = await world.citizen(web=True, locale="fr-BE")
    await world.book(citizen, email_address=False)
    await world.at(START - timedelta(days=1))
    assert world.notifier.sent == [] and world.mailer.keys == []
    assert await world.job_outcomes(JobKind.REMINDER) == ["None", "skipped_no_email"]


async def test_each_email_is_sent_once(world: World) -> None:
    citizen = await world.citizen(web=True, locale="fr-BE")
    booked = await world.book(citizen)
    await world.at(START - timedelta(days=1))
    async with world.uow() as uow:  # handed over again (a chat job run twice): the same e-mail job
        await plan_notice_email(uow, EmailKind.LINK, booked.appointment.id, world.clock.now(),
                                join_url="https://teams.example/l/meetup-join/1")
        await uow.commit()
    await world.runner.drain()
    assert await world.runner.drain() == 0
    kinds = sorted(key.split(":")[1] for key in world.mailer.keys)
    assert kinds == ["confirmation", "link", "reminder"]


async def test_a_reminder_email_through_graph_sendmail(agency: Agency, uow_factory: UnitOfWorkFactory,
                                                       tmp_path: Path, graph_server: GraphServer,
                                                       graph_client: GraphClient) -> None:
    world = World(agency, uow_factory, tmp_path / "outbox", mailer=GraphMailer(graph_client, MAILBOX))
    citizen = await world.citizen(web=True, locale="nl-BE")
    await world.book(citizen)
    await world.at(START - timedelta(days=1))
    subjects = [sent["subject"] for sent in graph_server.sent_mail[MAILBOX]]
    assert len(subjects) == 3 and any(subject.startswith("Herinnering") for subject in subjects)
    reminder = next(sent for sent in graph_server.sent_mail[MAILBOX] if sent["subject"].startswith("Herinnering"))
    assert reminder["body"]["contentType"] == "html" and "https://teams.example/l/meetup-join/1" in \
        reminder["body"]["content"]
    assert reminder["toRecipients"] == [{"emailAddress": {"address": ADDRESS}}]


@pytest.mark.parametrize("web", [True, False])
async def test_nobody_joined_the_web_citizen_also_gets_the_way_to_a_new_time_by_email(world: World, agency: Agency,
                                                                                       web: bool) -> None:
    citizen = await world.citizen(web=web, locale="fr-BE")
    booked = await world.book(citizen)
    world.clock.set(START + timedelta(minutes=agency.agency_wait_commitment_minutes))
    await world.outcomes.report_by_citizen(citizen, booked.appointment.id, Outcome.AGENCY_LATE)
    await world.outcomes.report_by_citizen(citizen, booked.appointment.id, Outcome.AGENCY_LATE)  # pressed twice
    await world.runner.drain()
    if not web:  # the answer in their Teams chat is enough
        assert world.emails("agency_late") == []
        return
    [message] = world.emails("agency_late")
    plain, _ = parts(message)
    assert message["Subject"] == t("fr", "email.agency_late_subject", agency=agency.display_name("fr"))
    assert t("fr", "outcomes.new_times.title_agency_late") in plain and t("fr", "email.technical_link") in plain
    manage_link(message)
    late = [key for key in world.mailer.keys if ":agency_late:" in key]
    assert late == [f"email:agency_late:{booked.appointment.id}"]


async def test_a_citizen_of_the_agencys_sign_in_gets_the_reminders_by_email(world: World) -> None:
    citizen = await world.citizen(web=True, locale="nl-BE", signed_in=True)
    await world.book(citizen)
    await world.at(START - timedelta(days=1))
    [reminder] = world.emails("reminder")
    assert t("nl", "reminders.title_day") in parts(reminder)[0]
    assert world.notifier.sent == [] and len(world.emails("link")) == 1


async def test_without_manage_links_a_notice_gives_the_phone_number(agency: Agency, uow_factory: UnitOfWorkFactory,
                                                                   tmp_path: Path) -> None:
    world = World(agency, uow_factory, tmp_path / "outbox", links=False)
    citizen = await world.citizen(web=True, locale="fr-BE")
    booked = await world.book(citizen)
    await world.at(START + timedelta(minutes=agency.no_show_minutes))
    await world.report(booked, Outcome.NO_SHOW)
    message = await world.one("no_show")
    plain, html = parts(message)
    assert PAGE not in plain and "<a href=" not in html
    assert t("fr", "email.book_again_phone", phone=agency.contact.phone) in plain
    assert t("fr", "email.book_again_link") not in plain
