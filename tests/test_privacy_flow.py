"""Privacy rights over real HTTP, on SQLite and PostgreSQL: my data, export, correct, erase (also after a
withdrawal), restriction and reminders, and the retention run on what the chat produced.

The bot is the real app on a real port with a fixed clock (Monday 23 November 2026, 09:00 in
Brussels); the citizen books through the real booking dialogs first. Every card is schema-checked.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import select

from bot.app import ENGINE, SERVICES, UOW
from bot.devtools.terminal import chat as chat_client
from bot.domain.agency import Agency
from bot.domain.appointment import Appointment
from bot.domain.audit import AuditEvent, EventType
from bot.domain.clock import FixedClock
from bot.domain.consent import ConsentRecord
from bot.domain.jobs import Job
from bot.domain.people import Citizen
from bot.i18n import t
from bot.services.audit import verify
from bot.services.retention import RetentionService
from bot.settings import Settings
from cards.document import escape_markdown
from cards.privacy import FILE_CONSENT_CARD, FILE_INFO_CARD
from cards.verbs import Verb
from storage.mapping import BotStateItem
from tests.conftest import RunningBot
from tests.harness import FakeConnector, TeamsUser, action_with_verb, card_text, start_bot
from tests.privacy_support import DETAILS, STORED, Chat, UploadSite, all_rows, find_values

BRUSSELS = ZoneInfo("Europe/Brussels")
MONDAY_MORNING = datetime(2026, 11, 23, 9, 0, tzinfo=BRUSSELS)


@pytest.fixture
def bot_settings(database_url: str, agency_path: Path) -> Settings:
    """Every test here runs on SQLite and on PostgreSQL (the `database_url` parametrisation)."""
    return Settings(database_url=database_url, agency=agency_path)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(MONDAY_MORNING)


@pytest.fixture
async def privacy_bot(bot_settings: Settings, agency: Agency, clock: FixedClock) -> AsyncIterator[RunningBot]:
    async with start_bot(bot_settings, agency, clock) as bot:
        yield bot


@pytest.fixture
def new_chat(privacy_bot: RunningBot, connector: FakeConnector, http: aiohttp.ClientSession) -> Callable[..., Chat]:
    def make(locale: str = "fr-BE") -> Chat:
        return Chat(TeamsUser(bot_url=privacy_bot.url, connector=connector, http=http, locale=locale))
    return make


@pytest.fixture
async def upload_site() -> AsyncIterator[UploadSite]:
    site = UploadSite()
    await site.start()
    yield site
    await site.stop()


async def rows_of(bot: RunningBot, model: Any) -> list[Any]:
    async with bot.app[UOW]() as uow:
        return list((await uow.session.execute(select(model))).scalars())


async def events(bot: RunningBot, event_type: EventType | None = None) -> list[AuditEvent]:
    rows = await rows_of(bot, AuditEvent)
    return sorted((e for e in rows if event_type is None or e.event_type == event_type), key=lambda e: e.id)


def needles_of(chat: Chat) -> dict[str, str]:
    """Everything that identifies the person in the chat: what they typed and what Teams says of them."""
    user = chat.user
    return {**{f"stored {k}": v for k, v in STORED.items() if k != "postal_code"},
            **{f"typed {k}": v for k, v in DETAILS.items() if k not in ("postal_code", "birth_date")},
            "aad object id": user.aad_object_id, "teams user id": user.user_id,
            "conversation id": user.conversation_id, "display name": "Test Citizen"}


# --- My data -------------------------------------------------------------------------------------------


async def test_my_data_shows_what_is_held_masked_with_purposes_retention_and_the_rights(
    new_chat: Callable[..., Chat], agency: Agency,
) -> None:
    chat = new_chat()
    await chat.book()
    await chat.say(t("fr", "help.command.my_data"))
    card = chat.card_with(Verb.PRIVACY_ERASE)
    text = card_text(card)
    assert "Gwendolyne" in text and "Vanderelst" in text
    # Identifiers are masked: the national register number, the phone and the e-mail never in full.
    nrn = STORED["national_register_number"]
    assert nrn not in text and f"-{nrn[6:9]}" not in text and escape_markdown("85.07.30-***.**") in text
    assert STORED["phone"] not in text and STORED["phone"][-3:] in text
    assert STORED["email"] not in text and "g•••@example.org" in text
    # Dates with the month named: 30/07/1985 or 07/12/2026 reads differently across locales.
    assert "30 juillet 1985" in text and "30/07/1985" not in text
    assert t("fr", "privacy.purpose.appointments") in text
    assert t("fr", "privacy.retention.appointments", months=f"{agency.retention.appointments_months} mois") in text
    assert t("fr", "privacy.my_data.appointments_value", upcoming=1, past=0) in text
    for verb in (Verb.PRIVACY_EXPORT, Verb.PRIVACY_RECTIFY, Verb.PRIVACY_ERASE, Verb.PRIVACY_RESTRICT,
                 Verb.PRIVACY_REMINDERS):
        action_with_verb(card, verb)


async def test_my_data_in_each_language_before_any_booking(new_chat: Callable[..., Chat]) -> None:
    for locale in ("nl-BE", "de-BE", "en-GB"):
        chat = new_chat(locale)
        await chat.say(t(chat.language, "help.command.my_data"))
        card = chat.card_with(Verb.PRIVACY_EXPORT)
        assert card["lang"] == chat.language
        assert t(chat.language, "privacy.my_data.nothing_personal") in card_text(card)
        # Nothing to correct yet: no Correct button.
        with pytest.raises(AssertionError):
            action_with_verb(card, Verb.PRIVACY_RECTIFY)


# --- Export ----------------------------------------------------------------------------------------------


async def test_export_goes_through_teams_file_consent_and_holds_everything_documented(
    new_chat: Callable[..., Chat], privacy_bot: RunningBot, upload_site: UploadSite,
) -> None:
    chat = new_chat()
    await chat.book()
    await chat.say(t("fr", "help.command.my_data"))
    await chat.press(Verb.PRIVACY_EXPORT)
    [offer] = [a for a in chat.attachments(FILE_CONSENT_CARD) if a["name"].endswith(".json")]
    assert offer["name"].endswith(".json")
    assert offer["content"]["sizeInBytes"] > 1000
    # The card carries no data, and not the pseudonym either: only a digest of it.
    [citizen] = await rows_of(privacy_bot, Citizen)
    assert citizen.id not in json.dumps(offer) and "Gwendolyne" not in json.dumps(offer)
    assert not await events(privacy_bot, EventType.DATA_EXPORTED), "offering is not exporting"

    status, _ = await chat.answer_file_consent(offer, accept=True, upload_info=upload_site.upload_info(offer["name"]))
    assert status == 200
    document = upload_site.json(offer["name"])
    size = len(upload_site.received[offer["name"]])
    assert upload_site.headers[offer["name"]]["Content-Range"] == f"bytes 0-{size - 1}/{size}"
    [info] = chat.attachments(FILE_INFO_CARD)
    assert info["contentUrl"] == f"https://files.example/{offer['name']}"

    # Everything about the citizen, documented inside the file.
    Draft202012Validator(document["schema"]).validate(document)
    assert document["pseudonym"] == citizen.id
    assert document["profile"]["personal_data"] == STORED
    assert document["profile"]["teams"]["aad_object_id"] == chat.user.aad_object_id
    assert document["profile"]["teams"]["conversation_reference"]["conversation"]["id"] == chat.user.conversation_id
    assert {(c["document"], c["action"]) for c in document["consents"]} == {("terms", "accepted"),
                                                                         ("privacy", "accepted")}
    assert all(len(c["content_hash"]) == 64 for c in document["consents"])
    [appointment] = document["appointments"]
    assert appointment["status"] == "booked" and appointment["subject"]["name"]
    assert {e["event_type"] for e in document["audit_events"]} >= {"consent.accepted", "appointment.booked"}
    assert all(e["actor"] in ("citizen", "counselor", "system") for e in document["audit_events"])
    assert set(document["about"]["sections"]) >= {"profile", "consents", "appointments", "audit_events"}
    assert document["about"]["language"] == "fr"

    [exported] = await events(privacy_bot, EventType.DATA_EXPORTED)
    assert exported.payload == {"delivery": "teams_file", "bytes": size, "format": document["format"]}
    assert (await verify(privacy_bot.app[UOW], "example-be")).ok


class ScriptedIO:
    """The terminal of `guichet chat`, typing the given lines."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = list(lines)
        self.output: list[str] = []

    async def ask(self, prompt: str) -> str:
        if not self.lines:
            raise EOFError
        return self.lines.pop(0)

    def show(self, text: str) -> None:
        self.output.extend(text.split("\n"))


