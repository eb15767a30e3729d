"""A crash in the middle of a burst of bookings: the bot process is killed (SIGKILL) and started again.

Every booking a citizen saw confirmed is in the database, exactly once; nothing is half-written (each
appointment holds its counselor's time and has its audit event, the audit chain is unbroken); and
the citizens cut off mid-way can finish. The bot runs as `python -m bot serve`, on SQLite and on
PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from sqlalchemy import func, select

from bot.domain.agency import Agency
from bot.domain.appointment import Appointment
from bot.domain.audit import AuditEvent, EventType
from bot.domain.people import Citizen
from bot.services.audit import verify
from bot.settings import PROJECT_ROOT
from storage.db import create_engine, create_session_factory
from storage.mapping import SlotClaim
from storage.migrate import upgrade_database
from storage.unit_of_work import UnitOfWorkFactory
from tests.harness import FakeConnector, TeamsUser, free_port
from tests.resilience_support import be_details, book_through_cards, is_confirmation, resume_booking

CITIZENS = 8
KILL_AFTER_CONFIRMATIONS = 3


@dataclass
class BotProcess:
    url: str
    process: asyncio.subprocess.Process


@contextlib.asynccontextmanager
async def bot_process(database_url: str) -> AsyncIterator[BotProcess]:
    """`python -m bot serve` on a free port, until it answers /healthz."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "GUICHET_DATABASE_URL": database_url,
           "GUICHET_LOG_LEVEL": "WARNING", "GUICHET_JOBS": "off"}
    with tempfile.TemporaryFile() as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve", "--port", str(port), env=env, cwd=PROJECT_ROOT,
            stdout=asyncio.subprocess.DEVNULL, stderr=stderr)
        url = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(300):
                    if process.returncode is not None:
                        stderr.seek(0)
                        raise AssertionError(f"the bot did not start: {stderr.read().decode()[-2000:]}")
                    with contextlib.suppress(aiohttp.ClientError):
                        async with http.get(f"{url}/healthz") as response:
                            if response.status == 200:
                                break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError("the bot did not answer /healthz")
            yield BotProcess(url, process)
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), 15)
                except TimeoutError:
                    process.kill()
                    await process.wait()


def _confirmed(connector: FakeConnector) -> set[str]:
    """Conversations in which a confirmation card reached the citizen."""
    return {r.conversation_id for r in connector.received if any(is_confirmation(card) for card in r.cards)}


async def test_a_killed_bot_loses_no_confirmed_booking_and_half_writes_nothing(
    database_url: str, agency: Agency, connector: FakeConnector, http: aiohttp.ClientSession,
) -> None:
    await upgrade_database(database_url)
    citizens = [TeamsUser(bot_url="", connector=connector, http=http) for _ in range(CITIZENS)]
    details = [be_details(first_name=name) for name in ("Ada", "Bao", "Cléo", "Dani", "Eli", "Fé", "Gil", "Hugo")]

    async with bot_process(database_url) as bot:
        for user in citizens:
            user.bot_url = bot.url

        async def kill_after_confirmations() -> None:
            # Watch the connector rather than each booking's end: a confirmation may land after its turn's
            # answer, and a kill that never comes would leave this test waiting for ever.
            for _ in range(6000):  # at most a minute
                if len(_confirmed(connector)) >= KILL_AFTER_CONFIRMATIONS:
                    break
                await asyncio.sleep(0.01)
            bot.process.kill()  # SIGKILL: no shutdown, nothing flushed, others mid-turn

        killer = asyncio.create_task(kill_after_confirmations())
        outcomes = await asyncio.gather(*(book_through_cards(user, answers)
                                          for user, answers in zip(citizens, details, strict=True)),
                                        return_exceptions=True)
        await asyncio.wait_for(killer, 90)
        await asyncio.wait_for(bot.process.wait(), 60)
    seen_confirmed = _confirmed(connector)
    cut_off = [i for i, outcome in enumerate(outcomes) if isinstance(outcome, BaseException)]
    assert len(seen_confirmed) >= KILL_AFTER_CONFIRMATIONS
    assert cut_off, "the kill came while some citizens were still booking"

    async with bot_process(database_url) as bot:
        for user in citizens:
            user.bot_url = bot.url
        for i in cut_off:
            if citizens[i].conversation_id not in seen_confirmed:
                await resume_booking(citizens[i], details[i])

    engine = create_engine(database_url)
    uow_factory = UnitOfWorkFactory(create_session_factory(engine))
    try:
        async with uow_factory() as uow:
            session = uow.session
            appointments = list((await session.execute(select(Appointment))).scalars())
            citizen_of = {row.aad_object_id: row.id for row in (await session.execute(select(Citizen))).scalars()}
            claims = dict((await session.execute(
                select(SlotClaim.appointment_id, func.count()).group_by(SlotClaim.appointment_id))).all())
            booked_events = set((await session.execute(
                select(AuditEvent.appointment_id).where(AuditEvent.event_type == EventType.BOOKED.value))).scalars())
        chain = await verify(uow_factory, agency.id)
    finally:
        await engine.dispose()

    by_citizen: dict[str, list[Appointment]] = {}
    for appointment in appointments:
        by_citizen.setdefault(appointment.citizen_id, []).append(appointment)
    for user in citizens:
        mine = [a for a in by_citizen.get(citizen_of.get(user.aad_object_id, "?"), []) if a.status == "booked"]
        if user.conversation_id in seen_confirmed:
            assert len(mine) == 1, "a booking the citizen saw confirmed is there, once"
        else:
            assert mine, "a citizen cut off mid-way could finish after the restart"
    for appointment in appointments:
        assert claims.get(appointment.id, 0) >= 1, "every appointment holds its counselor's time"
        assert appointment.id in booked_events, "every appointment has its audit event"
    assert sum(claims.values()) == sum(claims.get(a.id, 0) for a in appointments), "no claim without appointment"
    assert chain.ok, chain.reason
