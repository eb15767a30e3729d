"""Faults around a turn: the connector answering 429, 5xx or not at all, the database going away.

What must hold: nothing a citizen did is lost. A reply the connector refuses for a moment is sent
again (bounded, honouring Retry-After); when it cannot be sent at all, the turn fails cleanly (the
conversation stays where it was, so pressing the same button again works) and a booking already
confirmed stays confirmed, exactly once. Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bot.adapter import ReusingAuthentication
from bot.app import ADAPTER, UOW
from bot.connector_http import ConnectorSession
from bot.domain.appointment import Appointment
from bot.i18n import t
from bot.settings import Settings
from tests.conftest import RunningBot
from tests.fake_time import FakeTime
from tests.fixtures.database import ADMIN_URL
from tests.harness import Failure, FakeConnector, TeamsUser, action_with_verb
from tests.resilience_support import Step, be_details, book_through_cards, card_inputs, verbs_of

ERROR = t("fr", "conversation.error_generic")


@pytest.fixture
def bot_settings(database_url: str, agency_path: Path) -> Settings:
    return Settings(database_url=database_url, agency=agency_path)


@pytest.fixture
def retries(running_bot: RunningBot) -> ReusingAuthentication:
    """Short waits, so that the tests stay fast; set before the first turn builds a connector client."""
    auth = running_bot.app[ADAPTER].bot_framework_authentication
    assert isinstance(auth, ReusingAuthentication)
    auth.connector_session = ConnectorSession(attempt_timeout=0.5, connect_timeout=0.5)
    auth.retry.first_wait = 0.02
    auth.retry.max_wait = 1.0
    auth.retry.budget = 3.0
    return auth


async def _booked(bot: RunningBot) -> list[Appointment]:
    async with bot.app[UOW]() as uow:
        rows = await uow.session.execute(select(Appointment).where(Appointment.status == "booked"))
        return list(rows.scalars())


@pytest.fixture
def waits(retries: ReusingAuthentication) -> FakeTime:
    """The retry policy's clock: what it waits is recorded, not waited."""
    fake = FakeTime()
    retries.retry.monotonic, retries.retry.sleep = fake.monotonic, fake.sleep
    return fake


async def test_a_429_is_waited_out_as_retry_after_says(citizen: TeamsUser, connector: FakeConnector,
                                                       waits: FakeTime) -> None:
    connector.fail_next = [Failure(429, retry_after="0.4")]
    replies = await citizen.say("aide")

    assert replies and replies[0].cards, "the help card arrived after all"
    assert connector.failed == 1
    assert waits.sleeps == [0.4], "the bot waited as long as the connector asked"


async def test_5xx_answers_and_timeouts_are_retried(citizen: TeamsUser, connector: FakeConnector,
                                                    retries: ReusingAuthentication) -> None:
    connector.fail_next = [503, Failure(status=200, delay=1.5)]  # an error, then no answer in time
    replies = await citizen.say("aide")

    assert len(replies) == 1 and replies[0].cards, "delivered once, on the third attempt"
    assert connector.failed == 2


async def test_a_retry_after_longer_than_a_turn_can_wait_is_not_waited(
    citizen: TeamsUser, connector: FakeConnector, waits: FakeTime
) -> None:
    connector.fail_next = [Failure(429, retry_after="120")]
    replies = await citizen.say("aide")

    assert waits.sleeps == [], "the turn did not wait for two minutes"
    assert [reply.text for reply in replies] == [ERROR], "the person is told something went wrong"
    assert (await citizen.say("aide"))[0].cards, "the next turn is answered"


async def test_when_the_connector_stays_down_the_step_can_simply_be_pressed_again(
    citizen: TeamsUser, connector: FakeConnector, retries: ReusingAuthentication
) -> None:
    outcome: dict[str, Any] = {}

    async def connector_down_at_the_day_step(step: Step) -> None:
        if step.verb != "book_subject" or outcome:
            return
        day_card = next(card for reply in step.replies for card in reply.cards if "book_day" in verbs_of(card))
        action = action_with_verb(day_card, "book_day")
        connector.fail_next = [500, 502, 503]  # every attempt at sending the time card
        count = len(citizen.replies())
        body, _ = await citizen.execute("book_day", action["data"])
        outcome["body"] = body
        outcome["texts"] = [reply.text for reply in citizen.replies()[count:]]
        # Pressed again once the connector is back: the same card works, the flow goes on.
        count = len(citizen.replies())
        await citizen.execute("book_day", action["data"])
        outcome["again"] = [card for reply in citizen.replies()[count:] for card in reply.cards]

    confirmation = await book_through_cards(citizen, be_details(), on_step=connector_down_at_the_day_step)

    assert outcome["body"]["value"] == ERROR, "the card action's own answer says something went wrong"
    assert outcome["texts"] == [ERROR]
    assert any("book_slot" in verbs_of(card) for card in outcome["again"]), "the time card came on the retry"
    assert "appt_cancel" in verbs_of(confirmation)