async def test_the_terminal_client_allows_the_file_and_saves_the_export(
    privacy_bot: RunningBot, tmp_path: Path,
) -> None:
    io = ScriptedIO(["exporter", "1", "/quit"])
    exit_code = await chat_client(url=f"{privacy_bot.url}/api/messages", profile=tmp_path / "chat.json", io=io,
                                  downloads_dir=tmp_path / "files")
    assert exit_code == 0
    [saved] = list((tmp_path / "files").glob("*.json"))
    document = json.loads(saved.read_bytes())
    assert document["format"] == "guichet.personal-data-export/1"
    [exported] = await events(privacy_bot, EventType.DATA_EXPORTED)
    assert exported.payload["bytes"] == saved.stat().st_size


async def test_export_declined_or_failing_records_nothing(
    new_chat: Callable[..., Chat], privacy_bot: RunningBot, upload_site: UploadSite,
) -> None:
    chat = new_chat("en-GB")
    await chat.say("export")
    [offer] = chat.attachments(FILE_CONSENT_CARD)
    await chat.answer_file_consent(offer, accept=False)
    assert t("en", "privacy.export.declined") in chat.texts()
    upload_site.fail_with = 500
    await chat.answer_file_consent(offer, accept=True, upload_info=upload_site.upload_info(offer["name"]))
    assert t("en", "privacy.export.failed") in chat.texts()
    # An offer answered from another person's chat is refused.
    other = new_chat("en-GB")
    await other.answer_file_consent(offer, accept=True, upload_info=upload_site.upload_info(offer["name"]))
    assert t("en", "privacy.export.expired") in other.texts()
    assert not await events(privacy_bot, EventType.DATA_EXPORTED)


