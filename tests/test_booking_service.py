"""The booking service on SQLite and PostgreSQL: what a citizen books, moves and cancels, and what it leaves behind."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from sqlalchemy import func, select

from bot.domain.agency import Agency, Mode, PersonalField
from bot.domain.appointment import Appointment, AppointmentView
from bot.domain.audit import AuditEvent, EventType
from bot.domain.clock import FixedClock
from bot.domain.jobs import Job
from bot.domain.slots import SlotEngine, claim_steps
from bot.i18n import LANGUAGES, catalog, t
from bot.services.audit import verify
from bot.services.booking import (
    REFUSAL_KEYS,
    Booked,
    BookingService,
    Cancelled,
    Refused,
    SlotGone,
)
from cards.booking import counselor_name
from cards.calendar import build_ics
from storage.unit_of_work import UnitOfWorkFactory
from tests.booking_support import build_booking, new_citizens, personal_data
from tests.oracles import slots_for_day

BRUSSELS = ZoneInfo("Europe/Brussels")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=BRUSSELS)  # a Monday
VIDEO_SUBJECT = "temporary-unemployment"  # 30 minutes, video or office
OFFICE_SUBJECT = "documents-certificates"  # 20 minutes
ANNA = "44b74071-635d-47aa-9958-4c33aaac9f03"  # the only German-speaking counselor at the Liège office
EUPEN = "4700"  # German-speaking Community: interviews in German


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BRUSSELS)


WED = date(2026, 11, 25)
THU = date(2026, 11, 26)
FRI = date(2026, 11, 27)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def booking(agency: Agency, uow_factory: UnitOfWorkFactory, clock: FixedClock) -> BookingService:
    return build_booking(agency, uow_factory, clock)


async def _citizen(uow_factory: UnitOfWorkFactory, agency: Agency, **flags: bool) -> str:
    return (await new_citizens(uow_factory, agency, NOW, **flags))[0]


async def _book_video(booking: BookingService, citizen_id: str, start: datetime, **changes: object):
    arguments: dict[str, object] = dict(
        citizen_id=citizen_id, mode=Mode.VIDEO, subject_id=VIDEO_SUBJECT, office_id=None, start=start,
        personal_data=personal_data("1000"), interview_language="fr",
    )
    arguments.update(changes)
    return await booking.book(**arguments)  # type: ignore[arg-type]


async def _book_liege(booking: BookingService, citizen_id: str, start: datetime):
    return await booking.book(
        citizen_id=citizen_id, mode=Mode.OFFICE, subject_id=OFFICE_SUBJECT, office_id="liege", start=start,
        personal_data=personal_data(EUPEN), interview_language="de",
    )


async def _liege_times(booking: BookingService, day: date) -> list[datetime]:
    offers = await booking.slots(mode=Mode.OFFICE, subject_id=OFFICE_SUBJECT, day=day, office_id="liege",
                                 language="de")
    return [offer.start for offer in offers]


async def _events(uow_factory: UnitOfWorkFactory, agency: Agency) -> list[AuditEvent]:
    async with uow_factory() as uow:
        return [event async for event in uow.audit.iterate(agency.id)]


async def _count_appointments(uow_factory: UnitOfWorkFactory) -> int:
    async with uow_factory() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(Appointment)) or 0)


async def _pending_jobs(uow_factory: UnitOfWorkFactory, appointment_id: str) -> list[Job]:
    async with uow_factory() as uow:
        return [job for job in await uow.jobs.for_appointment(appointment_id) if job.status == "pending"]


def _booked(outcome: object) -> AppointmentView:
    assert isinstance(outcome, Booked), outcome
    return outcome.appointment


# -- booking ------------------------------------------------------------------------------------


async def test_booking_holds_the_time_plans_reminders_and_audits_without_personal_data(
    booking: BookingService, uow_factory: UnitOfWorkFactory, agency: Agency
) -> None:
    citizen_id = await _citizen(uow_factory, agency)
    start = local(WED, 10)

    view = _booked(await _book_video(booking, citizen_id, start, activity_id="activity-1"))

    assert view.starts_at == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert view.ends_at - view.starts_at == timedelta(minutes=30)
    assert (view.mode, view.status, view.interview_language) == (Mode.VIDEO, "booked", "fr")
    async with uow_factory() as uow:
        row = await uow.appointments.get(view.id)
        assert row is not None
        claims = await uow.slot_claims.for_appointment(view.id)
        jobs = await uow.jobs.for_appointment(view.id)
    counselor = agency.counselor(row.counselor_id)
    assert counselor is not None and "fr" in counselor.languages and Mode.VIDEO in counselor.modes
    assert counselor_name(agency, view) == counselor.display_name
    assert claims == claim_steps(view.starts_at, view.ends_at)
    assert sorted((job.kind, job.run_at) for job in jobs) == sorted([
        ("counselor_prompt", view.starts_at - timedelta(minutes=5)),
        ("no_show_check", view.starts_at + timedelta(minutes=10)),
        ("reminder", view.starts_at - timedelta(hours=24)),
        ("reminder", view.starts_at - timedelta(hours=1)),
    ])
    for job in jobs:
        assert job.payload["appointment_id"] == view.id
        assert job.dedupe_key is not None and view.id in job.dedupe_key
        assert view.starts_at.isoformat() in job.dedupe_key

    events = await _events(uow_factory, agency)
    assert [event.event_type for event in events] == [EventType.BOOKED]
    assert events[0].appointment_id == view.id
    assert events[0].payload["start"] == view.starts_at.isoformat()
    assert events[0].payload["counselor"] == row.counselor_id
    written = json.dumps(events[0].payload)
    for value in personal_data("1000").values():
        assert value not in written
    assert (await verify(uow_factory, agency.id)).ok

    saved = await booking.saved_personal_data(citizen_id)
    assert saved[PersonalField.LAST_NAME] == "Dupont"
    assert saved[PersonalField.BIRTH_DATE] == date(1985, 7, 30)
    assert saved[PersonalField.PHONE] == "+32470123456"
    assert await booking.saved_interview_language(citizen_id) == "fr"
    assert [a.id for a in await booking.upcoming(citizen_id)] == [view.id]


async def test_the_only_counselor_of_a_slot_is_no_longer_offered_once_booked(
    booking: BookingService, uow_factory: UnitOfWorkFactory, agency: Agency
) -> None:
    first, second = await new_citizens(uow_factory, agency, NOW, 2)
    start = local(THU, 9)
    assert start in await _liege_times(booking, THU)

    view = _booked(await _book_liege(booking, first, start))

    assert counselor_name(agency, view) == "Anna Kessler" and view.office_id == "liege"
    times = await _liege_times(booking, THU)
    assert start not in times
    # A 20-minute appointment from 09:00 also blocks 08:45 and 09:15, which would overlap it.
    assert local(THU, 8, 45) not in times and local(THU, 9, 15) not in times
    assert local(THU, 8, 30) in times and local(THU, 9, 30) in times
    gone = await _book_liege(booking, second, start)
    assert isinstance(gone, SlotGone)
    assert gone.alternatives and start not in [offer.start for offer in gone.alternatives]
    # Same day first, nearest to the time asked for.
    assert gone.alternatives[0].start.astimezone(BRUSSELS).date() == THU
    assert all(offer.office_id == "liege" for offer in gone.alternatives)
    assert await _count_appointments(uow_factory) == 1


async def test_reminders_are_not_planned_in_the_past_nor_for_citizens_who_opted_out(
    booking: BookingService, uow_factory: UnitOfWorkFactory, agency: Agency
) -> None:
    same_day = await _citizen(uow_factory, agency)
    opted_out = await _citizen(uow_factory, agency, reminders_opt_out=True)

    soon = _booked(await _book_video(booking, same_day, local(NOW.date(), 15)))
    later = _booked(await _book_video(booking, opted_out, local(WED, 10)))

    soon_jobs = await _pending_jobs(uow_factory, soon.id)
    assert sorted(job.run_at for job in soon_jobs if job.kind == "reminder") == [soon.starts_at - timedelta(hours=1)]
    later_kinds = sorted(job.kind for job in await _pending_jobs(uow_factory, later.id))
    assert later_kinds == ["counselor_prompt", "no_show_check"]


async def test_a_confirmation_sent_twice_books_once(
    booking: BookingService, uow_factory: UnitOfWorkFactory, agency: Agency
) -> None:
    citizen_id = await _citizen(uow_factory, agency)

    first = _booked(await _book_video(booking, citizen_id, local(WED, 10)))
    again = _booked(await _book_video(booking, citizen_id, local(WED, 10)))

    assert again.id == first.id
    assert await _count_appointments(uow_factory) == 1


async def test_booked_on_the_website_the_email_is_required_even_where_the_agency_asks_none(
    uow_factory: UnitOfWorkFactory, agency: Agency, clock: FixedClock
) -> None:
    fields = [field for field in agency.personal_data_fields if field is not PersonalField.EMAIL]
    no_email = agency.model_copy(update={"personal_data_fields": fields})
    booking = build_booking(no_email, uow_factory, clock)
    citizen_id = await _citizen(uow_factory, no_email)
    without_email = {key: value for key, value in personal_data().items() if key is not PersonalField.EMAIL}

    refused = await _book_video(booking, citizen_id, local(WED, 10), personal_data=without_email, on_web=True)
    assert refused == Refused("booking_errors.invalid_personal_data")
    assert await _count_appointments(uow_factory) == 0

    _booked(await _book_video(booking, citizen_id, local(WED, 10), on_web=True))
    assert (await booking.saved_personal_data(citizen_id, on_web=True))[PersonalField.EMAIL] == \
        personal_data()[PersonalField.EMAIL]
    # In Teams the agency's own form stands: the address is neither asked nor shown back.
    assert PersonalField.EMAIL not in await booking.saved_personal_data(citizen_id)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        pytest.param({"subject_id": "no-such-subject"}, "booking_errors.not_bookable", id="unknown-subject"),
        pytest.param({"mode": "carrier-pigeon"}, "booking_errors.not_bookable", id="unknown-mode"),
        pytest.param({"mode": Mode.OFFICE, "subject_id": "payments", "office_id": "liege"},
                     "booking_errors.not_bookable", id="subject-without-office-mode"),
        pytest.param({"mode": Mode.OFFICE}, "booking_errors.not_bookable", id="office-mode-without-office"),
        pytest.param({"mode": Mode.OFFICE, "office_id": "paris"}, "booking_errors.not_bookable",
                     id="unknown-office"),
        pytest.param({"start": datetime(2026, 11, 25, 10, 0)}, "booking_errors.invalid_slot", id="naive-start"),
        pytest.param({"start": local(WED, 10, 7)}, "booking_errors.invalid_slot", id="off-the-grid"),
        pytest.param({"start": local(WED, 12, 30)}, "booking_errors.invalid_slot", id="lunch-break"),
        pytest.param({"start": local(date(2026, 11, 29), 10)}, "booking_errors.invalid_slot", id="sunday"),
        pytest.param({"start": local(NOW.date(), 11)}, "booking_errors.invalid_slot", id="inside-lead-time"),
        pytest.param({"start": local(date(2027, 2, 1), 10)}, "booking_errors.invalid_slot", id="past-horizon"),
        pytest.param({"start": local(date(2026, 11, 20), 10)}, "booking_errors.invalid_slot", id="in-the-past"),
        pytest.param({"personal_data": {**personal_data(), PersonalField.NATIONAL_REGISTER_NUMBER: "85073012345"}},
                     "booking_errors.invalid_personal_data", id="bad-national-number"),
        pytest.param({"personal_data": {PersonalField.FIRST_NAME: "Camille"}},
                     "booking_errors.invalid_personal_data", id="missing-fields"),
        pytest.param({"personal_data": "not a mapping"}, "booking_errors.invalid_personal_data", id="not-a-mapping"),
        pytest.param({"interview_language": "de"}, "booking_errors.invalid_language",
                     id="german-for-a-brussels-resident"),
        pytest.param({"personal_data": personal_data("2000")}, "booking_errors.invalid_language",
                     id="french-for-an-antwerp-resident"),
    ],
)
async def test_invalid_requests_are_refused_and_leave_nothing_behind(
    booking: BookingService, uow_factory: UnitOfWorkFactory, agency: Agency, changes: dict[str, object],
    reason: str,
) -> None:
    citizen_id = await _citizen(uow_factory, agency)

    arguments = {"start": local(WED, 10), **changes}
    outcome = await _book_video(booking, citizen_id, arguments.pop("start"), **arguments)  # type: ignore[arg-type]

    assert outcome == Refused(reason)
    assert await _count_appointments(uow_factory) == 0
    assert await _events(uow_factory, agency) == []
    assert await booking.saved_personal_data(citizen_id) == {}


async def test_a_citizen_holds_at_most_the_agencys_number_of_upcoming_appointments(
    booking: BookingService, uow_factory: UnitOfWorkFactory, agency: Agency
) -> None:
    assert agency.booking.max_upcoming_per_citizen == 2
    citizen_id = await _citizen(uow_factory, agency)
    first = _booked(await _book_video(booking, citizen_id, local(WED, 10)))
    _booked(await _book_video(booking, citizen_id, local(THU, 10)))

    assert await _book_video(booking, citizen_id, local(FRI, 10)) == Refused("booking_errors.too_many_upcoming")

    assert isinstance(await booking.cancel(citizen_id=citizen_id, appointment_id=first.id), Cancelled)
    _booked(await _book_video(booking, citizen_id, local(FRI, 10)))


async def test_a_booking_across_the_spring_clock_change_is_stored_in_utc(
    agency: Agency, uow_factory: UnitOfWorkFactory
) -> None:
    clock = FixedClock(datetime(2027, 3, 22, 10, 0, tzinfo=BRUSSELS))
    booking = build_booking(agency, uow_factory, clock)
    citizen_id = (await new_citizens(uow_factory, agency, clock.now()))[0]
    before, after = date(2027, 3, 26), date(2027, 3, 30)  # winter time, then summer time (from 28 March)

    winter = _booked(await _book_video(booking, citizen_id, local(before, 8, 30)))
    summer = _booked(await _book_video(booking, citizen_id, local(after, 8, 30)))

    async with uow_factory() as uow:
        winter_row = await uow.appointments.get(winter.id)
        summer_row = await uow.appointments.get(summer.id)
        summer_claims = await uow.slot_claims.for_appointment(summer.id)
    assert winter_row is not None and summer_row is not None
    assert winter_row.starts_at == datetime(2027, 3, 26, 7, 30, tzinfo=UTC)
    assert summer_row.starts_at == datetime(2027, 3, 30, 6, 30, tzinfo=UTC)
    assert summer_claims[0] == datetime(2027, 3, 30, 6, 30, tzinfo=UTC)
    assert summer_row.starts_at.astimezone(BRUSSELS).hour == 8
    reminders = sorted(job.run_at for job in await _pending_jobs(uow_factory, summer.id) if job.kind == "reminder")
    # A day before in real time: 08:30 on the Monday, already in summer time.
    assert reminders[0] == datetime(2027, 3, 29, 6, 30, tzinfo=UTC)
    offers = await booking.slots(mode=Mode.VIDEO, subject_id=VIDEO_SUBJECT, day=after, language="fr")
    assert offers[0].start == datetime(2027, 3, 30, 6, 30, tzinfo=UTC)


# -- someone else's appointment -----------------------------------------------------------------


@pytest.mark.parametrize(
    "forged",
    [None, 42, "", "x", "' OR 1=1 --", "00000000-0000-0000-0000-000000000000", {"id": "x"}, ["a"], "é" * 36],
)
async def test_malformed_appointment_ids_are_treated_as_unknown(
    booking: BookingService, uow_factory: UnitOfWorkFactory, agency: Agency, forged: object
) -> None:
    citizen_id = await _citizen(uow_factory, agency)

    assert await booking.get_own(citizen_id, forged) is None
    assert await booking.cancel(citizen_id=citizen_id, appointment_id=forged) == Refused("booking_errors.not_found")
    moved = await booking.reschedule(citizen_id=citizen_id, appointment_id=forged, start=local(THU, 10))
    assert moved == Refused("booking_errors.not_found")


async def test_nobody_reads_moves_or_cancels_another_persons_appointment(
    booking: BookingService, uow_factory: UnitOfWorkFactory, agency: Agency
) -> None:
    owner, intruder = await new_citizens(uow_factory, agency, NOW, 2)
    view = _booked(await _book_video(booking, owner, local(WED, 10)))

    assert await booking.get_own(intruder, view.id) is None
    assert await booking.get_own(intruder, view.id.upper()) is None
    assert await booking.cancel(citizen_id=intruder, appointment_id=view.id) == Refused("booking_errors.not_found")
    moved = await booking.reschedule(citizen_id=intruder, appointment_id=view.id, start=local(THU, 10))
    assert moved == Refused("booking_errors.not_found")

    mine = await booking.get_own(owner, view.id)
    assert mine is not None and mine.status == "booked" and mine.starts_at == view.starts_at


# -- cancelling ---------------------------------------------------------------------------------


async def test_cancelling_frees_the_time_and_withdraws_the_jobs(
    booking: BookingService, uow_factory: UnitOfWorkFactory, agency: Agency
) -> None:
    citizen_id = await _citizen(uow_factory, agency)
    start = local(THU, 9)
    view = _booked(await _book_liege(booking, citizen_id, start))
    assert start not in await _liege_times(booking, THU)

    outcome = await booking.cancel(citizen_id=citizen_id, appointment_id=view.id, reason_note="  Found a job  ")

    assert isinstance(outcome, Cancelled)
    assert outcome.appointment.status == "cancelled" and outcome.appointment.cancel_reason == "citizen"
    assert start in await _liege_times(booking, THU)
    assert await _pending_jobs(uow_factory, view.id) == []
    async with uow_factory() as uow:
        assert await uow.slot_claims.for_appointment(view.id) == []
        row = await uow.appointments.get(view.id)
        assert row is not None and row.cancel_note == "Found a job"
    assert [e.event_type for e in await _events(uow_factory, agency)] == [EventType.BOOKED, EventType.CANCELLED]
    assert await booking.upcoming(citizen_id) == []
    again = await booking.cancel(citizen_id=citizen_id, appointment_id=view.id)
    assert again == Refused("booking_errors.not_active")


async def test_after_the_cutoff_the_chat_refuses_to_cancel_and_gives_the_phone_number(
    booking: BookingService, uow_factory: UnitOfWorkFactory, agency: Agency, clock: FixedClock
) -> None:
    citizen_id = await _citizen(uow_factory, agency)
    view = _booked(await _book_video(booking, citizen_id, local(NOW.date(), 15)))
    deadline = view.starts_at - timedelta(minutes=agency.booking.cancellation_cutoff_minutes)

    clock.set(deadline - timedelta(minutes=1))
    assert booking.can_cancel(view)
    clock.set(deadline + timedelta(minutes=1))
    assert not booking.can_cancel(view)

    refused = await booking.cancel(citizen_id=citizen_id, appointment_id=view.id)
    assert refused == Refused("booking_errors.cutoff_passed", {"phone": agency.contact.phone})
    assert agency.contact.phone in t("fr", refused.reason, **refused.params)
    moved = await booking.reschedule(citizen_id=citizen_id, appointment_id=view.id, start=local(WED, 10))
    assert isinstance(moved, Refused) and moved.reason == "booking_errors.cutoff_passed"
    still = await booking.get_own(citizen_id, view.id)
    assert still is not None and still.status == "booked" and still.starts_at == view.starts_at


# -- rescheduling -------------------------------------------------------------------------------


async def test_rescheduling_keeps_the_id_and_moves_time_claims_and_jobs(
    booking: BookingService, uow_factory: UnitOfWorkFactory, agency: Agency
) -> None:
    citizen_id = await _citizen(uow_factory, agency)
    old_start, new_start = local(THU, 9), local(FRI, 10)
    view = _booked(await _book_liege(booking, citizen_id, old_start))
    old_keys = {job.dedupe_key for job in await _pending_jobs(uow_factory, view.id)}

    moved = _booked(await booking.reschedule(citizen_id=citizen_id, appointment_id=view.id, start=new_start))

    assert moved.id == view.id
    assert moved.starts_at == new_start and moved.ends_at == new_start + timedelta(minutes=20)
    assert old_start in await _liege_times(booking, THU)
    assert new_start not in await _liege_times(booking, FRI)
    async with uow_factory() as uow:
        assert await uow.slot_claims.for_appointment(view.id) == claim_steps(moved.starts_at, moved.ends_at)
        all_jobs = await uow.jobs.for_appointment(view.id)
    assert {job.dedupe_key for job in all_jobs if job.status == "cancelled"} == old_keys
    pending = [job for job in all_jobs if job.status == "pending"]
    assert sorted(job.run_at for job in pending if job.kind == "no_show_check") == [
        new_start.astimezone(UTC) + timedelta(minutes=10)
    ]
    assert len([job for job in pending if job.kind == "reminder"]) == 2
    events = await _events(uow_factory, agency)
    assert [e.event_type for e in events] == [EventType.BOOKED, EventType.RESCHEDULED]
    assert events[1].payload["from"] == old_start.astimezone(UTC).isoformat()
    assert events[1].payload["to"] == new_start.astimezone(UTC).isoformat()
    assert (await verify(uow_factory, agency.id)).ok

    # Moving back to a time held before plans that time's reminders afresh.
    back = _booked(await booking.reschedule(citizen_id=citizen_id, appointment_id=view.id, start=old_start))
    reminders = [job for job in await _pending_jobs(uow_factory, view.id) if job.kind == "reminder"]
    assert sorted(job.run_at for job in reminders) == [back.starts_at - timedelta(hours=24),
                                                         back.starts_at - timedelta(hours=1)]


async def test_rescheduling_a_little_later_may_overlap_the_appointments_own_time(
    booking: BookingService, uow_factory: UnitOfWorkFactory, agency: Agency
) -> None:
    citizen_id = await _citizen(uow_factory, agency)
    view = _booked(await _book_liege(booking, citizen_id, local(THU, 9)))
    assert local(THU, 9, 15) not in await _liege_times(booking, THU)

    offered = await booking.slots(mode=Mode.OFFICE, subject_id=OFFICE_SUBJECT, day=THU, office_id="liege",
                                  language="de", exclude_appointment_id=view.id)
    assert local(THU, 9, 15) in [offer.start for offer in offered]
    moved = _booked(await booking.reschedule(citizen_id=citizen_id, appointment_id=view.id,
                                             start=local(THU, 9, 15)))
    assert moved.starts_at == local(THU, 9, 15) and counselor_name(agency, moved) == "Anna Kessler"


async def test_a_reschedule_that_cannot_get_the_new_time_leaves_the_old_appointment_as_it_was(
    booking: BookingService, uow_factory: UnitOfWorkFactory, agency: Agency
) -> None:
    citizen_id, other = await new_citizens(uow_factory, agency, NOW, 2)
    old_start = local(THU, 9)
    view = _booked(await _book_liege(booking, citizen_id, old_start))
    taken = local(FRI, 9)
    _booked(await _book_liege(booking, other, taken))
    async with uow_factory() as uow:
        claims_before = await uow.slot_claims.for_appointment(view.id)
    jobs_before = sorted((job.kind, job.run_at) for job in await _pending_jobs(uow_factory, view.id))

    gone = await booking.reschedule(citizen_id=citizen_id, appointment_id=view.id, start=taken)

    assert isinstance(gone, SlotGone) and gone.alternatives
    assert taken not in [offer.start for offer in gone.alternatives]
    await _assert_unchanged(booking, uow_factory, citizen_id, view, claims_before, jobs_before)

    # Claims the engine cannot see (a booking committed after the search) also make the move fail
    # after the old claims were released inside the transaction: the rollback restores them.
    race = local(FRI, 11)
    async with uow_factory() as uow:
        ghost = Appointment(
            id="3f0c1c36-5d0e-4a59-9d32-4ad9c8a1a001", agency_id=agency.id, citizen_id=other, counselor_id=ANNA,
            mode="office", office_id="liege", subject_id=OFFICE_SUBJECT, starts_at=race.astimezone(UTC),
            ends_at=race.astimezone(UTC) + timedelta(minutes=20), status="cancelled", interview_language="de",
            created_at=NOW, updated_at=NOW,
        )
        await uow.appointments.add(ghost)
        await uow.slot_claims.claim(ghost.id, ANNA, claim_steps(ghost.starts_at, ghost.ends_at))
        await uow.commit()
    assert race in await _liege_times(booking, FRI)

    lost = await booking.reschedule(citizen_id=citizen_id, appointment_id=view.id, start=race)

    assert isinstance(lost, SlotGone)
    await _assert_unchanged(booking, uow_factory, citizen_id, view, claims_before, jobs_before)
    assert [e.event_type for e in await _events(uow_factory, agency)] == [EventType.BOOKED, EventType.BOOKED]


async def _assert_unchanged(booking: BookingService, uow_factory: UnitOfWorkFactory, citizen_id: str,
                            view: AppointmentView, claims_before: list[datetime],
                            jobs_before: list[tuple[str, datetime]]) -> None:
    still = await booking.get_own(citizen_id, view.id)
    assert still is not None
    assert (still.status, still.starts_at, still.counselor_id) == ("booked", view.starts_at, view.counselor_id)
    async with uow_factory() as uow:
        assert await uow.slot_claims.for_appointment(view.id) == claims_before
    assert sorted((job.kind, job.run_at) for job in await _pending_jobs(uow_factory, view.id)) == jobs_before


# -- searching ----------------------------------------------------------------------------------


async def test_days_and_slots_follow_the_agency_and_ignore_what_it_does_not_offer(
    booking: BookingService, uow_factory: UnitOfWorkFactory, agency: Agency
) -> None:
    days = await booking.days(mode=Mode.OFFICE, subject_id=OFFICE_SUBJECT, office_id="liege", language="de",
                              limit=5)
    # Monday 23 November: the lead time leaves nothing at the Liège office, whose Monday ends at noon.
    assert days == [date(2026, 11, 24), WED, THU, FRI, date(2026, 11, 30)]
    later = await booking.days(mode=Mode.OFFICE, subject_id=OFFICE_SUBJECT, office_id="liege", language="de",
                               limit=2, from_day=FRI)
    assert later == [FRI, date(2026, 11, 30)]
    wednesday = await _liege_times(booking, WED)
    assert wednesday[0] == local(WED, 13) and wednesday[-1] == local(WED, 15)

    assert await booking.days(mode=Mode.OFFICE, subject_id="payments", office_id="liege") == []
    assert await booking.days(mode="fax", subject_id=VIDEO_SUBJECT) == []
    assert await booking.slots(mode=Mode.VIDEO, subject_id="nope", day=WED) == []
    assert await booking.slots(mode=Mode.OFFICE, subject_id=OFFICE_SUBJECT, day=WED, office_id="paris") == []
    # Nobody at the Ghent office speaks German.
    assert await booking.slots(mode=Mode.OFFICE, subject_id=OFFICE_SUBJECT, day=THU, office_id="gent",
                               language="de") == []


# -- calendar file ------------------------------------------------------------------------------


async def test_the_calendar_file_has_the_utc_times_and_localized_texts_but_no_personal_data(
    booking: BookingService, uow_factory: UnitOfWorkFactory, agency: Agency
) -> None:
    citizen_id = await _citizen(uow_factory, agency)
    office = _booked(await _book_liege(booking, citizen_id, local(THU, 9)))
    video = _booked(await _book_video(booking, citizen_id, local(WED, 10)))

    for language in LANGUAGES:
        raw = build_ics(agency, office, language, now=NOW_ICS)
        assert b"DTSTART:20261126T080000Z" in raw and b"DTEND:20261126T082000Z" in raw
        event = _only_event(raw)
        assert event.decoded("dtstart") == datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
        assert event.decoded("dtend") == datetime(2026, 11, 26, 8, 20, tzinfo=UTC)
        assert office.id in str(event["uid"])
        subject = agency.subject(OFFICE_SUBJECT)
        assert subject is not None
        assert (subject.name.get(language) or subject.name["fr"]) in str(event["summary"])
        assert "Boulevard Fictif 25" in str(event["location"]) and "4000" in str(event["location"])
        text = raw.decode()
        for value in ("Dupont", "Camille", "camille.dupont", "+32470123456", "850730"):
            assert value not in text

    video_event = _only_event(build_ics(agency, video, "nl", now=NOW_ICS))
    assert video_event.decoded("dtstart") == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert t("nl", "ics.join_later") in str(video_event["description"])
    joined = dataclasses.replace(video, join_url="https://teams.microsoft.com/l/meetup-join/abc")
    joined_event = _only_event(build_ics(agency, joined, "de", now=NOW_ICS))
    assert str(joined_event["url"]) == "https://teams.microsoft.com/l/meetup-join/abc"
    assert "https://teams.microsoft.com/l/meetup-join/abc" in str(joined_event["description"])

    cancelled = await booking.cancel(citizen_id=citizen_id, appointment_id=video.id)
    assert isinstance(cancelled, Cancelled)
    assert str(_only_event(build_ics(agency, cancelled.appointment, "fr", now=NOW_ICS))["status"]) == "CANCELLED"


NOW_ICS = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _only_event(raw: bytes):  # type: ignore[no-untyped-def]
    events = Calendar.from_ical(raw).walk("VEVENT")
    assert len(events) == 1
    return events[0]


def test_every_refusal_reason_reads_naturally_in_every_language() -> None:
    for language in LANGUAGES:
        for key in (*REFUSAL_KEYS, "booking_errors.slot_gone", "booking_errors.slot_gone_none"):
            assert key in catalog(language)
            assert "{" not in t(language, key, phone="+32 2 555 01 00")
        assert "+32 2 555 01 00" in t(language, "booking_errors.cutoff_passed", phone="+32 2 555 01 00")


def _appointment(agency: Agency, counselor_id: str, starts_at: datetime, status: str = "booked") -> Appointment:
    return Appointment(
        id=str(uuid4()), agency_id=agency.id, citizen_id=None, counselor_id=counselor_id, mode="video",
        office_id=None, subject_id=VIDEO_SUBJECT, starts_at=starts_at, ends_at=starts_at + timedelta(minutes=30),
        status=status, interview_language="fr", created_at=NOW, updated_at=NOW,
    )


async def test_the_least_loaded_free_counselor_gets_the_booking(
    booking: BookingService, uow_factory: UnitOfWorkFactory, agency: Agency
) -> None:
    start = local(WED, 10)
    slots = slots_for_day(SlotEngine(agency), mode=Mode.VIDEO, subject_id=VIDEO_SUBJECT, day=WED, now=NOW, busy=[],
                                             language="fr", load={})
    candidates = next(slot.counselor_ids for slot in slots if slot.start == start)
    assert len(candidates) >= 3
    # Without load the tie-break would put `least` last. Every other candidate gets one upcoming
    # appointment (another day); `least` only cancelled ones and one past the horizon, and a
    # counselor who is not a candidate does not count.
    least = candidates[-1]
    outsider = next(counselor.id for counselor in agency.counselors if counselor.id not in candidates)
    async with uow_factory() as uow:
        for counselor_id in candidates[:-1]:
            await uow.appointments.add(_appointment(agency, counselor_id, local(FRI, 9)))
        await uow.appointments.add(_appointment(agency, least, local(THU, 9), "cancelled"))
        await uow.appointments.add(_appointment(agency, least, local(THU, 10), "cancelled"))
        await uow.appointments.add(_appointment(agency, least, local(WED, 9) + timedelta(days=120)))
        await uow.appointments.add(_appointment(agency, outsider, local(FRI, 10)))
        await uow.commit()

    view = _booked(await _book_video(booking, await _citizen(uow_factory, agency), start))

    counselor = agency.counselor(least)
    assert counselor is not None and counselor_name(agency, view) == counselor.display_name
