"""What the privacy service leaves for outside the database (Teams meetings), on SQLite and PostgreSQL:
erasure plans the cancellation of the meetings, with what that job needs once the person is unlinked."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

from bot.domain.agency import Agency
from bot.domain.appointment import Appointment
from bot.domain.clock import FixedClock
from bot.domain.jobs import Job, JobKind
from bot.services.privacy import PrivacyService
from bot.wiring import assemble_services
from storage.unit_of_work import UnitOfWorkFactory
from tests.privacy_support import DETAILS

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


async def citizen_with_appointment(uow_factory: UnitOfWorkFactory, agency: Agency) -> tuple[str, str]:
    async with uow_factory() as uow:
        object_id = str(uuid4())
        citizen = await uow.citizens.upsert_identity(
            agency_id=agency.id, tenant_id="t", aad_object_id=object_id, teams_user_id=f"29:{object_id}",
            conversation_reference=None, locale="fr-BE", now=NOW)
        await uow.citizens.save_personal_data(citizen.id, {
            "first_name": "Gwendolyne", "last_name": "Vanderelst", "birth_date": date(1985, 7, 30),
            "national_register_number": DETAILS["national_register_number"], "email": DETAILS["email"],
            "phone": "+32470123456", "postal_code": "4000", "interview_language": "fr"})
        appointment_id = str(uuid4())
        start = NOW + timedelta(days=2)
        await uow.appointments.add(Appointment(
            id=appointment_id, agency_id=agency.id, citizen_id=citizen.id, counselor_id=agency.counselors[0].id,
            mode="video", subject_id=agency.subjects[0].id, starts_at=start, ends_at=start + timedelta(minutes=30),
            status="booked", interview_language="fr", meeting_id="meeting-42", join_url="https://teams/meet/42",
            created_at=NOW, updated_at=NOW))
        await uow.commit()
    return citizen.id, appointment_id


def privacy_service(agency: Agency, uow_factory: UnitOfWorkFactory) -> PrivacyService:
    services = assemble_services(agency, uow_factory, FixedClock(NOW))
    return PrivacyService(services.agency, services.uow, services.clock, services.audit)


async def _meeting_jobs(uow_factory: UnitOfWorkFactory) -> list[Job]:
    async with uow_factory() as uow:
        return await uow.jobs.listing(kind=str(JobKind.MEETING_CANCEL))


async def test_a_correction_sends_nothing_out_the_meetings_carry_nothing_about_the_person(
    uow_factory: UnitOfWorkFactory, agency: Agency,
) -> None:
    privacy = privacy_service(agency, uow_factory)
    citizen_id, _appointment_id = await citizen_with_appointment(uow_factory, agency)
    unchanged = await privacy.rectify(citizen_id, DETAILS)
    assert unchanged.ok and unchanged.changed == ()
    result = await privacy.rectify(citizen_id, {**DETAILS, "phone": "+32 471 00 00 00"})
    assert [f.value for f in result.changed] == ["phone"]
    assert await _meeting_jobs(uow_factory) == []


async def test_erasure_plans_the_cancellation_of_the_teams_meetings(
    uow_factory: UnitOfWorkFactory, agency: Agency,
) -> None:
    privacy = privacy_service(agency, uow_factory)
    citizen_id, appointment_id = await citizen_with_appointment(uow_factory, agency)
    result = await privacy.erase(citizen_id, language="fr")
    assert [a.id for a in result.cancelled] == [appointment_id]
    [job] = await _meeting_jobs(uow_factory)
    # The appointment loses its meeting id with the person: the job carries what it needs.
    assert job.payload == {"event_id": "meeting-42", "organizer_id": agency.counselors[0].id,
                           "language": "fr", "appointment_id": appointment_id}
    async with uow_factory() as uow:
        stored = await uow.appointments.get(appointment_id)
    assert stored is not None and stored.meeting_id is None
    again = await privacy.erase(citizen_id, language="fr")
    assert again.already_erased and len(await _meeting_jobs(uow_factory)) == 1
