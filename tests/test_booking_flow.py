"""Booking over real HTTP, as a citizen does it in Teams: book, list, move and cancel appointments.

The bot runs with a fixed clock (Monday 23 November 2026, 09:00 in Brussels), so the days offered are
known. Every card the bot sends in these flows, and every card it returns in place of a pressed one,
is checked against the Adaptive Cards schema.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from icalendar import Calendar
from sqlalchemy import select

from bot.app import UOW
from bot.domain.agency import Agency
from bot.domain.appointment import Appointment
from bot.domain.clock import FixedClock
from bot.domain.people import Citizen
from bot.i18n import t, tn
from bot.services.booking import Booked
from bot.settings import Settings
from cards.booking import FILE_CONSENT_CARD, FILE_INFO_CARD
from cards.document import escape_markdown
from cards.validation import validate_card
from cards.verbs import Verb
from dialogs.await_card import CARD_ID
from storage import state_documents
from tests.booking_support import build_booking
from tests.conftest import AGENCIES, RunningBot, with_counselor_named
from tests.harness import (
    FakeConnector,
    Recorded,
    TeamsUser,
    action_with_verb,
    actions_of,
    card_text,
    free_port,
    start_bot,
)

BRUSSELS = ZoneInfo("Europe/Brussels")
MONDAY_MORNING = datetime(2026, 11, 23, 9, 0, tzinfo=BRUSSELS)
EXAMPLE_FR = AGENCIES / "example-fr" / "agency.toml"


def national_register_number(birth: date, serial: int = 33) -> str:
    """A valid Belgian national register number for someone born on `birth` (before 2000)."""
    base = int(f"{birth:%y%m%d}{serial:03d}")
    return f"{base:09d}{97 - base % 97:02d}"


BIRTH = date(1985, 7, 30)
BE_DETAILS = {
    "first_name": "Marie-Ève",
    "last_name": "D'Hondt",
    "birth_date": "30/07/1985",
    "national_register_number": national_register_number(BIRTH),
    "email": "marie.dhondt@example.org",
    "phone": "0470 12 34 56",
}
FR_DETAILS = {
    "first_name": "Camille",
    "last_name": "Martin",
    "birth_date": "30/07/1985",
    "client_number": "AB123456",
    "email": "camille.martin@example.org",
    "phone": "06 12 34 56 78",
    "postal_code": "69003",
}


# --- Fixtures ----------------------------------------------------------------------------------------


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(MONDAY_MORNING)


@contextlib.asynccontextmanager
async def serve(settings: Settings, agency: Agency, clock: FixedClock) -> AsyncIterator[RunningBot]:
    """The real app, with a fixed clock."""
    async with start_bot(settings, agency, clock) as bot:
        yield bot


@pytest.fixture
async def booking_bot(bot_settings: Settings, agency: Agency, clock: FixedClock) -> AsyncIterator[RunningBot]:
    async with serve(bot_settings, agency, clock) as running:
        yield running


class Chat:
    """One citizen's personal chat: presses buttons of the cards received, checks every card."""

    def __init__(self, user: TeamsUser) -> None:
        self.user = user
        self.language = user.locale[:2]
        self.refreshed: list[dict[str, Any]] = []

    @property
    def replies(self) -> list[Recorded]:
        return self.user.replies()

    def cards(self) -> list[dict[str, Any]]:
        return [card for reply in self.replies for card in reply.cards]

    def card_with(self, verb: str) -> dict[str, Any]:
        """The latest card offering `verb`."""
        for card in reversed(self.cards()):
            if any(a.get("verb") == verb or (a.get("data") or {}).get("verb") == verb for a in actions_of(card)):
                return card
        raise AssertionError(f"no card with {verb!r}; last texts: {self.texts()[-3:]}")

    def texts(self) -> list[str]:
        return [reply.text for reply in self.replies if reply.text]

    @staticmethod
    def _check(replies: list[Recorded]) -> list[Recorded]:
        for reply in replies:
            for card in reply.cards:
                validate_card(card)
        return replies

    async def say(self, text: str) -> list[Recorded]:
        return self._check(await self.user.say(text))

    async def press(self, verb: str, inputs: dict[str, Any] | None = None, *, card: dict[str, Any] | None = None,
                    data: dict[str, Any] | None = None) -> list[Recorded]:
        """Action.Execute on the latest card offering `verb` (or `card`), with the card's inputs."""
        action = action_with_verb(card or self.card_with(verb), verb)
        payload = {**action["data"], **(data or {}), **(inputs or {})}
        body, replies = await self.user.execute(verb, payload)
        if isinstance(body, dict) and body.get("type") == "application/vnd.microsoft.card.adaptive":
            validate_card(body["value"])
            self.refreshed.append(body["value"])
        return self._check(replies)

    async def submit(self, verb: str, inputs: dict[str, Any] | None = None) -> list[Recorded]:
        """The Action.Submit fallback of older clients: a message whose value is the data and inputs."""
        action = action_with_verb(self.card_with(verb), verb)
        return self._check(await self.user.submit({**action["fallback"]["data"], **(inputs or {})}))

    async def accept_consent(self) -> None:
        """The terms, then the privacy policy, if the bot shows them."""
        for _ in range(2):
            last = self.cards()[-1] if self.cards() else {}
            if not any((a.get("data") or {}).get("verb") == Verb.CONSENT_ACCEPT for a in actions_of(last)):
                return
            await self.press(Verb.CONSENT_ACCEPT, card=last)


@pytest.fixture
def new_chat(booking_bot: RunningBot, connector: FakeConnector, http: aiohttp.ClientSession) -> Callable[..., Chat]:
    def make(locale: str = "fr-BE") -> Chat:
        return Chat(TeamsUser(bot_url=booking_bot.url, connector=connector, http=http, locale=locale))
    return make


async def appointments(bot: RunningBot) -> list[Appointment]:
    async with bot.app[UOW]() as uow:
        return list((await uow.session.execute(select(Appointment).order_by(Appointment.created_at))).scalars())


async def citizens(bot: RunningBot) -> list[Citizen]:
    async with bot.app[UOW]() as uow:
        return list((await uow.session.execute(select(Citizen))).scalars())


def offered_times(card: dict[str, Any]) -> list[str]:
    """The start times a time card offers, as buttons or in a drop-down list."""
    for element in card["body"]:
        if element.get("type") == "Input.ChoiceSet" and element.get("id") == "start":
            return [choice["value"] for choice in element["choices"]]
    return [a["data"]["start"] for a in actions_of(card) if a["data"]["verb"] == Verb.BOOK_SLOT]


def first_time(card: dict[str, Any]) -> dict[str, Any]:
    """The inputs that choose the first time offered by a time card."""
    return {"start": offered_times(card)[0]}


async def start_booking(chat: Chat, *, mode: str | None, office: str | None = None,
                        subject: str = "benefit-application") -> None:
    """The typed command, then consent, mode, office and subject: up to the day card."""
    await chat.say(t(chat.language, "help.command.book"))
    await chat.accept_consent()
    if mode is not None:
        await chat.press(Verb.BOOK_MODE, data={"mode": mode}, card=_card_offering(chat, Verb.BOOK_MODE, mode=mode))
    if office is not None:
        await chat.press(Verb.BOOK_OFFICE, {"office": office})
    await chat.press(Verb.BOOK_SUBJECT, {"subject": subject})


def _has(card: dict[str, Any], verb: str) -> bool:
    return any((a.get("data") or {}).get("verb") == verb for a in actions_of(card))


def _card_offering(chat: Chat, verb: str, **data: str) -> dict[str, Any]:
    card = chat.card_with(verb)
    matching = [a for a in actions_of(card) if all((a.get("data") or {}).get(k) == v for k, v in data.items())]
    assert matching, f"no {verb} button with {data}"
    return {"type": "AdaptiveCard", "version": "1.5", "actions": matching}