async def test_a_booking_confirmed_while_the_connector_is_down_stays_confirmed_once(
    citizen: TeamsUser, connector: FakeConnector, running_bot: RunningBot, retries: ReusingAuthentication
) -> None:
    seen: dict[str, Any] = {}

    async def connector_down_at_confirm(step: Step) -> None:
        if step.verb not in ("book_personal_data", "book_language") or seen:
            return
        summary = next((card for reply in step.replies for card in reply.cards
                        if "book_confirm" in verbs_of(card)), None)
        if summary is None:
            return
        payload = {**action_with_verb(summary, "book_confirm")["data"], **card_inputs(summary, {})}
        connector.fail_next = [500] * 9  # confirmation, calendar file and the apology: all lost
        body, _ = await citizen.execute("book_confirm", payload)
        seen["body"] = body
        seen["booked_while_down"] = len(await _booked(running_bot))
        connector.fail_next = []
        count = len(citizen.replies())
        await citizen.execute("book_confirm", payload)  # the citizen presses Confirm again
        seen["after_retry"] = [card for reply in citizen.replies()[count:] for card in reply.cards]

    await book_through_cards(citizen, be_details(), on_step=connector_down_at_confirm)

    assert seen["booked_while_down"] == 1, "the booking was made although nothing could be sent"
    assert any("appt_cancel" in verbs_of(card) for card in seen["after_retry"]), "Confirm again shows it"
    assert len(await _booked(running_bot)) == 1, "and it exists exactly once"


# --- the database going away ------------------------------------------------------------------------


async def _terminate_connections(database_url: str) -> int:
    """pg_terminate_backend on every connection to the bot's database (the server and others' stay up)."""
    admin = await asyncpg.connect(ADMIN_URL, timeout=5)  # from the maintenance database, not the bot's
    try:
        return int(await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
            make_url(database_url).database))
    finally:
        await admin.close()


def _hold_sqlite_write_lock(path: str, seconds: float) -> None:
    connection = sqlite3.connect(path, timeout=5, isolation_level=None)
    try:
        connection.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)
        connection.execute("COMMIT")
    finally:
        connection.close()


async def test_bookings_survive_the_database_going_away_mid_flow(
    backend: str, bot_settings: Settings, running_bot: RunningBot, connector: FakeConnector,
    http: Any, retries: ReusingAuthentication,
) -> None:
    """Three citizens book at once while the database goes away three times under them.

    PostgreSQL: every connection of the bot is terminated (pg_terminate_backend), idle or mid-query.
    SQLite: another process holds the write lock for half a second, as a backup would. A turn caught
    by it may fail (the citizen is told, the conversation stays where it was); the citizen presses
    the button again, as anyone would, and the booking goes through, exactly once.
    """
    outages = 0

    async def outage() -> None:
        nonlocal outages
        if backend == "postgres":
            await _terminate_connections(bot_settings.database_url)
        else:
            path = make_url(bot_settings.database_url).database
            assert path is not None
            await asyncio.to_thread(_hold_sqlite_write_lock, path, 0.5)
        outages += 1

    async def outages_while_booking() -> None:
        for _ in range(3):
            await asyncio.sleep(0.15)
            await outage()

    citizens = [TeamsUser(bot_url=running_bot.url, connector=connector, http=http) for _ in range(3)]
    bookings = asyncio.gather(*(
        book_through_cards(user, be_details(first_name=name), max_turns=40)
        for user, name in zip(citizens, ("Ada", "Bao", "Cléo"), strict=True)))
    confirmations, _ = await asyncio.gather(bookings, outages_while_booking())

    assert outages == 3
    assert all("appt_cancel" in verbs_of(card) for card in confirmations)
    texts = [reply.text for user in citizens for reply in user.replies() if reply.text]
    assert all(text == ERROR or "Traceback" not in text for text in texts)
    booked = await _booked(running_bot)
    assert len(booked) == 3 and len({row.citizen_id for row in booked}) == 3
    async with running_bot.app[UOW]() as uow:
        count = await uow.session.scalar(select(func.count()).select_from(Appointment))
    assert count == 3, "no half-made or duplicate appointment"
