"""Many citizens confirm the same time at once: exactly one gets it, the others get alternatives.

The slot is a German-speaking interview at the Liège office, which only one counselor can hold, so
no second counselor can absorb a loser. Run on SQLite and PostgreSQL within one process, then on
PostgreSQL with two bot processes sharing the database. One citizen booking overlapping times at
once (several French-speaking video counselors are free) also gets only one of them.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.agency import Agency, Mode
from bot.domain.appointment import Appointment
from bot.domain.audit import EventType
from bot.domain.clock import FixedClock
from bot.domain.slots import claim_steps
from bot.services.audit import verify
from bot.services.booking import Booked, SlotGone, SlotOffer
from bot.settings import PROJECT_ROOT
from storage.mapping import SlotClaim
from storage.tables import citizen_claims
from storage.unit_of_work import UnitOfWorkFactory
from tests.booking_support import build_booking, new_citizens, personal_data

BRUSSELS = ZoneInfo("Europe/Brussels")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=BRUSSELS)
SLOT = datetime(2026, 11, 26, 9, 0, tzinfo=BRUSSELS)
SUBJECT = "documents-certificates"  # 20 minutes
OFFICE = "liege"
EUPEN = "4700"
ANNA = "44b74071-635d-47aa-9958-4c33aaac9f03"
CONTENDERS = 100


def _only_one_counselor_can_take_it(agency: Agency) -> None:
    eligible = [c.id for c in agency.counselors
                if OFFICE in c.offices and Mode.OFFICE in c.modes and "de" in c.languages]
    assert eligible == [ANNA]


async def _assert_one_booking_in_the_database(uow_factory: UnitOfWorkFactory, agency: Agency, winner: str) -> None:
    async with uow_factory() as uow:
        appointments = list(await uow.session.scalars(select(Appointment)))
        claims = list(await uow.session.scalars(select(SlotClaim)))
    assert [(a.id, a.status, a.counselor_id) for a in appointments] == [(winner, "booked", ANNA)]
    start = SLOT.astimezone(UTC)
    assert sorted(claim.step_start for claim in claims) == claim_steps(start, start + timedelta(minutes=20))
    assert {claim.appointment_id for claim in claims} == {winner}
    async with uow_factory() as uow:
        events = [event async for event in uow.audit.iterate(agency.id)]
    assert [(e.event_type, e.appointment_id) for e in events] == [(EventType.BOOKED, winner)]
    assert (await verify(uow_factory, agency.id)).ok


# Five subjects at two starts a quarter of an hour apart: every pair of them overlaps.
OVERLAPPING = [("benefit-application", 0), ("temporary-unemployment", 0), ("change-of-situation", 15),
               ("documents-certificates", 0), ("payments", 15)]
LIEGE = "4000"


def _overlapping(offers: list[SlotOffer], held: Booked) -> list[SlotOffer]:
    return [offer for offer in offers
            if offer.start < held.appointment.ends_at and held.appointment.starts_at < offer.end]


async def _held_by_the_citizen(uow_factory: UnitOfWorkFactory, citizen_id: str) -> list[tuple[str, str]]:
    """(appointment id, status) of the citizen's booked appointments, and the appointments their claims hold."""
    async with uow_factory() as uow:
        booked = list(await uow.session.scalars(
            select(Appointment).where(Appointment.citizen_id == citizen_id, Appointment.status == "booked")))
        claimed = set(await uow.session.scalars(
            select(citizen_claims.c.appointment_id).where(citizen_claims.c.citizen_id == citizen_id)))
    assert claimed == {appointment.id for appointment in booked}
    return sorted((appointment.id, appointment.status) for appointment in booked)


async def test_one_citizen_confirming_overlapping_times_at_once_gets_one_of_them(
    agency: Agency, uow_factory: UnitOfWorkFactory
) -> None:
    booking = build_booking(agency, uow_factory, FixedClock(NOW))
    [citizen] = await new_citizens(uow_factory, agency, NOW)

    outcomes = await asyncio.gather(*(
        booking.book(citizen_id=citizen, mode=Mode.VIDEO, subject_id=subject, office_id=None,
                     start=SLOT + timedelta(minutes=offset), personal_data=personal_data(LIEGE),
                     interview_language="fr")
        for subject, offset in OVERLAPPING
    ))

    [winner] = [outcome for outcome in outcomes if isinstance(outcome, Booked)]
    losers = [outcome for outcome in outcomes if isinstance(outcome, SlotGone)]
    assert len(losers) == len(OVERLAPPING) - 1
    for lost in losers:
        assert lost.alternatives and _overlapping(lost.alternatives, winner) == []
    assert await _held_by_the_citizen(uow_factory, citizen) == [(winner.appointment.id, "booked")]