async def test_outside_teams_the_export_is_an_inline_json_attachment(
    new_chat: Callable[..., Chat], privacy_bot: RunningBot,
) -> None:
    chat = new_chat("en-GB")
    replies = await chat.user._turn(chat.user.activity(text="export my data", channelId="emulator"))
    [attachment] = [a for r in replies for a in r.activity.get("attachments") or []]
    assert attachment["contentType"] == "application/json"
    prefix = "data:application/json;base64,"
    assert attachment["contentUrl"].startswith(prefix)
    document = json.loads(base64.b64decode(attachment["contentUrl"][len(prefix):]))
    assert document["profile"]["teams"]["aad_object_id"] == chat.user.aad_object_id
    [exported] = await events(privacy_bot, EventType.DATA_EXPORTED)
    assert exported.payload["delivery"] == "inline"


# --- Rectification -------------------------------------------------------------------------------------


async def test_rectify_checks_like_booking_and_audits_field_names_only(
    new_chat: Callable[..., Chat], privacy_bot: RunningBot,
) -> None:
    chat = new_chat()
    await chat.book()
    await chat.say(t("fr", "help.command.rectify"))
    form = chat.card_with(Verb.PRIVACY_RECTIFY_SUBMIT)
    prefilled = {element["id"]: element.get("value") for element in form["body"] if element.get("type") == "Input.Text"}
    assert prefilled["email"] == STORED["email"] and prefilled["birth_date"] == "30/07/1985"

    await chat.press(Verb.PRIVACY_RECTIFY_SUBMIT, {**prefilled, "email": "not an address"})
    retry = chat.card_with(Verb.PRIVACY_RECTIFY_SUBMIT)
    assert t("fr", "personal_data.error.email_invalid") in card_text(retry)
    [citizen] = await rows_of(privacy_bot, Citizen)
    assert citizen.email == STORED["email"], "nothing is saved until every field is valid"

    await chat.press(Verb.PRIVACY_RECTIFY_SUBMIT, {**prefilled, "email": "g.vanderelst@example.net",
                                                   "postal_code": "9000"})
    done = chat.refreshed[-1]
    assert t("fr", "privacy.rectify.done_title") in card_text(done)
    assert "g•••@example.net" in card_text(done)
    assert t("fr", "privacy.rectify.language_note") in card_text(done)
    [citizen] = await rows_of(privacy_bot, Citizen)
    assert (citizen.email, citizen.postal_code) == ("g.vanderelst@example.net", "9000")
    assert citizen.interview_language == "nl", "Ghent speaks Dutch: the next bookings follow the residence"
    # The upcoming appointment reads the citizen row: it carries the new details; its language stays.
    [appointment] = await rows_of(privacy_bot, Appointment)
    assert appointment.citizen_id == citizen.id and appointment.interview_language == "fr"

    [rectified] = await events(privacy_bot, EventType.DATA_RECTIFIED)
    assert rectified.payload == {"fields": ["email", "postal_code"], "interview_language_changed": True}
    assert "example.net" not in json.dumps(rectified.payload)

    # The same values again: nothing changes, nothing is recorded.
    await chat.say(t("fr", "help.command.rectify"))
    form = chat.card_with(Verb.PRIVACY_RECTIFY_SUBMIT)
    same = {element["id"]: element.get("value") for element in form["body"] if element.get("type") == "Input.Text"}
    await chat.submit(Verb.PRIVACY_RECTIFY_SUBMIT, same)
    assert len(await events(privacy_bot, EventType.DATA_RECTIFIED)) == 1
    assert any(t("fr", "privacy.rectify.unchanged") in card_text(card) for card in chat.cards())