async def choose_day_and_time(chat: Chat, day_index: int = 0) -> str:
    """Press a day button, then the first time of that day; returns the chosen start (UTC ISO)."""
    day_card = chat.card_with(Verb.BOOK_DAY)
    days = [a for a in actions_of(day_card) if (a.get("data") or {}).get("verb") == Verb.BOOK_DAY]
    await chat.press(Verb.BOOK_DAY, card={"type": "AdaptiveCard", "version": "1.5", "actions": [days[day_index]]})
    inputs = first_time(chat.card_with(Verb.BOOK_SLOT))
    await chat.press(Verb.BOOK_SLOT, inputs)
    return inputs["start"]


async def book(chat: Chat, *, mode: str | None, details: dict[str, str], office: str | None = None,
               subject: str = "benefit-application", day_index: int = 0, language_choice: str | None = None) -> str:
    """A whole booking; returns the chosen start."""
    await start_booking(chat, mode=mode, office=office, subject=subject)
    start = await choose_day_and_time(chat, day_index)
    await chat.press(Verb.BOOK_PERSONAL_DATA, details)
    if language_choice is not None:
        await chat.press(Verb.BOOK_LANGUAGE, data={"language": language_choice},
                         card=_card_offering(chat, Verb.BOOK_LANGUAGE, language=language_choice))
    await chat.press(Verb.BOOK_CONFIRM)
    return start


def calendar_offers(chat: Chat) -> list[dict[str, Any]]:
    return [attachment for reply in chat.replies for attachment in reply.activity.get("attachments") or []
            if attachment["contentType"] == FILE_CONSENT_CARD]


def confirmation(chat: Chat) -> dict[str, Any]:
    """The latest confirmation card: the one with Reschedule and Cancel after booking."""
    return chat.card_with(Verb.APPT_CANCEL)


# --- Booking, listing, moving, cancelling ------------------------------------------------------------


LIFECYCLES = [
    # locale, mode, office, postal code, expected interview language
    ("fr-BE", "video", None, "4000", "fr"),
    ("fr-BE", "office", "liege", "4020", "fr"),
    ("nl-BE", "video", None, "9000", "nl"),
    ("nl-BE", "office", "gent", "9050", "nl"),
    ("de-BE", "video", None, "4700", "de"),
    ("de-BE", "office", "liege", "4780", "de"),
]


@pytest.mark.parametrize(("locale", "mode", "office", "postal_code", "interview_language"), LIFECYCLES)
async def test_book_list_reschedule_and_cancel(
    new_chat: Callable[..., Chat], booking_bot: RunningBot, agency: Agency,
    locale: str, mode: str, office: str | None, postal_code: str, interview_language: str,
) -> None:
    language = locale[:2]
    chat = new_chat(locale)
    start = await book(chat, mode=mode, office=office, details={**BE_DETAILS, "postal_code": postal_code})

    booked = confirmation(chat)
    assert booked["lang"] == language
    text = card_text(booked)
    assert t(language, "booking.confirmation.title") in text
    local_start = datetime.fromisoformat(start).astimezone(BRUSSELS)
    assert local_start.strftime("%H:%M") in text
    assert t(language, f"personal_data.language_name.{interview_language}") in text
    if mode == "video":
        assert t(language, "booking.confirmation.camera_rule") in text
        no_show_delay = tn(language, "common.count.minutes", agency.no_show_minutes)
        assert t(language, "booking.confirmation.no_show_rule", minutes=no_show_delay) in text
        assert t(language, "booking.confirmation.recording_forbidden") in text
        subject = agency.subject("benefit-application")
        assert subject is not None and subject.documents_to_prepare is not None
        assert subject.documents_to_prepare[language].split(",")[0] in text
    else:
        assert office is not None and agency.offices
        assert next(o.street for o in agency.offices if o.id == office) in text
        assert t(language, "booking.confirmation.office_hours") in text
    # The used cards were replaced: the summary now only says it was confirmed.
    assert t(language, "booking.step.confirmed") in card_text(chat.refreshed[-1])

    [row] = await appointments(booking_bot)
    assert (row.status, row.mode, row.office_id, row.interview_language) == ("booked", mode, office, interview_language)
    assert row.starts_at.isoformat() == start

    # The calendar file is offered with the confirmation.
    offers = calendar_offers(chat)
    assert len(offers) == 1
    assert offers[0]["name"] == t(language, "booking.calendar.file_name")
    assert offers[0]["content"]["sizeInBytes"] > 0

    # My appointments: the one just booked, with its buttons.
    await chat.say(t(language, "help.command.my_appointments"))
    listing = chat.card_with(Verb.APPT_RESCHEDULE)
    assert local_start.strftime("%H:%M") in card_text(listing)
    assert action_with_verb(listing, Verb.APPT_CANCEL)["data"]["appointment_id"] == row.id

    # Reschedule from the list: another day, the first time of that day.
    await chat.press(Verb.APPT_RESCHEDULE, card=listing)
    summary_start = await choose_day_and_time(chat, day_index=1)
    summary = chat.card_with(Verb.BOOK_CONFIRM)
    assert t(language, "booking.summary.title_reschedule") in card_text(summary)
    await chat.press(Verb.BOOK_CONFIRM)
    assert t(language, "booking.confirmation.title_rescheduled") in card_text(confirmation(chat))
    [moved] = await appointments(booking_bot)
    assert moved.id == row.id and moved.status == "booked"
    assert moved.starts_at.isoformat() == summary_start != start

    # Cancel, with a reason.
    await chat.press(Verb.APPT_CANCEL, card=confirmation(chat))
    await chat.press(Verb.APPT_CANCEL_CONFIRM, {"reason": "J'ai trouvé un emploi"})
    assert t(language, "booking.cancel.done_title") in card_text(chat.refreshed[-1])
    [cancelled] = await appointments(booking_bot)
    assert (cancelled.status, cancelled.cancel_reason, cancelled.cancel_note) == \
        ("cancelled", "citizen", "J'ai trouvé un emploi")
    await chat.say(t(language, "help.command.my_appointments"))
    assert t(language, "booking.list.empty") in card_text(chat.cards()[-1])
    # The list shown earlier still has buttons for it: pressed, it comes back as it stands now, and says so.
    refreshed = len(chat.refreshed)
    await chat.press(Verb.APPT_CANCEL, card=listing)
    assert chat.texts()[-1] == t(language, "booking.message.already_cancelled")
    assert len(chat.refreshed) == refreshed + 1 and t(language, "booking.list.empty") in card_text(chat.refreshed[-1])
    [still] = await appointments(booking_bot)
    assert still.status == "cancelled"


async def test_booking_lifecycle_on_each_database(
    database_url: str, agency_path: Path, agency: Agency, clock: FixedClock, connector: FakeConnector,
    http: aiohttp.ClientSession,
) -> None:
    """The same journey on SQLite and PostgreSQL: booked, moved, cancelled, one row throughout."""
    async with serve(Settings(database_url=database_url, agency=agency_path), agency, clock) as running:
        chat = Chat(TeamsUser(bot_url=running.url, connector=connector, http=http))
        start = await book(chat, mode="office", office="bruxelles", details={**BE_DETAILS, "postal_code": "1000"},
                           language_choice="fr")
        await chat.press(Verb.APPT_RESCHEDULE, card=confirmation(chat))
        moved_to = await choose_day_and_time(chat, day_index=2)
        await chat.press(Verb.BOOK_CONFIRM)
        await chat.press(Verb.APPT_CANCEL, card=confirmation(chat))
        await chat.press(Verb.APPT_CANCEL_CONFIRM)
        [row] = await appointments(running)
        assert (row.status, row.office_id, row.interview_language) == ("cancelled", "bruxelles", "fr")
        assert row.starts_at.isoformat() == moved_to != start
        assert row.cancel_note is None


