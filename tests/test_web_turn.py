"""A turn on the agency's website (Web Chat over Direct Line), over real HTTP with a web visitor.

The page connecting (Direct Line's conversationUpdate) and Web Chat's `webchat/join` event leave no trace:
the join greets in the page's language. Every card is Submit-only and valid, nothing is updated or deleted
(Direct Line refuses both), each pressed button is said back as a short text, and the booking form asks for
the e-mail address, the only way to reach a visitor once the page is closed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import date
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.app import UOW
from bot.domain.agency import Agency, PersonalField
from bot.domain.appointment import Appointment
from bot.domain.channels import CHOSEN_KEY, CHOSEN_MAX_LENGTH, web_reader
from bot.domain.clock import FixedClock
from bot.domain.people import Citizen
from bot.domain.personal_data import ERROR_EMAIL_INVALID, ERROR_REQUIRED
from bot.i18n import t
from bot.settings import Settings
from cards.booking import build_personal_data_card
from cards.validation import validate_card
from cards.verbs import Verb
from storage.tables import metadata
from tests.booking_support import national_register_number
from tests.harness import (
    FakeConnector,
    Recorded,
    RunningBot,
    TeamsUser,
    WebUser,
    action_with_verb,
    actions_of,
    card_nodes,
    card_text,
    start_bot,
)
from tests.test_booking_flow import MONDAY_MORNING

# Valid answers to example-be's form; Ghent's postal code settles the interview language (Dutch).
DETAILS = {
    "first_name": "Lotte",
    "last_name": "Peeters",
    "birth_date": "30/07/1985",
    "national_register_number": national_register_number(date(1985, 7, 30)),
    "email": "lotte.peeters@example.org",
    "phone": "0470 12 34 56",
    "postal_code": "9000",
}


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(MONDAY_MORNING)


@pytest.fixture
async def web_bot(bot_settings: Settings, agency: Agency, clock: FixedClock) -> AsyncIterator[RunningBot]:
    async with start_bot(bot_settings, agency, clock) as bot:
        yield bot


@pytest.fixture
async def no_email_bot(bot_settings: Settings, agency: Agency, clock: FixedClock) -> AsyncIterator[RunningBot]:
    """An agency whose own form does not ask for the e-mail address."""
    fields = [field for field in agency.personal_data_fields if field is not PersonalField.EMAIL]
    async with start_bot(bot_settings, agency.model_copy(update={"personal_data_fields": fields}), clock) as bot:
        yield bot


async def citizens(bot: RunningBot) -> list[Citizen]:
    async with bot.app[UOW]() as uow:
        return list((await uow.session.execute(select(Citizen))).scalars())


async def row_counts(bot: RunningBot) -> dict[str, int]:
    """How many rows each table of the bot's database holds."""
    async with bot.app[UOW]() as uow:
        return {table.name: int(await uow.session.scalar(select(func.count()).select_from(table)) or 0)
                for table in metadata.sorted_tables}


async def appointments(bot: RunningBot) -> list[Appointment]:
    async with bot.app[UOW]() as uow:
        return list((await uow.session.execute(select(Appointment))).scalars())


def _submit_only(card: dict[str, Any]) -> None:
    """Every action of the card that reaches the bot, fallbacks and shown cards included, is an Action.Submit
    (the others only open a link or show part of the card, in the browser)."""
    kinds = {node["type"] for node in card_nodes(card)
             if isinstance(node.get("type"), str) and node["type"].startswith("Action.")}
    assert kinds <= {"Action.Submit", "Action.OpenUrl", "Action.ShowCard", "Action.ToggleVisibility"}, kinds
    # Nothing that only Teams reads (Action.Execute's verb, a refresh) is left anywhere in the card.
    assert not [node for node in card_nodes(card) if "verb" in node and "type" in node], card
    assert "refresh" not in card


