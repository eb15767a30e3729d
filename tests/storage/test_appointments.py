"""Appointments and slot claims: no double booking of a counselor or a citizen, queries a booking flow relies on."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from bot.domain.appointment import Appointment
from bot.domain.slots import CitizenBusy, SlotTaken, epoch_us
from storage.repositories.appointments import LONGEST_APPOINTMENT
from storage.unit_of_work import UnitOfWorkFactory
from tests.storage.helpers import AGENCY, NOW, appointment, new_citizen, steps

NINE = NOW.replace(hour=9, minute=0) + timedelta(days=7)


async def _book(uow_factory: UnitOfWorkFactory, citizen_id: str, counselor: str, minute: int) -> str:
    """Book a 30-minute appointment (two 15-minute steps); returns its id or raises SlotTaken."""
    starts_at = NINE + timedelta(minutes=minute)
    async with uow_factory() as uow:
        booked = await uow.appointments.add(appointment(citizen_id, counselor, starts_at))
        await uow.slot_claims.claim(booked.id, counselor, steps(starts_at, 30))
        await uow.commit()
        return booked.id


async def test_overlapping_claims_of_one_counselor_let_exactly_one_booking_through(
    uow_factory: UnitOfWorkFactory,
) -> None:
    first = await new_citizen(uow_factory, "first")
    second = await new_citizen(uow_factory, "second")

    outcomes = await asyncio.gather(
        _book(uow_factory, first, "counselor-a", 0),
        _book(uow_factory, second, "counselor-a", 15),
        return_exceptions=True,
    )

    assert sum(isinstance(outcome, str) for outcome in outcomes) == 1
    assert sum(isinstance(outcome, SlotTaken) for outcome in outcomes) == 1
    async with uow_factory() as uow:
        busy = await uow.appointments.busy_between(AGENCY, NINE, NINE + timedelta(hours=1))
    assert len(busy) == 1


async def test_other_counselors_and_adjacent_times_do_not_conflict(uow_factory: UnitOfWorkFactory) -> None:
    citizen_id = await new_citizen(uow_factory)

    await _book(uow_factory, citizen_id, "counselor-a", 0)
    await _book(uow_factory, citizen_id, "counselor-a", 30)
    await _book(uow_factory, await new_citizen(uow_factory, "object-2"), "counselor-b", 0)

    async with uow_factory() as uow:
        load = await uow.appointments.load_by_counselor(AGENCY, NINE, NINE + timedelta(days=1))
    assert load == {"counselor-a": 2, "counselor-b": 1}


async def test_the_unit_of_work_stays_usable_after_slot_taken(uow_factory: UnitOfWorkFactory) -> None:
    citizen_id = await new_citizen(uow_factory)
    another = await new_citizen(uow_factory, "object-2")
    await _book(uow_factory, citizen_id, "counselor-a", 0)

    async with uow_factory() as uow:
        attempt = await uow.appointments.add(appointment(citizen_id, "counselor-a", NINE, status="cancelled"))
        with pytest.raises(SlotTaken):
            await uow.slot_claims.claim(attempt.id, "counselor-a", steps(NINE, 30))
        # Same transaction, next counselor: the booking goes through (another citizen's: one person
        # does not sit in two interviews).
        other = await uow.appointments.add(appointment(another, "counselor-b", NINE))
        await uow.slot_claims.claim(other.id, "counselor-b", steps(NINE, 30))
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.slot_claims.for_appointment(other.id) == steps(NINE, 30)
        assert await uow.slot_claims.for_appointment(attempt.id) == []


async def test_released_claims_free_the_time(uow_factory: UnitOfWorkFactory) -> None:
    citizen_id = await new_citizen(uow_factory)
    first_id = await _book(uow_factory, citizen_id, "counselor-a", 0)

    async with uow_factory() as uow:
        booked = await uow.appointments.get(first_id)
        assert booked is not None
        booked.status = "cancelled"
        assert await uow.slot_claims.release(first_id) == 2
        await uow.commit()

    assert await _book(uow_factory, citizen_id, "counselor-a", 15)


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
async def test_postgres_refuses_overlapping_booked_appointments_even_without_claims(
    uow_factory: UnitOfWorkFactory, backend: str
) -> None:
    citizen_id = await new_citizen(uow_factory)
    async with uow_factory() as uow:
        await uow.appointments.add(appointment(citizen_id, "counselor-a", NINE))
        await uow.commit()

    async with uow_factory() as uow:
        with pytest.raises(SlotTaken) as raised:
            await uow.appointments.add(appointment(citizen_id, "counselor-a", NINE + timedelta(minutes=20)))
        assert isinstance(raised.value.__cause__, IntegrityError)
        # Touching end to start is not an overlap ('[)' ranges); cancelled ones never conflict.
        await uow.appointments.add(appointment(citizen_id, "counselor-a", NINE + timedelta(minutes=30)))
        await uow.appointments.add(appointment(citizen_id, "counselor-a", NINE, status="cancelled"))
        await uow.commit()


async def test_one_citizens_overlapping_bookings_with_two_counselors_let_exactly_one_through(
    uow_factory: UnitOfWorkFactory,
) -> None:
    citizen_id = await new_citizen(uow_factory)

    async def book(counselor_id: str, minute: int) -> str:
        row = appointment(citizen_id, counselor_id, NINE + timedelta(minutes=minute))
        values = {column.key: getattr(row, column.key) for column in Appointment.__table__.columns
                  if column.key != "status" and getattr(row, column.key) is not None}
        async with uow_factory() as uow:
            await uow.appointments.book(values, steps(row.starts_at, 30))
            await uow.commit()
        return row.id

    outcomes = await asyncio.gather(book("counselor-a", 0), book("counselor-b", 15), return_exceptions=True)

    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["CitizenBusy", "str"]
    [won] = [outcome for outcome in outcomes if isinstance(outcome, str)]
    async with uow_factory() as uow:
        assert [a.id for a in await uow.appointments.upcoming_for_citizen(citizen_id, NOW)] == [won]
        cancelled = await uow.appointments.get(won)
        assert cancelled is not None
        cancelled.status = "cancelled"
        assert await uow.slot_claims.release(won) == 2  # the counselor's steps, and the citizen's with them
        await uow.commit()
    assert await book("counselor-b", 15)


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
async def test_postgres_refuses_overlapping_booked_appointments_of_one_citizen_even_without_claims(
    uow_factory: UnitOfWorkFactory, backend: str
) -> None:
    citizen_id = await new_citizen(uow_factory)
    another = await new_citizen(uow_factory, "object-2")
    async with uow_factory() as uow:
        await uow.appointments.add(appointment(citizen_id, "counselor-a", NINE))
        await uow.commit()

    async with uow_factory() as uow:
        with pytest.raises(CitizenBusy):
            await uow.appointments.add(appointment(citizen_id, "counselor-b", NINE + timedelta(minutes=20)))
        await uow.appointments.add(appointment(citizen_id, "counselor-b", NINE + timedelta(minutes=30)))
        await uow.appointments.add(appointment(another, "counselor-b", NINE))
        await uow.commit()


async def test_a_citizen_only_gets_their_own_appointments(uow_factory: UnitOfWorkFactory) -> None:
    mine = await new_citizen(uow_factory, "mine")
    theirs = await new_citizen(uow_factory, "theirs")
    my_id = await _book(uow_factory, mine, "counselor-a", 0)
    their_id = await _book(uow_factory, theirs, "counselor-b", 0)

    async with uow_factory() as uow:
        assert (await uow.appointments.get_for_citizen(my_id, mine)) is not None
        assert await uow.appointments.get_for_citizen(their_id, mine) is None
        assert await uow.appointments.get_for_citizen("no-such-id", mine) is None


async def test_upcoming_lists_booked_appointments_not_yet_over_soonest_first(
    uow_factory: UnitOfWorkFactory,
) -> None:
    citizen_id = await new_citizen(uow_factory)
    async with uow_factory() as uow:
        past = appointment(citizen_id, "counselor-a", NINE - timedelta(days=1))
        ongoing = appointment(citizen_id, "counselor-a", NINE - timedelta(minutes=10))
        later = appointment(citizen_id, "counselor-b", NINE + timedelta(days=2))
        soon = appointment(citizen_id, "counselor-b", NINE + timedelta(hours=1))
        cancelled = appointment(citizen_id, "counselor-c", NINE + timedelta(hours=2), status="cancelled")
        for row in (past, ongoing, later, soon, cancelled):
            await uow.appointments.add(row)
        await uow.commit()

    async with uow_factory() as uow:
        upcoming = await uow.appointments.upcoming_for_citizen(citizen_id, NINE)

    assert [row.id for row in upcoming] == [ongoing.id, soon.id, later.id]


async def test_busy_between_lists_booked_appointments_overlapping_the_window(
    uow_factory: UnitOfWorkFactory,
) -> None:
    citizen_id = await new_citizen(uow_factory)
    async with uow_factory() as uow:
        rows = [
            appointment(citizen_id, "counselor-a", NINE - timedelta(minutes=15)),  # overlaps the start
            appointment(citizen_id, "counselor-b", NINE + timedelta(minutes=45)),  # inside
            # (no citizen: the same citizen cannot hold overlapping appointments)
            appointment(None, "counselor-c", NINE - timedelta(minutes=30)),  # ends at the start
            appointment(None, "counselor-c", NINE + timedelta(hours=1)),  # starts at the end
            appointment(citizen_id, "counselor-d", NINE, status="cancelled"),
            appointment(None, "counselor-e", NINE, agency_id="example-fr"),
        ]
        for row in rows:
            await uow.appointments.add(row)
        await uow.commit()

    async with uow_factory() as uow:
        busy = await uow.appointments.busy_between(AGENCY, NINE, NINE + timedelta(hours=1))

    assert [(b.counselor_id, b.starts_at, b.ends_at) for b in busy] == [
        ("counselor-a", NINE - timedelta(minutes=15), NINE + timedelta(minutes=15)),
        ("counselor-b", NINE + timedelta(minutes=45), NINE + timedelta(minutes=75)),
    ]


async def test_the_busy_search_in_microseconds_and_the_upcoming_views_match_their_object_forms(
    uow_factory: UnitOfWorkFactory,
) -> None:
    citizen_id = await new_citizen(uow_factory)
    async with uow_factory() as uow:
        rows = [
            appointment(citizen_id, "counselor-a", NINE - timedelta(minutes=15)),
            appointment(citizen_id, "counselor-b", NINE + timedelta(minutes=45, microseconds=7)),
            appointment(citizen_id, "counselor-b", NINE + timedelta(minutes=5), status="cancelled"),
            appointment(citizen_id, "counselor-c", NINE + timedelta(days=3)),
        ]
        for row in rows:
            await uow.appointments.add(row)
        await uow.commit()

    async with uow_factory.read() as uow:
        busy = await uow.appointments.busy_between(AGENCY, NINE, NINE + timedelta(hours=1))
        busy_us = await uow.appointments.busy_between_us(AGENCY, NINE, NINE + timedelta(hours=1))
        objects = await uow.appointments.upcoming_for_citizen(citizen_id, NINE)
        views = await uow.appointments.upcoming_views_for_citizen(citizen_id, NINE)

    assert len(busy) == 2
    assert sorted(tuple(row) for row in busy_us) == [
        (counselor_id, epoch_us(starts_at), epoch_us(ends_at)) for counselor_id, starts_at, ends_at in busy]
    assert views == [row.view() for row in objects]
    assert [view.id for view in views] == [rows[0].id, rows[1].id, rows[3].id]


async def test_insert_booked_holds_the_claims_and_a_conflict_leaves_nothing_behind(
    uow_factory: UnitOfWorkFactory,
) -> None:
    citizen_id = await new_citizen(uow_factory)
    another = await new_citizen(uow_factory, "object-2")
    taken_id = await _book(uow_factory, citizen_id, "counselor-a", 0)

    def values(counselor_id: str, citizen: str = citizen_id) -> dict[str, object]:
        row = appointment(citizen, counselor_id, NINE + timedelta(minutes=15))
        return {column.key: getattr(row, column.key) for column in Appointment.__table__.columns
                if column.key != "status" and getattr(row, column.key) is not None}

    async with uow_factory() as uow:
        lost = values("counselor-a")
        with pytest.raises(IntegrityError):
            async with uow.session.begin_nested():
                await uow.appointments.insert_booked(lost, steps(NINE + timedelta(minutes=15), 30))
        won = values("counselor-b", another)
        await uow.appointments.insert_booked(won, steps(NINE + timedelta(minutes=15), 30))
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.appointments.get(str(lost["id"])) is None
        assert await uow.slot_claims.for_appointment(str(lost["id"])) == []
        stored = await uow.appointments.get(str(won["id"]))
        assert stored is not None and stored.status == "booked" and stored.starts_at == won["starts_at"]
        assert await uow.slot_claims.for_appointment(str(won["id"])) == steps(NINE + timedelta(minutes=15), 30)
        assert await uow.slot_claims.for_appointment(taken_id) == steps(NINE, 30)


async def test_the_busy_search_finds_appointments_that_started_long_before_the_window(
    uow_factory: UnitOfWorkFactory,
) -> None:
    a, b, c = [await new_citizen(uow_factory, name) for name in ("a", "b", "c")]
    longest = int(LONGEST_APPOINTMENT.total_seconds() // 60)
    async with uow_factory() as uow:
        for row in (
            appointment(a, "counselor-a", NINE - timedelta(hours=25), minutes=25 * 60 + 1),  # a DST day
            appointment(b, "counselor-b", NINE - LONGEST_APPOINTMENT + timedelta(minutes=1), minutes=longest),
            appointment(c, "counselor-c", NINE - timedelta(hours=25), minutes=25 * 60),  # ends at the start
        ):
            await uow.appointments.add(row)
        await uow.commit()

    async with uow_factory.read() as uow:
        busy = await uow.appointments.busy_between_us(AGENCY, NINE, NINE + timedelta(hours=1))
    assert sorted(counselor_id for counselor_id, _, _ in busy) == ["counselor-a", "counselor-b"]