async def test_the_first_days_and_times_follow_the_clock_and_the_lead_time(new_chat: Callable[..., Chat]) -> None:
    chat = new_chat()
    await start_booking(chat, mode="video")
    days = [a["data"]["day"] for a in actions_of(chat.card_with(Verb.BOOK_DAY)) if a["data"]["verb"] == Verb.BOOK_DAY]
    # Monday 09:00 plus four hours' notice: Monday afternoon is still open; weekends are closed.
    assert days == ["2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26", "2026-11-27", "2026-11-30"]
    await chat.press(Verb.BOOK_MORE_DAYS)
    more = [a["data"]["day"] for a in actions_of(chat.card_with(Verb.BOOK_DAY)) if a["data"]["verb"] == Verb.BOOK_DAY]
    assert more[0] == "2026-12-01"
    await chat.press(Verb.BOOK_MORE_DAYS, data={"page": "previous"},
                     card=_card_offering(chat, Verb.BOOK_MORE_DAYS, page="previous"))
    await chat.press(Verb.BOOK_DAY, card=_card_offering(chat, Verb.BOOK_DAY, day="2026-11-23"))
    local = [datetime.fromisoformat(start).astimezone(BRUSSELS).strftime("%H:%M")
             for start in offered_times(chat.card_with(Verb.BOOK_SLOT))]
    # 45 minutes from 13:00 on a quarter-hour grid, the last ending at 16:00.
    assert local == ["13:00", "13:15", "13:30", "13:45", "14:00", "14:15", "14:30", "14:45", "15:00", "15:15"]


async def test_brussels_residents_choose_french_or_dutch(new_chat: Callable[..., Chat],
                                                           booking_bot: RunningBot) -> None:
    chat = new_chat("fr-BE")
    await start_booking(chat, mode="video")
    await choose_day_and_time(chat)
    await chat.press(Verb.BOOK_PERSONAL_DATA, {**BE_DETAILS, "postal_code": "1050"})
    choice = chat.card_with(Verb.BOOK_LANGUAGE)
    offered = sorted(a["data"]["language"] for a in actions_of(choice))
    assert offered == ["fr", "nl"]
    assert t("fr", "personal_data.interview_language.brussels") in card_text(choice)
    # Each language is offered in its own words.
    assert {a["title"] for a in actions_of(choice)} == {"Français", "Nederlands"}
    await chat.press(Verb.BOOK_LANGUAGE, data={"language": "nl"}, card=_card_offering(chat, Verb.BOOK_LANGUAGE,
                                                                                      language="nl"))
    assert "néerlandais" in card_text(chat.card_with(Verb.BOOK_CONFIRM))
    await chat.press(Verb.BOOK_CONFIRM)
    [row] = await appointments(booking_bot)
    assert row.interview_language == "nl"


async def test_a_language_the_card_did_not_offer_is_refused(new_chat: Callable[..., Chat],
                                                            booking_bot: RunningBot) -> None:
    chat = new_chat()
    await start_booking(chat, mode="video")
    await choose_day_and_time(chat)
    await chat.press(Verb.BOOK_PERSONAL_DATA, {**BE_DETAILS, "postal_code": "1000"})
    # A hand-made answer choosing German, which Brussels does not offer.
    await chat.press(Verb.BOOK_LANGUAGE, data={"language": "de"},
                     card=_card_offering(chat, Verb.BOOK_LANGUAGE, language="fr"))
    assert chat.texts()[-1] == t("fr", "booking.message.invalid_choice")
    assert sorted(a["data"]["language"] for a in actions_of(chat.cards()[-1])) == ["fr", "nl"]
    assert await appointments(booking_bot) == []


def _why_texts(language: str) -> list[str]:
    """Every explanation of the interview language the summary could give, for every language."""
    return [t(language, f"booking.summary.language_why_{reason}",
              language=t(language, f"personal_data.language_name.{code}"))
            for reason in ("residence", "agency") for code in ("fr", "nl", "de", "en")]


@pytest.mark.parametrize(("locale", "postal_code", "interview_language"), [
    ("nl-BE", "4000", "fr"),  # a Dutch-speaking chat, living in Liège
    ("de-BE", "9000", "nl"),  # a German-speaking chat, living in Gent
])
async def test_the_summary_says_why_the_interview_is_not_in_the_language_of_the_chat(
    new_chat: Callable[..., Chat], locale: str, postal_code: str, interview_language: str,
) -> None:
    chat = new_chat(locale)
    await start_booking(chat, mode="video")
    await choose_day_and_time(chat)
    await chat.press(Verb.BOOK_PERSONAL_DATA, {**BE_DETAILS, "postal_code": postal_code})
    summary = card_text(chat.card_with(Verb.BOOK_CONFIRM))
    name = t(chat.language, f"personal_data.language_name.{interview_language}")
    assert t(chat.language, "booking.summary.language_why_residence", language=name) in summary


async def test_moving_an_appointment_says_again_why_the_interview_is_in_its_language(
    new_chat: Callable[..., Chat],
) -> None:
    chat = new_chat("nl-BE")
    await book(chat, mode="video", details={**BE_DETAILS, "postal_code": "4000"})
    await chat.say(t("nl", "help.command.my_appointments"))
    await chat.press(Verb.APPT_RESCHEDULE, card=chat.card_with(Verb.APPT_RESCHEDULE))
    await choose_day_and_time(chat, day_index=1)
    summary = card_text(chat.card_with(Verb.BOOK_CONFIRM))
    assert t("nl", "booking.summary.title_reschedule") in summary
    assert t("nl", "booking.summary.language_why_residence",
             language=t("nl", "personal_data.language_name.fr")) in summary


async def test_the_summary_explains_nothing_when_the_interview_is_in_the_chats_language_or_was_chosen(
    new_chat: Callable[..., Chat],
) -> None:
    same = new_chat("fr-BE")
    await start_booking(same, mode="video")
    await choose_day_and_time(same)
    await same.press(Verb.BOOK_PERSONAL_DATA, {**BE_DETAILS, "postal_code": "4000"})
    assert not any(why in card_text(same.card_with(Verb.BOOK_CONFIRM)) for why in _why_texts("fr"))

    chosen = new_chat("nl-BE")  # living in Brussels, chooses French
    await start_booking(chosen, mode="video")
    await choose_day_and_time(chosen)
    await chosen.press(Verb.BOOK_PERSONAL_DATA, {**BE_DETAILS, "postal_code": "1000"})
    await chosen.press(Verb.BOOK_LANGUAGE, data={"language": "fr"},
                       card=_card_offering(chosen, Verb.BOOK_LANGUAGE, language="fr"))
    summary = card_text(chosen.card_with(Verb.BOOK_CONFIRM))
    assert t("nl", "personal_data.language_name.fr") in summary
    assert not any(why in summary for why in _why_texts("nl"))


@pytest.mark.parametrize("agency_path", [EXAMPLE_FR])
async def test_the_summary_says_the_agency_holds_every_interview_in_its_language(
    bot_settings: Settings, agency: Agency, clock: FixedClock, connector: FakeConnector,
    http: aiohttp.ClientSession,
) -> None:
    english_too = agency.model_copy(update={"languages": ["fr", "en"]})  # its English texts are shipped
    async with serve(bot_settings, english_too, clock) as running:
        chat = Chat(TeamsUser(bot_url=running.url, connector=connector, http=http, locale="en-US"))
        await start_booking(chat, mode="video", subject="family-benefits")
        await choose_day_and_time(chat)
        await chat.press(Verb.BOOK_PERSONAL_DATA, FR_DETAILS)
        summary = card_text(chat.card_with(Verb.BOOK_CONFIRM))
    assert t("en", "booking.summary.language_why_agency", language="French") in summary