class Visit:
    """One visitor's Web Chat conversation: presses the buttons of the cards received, checks every reply."""

    def __init__(self, user: WebUser) -> None:
        self.user = user
        self.language = user.locale[:2]

    @property
    def replies(self) -> list[Recorded]:
        return self.user.replies()

    def cards(self) -> list[dict[str, Any]]:
        return [card for reply in self.replies for card in reply.cards]

    def texts(self) -> list[str]:
        return [reply.text for reply in self.replies if reply.text]

    def card_with(self, verb: str) -> dict[str, Any]:
        for card in reversed(self.cards()):
            if any((action.get("data") or {}).get("verb") == verb for action in actions_of(card)):
                return card
        raise AssertionError(f"no card with {verb!r}; last texts: {self.texts()[-3:]}")

    @staticmethod
    def check(replies: list[Recorded]) -> list[Recorded]:
        for reply in replies:
            assert reply.event in ("send", "reply"), reply.event
            for card in reply.cards:
                validate_card(card)
                _submit_only(card)
        return replies

    async def join(self, language: str | None = None) -> list[Recorded]:
        return self.check(await self.user.join(language))

    async def say(self, text: str) -> list[Recorded]:
        return self.check(await self.user.say(text))

    async def press(self, verb: str, inputs: dict[str, Any] | None = None, *, card: dict[str, Any] | None = None,
                    **match: str) -> list[Recorded]:
        """Web Chat's Action.Submit on the latest card offering `verb` (or `card`), the button whose data
        has `match`, with the card's inputs."""
        actions = [action for action in actions_of(card or self.card_with(verb))
                   if action["data"].get("verb") == verb
                   and all(action["data"].get(key) == value for key, value in match.items())]
        assert actions, f"no {verb} button with {match}"
        assert actions[0]["type"] == "Action.Submit"
        return self.check(await self.user.submit({**actions[0]["data"], **(inputs or {})}))


@pytest.fixture
def new_visit(web_bot: RunningBot, connector: FakeConnector, http: aiohttp.ClientSession) -> Callable[..., Visit]:
    def make(locale: str = "nl-BE", channel_id: str = "webchat", bot: RunningBot | None = None) -> Visit:
        return Visit(WebUser(bot_url=(bot or web_bot).url, connector=connector, http=http, locale=locale,
                             channel_id=channel_id))
    return make


def _echo(language: str, title: str) -> str:
    return t(language, "conversation.you_chose", choice=title)


async def _accept_consent(visit: Visit) -> None:
    """The terms, then the privacy policy, if the bot shows them."""
    for _ in range(2):
        last = visit.cards()[-1]
        if not any((a.get("data") or {}).get("verb") == Verb.CONSENT_ACCEPT for a in actions_of(last)):
            return
        await visit.press(Verb.CONSENT_ACCEPT, card=last)


async def _up_to_details(visit: Visit) -> None:
    """From the welcome card's Book button to the personal data form: a video appointment, the first time."""
    await visit.press(Verb.MENU_BOOK)
    await _accept_consent(visit)
    await visit.press(Verb.BOOK_MODE, mode="video")
    await visit.press(Verb.BOOK_SUBJECT, {"subject": "benefit-application"})
    day_card = visit.card_with(Verb.BOOK_DAY)
    await visit.press(Verb.BOOK_DAY, card=day_card)
    slot_card = visit.card_with(Verb.BOOK_SLOT)
    first = next(action for action in actions_of(slot_card) if action["data"].get("verb") == Verb.BOOK_SLOT)
    await visit.press(Verb.BOOK_SLOT, {"start": first["data"].get("start") or _first_choice(slot_card)})


def _first_choice(card: dict[str, Any]) -> str:
    for node in card_nodes(card):
        if node.get("type") == "Input.ChoiceSet" and node.get("id") == "start":
            return str(node["choices"][0]["value"])
    raise AssertionError("no time offered")


# --- Opening the page, joining ---------------------------------------------------------------------------


