"""The privacy service's hooks for what lies outside the database (Teams meetings, invitations), on
SQLite and PostgreSQL: called after commit, with what the meetings feature will need."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

from bot.domain.agency import Agency
from bot.domain.appointment import Appointment
from bot.domain.clock import FixedClock
from bot.services.privacy import PrivacyService
from bot.wiring import assemble_services
from storage.unit_of_work import UnitOfWorkFactory
from tests.privacy_support import DETAILS

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


class RecordingHooks:
    def __init__(self) -> None:
        self.cancelled: list[tuple[list[str], list[str]]] = []
        self.changed: list[tuple[str, list[str]]] = []

    async def appointments_cancelled(self, appointment_ids: Sequence[str], meeting_ids: Sequence[str]) -> None:
        self.cancelled.append((list(appointment_ids), list(meeting_ids)))

    async def personal_data_changed(self, citizen_id: str, appointment_ids: Sequence[str]) -> None:
        self.changed.append((citizen_id, list(appointment_ids)))


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


def privacy_service(agency: Agency, uow_factory: UnitOfWorkFactory, hooks: RecordingHooks) -> PrivacyService:
    clock = FixedClock(NOW)
    services = assemble_services(agency, uow_factory, clock)
    return PrivacyService(services, hooks)


async def test_a_correction_tells_the_hook_which_upcoming_appointments_to_refresh(
    uow_factory: UnitOfWorkFactory, agency: Agency,
) -> None:
    hooks = RecordingHooks()
    privacy = privacy_service(agency, uow_factory, hooks)
    citizen_id, appointment_id = await citizen_with_appointment(uow_factory, agency)
    unchanged = await privacy.rectify(citizen_id, DETAILS)
    assert unchanged.ok and unchanged.changed == () and hooks.changed == []
    result = await privacy.rectify(citizen_id, {**DETAILS, "phone": "+32 471 00 00 00"})
    assert [f.value for f in result.changed] == ["phone"]
    assert hooks.changed == [(citizen_id, [appointment_id])]


async def test_erasure_hands_the_meetings_to_cancel_to_the_hook(uow_factory: UnitOfWorkFactory, agency: Agency) -> None:
    hooks = RecordingHooks()
    privacy = privacy_service(agency, uow_factory, hooks)
    citizen_id, appointment_id = await citizen_with_appointment(uow_factory, agency)
    result = await privacy.erase(citizen_id, language="fr")
    assert [a.id for a in result.cancelled] == [appointment_id]
    assert hooks.cancelled == [([appointment_id], ["meeting-42"])]
    again = await privacy.erase(citizen_id, language="fr")
    assert again.already_erased and len(hooks.cancelled) == 1