async def test_rectify_after_withdrawal_asks_for_the_privacy_policy_only(
    new_chat: Callable[..., Chat], privacy_bot: RunningBot,
) -> None:
    chat = new_chat("en-GB")
    await chat.book()
    await chat.say(t("en", "help.command.withdraw_consent"))
    await chat.press(Verb.CONSENT_WITHDRAW_CONFIRM)
    await chat.say("correct my data")
    gate = chat.cards()[-1]
    accept = action_with_verb(gate, Verb.CONSENT_ACCEPT)
    assert accept["data"]["kind"] == "privacy"
    await chat.press(Verb.CONSENT_ACCEPT, card=gate)
    action_with_verb(chat.cards()[-1], Verb.PRIVACY_RECTIFY_SUBMIT)


# --- Erasure -------------------------------------------------------------------------------------------


async def test_erasure_cancels_upcoming_and_leaves_no_personal_value_in_any_table(
    new_chat: Callable[..., Chat], privacy_bot: RunningBot, agency: Agency,
) -> None:
    chat = new_chat()
    await chat.book()
    await chat.say(t("fr", "help.command.my_data"))
    await chat.press(Verb.PRIVACY_ERASE)
    confirm = chat.card_with(Verb.PRIVACY_ERASE_CONFIRM)
    assert t("fr", "privacy.erase.will_cancel_one") in card_text(confirm)
    rows_before = await all_rows(privacy_bot.app[ENGINE])
    assert find_values(rows_before, needles_of(chat)), "the scan finds the values while they are held"
    [citizen] = await rows_of(privacy_bot, Citizen)
    pseudonym = citizen.id

    await chat.press(Verb.PRIVACY_ERASE_CONFIRM)
    assert t("fr", "privacy.erase.done_title") in card_text(chat.refreshed[-1])

    rows = await all_rows(privacy_bot.app[ENGINE])
    assert find_values(rows, needles_of(chat)) == []
    assert rows["bot_state"] == [], "the conversation state went with the data"
    # What the law keeps: the appointment anonymised, consent proofs (now withdrawn) on the pseudonym.
    [appointment] = await rows_of(privacy_bot, Appointment)
    assert (appointment.status, appointment.cancel_reason) == ("cancelled", "erasure")
    assert appointment.citizen_id is None and appointment.anonymised_at is not None
    consents = await rows_of(privacy_bot, ConsentRecord)
    assert {(c.document_kind, c.action) for c in consents} == {
        ("terms", "accepted"), ("privacy", "accepted"), ("terms", "withdrawn"), ("privacy", "withdrawn")}
    assert {c.citizen_id for c in consents} == {pseudonym}
    jobs = await rows_of(privacy_bot, Job)
    assert jobs == [], "no reminder or prompt is left for the cancelled appointment"
    [erased] = await events(privacy_bot, EventType.DATA_ERASED)
    assert erased.payload["appointments_cancelled"] == 1 and erased.citizen_pseudonym == pseudonym
    assert (await verify(privacy_bot.app[UOW], agency.id)).ok

    # The next message starts afresh: a new, empty person.
    await chat.say(t("fr", "help.command.my_data"))
    assert t("fr", "privacy.my_data.nothing_personal") in card_text(chat.cards()[-1])
    citizens = await rows_of(privacy_bot, Citizen)
    assert len(citizens) == 2 and {c.id for c in citizens} - {pseudonym}