@pytest.mark.parametrize("agency_path", [EXAMPLE_FR])
async def test_a_french_agency_books_in_french_without_asking_the_language(
    new_chat: Callable[..., Chat], booking_bot: RunningBot, agency: Agency, agency_path: Path
) -> None:
    chat = new_chat("fr-FR")
    await book(chat, mode="video", subject="family-benefits", details=FR_DETAILS)
    text = card_text(confirmation(chat))
    assert t("fr", "booking.confirmation.recording_allowed_with_notice") in text
    assert not any(_has(card, Verb.BOOK_LANGUAGE) for card in chat.cards())
    [row] = await appointments(booking_bot)
    assert row.interview_language == "fr" and row.agency_id == "example-fr"
    # Monday 09:00 plus the French fund's 24 hours' notice.
    assert row.starts_at >= MONDAY_MORNING + timedelta(hours=24)
    [person] = await citizens(booking_bot)
    assert person.client_number == "AB123456"


@pytest.mark.parametrize("agency_path", [EXAMPLE_FR])
async def test_a_french_agency_books_an_office_appointment(
    new_chat: Callable[..., Chat], booking_bot: RunningBot, agency_path: Path
) -> None:
    chat = new_chat("fr-FR")
    await book(chat, mode="office", office="villeurbanne", subject="housing-aid", details=FR_DETAILS)
    assert "5 avenue Imaginaire" in card_text(confirmation(chat))
    [row] = await appointments(booking_bot)
    assert (row.mode, row.office_id) == ("office", "villeurbanne")


# --- Personal data -------------------------------------------------------------------------------------


async def test_invalid_details_are_shown_again_with_their_errors_and_nothing_is_stored(
    new_chat: Callable[..., Chat], booking_bot: RunningBot
) -> None:
    chat = new_chat()
    await start_booking(chat, mode="video")
    await choose_day_and_time(chat)
    wrong = {**BE_DETAILS, "postal_code": "4000", "email": "marie@", "national_register_number": "85073003399",
             "first_name": ""}
    await chat.press(Verb.BOOK_PERSONAL_DATA, wrong)
    form = chat.card_with(Verb.BOOK_PERSONAL_DATA)
    text = card_text(form)
    for key in ("email_invalid", "nrn_checksum", "required"):
        assert t("fr", f"personal_data.error.{key}") in text
    # What was typed stays in the form, so only the wrong fields need retyping.
    values = {element["id"]: element.get("value") for element in form["body"] if element.get("type") == "Input.Text"}
    assert values["last_name"] == "D'Hondt" and values["email"] == "marie@"
    assert t("fr", "booking.step.details_to_correct") in card_text(chat.refreshed[-1])
    [person] = await citizens(booking_bot)
    assert (person.first_name, person.email, person.national_register_number) == (None, None, None)
    assert await appointments(booking_bot) == []

    await chat.press(Verb.BOOK_PERSONAL_DATA, {**BE_DETAILS, "postal_code": "4000"})
    summary = card_text(chat.card_with(Verb.BOOK_CONFIRM))
    # Identifiers are masked in the chat; names keep their apostrophes without turning into Markdown.
    nrn = BE_DETAILS["national_register_number"]
    assert nrn not in summary and f"-{nrn[6:9]}" not in summary  # the birth-date part only
    assert escape_markdown("85.07.30-***.**") in summary
    assert "D'Hondt" in summary
    await chat.press(Verb.BOOK_CONFIRM)
    [person] = await citizens(booking_bot)
    assert person.national_register_number == BE_DETAILS["national_register_number"]
    assert person.phone == "+32470123456"


async def test_the_next_booking_prefills_the_saved_details(new_chat: Callable[..., Chat]) -> None:
    chat = new_chat()
    await book(chat, mode="video", details={**BE_DETAILS, "postal_code": "4000"})
    await start_booking(chat, mode="video", subject="payments")
    await choose_day_and_time(chat, day_index=2)
    form = chat.card_with(Verb.BOOK_PERSONAL_DATA)
    values = {element["id"]: element.get("value") for element in form["body"] if element.get("type") == "Input.Text"}
    assert values["email"] == BE_DETAILS["email"]
    assert values["birth_date"] == "30/07/1985"
    assert t("fr", "booking.details.saved_note") in card_text(form)


async def test_summary_change_goes_back_to_the_days(new_chat: Callable[..., Chat], booking_bot: RunningBot) -> None:
    chat = new_chat()
    await start_booking(chat, mode="video")
    await choose_day_and_time(chat)
    await chat.press(Verb.BOOK_PERSONAL_DATA, {**BE_DETAILS, "postal_code": "4000"})
    await chat.press(Verb.BOOK_CHANGE, data={"to": "day"}, card=_card_offering(chat, Verb.BOOK_CHANGE, to="day"))
    assert _has(chat.cards()[-1], Verb.BOOK_DAY)
    start = await choose_day_and_time(chat, day_index=3)
    # The details still stand: straight back to the summary, with the new time.
    summary = chat.cards()[-1]
    assert _has(summary, Verb.BOOK_CONFIRM)
    local = datetime.fromisoformat(start).astimezone(BRUSSELS)
    assert local.strftime("%H:%M") in card_text(summary) and "26 novembre" in card_text(summary)
    # "Correct my details" shows the form filled with what was given.
    await chat.press(Verb.BOOK_CHANGE, data={"to": "details"},
                     card=_card_offering(chat, Verb.BOOK_CHANGE, to="details"))
    form = chat.cards()[-1]
    assert any(e.get("value") == BE_DETAILS["email"] for e in form["body"])
    await chat.press(Verb.BOOK_PERSONAL_DATA, {**BE_DETAILS, "postal_code": "4000", "email": "autre@example.org"})
    assert "a•••@example.org" in card_text(chat.cards()[-1])
    await chat.press(Verb.BOOK_CONFIRM)
    [row] = await appointments(booking_bot)
    assert row.starts_at.isoformat() == start
    [person] = await citizens(booking_bot)
    assert person.email == "autre@example.org"


# --- Other people's appointments, stale cards, races ---------------------------------------------------


async def test_another_citizens_appointment_cannot_be_touched(new_chat: Callable[..., Chat],
                                                              booking_bot: RunningBot) -> None:
    owner = new_chat()
    await book(owner, mode="video", details={**BE_DETAILS, "postal_code": "4000"})
    [row] = await appointments(booking_bot)

    intruder = new_chat()
    await intruder.say("aide")
    expected = t("fr", "booking.message.not_found", command=t("fr", "help.command.my_appointments"))
    for verb in (Verb.APPT_CANCEL, Verb.APPT_DETAILS, Verb.APPT_RESCHEDULE):
        await intruder.user.execute(verb, {"verb": verb, "appointment_id": row.id})
        await intruder.accept_consent()
        assert intruder.texts()[-1] == expected, verb
    # Forged ids of every shape get the same answer.
    for forged in ("not-a-uuid", 42, ["x"], "' OR 1=1 --", row.id.upper()):
        await intruder.user.execute(Verb.APPT_CANCEL, {"verb": Verb.APPT_CANCEL, "appointment_id": forged})
        assert intruder.texts()[-1] == expected, forged
    [unchanged] = await appointments(booking_bot)
    assert (unchanged.status, unchanged.starts_at) == ("booked", row.starts_at)