async def test_a_visitor_who_opens_the_page_is_greeted_on_join_in_the_pages_language_and_leaves_no_trace(
        new_visit: Callable[..., Visit], web_bot: RunningBot) -> None:
    # The browser speaks French; the page is in Dutch: the page's language wins.
    visit = new_visit(locale="fr-BE")
    before = await row_counts(web_bot)
    assert await visit.user.open_page() == []
    assert await citizens(web_bot) == []

    replies = await visit.join("nl-BE")

    [welcome] = [card for reply in replies for card in reply.cards]
    assert len(replies) == 1
    assert t("nl", "welcome.greeting") in card_text(welcome)
    assert action_with_verb(welcome, Verb.MENU_BOOK)["title"] == t("nl", "welcome.book")
    # Nothing at all was written: no citizen, no conversation state, no audit event.
    assert await row_counts(web_bot) == before
    assert await citizens(web_bot) == []


@pytest.mark.parametrize(("value", "locale", "expected"), [
    ({"language": "de-DE"}, "fr-BE", "de"),
    ({}, "nl-BE", "nl"),  # no page language: the activity's locale
    ({"language": "es-ES"}, "xx", "fr"),  # neither in a language of ours: the agency's default
    ("not an object", "en-GB", "en"),
])
async def test_the_join_greets_in_the_page_language_then_the_locale_then_the_agencys_default(
        new_visit: Callable[..., Visit], web_bot: RunningBot, value: Any, locale: str, expected: str) -> None:
    visit = new_visit(locale=locale)
    replies = Visit.check(await visit.user._turn(visit.user.activity("event", name="webchat/join", value=value)))
    [welcome] = [card for reply in replies for card in reply.cards]
    assert t(expected, "welcome.greeting") in card_text(welcome)
    assert await citizens(web_bot) == []


async def test_another_event_or_a_join_in_teams_greets_nobody(
        new_visit: Callable[..., Visit], connector: FakeConnector, http: aiohttp.ClientSession,
        web_bot: RunningBot) -> None:
    visit = new_visit()
    assert await visit.user._turn(visit.user.activity("event", name="webchat/other", value={})) == []
    teams = TeamsUser(bot_url=web_bot.url, connector=connector, http=http)
    status, _ = await teams.post(teams.activity(type="event", name="webchat/join", value={"language": "nl"}))
    assert status in (200, 201)
    assert teams.replies() == []


# --- Booking by Submit only ----------------------------------------------------------------------------------


