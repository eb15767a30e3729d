"""E-mails to citizens the chat may not reach: the booking's confirmation as a job, in the citizen's language,
plain text and HTML, the .ics attached, the manage link; sent once; through Graph sendMail or .eml files."""

from __future__ import annotations

import base64
import email
import email.policy
from datetime import date, datetime
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from bot.domain.agency import Agency, Mode
from bot.domain.clock import FixedClock
from bot.domain.web_identity import SIGN_IN_TENANT
from bot.integrations.graph_client import GraphClient
from bot.integrations.mail import FolderMailer, GraphMailer
from bot.jobs.runner import JobRunner
from bot.jobs.worker import job_handlers
from bot.services.booking import Booked
from bot.services.container import Services
from bot.services.emails import EmailChannel, plan_confirmation_email
from bot.services.ports import MessageRejected, SendFailed
from bot.services.web_identity import WebIdentityService
from bot.wiring import assemble_services
from storage.unit_of_work import UnitOfWorkFactory
from tests.booking_support import booking_over, personal_data
from tests.graph_server import GraphServer

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Europe/Brussels"))
WED = date(2026, 11, 25)
SECRET = "link-secret-for-the-mail-tests-0123"
PAGE = "https://www.agency.example/chat"
MAILBOX = "rendez-vous@agency.example"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def mailer(tmp_path: Path) -> FolderMailer:
    return FolderMailer(tmp_path / "outbox")


@pytest.fixture
def services(agency: Agency, uow_factory: UnitOfWorkFactory, clock: FixedClock, mailer: FolderMailer) -> Services:
    return assemble_services(agency, uow_factory, clock,
                             email=EmailChannel(mailer, sender=MAILBOX, link_secret=SECRET, manage_page=PAGE))


async def _citizen(services: Services, *, web: bool, locale: str) -> str:
    async with services.uow() as uow:
        citizen = await uow.citizens.upsert_identity(
            agency_id=services.agency.id, tenant_id=SIGN_IN_TENANT if web else "tenant-1",
            aad_object_id=f"{'web' if web else 'teams'}-{locale}", teams_user_id=None,
            conversation_reference=None if web else {"channelId": "msteams", "conversation": {"id": "a:1"}},
            locale=locale, now=services.clock.now())
        await uow.commit()
    return citizen.id


async def _book(services: Services, citizen_id: str, language: str) -> Booked:
    booking = booking_over(services)
    offers = await booking.slots(mode=Mode.VIDEO, subject_id="temporary-unemployment", day=WED)
    booked = await booking.book(citizen_id=citizen_id, mode=Mode.VIDEO, subject_id="temporary-unemployment",
                                office_id=None, start=offers[0].start, personal_data=personal_data("1000"),
                                interview_language=language)
    assert isinstance(booked, Booked), booked
    return booked


async def _run_jobs(services: Services) -> int:
    runner = JobRunner(services.uow, job_handlers(services), services.clock)
    return await runner.drain()


def _written(folder: Path) -> list[EmailMessage]:
    return [email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for path in sorted(folder.glob("*.eml"))]


@pytest.mark.parametrize(("locale", "subject_word"), [
    ("fr-BE", "confirmé"), ("nl-BE", "bevestigd"), ("de-BE", "bestätigt"),
    ("en-GB", "confirmé"),  # a language the agency does not speak: its first one
])
async def test_a_web_citizen_gets_the_confirmation_in_their_language_with_the_ics_and_a_manage_link(
        services: Services, mailer: FolderMailer, tmp_path: Path, locale: str, subject_word: str) -> None:
    citizen_id = await _citizen(services, web=True, locale=locale)
    booked = await _book(services, citizen_id, "fr")  # the interview's language; the e-mail follows the chat's
    await _run_jobs(services)
    [message] = _written(tmp_path / "outbox")
    assert subject_word in message["Subject"] and message["To"] == "camille.dupont@example.org"
    assert message["From"].addresses[0].addr_spec == MAILBOX
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert f'<html lang="{message["Content-Language"]}">' in html and message["Content-Language"] in locale + "fr"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    event = Calendar.from_ical(attachment.get_content()).walk("VEVENT")[0]
    assert str(event["UID"]) == f"{booked.appointment.id}@{services.agency.id}.guichet"
    # The manage link opens the agency's page; its token binds a new web conversation to this citizen.
    link = next(line for line in plain.splitlines() if line.startswith(PAGE))
    assert f'href="{link}"' in html
    token = link.removeprefix(PAGE + "#manage=")
    identities = WebIdentityService(services, link_secret=SECRET)
    assert await identities.bind_manage_link("dl_test-user", "web-conversation-1", token) == citizen_id
    # Only the recipient's own data: not the national number or the birth date given at booking.
    assert "30/07/1985" not in plain and personal_data()["national_register_number"] not in plain


async def test_the_confirmation_is_sent_once(services: Services, tmp_path: Path) -> None:
    citizen_id = await _citizen(services, web=True, locale="fr-BE")
    booked = await _book(services, citizen_id, "fr")
    async with services.uow() as uow:  # planned again (a retried booking): the same job
        await plan_confirmation_email(uow, booked.appointment.id, booked.appointment.starts_at, services.clock.now())
        await uow.commit()
    assert await _run_jobs(services) >= 1
    assert await _run_jobs(services) == 0
    assert len(_written(tmp_path / "outbox")) == 1


async def test_a_teams_citizen_who_can_be_written_to_gets_no_email(services: Services, tmp_path: Path,
                                                                   uow_factory: UnitOfWorkFactory) -> None:
    citizen_id = await _citizen(services, web=False, locale="fr-BE")
    booked = await _book(services, citizen_id, "fr")
    await _run_jobs(services)
    assert _written(tmp_path / "outbox") == []
    async with uow_factory() as uow:
        [job] = [job for job in await uow.jobs.for_appointment(booked.appointment.id) if job.kind == "email"]
    assert job.outcome == "skipped_no_email"


async def test_graph_sendmail_from_the_agencys_mailbox(graph_server: GraphServer, graph_client: GraphClient,
                                                       services: Services, mailer: FolderMailer,
                                                       tmp_path: Path) -> None:
    citizen_id = await _citizen(services, web=True, locale="nl-BE")
    await _book(services, citizen_id, "nl")
    await _run_jobs(services)
    [message] = _written(tmp_path / "outbox")
    graph = GraphMailer(graph_client, MAILBOX)
    await graph.send(message, key="k1")
    [sent] = graph_server.sent_mail[MAILBOX]
    assert sent["subject"] == message["Subject"] and sent["body"]["contentType"] == "html"
    assert sent["toRecipients"] == [{"emailAddress": {"address": "camille.dupont@example.org"}}]
    [attachment] = sent["attachments"]
    assert attachment["name"] == "afspraak.ics" and b"BEGIN:VCALENDAR" in base64.b64decode(attachment["contentBytes"])

    graph_server.fail("throttled", path="/sendMail", times=5, retry_after="0")
    with pytest.raises(SendFailed):
        await graph.send(message, key="k2")
    graph_server.failures.clear()
    graph_server.fail("calendar_permission", path="/sendMail")  # 403 ErrorAccessDenied: no Mail.Send grant
    with pytest.raises(MessageRejected):
        await graph.send(message, key="k3")
    assert len(graph_server.sent_mail[MAILBOX]) == 1