async def test_a_stale_day_card_is_refused_and_the_flow_goes_on(new_chat: Callable[..., Chat],
                                                                 booking_bot: RunningBot) -> None:
    chat = new_chat()
    await start_booking(chat, mode="video")
    old_day_card = chat.card_with(Verb.BOOK_DAY)
    await choose_day_and_time(chat)
    # Back on the day card sent earlier: it no longer counts.
    await chat.press(Verb.BOOK_DAY, card=old_day_card)
    assert chat.texts()[-1] == t("fr", "conversation.stale_card")
    # The form is still the current step.
    await chat.press(Verb.BOOK_PERSONAL_DATA, {**BE_DETAILS, "postal_code": "4000"})
    await chat.press(Verb.BOOK_CONFIRM)
    assert len(await appointments(booking_bot)) == 1
    # After the end, the old card is still refused, and confirming twice books nothing more.
    await chat.press(Verb.BOOK_DAY, card=old_day_card)
    assert chat.texts()[-1] == t("fr", "conversation.stale_card")
    await chat.press(Verb.BOOK_CONFIRM)
    assert chat.texts()[-1] == t("fr", "conversation.stale_card")
    assert len(await appointments(booking_bot)) == 1


async def test_cancelling_from_the_list_updates_that_list_card_in_teams(
    new_chat: Callable[..., Chat], booking_bot: RunningBot,
) -> None:
    chat = new_chat()
    await book(chat, mode="video", details={**BE_DETAILS, "postal_code": "4000"})
    [row] = await appointments(booking_bot)
    await chat.say(t("fr", "help.command.my_appointments"))
    [list_message] = [reply for reply in chat.replies if any(_has(card, Verb.APPT_CANCEL) and
                      t("fr", "booking.list.title") in card_text(card) for card in reply.cards)]
    listing = list_message.cards[0]
    # Cancel pressed on that list (Teams names the card's message in replyToId), then confirmed.
    body, _ = await chat.user.execute(Verb.APPT_CANCEL, dict(action_with_verb(listing, Verb.APPT_CANCEL)["data"]),
                                      reply_to=list_message.activity_id)
    assert body["type"] == "application/vnd.microsoft.card.adaptive"  # the list as it stands, not an empty banner
    await chat.press(Verb.APPT_CANCEL_CONFIRM)
    assert (await appointments(booking_bot))[0].status == "cancelled"
    # The list card itself was updated: no live Cancel left for the cancelled appointment.
    updates = [r for r in chat.user.connector.received
               if r.event == "update" and r.activity_id == list_message.activity_id]
    assert updates, "the list card was not updated"
    [updated] = updates[-1].cards
    assert t("fr", "booking.list.empty") in card_text(updated)
    assert all((a.get("data") or {}).get("appointment_id") != row.id for a in actions_of(updated))


async def test_every_button_press_is_answered_with_a_card(new_chat: Callable[..., Chat]) -> None:
    chat = new_chat()
    await chat.user.install()
    welcome = chat.card_with(Verb.MENU_BOOK)
    # A menu button: the welcome card stays as it is, the answer comes below it.
    body, replies = await chat.user.execute(Verb.MENU_BOOK, dict(action_with_verb(welcome, Verb.MENU_BOOK)["data"]))
    assert body["type"] == "application/vnd.microsoft.card.adaptive"
    assert card_text(body["value"]) == card_text(welcome) and replies
    # A used step card pressed again: a card that points to the answer below it, never an empty message.
    await chat.accept_consent()
    await chat.press(Verb.BOOK_MODE, data={"mode": "video"}, card=_card_offering(chat, Verb.BOOK_MODE, mode="video"))
    used = _card_offering(chat, Verb.BOOK_MODE, mode="video")
    body, _ = await chat.user.execute(Verb.BOOK_MODE, dict(action_with_verb(used, Verb.BOOK_MODE)["data"]))
    assert body["type"] == "application/vnd.microsoft.card.adaptive"
    assert t("fr", "conversation.answer_below") in card_text(body["value"])
    assert chat.texts()[-1] == t("fr", "conversation.stale_card")


async def test_a_time_the_card_did_not_offer_is_refused(new_chat: Callable[..., Chat],
                                                        booking_bot: RunningBot) -> None:
    chat = new_chat()
    await start_booking(chat, mode="video")
    await chat.press(Verb.BOOK_DAY, card=_card_offering(chat, Verb.BOOK_DAY, day="2026-11-24"))
    # 03:00 UTC is not an opening hour: a tampered choice.
    await chat.press(Verb.BOOK_SLOT, {"start": "2026-11-24T03:00:00+00:00"})
    assert chat.texts()[-1] == t("fr", "booking.message.invalid_choice")
    assert _has(chat.cards()[-1], Verb.BOOK_SLOT)
    assert await appointments(booking_bot) == []


ODD_VALUES: list[Any] = [["video"], {"mode": "video"}, 7, None, True]


async def _press_odd(chat: Chat, verb: str, keys: tuple[str, ...]) -> None:
    """Press `verb` on its latest card with each of `keys` replaced by a value of the wrong JSON type."""
    generic = t(chat.language, "conversation.error_generic")
    stale = t(chat.language, "conversation.stale_card")
    for key in keys:
        for odd in ODD_VALUES:
            # The latest card each time: a refusal asks again with a new card, and the old one is stale.
            action = action_with_verb(chat.card_with(verb), verb)
            body, replies = await chat.user.execute(verb, {**action["data"], key: odd})
            said = [text for text in [reply.text for reply in replies] + [str(body)] if text]
            assert not any(generic in text for text in said), (verb, key, odd)
            assert key == CARD_ID or not any(stale in text for text in said), (verb, key, odd, said)


async def test_values_of_the_wrong_type_at_every_step_get_a_friendly_answer_and_the_flow_goes_on(
        new_chat: Callable[..., Chat], booking_bot: RunningBot) -> None:
    chat = new_chat()
    await chat.say(t(chat.language, "help.command.book"))
    await chat.accept_consent()
    await _press_odd(chat, Verb.BOOK_MODE, ("mode", CARD_ID))
    await chat.press(Verb.BOOK_MODE, data={"mode": "office"}, card=_card_offering(chat, Verb.BOOK_MODE, mode="office"))
    await _press_odd(chat, Verb.BOOK_OFFICE, ("office",))
    await chat.press(Verb.BOOK_OFFICE, {"office": "liege"})
    await _press_odd(chat, Verb.BOOK_SUBJECT, ("subject",))
    await chat.press(Verb.BOOK_SUBJECT, {"subject": "benefit-application"})
    await _press_odd(chat, Verb.BOOK_DAY, ("day",))
    await _press_odd(chat, Verb.BOOK_MORE_DAYS, ("page",))
    day_card = chat.card_with(Verb.BOOK_DAY)
    days = [a for a in actions_of(day_card) if (a.get("data") or {}).get("verb") == Verb.BOOK_DAY]
    await chat.press(Verb.BOOK_DAY, card={"type": "AdaptiveCard", "version": "1.5", "actions": [days[0]]})
    await _press_odd(chat, Verb.BOOK_SLOT, ("start",))
    await chat.press(Verb.BOOK_SLOT, first_time(chat.card_with(Verb.BOOK_SLOT)))
    await _press_odd(chat, Verb.BOOK_PERSONAL_DATA, tuple(BE_DETAILS) + ("postal_code",))
    await chat.press(Verb.BOOK_PERSONAL_DATA, {**BE_DETAILS, "postal_code": "1000"})
    await _press_odd(chat, Verb.BOOK_LANGUAGE, ("language",))
    await chat.press(Verb.BOOK_LANGUAGE, data={"language": "fr"},
                     card=_card_offering(chat, Verb.BOOK_LANGUAGE, language="fr"))
    assert await appointments(booking_bot) == []
    await chat.press(Verb.BOOK_CONFIRM)
    [row] = await appointments(booking_bot)
    assert row.mode == "office" and row.office_id == "liege" and row.interview_language == "fr"