async def test_erasure_after_withdrawal_and_an_appointment_made_after_the_card(
    new_chat: Callable[..., Chat], privacy_bot: RunningBot, clock: FixedClock,
) -> None:
    chat = new_chat("nl-BE")
    await chat.book()
    await chat.say(t("nl", "help.command.withdraw_consent"))
    await chat.press(Verb.CONSENT_WITHDRAW_CONFIRM)
    [appointment] = await rows_of(privacy_bot, Appointment)
    assert appointment.cancel_reason == "consent_withdrawn"

    await chat.say(t("nl", "help.command.erase"))
    confirm = chat.card_with(Verb.PRIVACY_ERASE_CONFIRM)
    assert t("nl", "privacy.erase.will_cancel_none") in card_text(confirm)
    # Meanwhile an appointment is made for the citizen (by the agency): the card did not announce it.
    async with privacy_bot.app[UOW]() as uow:
        start = clock.now() + timedelta(days=3)
        await uow.appointments.add(Appointment(
            id=str(uuid4()), agency_id="example-be", citizen_id=appointment.citizen_id,
            counselor_id=appointment.counselor_id, mode="video", subject_id=appointment.subject_id,
            starts_at=start, ends_at=start + timedelta(minutes=30),
            status="booked", interview_language="nl", created_at=clock.now(), updated_at=clock.now(),
        ))
        await uow.commit()
    await chat.press(Verb.PRIVACY_ERASE_CONFIRM, card=confirm)
    assert t("nl", "privacy.erase.changed") in chat.texts()
    assert not any(c.erased_at for c in await rows_of(privacy_bot, Citizen))
    confirm = chat.card_with(Verb.PRIVACY_ERASE_CONFIRM)
    assert t("nl", "privacy.erase.will_cancel_one") in card_text(confirm)
    await chat.press(Verb.PRIVACY_ERASE_CONFIRM, card=confirm)
    assert t("nl", "privacy.erase.done_cancelled_one") in card_text(chat.refreshed[-1])

    consents = await rows_of(privacy_bot, ConsentRecord)
    # Withdrawn by the citizen already: erasure has no acceptance left to end, and adds no second withdrawal.
    assert sorted((c.document_kind, c.action) for c in consents) == [
        ("privacy", "accepted"), ("privacy", "withdrawn"), ("terms", "accepted"), ("terms", "withdrawn")]
    [erased] = await events(privacy_bot, EventType.DATA_ERASED)
    assert erased.payload["consents_withdrawn"] == [] and erased.payload["appointments_cancelled"] == 1
    assert find_values(await all_rows(privacy_bot.app[ENGINE]), needles_of(chat)) == []


async def test_a_confirmation_card_left_behind_by_another_flow_erases_nothing(
    new_chat: Callable[..., Chat], privacy_bot: RunningBot,
) -> None:
    chat = new_chat("en-GB")
    await chat.book()
    await chat.say("erase my data")
    confirm = chat.card_with(Verb.PRIVACY_ERASE_CONFIRM)
    await chat.say(t("en", "help.command.my_appointments"))
    await chat.press(Verb.PRIVACY_ERASE_CONFIRM, card=confirm)
    assert t("en", "conversation.stale_card") in chat.texts()
    [citizen] = await rows_of(privacy_bot, Citizen)
    assert citizen.erased_at is None and citizen.email == STORED["email"]


async def test_keep_my_data_erases_nothing(new_chat: Callable[..., Chat], privacy_bot: RunningBot) -> None:
    chat = new_chat("de-BE")
    await chat.book()
    await chat.say(t("de", "help.command.erase"))
    await chat.press(Verb.PRIVACY_ERASE_CANCEL)
    assert t("de", "privacy.erase.kept_title") in card_text(chat.refreshed[-1])
    [citizen] = await rows_of(privacy_bot, Citizen)
    assert citizen.erased_at is None and citizen.first_name == "Gwendolyne"
    assert not await events(privacy_bot, EventType.DATA_ERASED)


# --- Restriction and reminders ---------------------------------------------------------------------------