async def test_a_visitor_books_a_video_appointment_by_submit_only(
        new_visit: Callable[..., Visit], web_bot: RunningBot, connector: FakeConnector) -> None:
    # Web Chat's activities carry the page's locale (deployment/webchat/chat.js), as its join does.
    visit = new_visit(locale="nl-BE")
    await visit.user.open_page()
    await visit.join("nl-BE")
    assert await citizens(web_bot) == []

    # The first button creates the visitor's record, as any first turn does; the echo comes first.
    book = action_with_verb(visit.cards()[-1], Verb.MENU_BOOK)
    replies = await visit.press(Verb.MENU_BOOK)
    assert replies[0].text == _echo("nl", book["title"])
    assert replies[0].activity.get("textFormat") == "plain"
    assert len(await citizens(web_bot)) == 1
    await _accept_consent(visit)

    mode_replies = await visit.press(Verb.BOOK_MODE, mode="video")
    assert mode_replies[0].text == _echo("nl", t("nl", "booking.mode.choose_video"))
    # A form's button says nothing of what was chosen: no echo, the next card straight away.
    subject_replies = await visit.press(Verb.BOOK_SUBJECT, {"subject": "benefit-application"})
    assert [reply.text for reply in subject_replies if reply.text] == []
    day_card = visit.card_with(Verb.BOOK_DAY)
    first_day = next(a for a in actions_of(day_card) if a["data"].get("verb") == Verb.BOOK_DAY)
    day_replies = await visit.press(Verb.BOOK_DAY, card=day_card)
    assert day_replies[0].text == _echo("nl", first_day["title"])
    slot_card = visit.card_with(Verb.BOOK_SLOT)
    time_button = next(a for a in actions_of(slot_card) if a["data"].get("verb") == Verb.BOOK_SLOT)
    slot_replies = await visit.press(Verb.BOOK_SLOT, {"start": time_button["data"].get("start")
                                                      or _first_choice(slot_card)})
    if "start" in time_button["data"]:
        assert slot_replies[0].text == _echo("nl", time_button["title"])

    # The form asks for the e-mail address and says why; without it, or with a wrong one, it comes back.
    form = visit.cards()[-1]
    assert t("nl", "booking.details.email_why") in card_text(form)
    assert any(node.get("id") == "email" and node.get("isRequired") for node in card_nodes(form))
    without_email = {key: value for key, value in DETAILS.items() if key != "email"}
    await visit.press(Verb.BOOK_PERSONAL_DATA, without_email)
    assert t("nl", ERROR_REQUIRED) in card_text(visit.cards()[-1])
    await visit.press(Verb.BOOK_PERSONAL_DATA, {**DETAILS, "email": "lotte.peeters@"})
    again = visit.cards()[-1]
    assert t("nl", ERROR_EMAIL_INVALID) in card_text(again)
    assert any(node.get("value") == DETAILS["first_name"] for node in card_nodes(again))  # nothing typed is lost
    assert await appointments(web_bot) == []
    await visit.press(Verb.BOOK_PERSONAL_DATA, DETAILS)

    summary = visit.card_with(Verb.BOOK_CONFIRM)
    assert t("nl", "personal_data.label.email") in card_text(summary)
    confirm = action_with_verb(summary, Verb.BOOK_CONFIRM)
    replies = await visit.press(Verb.BOOK_CONFIRM)
    assert replies[0].text == _echo("nl", confirm["title"])
    assert len(await appointments(web_bot)) == 1
    [citizen] = await citizens(web_bot)
    assert citizen.email == DETAILS["email"]
    assert visit.card_with(Verb.APPT_CANCEL)  # the confirmation

    # A button of an earlier card, pressed again: said back, then a friendly word, and nothing changes.
    stale = await visit.press(Verb.BOOK_MODE, mode="video")
    assert stale[-1].text == t("nl", "conversation.stale_card")
    assert len(await appointments(web_bot)) == 1

    events = {recorded.event for recorded in connector.messages_for(visit.user.conversation_id)}
    assert events <= {"send", "reply"}, events


async def test_over_direct_line_an_agency_that_asks_no_email_still_asks_it_on_the_web(
        new_visit: Callable[..., Visit], no_email_bot: RunningBot, connector: FakeConnector) -> None:
    visit = new_visit(locale="de-BE", channel_id="directline", bot=no_email_bot)
    assert await visit.user.open_page() == []
    await visit.join()
    await _up_to_details(visit)

    form = visit.cards()[-1]
    assert t("de", "booking.details.email_why") in card_text(form)
    assert [node["id"] for node in card_nodes(form) if node.get("type") == "Input.Text"][-1] == "email"
    without_email = {key: value for key, value in DETAILS.items() if key != "email"}
    await visit.press(Verb.BOOK_PERSONAL_DATA, without_email)
    assert t("de", ERROR_REQUIRED) in card_text(visit.cards()[-1])
    assert await appointments(no_email_bot) == []

    await visit.press(Verb.BOOK_PERSONAL_DATA, DETAILS)
    assert t("de", "personal_data.label.email") in card_text(visit.card_with(Verb.BOOK_CONFIRM))
    await visit.press(Verb.BOOK_CONFIRM)
    assert len(await appointments(no_email_bot)) == 1
    [citizen] = await citizens(no_email_bot)
    assert citizen.email == DETAILS["email"]
    events = {recorded.event for recorded in connector.messages_for(visit.user.conversation_id)}
    assert events <= {"send", "reply"}, events

    # Held, so shown and correctable there, though the agency's own form does not ask it.
    await visit.say(t("de", "help.command.my_data"))
    held = visit.card_with(Verb.PRIVACY_RECTIFY)
    assert any(fact["title"] == t("de", "personal_data.label.email")
               for node in card_nodes(held) if node.get("type") == "FactSet" for fact in node["facts"])
    await visit.press(Verb.PRIVACY_RECTIFY)
    form = visit.card_with(Verb.PRIVACY_RECTIFY_SUBMIT)
    assert "email" in [node.get("id") for node in card_nodes(form)]
    await visit.press(Verb.PRIVACY_RECTIFY_SUBMIT, {**without_email, "email": "lotte@example.be"})
    [citizen] = await citizens(no_email_bot)
    assert citizen.email == "lotte@example.be"