async def test_a_time_taken_meanwhile_offers_alternatives(new_chat: Callable[..., Chat],
                                                          booking_bot: RunningBot) -> None:
    # The Ghent office has two counselors: of three people on the same time, the last one misses it.
    chats = [new_chat(), new_chat(), new_chat("nl-BE")]
    for chat in chats:
        await start_booking(chat, mode="office", office="gent")
        await chat.press(Verb.BOOK_DAY, card=_card_offering(chat, Verb.BOOK_DAY, day="2026-11-24"))
        await chat.press(Verb.BOOK_SLOT, first_time(chat.card_with(Verb.BOOK_SLOT)))
        await chat.press(Verb.BOOK_PERSONAL_DATA, {**BE_DETAILS, "postal_code": "9000"})
    for chat in chats:
        await chat.press(Verb.BOOK_CONFIRM)
    second = chats[-1]
    taken = second.cards()[-1]
    assert t("nl", "booking.taken.title") in card_text(taken)
    alternatives = [a for a in actions_of(taken) if a["data"]["verb"] == Verb.BOOK_SLOT]
    assert alternatives
    await second.press(Verb.BOOK_SLOT, card={"type": "AdaptiveCard", "version": "1.5", "actions": alternatives[:1]})
    assert t("nl", "booking.confirmation.title") in card_text(confirmation(second))
    rows = await appointments(booking_bot)
    assert len(rows) == 3 and rows[0].starts_at == rows[1].starts_at != rows[2].starts_at
    assert rows[2].starts_at.isoformat() == alternatives[0]["data"]["start"]


def _overlapping(starts: list[str], minutes: int, held: Appointment) -> list[str]:
    """The offered starts whose `minutes` would overlap the held appointment."""
    return [start for start in starts if datetime.fromisoformat(start) < held.ends_at
            and held.starts_at < datetime.fromisoformat(start) + timedelta(minutes=minutes)]


async def _times_on(chat: Chat, day: date) -> list[str]:
    """Press `day` on the latest day card; the times offered that day."""
    await chat.press(Verb.BOOK_DAY, card=_card_offering(chat, Verb.BOOK_DAY, day=day.isoformat()))
    return offered_times(chat.card_with(Verb.BOOK_SLOT))


async def test_times_overlapping_ones_own_appointment_are_not_offered_but_a_move_keeps_its_own_time(
    new_chat: Callable[..., Chat], booking_bot: RunningBot
) -> None:
    # Video: three counselors, so another one is free at the time of the first appointment.
    chat = new_chat()
    details = {**BE_DETAILS, "postal_code": "4000"}
    await book(chat, mode="video", details=details)
    [first] = await appointments(booking_bot)
    day = first.starts_at.astimezone(BRUSSELS).date()

    await start_booking(chat, mode="video", subject="temporary-unemployment")  # 30 minutes
    offered = await _times_on(chat, day)
    assert offered and _overlapping(offered, 30, first) == []
    await chat.press(Verb.BOOK_SLOT, {"start": offered[0]})
    await chat.press(Verb.BOOK_PERSONAL_DATA, details)
    await chat.press(Verb.BOOK_CONFIRM)
    first, second = await appointments(booking_bot)
    assert (first.status, second.status) == ("booked", "booked")
    assert second.starts_at >= first.ends_at or second.ends_at <= first.starts_at

    # Moving the first: its own time is free for it, the second one's is not.
    await chat.say(t("fr", "help.command.my_appointments"))
    await chat.press(Verb.APPT_RESCHEDULE, card=_card_offering(chat, Verb.APPT_RESCHEDULE, appointment_id=first.id))
    offered = await _times_on(chat, day)
    assert first.starts_at.isoformat() in offered
    assert _overlapping(offered, 45, second) == []


async def test_an_overlapping_time_booked_meanwhile_elsewhere_gets_alternatives(
    new_chat: Callable[..., Chat], booking_bot: RunningBot, agency: Agency, clock: FixedClock
) -> None:
    chat = new_chat()
    details = {**BE_DETAILS, "postal_code": "4000"}
    await start_booking(chat, mode="video")
    start = await choose_day_and_time(chat)
    await chat.press(Verb.BOOK_PERSONAL_DATA, details)
    # Before confirming, the same person books 15 minutes later from another device (another counselor).
    [citizen] = await citizens(booking_bot)
    other = build_booking(agency, booking_bot.app[UOW], clock)
    meanwhile = await other.book(
        citizen_id=citizen.id, mode="video", subject_id="temporary-unemployment", office_id=None,
        start=datetime.fromisoformat(start) + timedelta(minutes=15),
        personal_data={**details, "postal_code": "4000"}, interview_language="fr")
    assert isinstance(meanwhile, Booked)

    await chat.press(Verb.BOOK_CONFIRM)
    taken = chat.cards()[-1]
    assert t("fr", "booking.taken.title") in card_text(taken)
    alternatives = [a["data"]["start"] for a in actions_of(taken) if a["data"]["verb"] == Verb.BOOK_SLOT]
    [held] = await appointments(booking_bot)
    assert alternatives and _overlapping(alternatives, 45, held) == []


async def test_too_close_to_the_start_the_chat_points_to_the_phone(
    new_chat: Callable[..., Chat], booking_bot: RunningBot, clock: FixedClock, agency: Agency
) -> None:
    chat = new_chat()
    start = datetime.fromisoformat(await book(chat, mode="video", details={**BE_DETAILS, "postal_code": "4000"}))
    clock.set(start - timedelta(minutes=agency.booking.cancellation_cutoff_minutes - 1))
    await chat.say("annuler")
    cutoff = chat.cards()[-1]
    assert t("fr", "booking.cutoff.title") in card_text(cutoff)
    assert agency.contact.phone in card_text(cutoff)
    await chat.say("mes rendez-vous")
    listing = chat.cards()[-1]
    assert not _has(listing, Verb.APPT_CANCEL) and _has(listing, Verb.APPT_DETAILS)
    [row] = await appointments(booking_bot)
    assert row.status == "booked"


async def test_keeping_the_appointment_changes_nothing(new_chat: Callable[..., Chat],
                                                      booking_bot: RunningBot) -> None:
    chat = new_chat()
    await book(chat, mode="video", details={**BE_DETAILS, "postal_code": "4000"})
    await chat.say("annuler mon rendez-vous")
    await chat.press(Verb.APPT_KEEP)
    assert t("fr", "booking.step.kept") in card_text(chat.refreshed[-1])
    [row] = await appointments(booking_bot)
    assert row.status == "booked"


async def test_with_several_appointments_the_citizen_picks_which_one(new_chat: Callable[..., Chat]) -> None:
    chat = new_chat()
    await book(chat, mode="video", details={**BE_DETAILS, "postal_code": "4000"})
    await book(chat, mode="video", subject="payments", day_index=2, details={**BE_DETAILS, "postal_code": "4000"})
    await chat.say("déplacer")
    pick = chat.cards()[-1]
    assert t("fr", "booking.pick.reschedule_title") in card_text(pick)
    assert len([a for a in actions_of(pick) if a["data"]["verb"] == Verb.APPT_RESCHEDULE]) == 2
    await chat.press(Verb.APPT_RESCHEDULE, card=pick)
    assert _has(chat.cards()[-1], Verb.BOOK_DAY)
    # Two upcoming appointments is this fund's limit: a third is refused before any question.
    await chat.say("prendre rendez-vous")
    assert chat.texts()[-1] == t("fr", "booking_errors.too_many_upcoming")
    assert len([a for a in actions_of(chat.cards()[-1]) if a["data"]["verb"] == Verb.APPT_CANCEL]) == 2


