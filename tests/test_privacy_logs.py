"""Logs never hold personal data: a whole chat (booking, my data, correcting, exporting, erasing, and
things typed freely) runs over real HTTP with every logger at DEBUG, and no record mentions the person."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from bot.domain.agency import Agency
from bot.domain.clock import FixedClock
from bot.i18n import t
from bot.settings import Settings
from cards.privacy import FILE_CONSENT_CARD
from cards.verbs import Verb
from tests.conftest import RunningBot
from tests.harness import FakeConnector, TeamsUser, start_bot
from tests.privacy_support import DETAILS, STORED, Chat, UploadSite

MONDAY_MORNING = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("Europe/Brussels"))
FREE_TEXT = "Bonjour, ici Gwendolyne Vanderelst, joignable au 0470 12 34 56"
NEW_EMAIL = "gwen.v@example.net"


@pytest.fixture
def bot_settings(database_url: str, agency_path: Path) -> Settings:
    return Settings(database_url=database_url, agency=agency_path, log_level="DEBUG")


@pytest.fixture
async def logged_bot(bot_settings: Settings, agency: Agency) -> AsyncIterator[RunningBot]:
    async with start_bot(bot_settings, agency, FixedClock(MONDAY_MORNING)) as bot:
        yield bot


@pytest.fixture
async def upload_site() -> AsyncIterator[UploadSite]:
    site = UploadSite()
    await site.start()
    yield site
    await site.stop()


@pytest.fixture
def every_logger_at_debug(caplog: pytest.LogCaptureFixture) -> Callable[[], None]:
    """Root and every logger known so far at DEBUG; call again after new loggers appear."""
    def lower() -> None:
        caplog.set_level(logging.DEBUG)
        for name in list(logging.root.manager.loggerDict):
            caplog.set_level(logging.DEBUG, logger=name)
    lower()
    return lower


def record_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    texts: list[str] = []
    for record in caplog.records:
        texts.append(record.getMessage())
        if record.exc_text:
            texts.append(record.exc_text)
        if record.exc_info and record.exc_info[1] is not None:
            texts.append(repr(record.exc_info[1]))
    return texts


async def test_a_whole_chat_leaves_no_personal_data_in_the_logs(
    logged_bot: RunningBot, connector: FakeConnector, http: aiohttp.ClientSession, upload_site: UploadSite,
    caplog: pytest.LogCaptureFixture, every_logger_at_debug: Callable[[], None],
) -> None:
    chat = Chat(TeamsUser(bot_url=logged_bot.url, connector=connector, http=http, locale="fr-BE"))
    await chat.say(FREE_TEXT)
    every_logger_at_debug()
    await chat.book()
    await chat.say(t("fr", "help.command.my_data"))
    await chat.press(Verb.PRIVACY_RECTIFY)
    await chat.press(Verb.PRIVACY_RECTIFY_SUBMIT, {**DETAILS, "email": "pas-une-adresse"})
    await chat.press(Verb.PRIVACY_RECTIFY_SUBMIT, {**DETAILS, "email": NEW_EMAIL})
    await chat.say(t("fr", "help.command.export"))
    [offer] = [a for a in chat.attachments(FILE_CONSENT_CARD) if a["name"].endswith(".json")]
    await chat.answer_file_consent(offer, accept=True, upload_info=upload_site.upload_info(offer["name"]))
    assert upload_site.received, "the export reached the upload site"
    await chat.say(t("fr", "help.command.erase"))
    await chat.press(Verb.PRIVACY_ERASE_CONFIRM)
    await chat.say(FREE_TEXT)

    texts = record_texts(caplog)
    assert len(texts) > 20, "the loggers did log: the check below means something"
    needles = {**{f"stored {k}": v for k, v in STORED.items() if k != "postal_code"},
               **{f"typed {k}": v for k, v in DETAILS.items() if k not in ("postal_code", "birth_date")},
               "free text": FREE_TEXT, "new e-mail": NEW_EMAIL, "bad e-mail": "pas-une-adresse",
               "aad object id": chat.user.aad_object_id, "display name": "Test Citizen"}
    leaks = sorted({f"{record.name}: {name}" for record in caplog.records for name, needle in needles.items()
                    if needle.casefold() in record.getMessage().casefold()})
    assert leaks == []
