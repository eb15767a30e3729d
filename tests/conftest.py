"""Shared fixtures: databases (SQLite and PostgreSQL), the running bot and a fake Bot Connector."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.domain.agency import Agency, load_agency
from bot.settings import PROJECT_ROOT, Settings
from tests.harness import FakeConnector, RunningBot, TeamsUser, start_bot

pytest_plugins = ["tests.fixtures.database", "tests.fixtures.graph"]

# A bot under test runs no job runner of its own: the tests of the runner drive one with their clock,
# and the others must not see a retention run or a reminder appear beside what they check.
os.environ["GUICHET_JOBS"] = "off"

AGENCIES = PROJECT_ROOT / "deployment" / "agencies"


def with_counselor_named(agency: Agency, name: str) -> Agency:
    """The agency with its first counselor renamed (cards read the name from the agency's file)."""
    first = agency.counselors[0].model_copy(update={"display_name": name})
    return agency.model_copy(update={"counselors": [first, *agency.counselors[1:]]})


@pytest.fixture
def agency_path() -> Path:
    return AGENCIES / "example-be" / "agency.toml"


@pytest.fixture
def agency(agency_path: Path) -> Agency:
    return load_agency(agency_path)


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    fake = FakeConnector()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def bot_settings(tmp_path: Path, agency_path: Path) -> Settings:
    return Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db", agency=agency_path)


@pytest.fixture
async def running_bot(bot_settings: Settings, agency: Agency) -> AsyncIterator[RunningBot]:
    """The real bot app on a free port, with a migrated database."""
    async with start_bot(bot_settings, agency) as bot:
        yield bot


@pytest.fixture
def bot_url(running_bot: RunningBot) -> str:
    return running_bot.url


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def citizen(bot_url: str, connector: FakeConnector, http: aiohttp.ClientSession) -> TeamsUser:
    return TeamsUser(bot_url=bot_url, connector=connector, http=http)
