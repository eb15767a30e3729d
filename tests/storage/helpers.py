"""Small builders shared by the storage tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from bot.domain.appointment import Appointment
from storage.unit_of_work import UnitOfWorkFactory

NOW = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)
AGENCY = "example-be"


async def new_citizen(uow_factory: UnitOfWorkFactory, object_id: str = "object-1") -> str:
    async with uow_factory() as uow:
        citizen = await uow.citizens.upsert_identity(
            agency_id=AGENCY,
            tenant_id="tenant-1",
            aad_object_id=object_id,
            teams_user_id=f"29:{object_id}",
            conversation_reference=None,
            locale="fr-BE",
            now=NOW,
        )
        await uow.commit()
        return citizen.id


def appointment(
    citizen_id: str | None,
    counselor_id: str,
    starts_at: datetime,
    minutes: int = 30,
    *,
    status: str = "booked",
    agency_id: str = AGENCY,
) -> Appointment:
    return Appointment(
        id=str(uuid4()),
        agency_id=agency_id,
        citizen_id=citizen_id,
        counselor_id=counselor_id,
        mode="video",
        subject_id="benefits",
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=minutes),
        status=status,
        interview_language="fr",
        created_at=NOW,
        updated_at=NOW,
    )


def steps(starts_at: datetime, minutes: int, step_minutes: int = 15) -> list[datetime]:
    return [starts_at + timedelta(minutes=offset) for offset in range(0, minutes, step_minutes)]