async def test_a_move_racing_a_booking_of_the_same_citizen_lets_one_through(
    agency: Agency, uow_factory: UnitOfWorkFactory
) -> None:
    # A move does not lock the citizen's row as a booking does: only the citizen's claims (and, on
    # PostgreSQL, the exclusion constraint) stand between the two.
    booking = build_booking(agency, uow_factory, FixedClock(NOW))
    [citizen] = await new_citizens(uow_factory, agency, NOW)
    earlier = await booking.book(citizen_id=citizen, mode=Mode.VIDEO, subject_id="payments", office_id=None,
                                 start=SLOT - timedelta(days=1), personal_data=personal_data(LIEGE),
                                 interview_language="fr")
    assert isinstance(earlier, Booked)

    moved, booked = await asyncio.gather(
        booking.reschedule(citizen_id=citizen, appointment_id=earlier.appointment.id,
                           start=SLOT + timedelta(minutes=15)),
        booking.book(citizen_id=citizen, mode=Mode.VIDEO, subject_id="benefit-application", office_id=None,
                     start=SLOT, personal_data=personal_data(LIEGE), interview_language="fr"),
    )

    assert sorted(type(outcome).__name__ for outcome in (moved, booked)) == ["Booked", "SlotGone"]
    held = await _held_by_the_citizen(uow_factory, citizen)
    if isinstance(moved, Booked):
        assert held == [(earlier.appointment.id, "booked")]
    else:
        assert isinstance(booked, Booked)
        assert held == sorted([(earlier.appointment.id, "booked"), (booked.appointment.id, "booked")])


async def test_of_a_hundred_simultaneous_confirmations_of_one_slot_exactly_one_wins(
    agency: Agency, uow_factory: UnitOfWorkFactory
) -> None:
    _only_one_counselor_can_take_it(agency)
    booking = build_booking(agency, uow_factory, FixedClock(NOW))
    citizens = await new_citizens(uow_factory, agency, NOW, CONTENDERS)

    outcomes = await asyncio.gather(*(
        booking.book(citizen_id=citizen_id, mode=Mode.OFFICE, subject_id=SUBJECT, office_id=OFFICE, start=SLOT,
                     personal_data=personal_data(EUPEN), interview_language="de")
        for citizen_id in citizens
    ))

    winners = [outcome for outcome in outcomes if isinstance(outcome, Booked)]
    losers = [outcome for outcome in outcomes if isinstance(outcome, SlotGone)]
    assert (len(winners), len(losers)) == (1, CONTENDERS - 1)
    for lost in losers:
        assert lost.alternatives
        assert SLOT not in [offer.start for offer in lost.alternatives]
    await _assert_one_booking_in_the_database(uow_factory, agency, winners[0].appointment.id)


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_two_bot_processes_sharing_postgresql_let_exactly_one_booking_through(
    agency: Agency, agency_path: Path, uow_factory: UnitOfWorkFactory, migrated_engine: AsyncEngine
) -> None:
    _only_one_counselor_can_take_it(agency)
    citizens = await new_citizens(uow_factory, agency, NOW, CONTENDERS)
    url = migrated_engine.url.render_as_string(hide_password=False)
    half = CONTENDERS // 2
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.booking_race_worker", "--database-url", url, "--agency", str(agency_path),
            "--now", NOW.isoformat(), "--start", SLOT.isoformat(), "--office", OFFICE, "--subject", SUBJECT,
            "--postal-code", EUPEN, "--language", "de", "--citizens", ",".join(group),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            cwd=PROJECT_ROOT, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        )
        for group in (citizens[:half], citizens[half:])
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            ready = await asyncio.wait_for(worker.stdout.readline(), timeout=30)
            assert ready.strip() == b"ready", ready
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write(b"go\n")
            await worker.stdin.drain()
        finished = [await asyncio.wait_for(worker.communicate(), timeout=60) for worker in workers]
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()

    reports = []
    for worker, (stdout, stderr) in zip(workers, finished, strict=True):
        assert worker.returncode == 0, stderr.decode()
        reports.append(json.loads(stdout.decode().strip().splitlines()[-1]))
    assert [report["errors"] for report in reports] == [[], []]
    booked = sum(report["counts"].get("booked", 0) for report in reports)
    gone = sum(report["counts"].get("slot_gone", 0) for report in reports)
    with_alternatives = sum(report["counts"].get("slot_gone_with_alternatives", 0) for report in reports)
    assert (booked, gone, with_alternatives) == (1, CONTENDERS - 1, CONTENDERS - 1)
    winner = next(appointment_id for report in reports for appointment_id in report["booked_ids"])
    await _assert_one_booking_in_the_database(uow_factory, agency, winner)
