"""Booking service benchmark on SQLite: 200 video counselors, 8 weeks of appointments filling half their slots.

Times what a citizen waits on in the chat, database included: `BookingService.days()` (the day
buttons), `slots()` (the time buttons of one day) and `book()` (the confirmation: one transaction
with the re-check, personal data, appointment, slot claims, jobs and audit event).
Run: `python -m bench.booking`.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time as clock
from pathlib import Path
from typing import Any
from uuid import uuid4

from sqlalchemy import insert

from bench.slot_search import COUNSELORS, NOW, WEEKS, build_agency, build_busy, open_days
from bot.domain.agency import Agency, Mode, PersonalField
from bot.domain.appointment import Appointment
from bot.domain.clock import FixedClock
from bot.domain.slots import Busy, SlotEngine, claim_steps
from bot.services.booking import Booked
from bot.wiring import assemble_services, build_use_cases
from storage.db import create_engine, create_session_factory
from storage.mapping import SlotClaim
from storage.migrate import upgrade_database
from storage.unit_of_work import UnitOfWorkFactory

RUNS = {"slots": 100, "days": 30, "book": 100}
TARGET_MS = {"slots": 100.0, "days": 300.0, "book": 150.0}
SUBJECT = "claim"
_BATCH = 5000


async def _fill(uow_factory: UnitOfWorkFactory, agency: Agency, busy: list[Busy]) -> None:
    """Bulk-insert the busy appointments and their slot claims, as bookings would have left them."""
    appointments: list[dict[str, Any]] = []
    claims: list[dict[str, Any]] = []
    for item in busy:
        appointment_id = str(uuid4())
        appointments.append({
            "id": appointment_id, "agency_id": agency.id, "citizen_id": None, "counselor_id": item.counselor_id,
            "mode": "video", "office_id": None, "subject_id": SUBJECT, "starts_at": item.start, "ends_at": item.end,
            "status": "booked", "interview_language": "fr", "created_at": NOW, "updated_at": NOW,
        })
        claims.extend({"counselor_id": item.counselor_id, "step_start": step, "appointment_id": appointment_id}
                      for step in claim_steps(item.start, item.end))
    async with uow_factory() as uow:
        for i in range(0, len(appointments), _BATCH):
            await uow.session.execute(insert(Appointment), appointments[i:i + _BATCH])
        for i in range(0, len(claims), _BATCH):
            await uow.session.execute(insert(SlotClaim), claims[i:i + _BATCH])
        await uow.commit()


async def _citizens(uow_factory: UnitOfWorkFactory, agency: Agency, count: int) -> list[str]:
    ids: list[str] = []
    async with uow_factory() as uow:
        for _ in range(count):
            object_id = str(uuid4())
            citizen = await uow.citizens.upsert_identity(
                agency_id=agency.id, tenant_id="bench", aad_object_id=object_id, teams_user_id=f"29:{object_id}",
                conversation_reference=None, locale="fr-BE", now=NOW,
            )
            ids.append(citizen.id)
        await uow.commit()
    return ids


def _summary(timings: list[float]) -> dict[str, float]:
    ordered = sorted(timings)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"runs": len(ordered), "median_ms": statistics.median(ordered), "p95_ms": p95, "max_ms": ordered[-1]}


async def _run(database: Path) -> dict[str, Any]:
    rng = random.Random(20260302)
    agency = build_agency()
    engine_for_days = SlotEngine(agency)
    days = open_days(engine_for_days, agency)
    busy = build_busy(agency, days, rng)
    url = f"sqlite+aiosqlite:///{database}"
    await upgrade_database(url)
    engine = create_engine(url)
    try:
        uow_factory = UnitOfWorkFactory(create_session_factory(engine))
        started = clock.perf_counter()
        await _fill(uow_factory, agency, busy)
        fill_seconds = clock.perf_counter() - started
        citizens = await _citizens(uow_factory, agency, RUNS["book"])
        time_source = FixedClock(NOW)
        services = assemble_services(agency, uow_factory, time_source)
        booking = build_use_cases(services).booking
        results: dict[str, Any] = {"counselors": COUNSELORS, "weeks": WEEKS, "open_days": len(days),
                                   "busy_appointments": len(busy), "fill_seconds": fill_seconds}

        timings: list[float] = []
        offers_per_day: list[int] = []
        for _ in range(RUNS["slots"]):
            day = rng.choice(days[1:])
            started = clock.perf_counter()
            offers = await booking.slots(mode=Mode.VIDEO, subject_id=SUBJECT, day=day, language="fr")
            timings.append((clock.perf_counter() - started) * 1000)
            offers_per_day.append(len(offers))
        results["slots"] = _summary(timings)
        results["offers_per_day"] = statistics.median(offers_per_day)

        timings = []
        for _ in range(RUNS["days"]):
            started = clock.perf_counter()
            found = await booking.days(mode=Mode.VIDEO, subject_id=SUBJECT, language="fr", limit=10)
            timings.append((clock.perf_counter() - started) * 1000)
        results["days"] = _summary(timings)
        results["days_found"] = len(found)

        timings = []
        booked = 0
        for citizen_id in citizens:
            day = rng.choice(days[1:])
            offers = await booking.slots(mode=Mode.VIDEO, subject_id=SUBJECT, day=day, language="fr")
            offer = rng.choice(offers)
            started = clock.perf_counter()
            outcome = await booking.book(
                citizen_id=citizen_id, mode=Mode.VIDEO, subject_id=SUBJECT, office_id=None, start=offer.start,
                personal_data={PersonalField.FIRST_NAME: "Camille"}, interview_language="fr",
            )
            timings.append((clock.perf_counter() - started) * 1000)
            booked += isinstance(outcome, Booked)
        results["book"] = _summary(timings)
        results["booked"] = booked
        results["targets_met"] = all(results[key]["p95_ms"] < target for key, target in TARGET_MS.items())
        return results
    finally:
        await engine.dispose()


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="guichet-bench-") as directory:
        return asyncio.run(_run(Path(directory) / "booking.db"))


def _print(results: dict[str, Any]) -> None:
    print(f"SQLite, {results['counselors']} counselors, {results['weeks']} weeks ({results['open_days']} open days), "
          f"{results['busy_appointments']} booked appointments (inserted in {results['fill_seconds']:.1f} s), "
          f"median {results['offers_per_day']} free times/day")
    print(f"{'operation':<40}{'runs':>6}{'median ms':>12}{'p95 ms':>10}{'max ms':>10}{'target p95':>12}")
    labels = {
        "slots": "slots() one day",
        "days": f"days() limit 10 ({results['days_found']} found)",
        "book": f"book() ({results['booked']}/{RUNS['book']} booked)",
    }
    for key, label in labels.items():
        row = results[key]
        print(f"{label:<40}{row['runs']:>6}{row['median_ms']:>12.2f}{row['p95_ms']:>10.2f}{row['max_ms']:>10.2f}"
              f"{TARGET_MS[key]:>10.0f}ms")
    print(f"targets: {'met' if results['targets_met'] else 'MISSED'}")


if __name__ == "__main__":
    _print(run())
