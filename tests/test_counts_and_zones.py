"""What a citizen reads about amounts of time and clocks, through the real app: plurals from the
language's rules, a cut-off of zero said as "until the start", the terms stating the agency file's
delays, and the agency's zone named when the citizen's Teams shows another time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import date

import aiohttp
import pytest

from bot.domain.agency import Agency
from bot.domain.clock import FixedClock
from bot.domain.people import CLIENT_TIMEZONE_KEY
from bot.i18n import t
from bot.settings import Settings
from cards.verbs import Verb
from storage.unit_of_work import UnitOfWorkFactory
from tests.harness import FakeConnector, RunningBot, TeamsUser, card_text
from tests.test_booking_flow import BE_DETAILS, MONDAY_MORNING, Chat, book, citizens, confirmation, serve
from tests.test_reminders import World, local

NEW_YORK = "America/New_York"


def strict(agency: Agency) -> Agency:
    """An agency whose delays are one minute, and whose chat allows changes until the start."""
    return agency.model_copy(update={
        "no_show_minutes": 1, "agency_wait_commitment_minutes": 1,
        "booking": agency.booking.model_copy(update={"cancellation_cutoff_minutes": 0}),
    })


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(MONDAY_MORNING)


@pytest.fixture
async def strict_bot(bot_settings: Settings, agency: Agency, clock: FixedClock) -> AsyncIterator[RunningBot]:
    async with serve(bot_settings, strict(agency), clock) as running:
        yield running


@pytest.fixture
async def plain_bot(bot_settings: Settings, agency: Agency, clock: FixedClock) -> AsyncIterator[RunningBot]:
    async with serve(bot_settings, agency, clock) as running:
        yield running


def chat_maker(bot: RunningBot, connector: FakeConnector, http: aiohttp.ClientSession) -> Callable[..., Chat]:
    def make(locale: str = "fr-BE", timezone: str = "Europe/Brussels") -> Chat:
        return Chat(TeamsUser(bot_url=bot.url, connector=connector, http=http, locale=locale, timezone=timezone))
    return make


async def test_one_minute_is_singular_and_a_zero_cut_off_says_until_the_start(
    strict_bot: RunningBot, connector: FakeConnector, http: aiohttp.ClientSession,
) -> None:
    chat = chat_maker(strict_bot, connector, http)("fr-BE")
    await book(chat, mode="video", details={**BE_DETAILS, "postal_code": "4000"})
    text = card_text(confirmation(chat))
    assert "connecté 1 minute après l'heure prévue" in text
    assert "1 minutes" not in text
    assert t("fr", "booking.confirmation.change_until_start") in text
    assert "0 heure" not in text and "0 minute" not in text


async def test_the_terms_state_the_agency_files_delays(
    strict_bot: RunningBot, connector: FakeConnector, http: aiohttp.ClientSession,
) -> None:
    chat = chat_maker(strict_bot, connector, http)("fr-BE")
    await chat.say(t("fr", "help.command.book"))
    terms = card_text(chat.card_with(Verb.CONSENT_ACCEPT))
    # The example's text says 10 minutes and 2 hours; this agency file says 1 minute and "until the start".
    assert "Sans nouvelles de votre part 1 minute après l'heure prévue" in terms
    assert "plus de 1 minute de retard" in terms
    assert "10 minutes" not in terms and "{no_show_delay}" not in terms and "{change_cutoff}" not in terms


async def test_a_client_in_another_zone_is_told_whose_time_it_is_and_it_is_kept_for_reminders(
    plain_bot: RunningBot, connector: FakeConnector, http: aiohttp.ClientSession,
) -> None:
    make = chat_maker(plain_bot, connector, http)
    away = make("nl-BE", NEW_YORK)
    await book(away, mode="video", details={**BE_DETAILS, "postal_code": "9000"})
    # The time buttons hold bare times: the card says once whose clock they are on.
    assert t("nl", "common.zone.times_note", city="Brussel") in card_text(away.card_with(Verb.BOOK_SLOT))
    booked = card_text(confirmation(away))
    assert ", tijd in Brussel" in booked

    home = make("nl-BE", "Europe/Brussels")
    await book(home, mode="video", details={**BE_DETAILS, "postal_code": "9000"}, day_index=1)
    assert "Brussel" not in card_text(confirmation(home))

    zones = {c.conversation_reference.get(CLIENT_TIMEZONE_KEY) for c in await citizens(plain_bot)
             if c.conversation_reference}
    assert NEW_YORK in zones


async def test_a_reminder_names_the_agency_zone_for_a_client_elsewhere(agency: Agency,
                                                                        uow_factory: UnitOfWorkFactory) -> None:
    world = World(agency, uow_factory, local(date(2026, 11, 23), 10))
    citizen = await world.citizen("nl-BE")
    async with world.uow() as uow:
        stored = await uow.citizens.get(citizen)
        assert stored is not None and stored.conversation_reference is not None
        stored.conversation_reference = {**stored.conversation_reference, CLIENT_TIMEZONE_KEY: NEW_YORK}
        await uow.commit()
    await world.book(citizen, local(date(2026, 11, 25), 10))
    await world.at(local(date(2026, 11, 24), 10))
    assert "10:00 – " in world.notifier.texts()[0]
    assert ", tijd in Brussel" in world.notifier.texts()[0]
