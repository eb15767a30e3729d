"""One bot process in the booking race: many concurrent bookings of one slot through BookingService.

Run by tests/test_booking_concurrency.py, twice at once against one PostgreSQL database:

    python -m tests.booking_race_worker --database-url URL --agency PATH --now ISO --start ISO \
        --office liege --subject documents-certificates --postal-code 4700 --language de --citizens ID,ID,...

It prints "ready" once connected, waits for a line on stdin (so both processes fire together),
books, and prints the outcome counts as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from datetime import datetime

from sqlalchemy import text

from bot.domain.agency import Mode, load_agency
from bot.domain.clock import FixedClock
from bot.services.booking import Booked, Refused, SlotGone
from storage.db import create_engine, create_session_factory
from storage.unit_of_work import UnitOfWorkFactory
from tests.booking_support import build_booking, personal_data


async def _warm_up(engine, connections: int) -> None:  # type: ignore[no-untyped-def]
    """Open the pool's connections before the start signal, so the race is about booking, not connecting."""

    async def one() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            await asyncio.sleep(0.05)

    await asyncio.gather(*(one() for _ in range(connections)))


async def main(arguments: argparse.Namespace) -> dict[str, object]:
    agency = load_agency(arguments.agency)
    engine = create_engine(arguments.database_url)
    try:
        await _warm_up(engine, 10)
        booking = build_booking(agency, UnitOfWorkFactory(create_session_factory(engine)),
                                FixedClock(datetime.fromisoformat(arguments.now)))
        start = datetime.fromisoformat(arguments.start)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        outcomes = await asyncio.gather(*(
            booking.book(citizen_id=citizen_id, mode=Mode.OFFICE, subject_id=arguments.subject,
                         office_id=arguments.office, start=start,
                         personal_data=personal_data(arguments.postal_code), interview_language=arguments.language)
            for citizen_id in arguments.citizens.split(",")
        ), return_exceptions=True)
    finally:
        await engine.dispose()
    counts: Counter[str] = Counter()
    booked_ids: list[str] = []
    errors: list[str] = []
    for outcome in outcomes:
        if isinstance(outcome, Booked):
            counts["booked"] += 1
            booked_ids.append(outcome.appointment.id)
        elif isinstance(outcome, SlotGone):
            counts["slot_gone"] += 1
            counts["slot_gone_with_alternatives"] += bool(outcome.alternatives)
        elif isinstance(outcome, Refused):
            counts[outcome.reason] += 1
        else:
            errors.append(repr(outcome))
    return {"counts": dict(counts), "booked_ids": booked_ids, "errors": errors}


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    for name in ("--database-url", "--agency", "--now", "--start", "--citizens", "--office", "--subject",
                 "--postal-code", "--language"):
        parser.add_argument(name, required=True)
    return parser.parse_args()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(_parse()))), flush=True)