def test_teams_forms_are_unchanged_and_the_web_form_adds_the_email(agency: Agency) -> None:
    fields = [field for field in agency.personal_data_fields if field is not PersonalField.EMAIL]
    no_email = agency.model_copy(update={"personal_data_fields": fields})
    teams = build_personal_data_card(no_email, "en", values={})
    assert "email" not in [node.get("id") for node in card_nodes(teams)]
    assert t("en", "booking.details.email_why") not in card_text(teams)
    with web_reader():
        web = build_personal_data_card(no_email, "en", values={})
    assert "email" in [node.get("id") for node in card_nodes(web)]
    assert t("en", "booking.details.email_why") in card_text(web)


# --- The echo ------------------------------------------------------------------------------------------------


async def test_a_tampered_title_is_said_back_as_one_short_plain_line(new_visit: Callable[..., Visit]) -> None:
    visit = new_visit(locale="en-GB")
    await visit.join()
    data = {**action_with_verb(visit.cards()[-1], Verb.MENU_BOOK)["data"],
            CHOSEN_KEY: "**Book**\n[click](https://example.org)\u0007\u202e" + "x" * 500}
    replies = await visit.user.submit(data)
    echo = replies[0]
    assert echo.activity.get("textFormat") == "plain"
    assert "\n" not in echo.text and "\u0007" not in echo.text and "\u202e" not in echo.text
    assert len(echo.text) <= len(_echo("en", "")) + CHOSEN_MAX_LENGTH
    assert replies[1].cards  # the press is answered as usual (the terms to accept first)

    # A title that is not text is not said back; the press still works.
    replies = await visit.user.submit({**data, CHOSEN_KEY: {"text": "x"}})
    assert not replies[0].text and replies[0].cards


async def test_teams_says_nothing_back(web_bot: RunningBot, connector: FakeConnector,
                                       http: aiohttp.ClientSession) -> None:
    teams = TeamsUser(bot_url=web_bot.url, connector=connector, http=http, locale="en-GB")
    replies = await teams.submit({"verb": Verb.MENU_BOOK, CHOSEN_KEY: "Book"})
    assert [reply.text for reply in replies if reply.text] == []
    assert replies and replies[0].cards


async def test_the_welcome_cards_help_button_brings_the_help_card(
        new_visit: Callable[..., Visit], web_bot: RunningBot, connector: FakeConnector,
        http: aiohttp.ClientSession) -> None:
    visit = new_visit(locale="en-GB")
    await visit.join()
    replies = await visit.press(Verb.MENU_HELP)
    assert replies[0].text == _echo("en", t("en", "welcome.help"))
    assert t("en", "help.title") in card_text(replies[1].cards[0])

    # Mid-flow too, and the flow goes on: the mode card still answers.
    await visit.press(Verb.MENU_BOOK)
    await _accept_consent(visit)
    mode_card = visit.card_with(Verb.BOOK_MODE)
    await visit.press(Verb.MENU_HELP, card=visit.cards()[0])
    assert t("en", "help.title") in card_text(visit.cards()[-1])
    await visit.press(Verb.BOOK_MODE, card=mode_card, mode="video")
    assert visit.card_with(Verb.BOOK_SUBJECT)

    # And in Teams, as an Action.Execute.
    teams = TeamsUser(bot_url=web_bot.url, connector=connector, http=http, locale="en-GB")
    await teams.install()
    _, answers = await teams.execute(Verb.MENU_HELP, {"verb": Verb.MENU_HELP})
    assert any(t("en", "help.title") in card_text(card) for reply in answers for card in reply.cards)