# --- The dialog state as stored ---------------------------------------------------------------------------


async def test_the_flows_dialog_state_is_stored_as_plain_json(new_chat: Callable[..., Chat], booking_bot: RunningBot,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Every turn's dialog stack takes storage/state_documents.py's fast path, never jsonpickle: the
    flows' typed state is stored as plain values (a form with errors, a language to choose, more days,
    a move, a cancellation)."""
    fallbacks: list[str] = []

    def spy(real: type) -> type:
        class Spy(real):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                fallbacks.append(real.__name__)
                super().__init__(*args, **kwargs)
        return Spy

    monkeypatch.setattr(state_documents, "Pickler", spy(state_documents.Pickler))
    monkeypatch.setattr(state_documents, "Unpickler", spy(state_documents.Unpickler))
    chat = new_chat()
    await start_booking(chat, mode="video")
    await chat.press(Verb.BOOK_MORE_DAYS, card=_card_offering(chat, Verb.BOOK_MORE_DAYS, page="next"))
    await choose_day_and_time(chat)
    await chat.press(Verb.BOOK_PERSONAL_DATA, {**BE_DETAILS, "postal_code": "1050", "email": "marie@"})
    await chat.press(Verb.BOOK_PERSONAL_DATA, {**BE_DETAILS, "postal_code": "1050"})
    await chat.press(Verb.BOOK_LANGUAGE, data={"language": "nl"},
                     card=_card_offering(chat, Verb.BOOK_LANGUAGE, language="nl"))
    await chat.press(Verb.BOOK_CONFIRM)
    await chat.press(Verb.APPT_RESCHEDULE, card=confirmation(chat))
    await choose_day_and_time(chat, day_index=1)
    await chat.press(Verb.BOOK_CONFIRM)
    await chat.press(Verb.APPT_CANCEL, card=confirmation(chat))
    await chat.press(Verb.APPT_CANCEL_CONFIRM, {"reason": ""})
    [row] = await appointments(booking_bot)
    assert row.status == "cancelled" and row.interview_language == "nl"
    assert fallbacks == []


# --- Interruptions and the older Action.Submit path -----------------------------------------------------


async def test_help_mid_booking_keeps_the_flow(new_chat: Callable[..., Chat], booking_bot: RunningBot) -> None:
    chat = new_chat()
    await start_booking(chat, mode="video")
    await chat.say("aide")
    assert t("fr", "help.title") in card_text(chat.cards()[-1])
    await choose_day_and_time(chat)
    await chat.press(Verb.BOOK_PERSONAL_DATA, {**BE_DETAILS, "postal_code": "4000"})
    await chat.press(Verb.BOOK_CONFIRM)
    assert len(await appointments(booking_bot)) == 1


async def test_stop_ends_the_booking(new_chat: Callable[..., Chat], booking_bot: RunningBot) -> None:
    chat = new_chat()
    await start_booking(chat, mode="video")
    await chat.say("stop")
    assert chat.texts()[-1] == t("fr", "conversation.stopped")
    await chat.press(Verb.BOOK_DAY)
    assert chat.texts()[-1] == t("fr", "conversation.stale_card")
    assert await appointments(booking_bot) == []


async def test_start_over_goes_back_to_the_menu(new_chat: Callable[..., Chat]) -> None:
    chat = new_chat()
    await start_booking(chat, mode="video")
    await chat.say("recommencer")
    assert _has(chat.cards()[-1], Verb.MENU_BOOK)
    await chat.press(Verb.BOOK_DAY)
    assert chat.texts()[-1] == t("fr", "conversation.stale_card")
    # And booking starts again from the first step.
    await chat.press(Verb.MENU_BOOK)
    assert _has(chat.cards()[-1], Verb.BOOK_MODE)


async def test_older_clients_book_with_action_submit(new_chat: Callable[..., Chat], booking_bot: RunningBot) -> None:
    chat = new_chat("nl-BE")
    await chat.say("afspraak maken")
    await chat.accept_consent()
    await chat.submit(Verb.BOOK_MODE)  # the first mode: video
    await chat.submit(Verb.BOOK_SUBJECT, {"subject": "payments"})
    await chat.submit(Verb.BOOK_DAY)
    await chat.submit(Verb.BOOK_SLOT, first_time(chat.card_with(Verb.BOOK_SLOT)))
    await chat.submit(Verb.BOOK_PERSONAL_DATA, {**BE_DETAILS, "postal_code": "9000"})
    await chat.submit(Verb.BOOK_CONFIRM)
    assert t("nl", "booking.confirmation.title") in card_text(confirmation(chat))
    [row] = await appointments(booking_bot)
    assert (row.subject_id, row.interview_language) == ("payments", "nl")


# --- The calendar file ------------------------------------------------------------------------------------


@pytest.fixture
async def onedrive() -> AsyncIterator[tuple[str, dict[str, bytes]]]:
    """Plays the upload session Teams opens in the citizen's OneDrive once they allow the file."""
    uploads: dict[str, bytes] = {}

    async def put(request: web.Request) -> web.Response:
        uploads[request.match_info["name"]] = await request.read()
        return web.json_response({"id": "file-1"}, status=201)

    app = web.Application()
    app.router.add_put("/upload/{name}", put)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", uploads
    await runner.cleanup()


async def file_consent(chat: Chat, action: str, context: Any, upload_base: str | None = None) -> int:
    value: dict[str, Any] = {"type": "fileUpload", "action": action, "context": context}
    if upload_base is not None:
        value["uploadInfo"] = {"name": "rendez-vous.ics", "uploadUrl": f"{upload_base}/upload/rendez-vous.ics",
                               "contentUrl": "https://onedrive.example/rendez-vous.ics", "uniqueId": "u-1",
                               "fileType": "ics"}
    status, _ = await chat.user.post(chat.user.activity(type="invoke", name="fileConsent/invoke", value=value))
    return status


async def test_the_calendar_file_is_uploaded_once_allowed(
    new_chat: Callable[..., Chat], booking_bot: RunningBot, onedrive: tuple[str, dict[str, bytes]], agency: Agency,
) -> None:
    base, uploads = onedrive
    chat = new_chat()
    start = await book(chat, mode="video", details={**BE_DETAILS, "postal_code": "4000"})
    [offer] = calendar_offers(chat)
    assert await file_consent(chat, "accept", offer["content"]["acceptContext"], base) == 200
    calendar = Calendar.from_ical(uploads["rendez-vous.ics"])
    [event] = calendar.walk("VEVENT")
    assert event.decoded("dtstart") == datetime.fromisoformat(start)
    # Local mode (no Microsoft Graph): no meeting, so the file does not promise a link.
    description = str(event["description"])
    assert t("fr", "ics.join_later") not in description
    assert t("fr", "ics.join_local_mode", phone=agency.contact.phone) in description
    assert len(uploads["rendez-vous.ics"]) == offer["content"]["sizeInBytes"]
    [file_card] = [a for a in chat.replies[-1].activity["attachments"] if a["contentType"] == FILE_INFO_CARD]
    assert file_card["contentUrl"] == "https://onedrive.example/rendez-vous.ics"
    assert chat.replies[-1].text == t("fr", "booking.calendar.sent")

    # Declining gets a kind word and uploads nothing.
    uploads.clear()
    assert await file_consent(chat, "decline", offer["content"]["declineContext"]) == 200
    assert chat.texts()[-1] == t("fr", "booking.calendar.declined", command=t("fr", "help.command.my_appointments"))
    assert uploads == {}


