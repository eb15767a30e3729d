"""The supervisor's weekly statistics (StaffService.statistics) from a seeded set of appointments with
known outcomes, on SQLite and PostgreSQL: each appointment and each outcome counted once, in the week
of its agency-local date, weeks starting on Monday at local midnight, through the week in which summer
time ends (Brussels: Sunday 25 October 2026, 03:00 → 02:00)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from bot.domain.agency import Agency
from bot.domain.appointment import Appointment, AppointmentStatus, Outcome
from bot.domain.clock import FixedClock
from bot.services.staff import StaffService
from bot.wiring import assemble_services
from storage.unit_of_work import UnitOfWorkFactory

BRUSSELS = ZoneInfo("Europe/Brussels")
DST_WEEK = date(2026, 10, 19)  # Monday; its Sunday has 25 hours
AFTER = date(2026, 10, 26)
THIS_WEEK = date(2026, 11, 2)
NOW = datetime(2026, 11, 4, 15, 0, tzinfo=BRUSSELS)  # Wednesday of THIS_WEEK


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BRUSSELS)


# (start, status, [(outcome, reported at)]): the appointments and what was reported on them.
SEEDED: list[tuple[datetime, AppointmentStatus, list[tuple[Outcome, datetime]]]] = [
    # Before the first week shown: Sunday 18 October, 23:30 local, is 21:30 UTC.
    (local(DST_WEEK, 0) - timedelta(minutes=30), AppointmentStatus.NO_SHOW,
     [(Outcome.NO_SHOW, local(DST_WEEK, 0) - timedelta(minutes=5))]),
    # The summer-time week.
    (local(DST_WEEK, 0, 30), AppointmentStatus.ATTENDED,  # Monday 00:30 local is Sunday 22:30 UTC
     [(Outcome.IDENTITY_VERIFIED, local(DST_WEEK, 0, 40))]),
    (local(DST_WEEK, 9), AppointmentStatus.NO_SHOW,
     [(Outcome.ABSENT_REPORTED, local(DST_WEEK, 9, 5)), (Outcome.NO_SHOW, local(DST_WEEK, 9, 15))]),
    (local(DST_WEEK + timedelta(days=2), 14), AppointmentStatus.NOT_VERIFIED,
     [(Outcome.IDENTITY_NOT_VERIFIED, local(DST_WEEK + timedelta(days=2), 14, 3))]),
    (local(DST_WEEK + timedelta(days=4), 16), AppointmentStatus.CANCELLED,
     [(Outcome.TECHNICAL_PROBLEM, local(DST_WEEK + timedelta(days=4), 16, 10))]),
    # Sunday 25 October 23:30 local, after the change: 22:30 UTC, still the summer-time week.
    (local(AFTER, 0) - timedelta(minutes=30), AppointmentStatus.NO_OUTCOME,
     [(Outcome.NO_OUTCOME, local(AFTER, 0) - timedelta(minutes=1))]),
    # The week after: Monday 00:30 local is Sunday 23:30 UTC (a week counted in UTC would be wrong here).
    (local(AFTER, 0, 30), AppointmentStatus.NO_SHOW, [(Outcome.NO_SHOW, local(AFTER, 0, 45))]),
    (local(AFTER + timedelta(days=1), 10), AppointmentStatus.BOOKED,  # cancelled later: still an appointment
     [(Outcome.AGENCY_LATE, local(AFTER + timedelta(days=1), 10, 20))]),
    (local(AFTER + timedelta(days=3), 11), AppointmentStatus.TECHNICAL_PROBLEM,
     [(Outcome.TECHNICAL_PROBLEM, local(AFTER + timedelta(days=3), 11, 2))]),
    # This week, up to now.
    (local(THIS_WEEK, 9), AppointmentStatus.ATTENDED, [(Outcome.IDENTITY_VERIFIED, local(THIS_WEEK, 9, 2))]),
    (local(THIS_WEEK + timedelta(days=1), 9), AppointmentStatus.NO_SHOW,
     [(Outcome.NO_SHOW, local(THIS_WEEK + timedelta(days=1), 9, 15))]),
]


async def _seed(uow_factory: UnitOfWorkFactory, agency: Agency) -> None:
    counselor = agency.counselors[0].id
    async with uow_factory() as uow:
        for start, status, outcomes in SEEDED:
            appointment_id = str(uuid4())
            await uow.session.execute(insert(Appointment), [{  # type: ignore[attr-defined]
                "id": appointment_id, "agency_id": agency.id, "citizen_id": None, "counselor_id": counselor,
                "mode": "video", "office_id": None, "subject_id": agency.subjects[0].id, "starts_at": start,
                "ends_at": start + timedelta(minutes=30), "status": status.value, "interview_language": "fr",
                "created_at": start - timedelta(days=3), "updated_at": start}])
            for outcome, when in outcomes:
                await uow.outcomes.add(appointment_id=appointment_id, agency_id=agency.id, outcome=outcome.value,
                                       actor="counselor", occurred_at=when)
        await uow.commit()


def _staff(agency: Agency, uow_factory: UnitOfWorkFactory) -> StaffService:
    services = assemble_services(agency, uow_factory, FixedClock(NOW))
    return StaffService(services.agency, services.uow, services.clock, services.audit, installer=None)


async def test_weekly_counts_of_a_seeded_month_across_the_end_of_summer_time(
    agency: Agency, uow_factory: UnitOfWorkFactory,
) -> None:
    assert agency.zone.key == "Europe/Brussels"
    await _seed(uow_factory, agency)
    staff = _staff(agency, uow_factory)

    weeks = await staff.statistics(weeks=3)

    assert [(week.week_start, week.booked, week.counts) for week in weeks] == [
        (THIS_WEEK, 2, {Outcome.IDENTITY_VERIFIED: 1, Outcome.NO_SHOW: 1}),
        (AFTER, 3, {Outcome.NO_SHOW: 1, Outcome.AGENCY_LATE: 1, Outcome.TECHNICAL_PROBLEM: 1}),
        (DST_WEEK, 5, {Outcome.IDENTITY_VERIFIED: 1, Outcome.ABSENT_REPORTED: 1, Outcome.NO_SHOW: 1,
                       Outcome.IDENTITY_NOT_VERIFIED: 1, Outcome.TECHNICAL_PROBLEM: 1, Outcome.NO_OUTCOME: 1}),
    ]


async def test_weeks_with_nothing_are_shown_as_zero(agency: Agency, uow_factory: UnitOfWorkFactory) -> None:
    staff = _staff(agency, uow_factory)
    weeks = await staff.statistics(weeks=2)
    assert [(week.week_start, week.booked, week.counts) for week in weeks] == [(THIS_WEEK, 0, {}), (AFTER, 0, {})]
