"""Builders shared by the booking tests and the booking race worker: services, citizens, personal data."""

from __future__ import annotations

from datetime import date, datetime
from uuid import uuid4

from bot.domain.agency import Agency, PersonalField
from bot.domain.clock import FixedClock
from bot.services.booking import BookingService
from bot.services.container import Services
from bot.wiring import assemble_services
from storage.unit_of_work import UnitOfWorkFactory


def build_services(agency: Agency, uow_factory: UnitOfWorkFactory, clock: FixedClock) -> Services:
    return assemble_services(agency, uow_factory, clock)


def build_booking(agency: Agency, uow_factory: UnitOfWorkFactory, clock: FixedClock) -> BookingService:
    return booking_over(build_services(agency, uow_factory, clock))


def booking_over(services: Services) -> BookingService:
    """The booking service over the given services, built as bot.wiring builds it."""
    return BookingService(services.agency, services.uow, services.clock, services.audit, slots=services.slots,
                          availability=services.availability, meetings=services.meetings, email=services.email)


def national_register_number(birth: date, serial: int = 123) -> str:
    """A valid Belgian national register number for someone born in the 1900s."""
    base = f"{birth:%y%m%d}{serial:03d}"
    return f"{base}{97 - int(base) % 97:02d}"


def personal_data(postal_code: str = "1000", *, first_name: str = "Camille") -> dict[PersonalField, str]:
    """Valid answers to example-be's form, as the card submits them."""
    return {
        PersonalField.FIRST_NAME: first_name,
        PersonalField.LAST_NAME: "Dupont",
        PersonalField.BIRTH_DATE: "30/07/1985",
        PersonalField.NATIONAL_REGISTER_NUMBER: national_register_number(date(1985, 7, 30)),
        PersonalField.EMAIL: "camille.dupont@example.org",
        PersonalField.PHONE: "+32 470 12 34 56",
        PersonalField.POSTAL_CODE: postal_code,
    }


async def new_citizens(uow_factory: UnitOfWorkFactory, agency: Agency, now: datetime, count: int = 1,
                       *, reminders_opt_out: bool = False) -> list[str]:
    """Citizens who have talked to the bot (Teams identity only), in one transaction."""
    ids: list[str] = []
    async with uow_factory() as uow:
        for _ in range(count):
            object_id = str(uuid4())
            citizen = await uow.citizens.upsert_identity(
                agency_id=agency.id, tenant_id="tenant-1", aad_object_id=object_id,
                teams_user_id=f"29:{object_id}", conversation_reference=None, locale="fr-BE", now=now,
            )
            if reminders_opt_out:
                await uow.citizens.set_flags(citizen.id, reminders_opt_out=True)
            ids.append(citizen.id)
        await uow.commit()
    return ids
