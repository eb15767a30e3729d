"""Citizens: one row per Teams identity, refreshed on each contact; personal data saved and erased."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest

from storage.unit_of_work import UnitOfWorkFactory

NOW = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)
REFERENCE = {"conversation": {"id": "a:1"}, "serviceUrl": "https://smba.example/emea/"}


async def _touch(uow_factory: UnitOfWorkFactory, **overrides: object) -> tuple[str, str | None]:
    arguments: dict[str, object] = {
        "agency_id": "example-be",
        "tenant_id": "tenant-1",
        "aad_object_id": "object-1",
        "teams_user_id": "29:user-1",
        "conversation_reference": REFERENCE,
        "locale": "fr-BE",
        "now": NOW,
    }
    arguments.update(overrides)
    async with uow_factory() as uow:
        citizen = await uow.citizens.upsert_identity(**arguments)  # type: ignore[arg-type]
        await uow.commit()
        return citizen.id, citizen.locale


async def test_first_contact_creates_the_citizen(uow_factory: UnitOfWorkFactory) -> None:
    citizen_id, locale = await _touch(uow_factory)

    async with uow_factory() as uow:
        citizen = await uow.citizens.get_by_identity("example-be", "tenant-1", "object-1")
    assert citizen is not None
    assert citizen.id == citizen_id and locale == "fr-BE"
    assert citizen.conversation_reference == REFERENCE
    assert citizen.created_at == NOW and citizen.last_seen_at == NOW
    assert citizen.processing_restricted is False and citizen.erased_at is None


async def test_later_contact_updates_the_same_citizen(uow_factory: UnitOfWorkFactory) -> None:
    first_id, _ = await _touch(uow_factory)
    later = NOW + timedelta(days=3)
    new_reference = {**REFERENCE, "serviceUrl": "https://smba.example/amer/"}

    second_id, locale = await _touch(
        uow_factory, conversation_reference=new_reference, locale=None, now=later
    )

    assert second_id == first_id
    assert locale == "fr-BE"  # no locale this time: the known one stays
    async with uow_factory() as uow:
        citizen = await uow.citizens.get(first_id)
    assert citizen is not None
    assert citizen.conversation_reference == new_reference
    assert citizen.last_seen_at == later and citizen.created_at == NOW


async def test_identities_are_separate_per_agency_and_tenant(uow_factory: UnitOfWorkFactory) -> None:
    ids = {
        (await _touch(uow_factory))[0],
        (await _touch(uow_factory, agency_id="example-fr"))[0],
        (await _touch(uow_factory, tenant_id="tenant-2"))[0],
    }
    assert len(ids) == 3


async def test_concurrent_first_contacts_create_one_citizen(uow_factory: UnitOfWorkFactory) -> None:
    ids = await asyncio.gather(*(_touch(uow_factory) for _ in range(5)))

    assert len(set(ids)) == 1


async def test_identity_without_tenant_is_found_again(uow_factory: UnitOfWorkFactory) -> None:
    # The Bot Framework Emulator sends no tenant; NULLs never match a unique constraint.
    first_id, _ = await _touch(uow_factory, tenant_id=None)
    second_id, _ = await _touch(uow_factory, tenant_id=None, now=NOW + timedelta(minutes=5))

    assert first_id == second_id
    async with uow_factory() as uow:
        assert (await uow.citizens.get_by_identity("example-be", None, "object-1")) is not None
        assert (await uow.citizens.get_by_identity("example-be", "tenant-1", "object-1")) is None


async def test_personal_data_is_saved_and_erased(uow_factory: UnitOfWorkFactory) -> None:
    citizen_id, _ = await _touch(uow_factory)
    async with uow_factory() as uow:
        await uow.citizens.save_personal_data(
            citizen_id,
            {
                "first_name": "Amélie",
                "last_name": "Dupont",
                "birth_date": date(1990, 2, 3),
                "phone": "+3281000000",
            },
        )
        await uow.commit()
    async with uow_factory() as uow:
        citizen = await uow.citizens.get(citizen_id)
        assert citizen is not None
        assert (citizen.first_name, citizen.last_name, citizen.birth_date) == (
            "Amélie",
            "Dupont",
            date(1990, 2, 3),
        )

        erased_at = NOW + timedelta(days=1)
        await uow.citizens.clear_personal_data(citizen_id, erased_at)
        await uow.commit()
    async with uow_factory() as uow:
        citizen = await uow.citizens.get(citizen_id)
    assert citizen is not None
    assert citizen.first_name is None and citizen.birth_date is None and citizen.phone is None
    assert citizen.conversation_reference is None
    assert citizen.erased_at == erased_at


async def test_only_personal_columns_can_be_saved_as_personal_data(uow_factory: UnitOfWorkFactory) -> None:
    citizen_id, _ = await _touch(uow_factory)
    async with uow_factory() as uow:
        with pytest.raises(ValueError):
            await uow.citizens.save_personal_data(citizen_id, {"erased_at": None})


async def test_uncommitted_work_is_rolled_back(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        await uow.citizens.upsert_identity(
            agency_id="example-be",
            tenant_id="t",
            aad_object_id="o",
            teams_user_id=None,
            conversation_reference=None,
            locale=None,
            now=NOW,
        )
    with pytest.raises(RuntimeError):
        async with uow_factory() as uow:
            await uow.citizens.upsert_identity(
                agency_id="example-be",
                tenant_id="t2",
                aad_object_id="o",
                teams_user_id=None,
                conversation_reference=None,
                locale=None,
                now=NOW,
            )
            raise RuntimeError("the use case failed")

    async with uow_factory() as uow:
        assert await uow.citizens.get_by_identity("example-be", "t", "o") is None
        assert await uow.citizens.get_by_identity("example-be", "t2", "o") is None


@pytest.mark.parametrize("tenant_id", ["tenant-1", None], ids=["with-tenant", "without-tenant"])
async def test_contact_without_reference_or_locale_keeps_the_stored_ones(
    uow_factory: UnitOfWorkFactory, tenant_id: str | None
) -> None:
    citizen_id, _ = await _touch(uow_factory, tenant_id=tenant_id)

    again_id, locale = await _touch(
        uow_factory,
        tenant_id=tenant_id,
        conversation_reference=None,
        locale=None,
        now=NOW + timedelta(hours=1),
    )

    assert again_id == citizen_id and locale == "fr-BE"
    async with uow_factory() as uow:
        citizen = await uow.citizens.get(citizen_id)
    assert citizen is not None and citizen.conversation_reference == REFERENCE


async def test_without_object_id_people_are_told_apart_by_teams_user_id(
    uow_factory: UnitOfWorkFactory,
) -> None:
    first, _ = await _touch(uow_factory, tenant_id=None, aad_object_id=None, teams_user_id="29:a")
    second, _ = await _touch(uow_factory, tenant_id=None, aad_object_id=None, teams_user_id="29:b")
    first_again, _ = await _touch(uow_factory, tenant_id=None, aad_object_id=None, teams_user_id="29:a")

    assert first != second
    assert first_again == first


async def test_saving_personal_data_for_a_booking_returns_the_reminder_flags(uow_factory: UnitOfWorkFactory) -> None:
    citizen_id, _ = await _touch(uow_factory)
    async with uow_factory() as uow:
        await uow.citizens.set_flags(citizen_id, processing_restricted=True)
        flags = await uow.citizens.save_personal_data_for_booking(
            citizen_id, {"first_name": "Amélie", "birth_date": date(1990, 2, 3), "interview_language": "fr"})
        nobody = await uow.citizens.save_personal_data_for_booking("no-such-citizen", {"first_name": "X"})
        again = await uow.citizens.save_personal_data_for_booking(citizen_id, {"phone": "+3281000000"})
        with pytest.raises(ValueError):
            await uow.citizens.save_personal_data_for_booking(citizen_id, {"erased_at": None})
        with pytest.raises(ValueError):
            await uow.citizens.save_personal_data_for_booking(citizen_id, {})
        await uow.commit()

    assert flags == (False, True) and flags.processing_restricted and not flags.reminders_opt_out
    assert nobody is None and again == flags
    async with uow_factory() as uow:
        citizen = await uow.citizens.get(citizen_id)
    assert citizen is not None
    assert (citizen.first_name, citizen.birth_date, citizen.interview_language, citizen.phone) == (
        "Amélie", date(1990, 2, 3), "fr", "+3281000000")
