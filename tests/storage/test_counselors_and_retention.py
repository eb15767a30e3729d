"""Counselors mirrored from the agency file, and the queries retention and no-show checks run."""

from __future__ import annotations

from datetime import timedelta

from storage.unit_of_work import UnitOfWorkFactory
from tests.storage.helpers import AGENCY, NOW, appointment, new_citizen


async def test_counselor_upsert_keeps_the_conversation_reference(uow_factory: UnitOfWorkFactory) -> None:
    reference = {"conversation": {"id": "a:counselor"}}
    async with uow_factory() as uow:
        await uow.counselors.upsert("c1", AGENCY, "Claire Martin")
        await uow.counselors.upsert("c2", AGENCY, "Jan Peeters")
        await uow.counselors.set_conversation_reference("c1", reference)
        await uow.commit()

    async with uow_factory() as uow:
        await uow.counselors.upsert("c1", AGENCY, "Claire Martin-Dubois")
        await uow.counselors.upsert("c2", AGENCY, "Jan Peeters", active=False)
        await uow.commit()

    async with uow_factory() as uow:
        active = await uow.counselors.list_for_agency(AGENCY)
        everyone = await uow.counselors.list_for_agency(AGENCY, active_only=False)
    assert [(c.id, c.display_name, c.conversation_reference) for c in active] == [
        ("c1", "Claire Martin-Dubois", reference)
    ]
    assert [c.id for c in everyone] == ["c1", "c2"]


async def test_inactive_since_lists_citizens_not_seen_and_not_erased(uow_factory: UnitOfWorkFactory) -> None:
    old = await new_citizen(uow_factory, "old")
    erased = await new_citizen(uow_factory, "erased")
    recent = await new_citizen(uow_factory, "recent")
    async with uow_factory() as uow:
        await uow.citizens.clear_personal_data(erased, NOW)
        await uow.citizens.upsert_identity(
            agency_id=AGENCY,
            tenant_id="tenant-1",
            aad_object_id="recent",
            teams_user_id=None,
            conversation_reference=None,
            locale=None,
            now=NOW + timedelta(days=400),
        )
        await uow.commit()

    async with uow_factory() as uow:
        candidates = await uow.citizens.inactive_since(AGENCY, NOW + timedelta(days=365))

    assert [c.id for c in candidates] == [old]
    assert recent not in {c.id for c in candidates}


async def test_appointment_queries_for_no_show_and_retention(uow_factory: UnitOfWorkFactory) -> None:
    citizen_id = await new_citizen(uow_factory)
    async with uow_factory() as uow:
        finished = appointment(citizen_id, "c1", NOW - timedelta(days=100))
        anonymised = appointment(None, "c1", NOW - timedelta(days=200), status="done")
        anonymised.anonymised_at = NOW - timedelta(days=1)
        upcoming = appointment(citizen_id, "c1", NOW + timedelta(days=1))
        for row in (finished, anonymised, upcoming):
            await uow.appointments.add(row)
        await uow.commit()

    async with uow_factory() as uow:
        overdue = await uow.appointments.booked_ending_before(AGENCY, NOW)
        to_anonymise = await uow.appointments.not_anonymised_before(AGENCY, NOW - timedelta(days=30))
        history = await uow.appointments.all_for_citizen(citizen_id)

    assert [a.id for a in overdue] == [finished.id]
    assert [a.id for a in to_anonymise] == [finished.id]
    assert [a.id for a in history] == [finished.id, upcoming.id]