async def reminder_jobs(bot: RunningBot) -> dict[str, int]:
    counts: dict[str, int] = {}
    for job in await rows_of(bot, Job):
        if job.kind == "reminder":
            counts[job.status] = counts.get(job.status, 0) + 1
    return counts


async def test_reminders_off_and_restriction_stop_reminders_and_are_audited(
    new_chat: Callable[..., Chat], privacy_bot: RunningBot,
) -> None:
    chat = new_chat()
    await chat.book(day_index=2)  # far enough ahead for both reminders
    assert await reminder_jobs(privacy_bot) == {"pending": 2}

    await chat.say(t("fr", "help.command.my_data"))
    await chat.press(Verb.PRIVACY_REMINDERS)
    assert t("fr", "privacy.reminders.off_title") in card_text(chat.refreshed[-1])
    assert await reminder_jobs(privacy_bot) == {"cancelled": 2}
    essential = [j for j in await rows_of(privacy_bot, Job) if j.kind != "reminder"]
    assert essential and all(j.status == "pending" for j in essential), "counselor prompt and no-show stay"
    [citizen] = await rows_of(privacy_bot, Citizen)
    assert citizen.reminders_opt_out

    await chat.say(t("fr", "help.command.my_data"))
    await chat.press(Verb.PRIVACY_REMINDERS)  # the card now offers to turn them back on
    assert await reminder_jobs(privacy_bot) == {"cancelled": 2, "pending": 2}

    await chat.say(t("fr", "help.command.my_data"))
    await chat.press(Verb.PRIVACY_RESTRICT)
    assert t("fr", "privacy.restrict.on_title") in card_text(chat.refreshed[-1])
    assert await reminder_jobs(privacy_bot) == {"cancelled": 4}
    [citizen] = await rows_of(privacy_bot, Citizen)
    assert citizen.processing_restricted

    changes = [(e.event_type, e.payload) for e in await events(privacy_bot)
               if e.event_type in (EventType.REMINDERS_CHANGED, EventType.PROCESSING_RESTRICTED)]
    assert changes == [
        ("privacy.reminders_changed", {"reminders": False, "reminders_cancelled": 2, "reminders_planned": 0}),
        ("privacy.reminders_changed", {"reminders": True, "reminders_cancelled": 0, "reminders_planned": 2}),
        ("privacy.restricted", {"restricted": True, "reminders_cancelled": 2, "reminders_planned": 0}),
    ]


# --- Retention on what the chat produced -----------------------------------------------------------------


async def test_retention_run_anonymises_erases_and_prunes_and_a_second_run_finds_nothing(
    new_chat: Callable[..., Chat], privacy_bot: RunningBot, clock: FixedClock, agency: Agency,
) -> None:
    chat = new_chat()
    await chat.book()
    services = privacy_bot.app[SERVICES]
    retention = RetentionService(services.agency, services.uow, services.clock, services.audit, batch_size=2)

    # Nothing is due yet.
    report = await retention.run()
    assert report.total == 0

    # 25 months later: the appointment is past its period and the citizen inactive for longer than 24 months.
    clock.advance(timedelta(days=25 * 31))
    report = await retention.run()
    assert report.appointments_anonymised == 1 and report.citizens_erased == 1
    assert await rows_of(privacy_bot, BotStateItem) == []
    assert find_values(await all_rows(privacy_bot.app[ENGINE]), needles_of(chat)) == []
    assert (await retention.run()).total == 0, "idempotent"

    # 61 more months: the consent proofs (withdrawn by the erasure) and the audit events are past theirs.
    clock.advance(timedelta(days=61 * 31))
    report = await retention.run()
    assert report.consent_records_deleted == 4 and report.erased_citizens_removed == 1
    assert report.audit_events_pruned >= 5
    assert await rows_of(privacy_bot, ConsentRecord) == [] and await rows_of(privacy_bot, Citizen) == []
    old = [e for e in await events(privacy_bot) if e.event_type != EventType.RETENTION_RUN or e.actor == "pruned"]
    assert all(e.actor == "pruned" and e.citizen_pseudonym is None for e in old)
    assert (await verify(privacy_bot.app[UOW], agency.id)).ok, "pruning keeps the chain verifiable"
    assert (await retention.run()).total == 0
    runs = await events(privacy_bot, EventType.RETENTION_RUN)
    assert runs[-1].payload == {name: 0 for name in report.as_dict()}