async def test_another_citizen_cannot_fetch_the_calendar_file(
    new_chat: Callable[..., Chat], booking_bot: RunningBot, onedrive: tuple[str, dict[str, bytes]]
) -> None:
    base, uploads = onedrive
    owner = new_chat()
    await book(owner, mode="video", details={**BE_DETAILS, "postal_code": "4000"})
    [offer] = calendar_offers(owner)
    intruder = new_chat()
    assert await file_consent(intruder, "accept", offer["content"]["acceptContext"], base) == 200
    assert uploads == {}
    assert intruder.texts()[-1] == t("fr", "booking.message.not_found",
                                     command=t("fr", "help.command.my_appointments"))




# --- Every booking card, for every example agency and language ------------------------------------------


def _sample_cards(agency: Agency, language: str) -> list[tuple[str, dict[str, Any]]]:
    from bot.domain.agency import Mode
    from bot.domain.appointment import AppointmentStatus, AppointmentView
    from bot.services.booking import SlotOffer
    from cards import booking as cards

    zone = agency.zone
    subject = agency.subjects[0]
    start = datetime(2026, 11, 24, 8, 30, tzinfo=zone)

    def view(mode: Mode, office: str | None, join_url: str | None) -> AppointmentView:
        return AppointmentView(id="6f1c2a1e-0000-4000-8000-000000000001", mode=mode, subject_id=subject.id,
                               office_id=office, starts_at=start, ends_at=start + timedelta(minutes=45),
                               status=AppointmentStatus.BOOKED, interview_language=agency.default_language,
                               join_url=join_url, counselor_id=agency.counselors[0].id, cancel_reason=None)

    office = agency.offices[0].id
    many = [SlotOffer(start + timedelta(minutes=15 * i), start + timedelta(minutes=15 * i + 45), None)
            for i in range(24)]
    fields = {f.value: "x" for f in agency.personal_data_fields}
    errors = {f.value: "personal_data.error.required" for f in agency.personal_data_fields}
    personal = {f: ("30/07/1985" if f.value != "birth_date" else date(1985, 7, 30))
                for f in agency.personal_data_fields}
    appointments_ = [view(Mode.VIDEO, None, None), view(Mode.OFFICE, office, None)]
    return [
        ("mode", cards.build_mode_card(agency, language)),
        ("office", cards.build_office_card(agency, language, selected=office)),
        ("subject", cards.build_subject_card(agency, language, Mode.VIDEO)),
        ("days", cards.build_day_card(agency, language, mode=Mode.OFFICE, subject_id=subject.id, office_id=office,
                                      days=[start.date() + timedelta(days=i) for i in range(6)], has_earlier=True,
                                      has_more=True)),
        ("no days", cards.build_no_days_card(agency, language)),
        ("few times", cards.build_slot_card(agency, language, day=start.date(), slots=many[:3],
                                            duration_minutes=45)),
        ("many times", cards.build_slot_card(agency, language, day=start.date(), slots=many,
                                             duration_minutes=45)),
        ("form", cards.build_personal_data_card(agency, language, values=fields, errors=errors)),
        ("language", cards.build_language_card(agency, language, ["fr", "nl"], brussels=True)),
        ("summary", cards.build_summary_card(agency, language, mode=Mode.OFFICE, subject_id=subject.id,
                                             office_id=office, start=start, end=start + timedelta(minutes=45),
                                             interview_language="fr", personal=personal)),
        ("video booked", cards.build_confirmation_card(agency, language, view(Mode.VIDEO, None, None),
                                                       calendar_file=True)),
        ("video link", cards.build_confirmation_card(agency, language,
                                                     view(Mode.VIDEO, None, "https://teams.example/l/meetup"))),
        ("office booked", cards.build_confirmation_card(agency, language, view(Mode.OFFICE, office, None))),
        ("list", cards.build_appointments_card(agency, language, appointments_, changeable={appointments_[0].id})),
        ("empty list", cards.build_appointments_card(agency, language, [], changeable=set())),
        ("pick", cards.build_pick_appointment_card(agency, language, appointments_, purpose="cancel")),
        ("cancel", cards.build_cancel_confirm_card(agency, language, appointments_[0])),
        ("cancelled", cards.build_cancelled_card(agency, language, appointments_[0])),
        ("cutoff", cards.build_cutoff_card(agency, language, appointments_[0])),
        ("taken", cards.build_slot_taken_card(agency, language, many[:6])),
        ("none taken", cards.build_slot_taken_card(agency, language, [])),
    ]


@pytest.mark.parametrize("agency_path", sorted(AGENCIES.glob("*/agency.toml")), ids=lambda p: p.parent.name)
@pytest.mark.parametrize("language", ["fr", "nl", "de", "en"])
def test_every_booking_card_is_valid_in_every_language(agency: Agency, language: str) -> None:
    agency = with_counselor_named(agency, "Anne_Marie *Test*")
    for name, card in _sample_cards(agency, language):
        validate_card(card)
        assert card["lang"] == language, name
    counselor_line = card_text(_sample_cards(agency, language)[10][1])
    # A name from the agency file cannot turn into Markdown emphasis.
    assert "Anne_Marie \\*Test\\*" in counselor_line


def test_office_hours_are_grouped_by_day(agency: Agency) -> None:
    from cards.booking import office_hours_lines
    assert office_hours_lines(agency, "bruxelles", "fr") == [
        "lundi : 08:30–12:00", "mardi : 08:30–12:00, 13:00–16:00", "mercredi : 08:30–12:00",
        "jeudi : 08:30–12:00, 13:00–16:00", "vendredi : 08:30–12:00",
    ]
    assert office_hours_lines(agency, "gent", "nl")[0] == "maandag: 08:30–12:00, 13:00–16:00"
    assert office_hours_lines(agency, "liege", "de")[0] == "Montag – Dienstag: 08:30–12:00"


def test_outside_teams_the_calendar_file_is_attached_directly() -> None:
    from dialogs.booking.flow import calendar_attachment
    ics = b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    attachment = calendar_attachment("webchat", None, "nl", "a-1", ics)
    assert attachment.content_type == "text/calendar" and attachment.name == "afspraak.ics"
    assert base64.b64decode(attachment.content_url.split(",", 1)[1]) == ics
    in_teams = calendar_attachment("msteams", "personal", "nl", "a-1", ics)
    assert in_teams.content_type == FILE_CONSENT_CARD
    # The offer names the appointment and the verb its answer is routed by: no personal data.
    assert in_teams.content["acceptContext"] == {"verb": Verb.APPT_CALENDAR_FILE, "appointment_id": "a-1",
                                                 "language": "nl"}


@pytest.mark.parametrize("conversation_type", ["groupChat", "channel"])
def test_in_a_teams_group_chat_or_channel_the_calendar_file_is_attached_directly(conversation_type: str) -> None:
    # Teams has no file consent card outside a personal chat: the booking dialogs once offered one there
    # anyway (they looked at the channel only), where the data export already attached the file.
    from dialogs.booking.flow import calendar_attachment
    ics = b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    attachment = calendar_attachment("msteams", conversation_type, "fr", "a-1", ics)
    assert attachment.content_type == "text/calendar"
    assert base64.b64decode(attachment.content_url.split(",", 1)[1]) == ics


def test_the_booking_catalog_is_complete_and_translated() -> None:
    from bot.i18n import catalog
    keys = {language: {k for k in catalog(language) if k.startswith("booking.")} for language in ("fr", "nl", "de")}
    english = {k: v for k, v in catalog("en").items() if k.startswith("booking.")}
    for language, found in keys.items():
        assert found == set(english), language
        # Words that read the same in both languages (a time range, "Details", "Type") are few.
        same = [k for k in found if catalog(language)[k] == english[k]]
        assert len(same) <= 6, (language, same)
