"""Retention rules on SQLite and PostgreSQL: which consent proofs expire, agencies that keep no statistics,
erasure and retention without statistics, and `guichet retention run` on the real clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.domain.agency import Agency
from bot.domain.appointment import Appointment
from bot.domain.audit import EventType
from bot.domain.clock import FixedClock
from bot.domain.consent import ConsentRecord
from bot.domain.jobs import Job
from bot.domain.people import Citizen
from bot.domain.retention import months_before
from bot.services.audit import AuditTrail, citizen_actor, verify
from bot.services.container import Services
from bot.services.privacy import PrivacyService
from bot.services.retention import RetentionService
from bot.wiring import assemble_services
from storage.db import create_engine, create_session_factory
from storage.mapping import SlotClaim
from storage.migrate import upgrade_database
from storage.unit_of_work import UnitOfWorkFactory

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def services_for(agency: Agency, uow_factory: UnitOfWorkFactory, clock: FixedClock) -> Services:
    return assemble_services(agency, uow_factory, clock)


async def new_citizen(uow_factory: UnitOfWorkFactory, agency: Agency, seen: datetime) -> str:
    async with uow_factory() as uow:
        object_id = str(uuid4())
        citizen = await uow.citizens.upsert_identity(
            agency_id=agency.id, tenant_id="tenant-1", aad_object_id=object_id, teams_user_id=f"29:{object_id}",
            conversation_reference={"channelId": "msteams", "conversation": {"id": f"a:{object_id}"},
                                    "user": {"id": f"29:{object_id}", "name": "Someone"}},
            locale="fr-BE", now=seen,
        )
        await uow.citizens.save_personal_data(citizen.id, {"first_name": "Ysaline", "email": "ysaline@example.org"})
        await uow.commit()
        return citizen.id


def consent(citizen_id: str, agency: Agency, kind: str, version: str, action: str, at: datetime) -> ConsentRecord:
    return ConsentRecord(citizen_id=citizen_id, agency_id=agency.id, document_kind=kind, version=version,
                         content_hash="0" * 64, language="fr", action=action, channel="msteams", activity_id=None,
                         occurred_at=at)


async def add_appointment(uow_factory: UnitOfWorkFactory, agency: Agency, citizen_id: str, start: datetime,
                          now: datetime) -> str:
    appointment_id = str(uuid4())
    async with uow_factory() as uow:
        await uow.appointments.add(Appointment(
            id=appointment_id, agency_id=agency.id, citizen_id=citizen_id, counselor_id=agency.counselors[0].id,
            mode="video", subject_id=agency.subjects[0].id, starts_at=start, ends_at=start + timedelta(minutes=30),
            status="booked", interview_language="fr", cancel_note="Je serai en retard", join_url="https://meet/x",
            created_at=now, updated_at=now,
        ))
        await uow.slot_claims.claim(appointment_id, agency.counselors[0].id, [start, start + timedelta(minutes=15)])
        await uow.jobs.schedule("reminder", start - timedelta(hours=1), {"appointment_id": appointment_id},
                                f"reminder:{appointment_id}", appointment_id=appointment_id, now=now)
        await uow.commit()
    return appointment_id


async def all_of(uow_factory: UnitOfWorkFactory, model: Any) -> list[Any]:
    async with uow_factory() as uow:
        return list((await uow.session.execute(select(model))).scalars())


def test_months_before_keeps_the_wall_clock_and_clamps_the_day() -> None:
    assert months_before(datetime(2026, 3, 31, 10, tzinfo=UTC), 1) == datetime(2026, 2, 28, 10, tzinfo=UTC)
    assert months_before(datetime(2028, 3, 31, tzinfo=UTC), 1) == datetime(2028, 2, 29, tzinfo=UTC)
    assert months_before(datetime(2026, 1, 15, tzinfo=UTC), 24) == datetime(2024, 1, 15, tzinfo=UTC)
    assert months_before(datetime(2026, 1, 15, tzinfo=UTC), 13) == datetime(2024, 12, 15, tzinfo=UTC)


async def test_consent_proofs_expire_after_being_superseded_or_withdrawn_never_while_in_force(
    uow_factory: UnitOfWorkFactory, agency: Agency,
) -> None:
    clock = FixedClock(NOW)
    # Both still use the service when the run comes (otherwise they would be erased as inactive).
    keeps = await new_citizen(uow_factory, agency, datetime(2031, 5, 16, tzinfo=UTC))
    withdrew = await new_citizen(uow_factory, agency, datetime(2031, 5, 16, tzinfo=UTC))
    async with uow_factory() as uow:
        for record in (
            consent(keeps, agency, "terms", "v1", "accepted", NOW),
            consent(keeps, agency, "terms", "v2", "accepted", NOW + timedelta(days=30)),  # supersedes v1
            consent(withdrew, agency, "privacy", "v1", "accepted", NOW),
            consent(withdrew, agency, "privacy", "v1", "withdrawn", NOW + timedelta(days=60)),
        ):
            await uow.consents.append(record)
        await uow.commit()
    retention = RetentionService(agency, uow_factory, clock, AuditTrail(agency.id, clock))

    # 60 months after the supersession (1 April 2026) but not yet after the withdrawal (1 May 2026).
    clock.set(datetime(2031, 4, 16, tzinfo=UTC))
    report = await retention.run()
    left = {(r.citizen_id, r.version, r.action) for r in await all_of(uow_factory, ConsentRecord)}
    assert (keeps, "v1", "accepted") not in left and (keeps, "v2", "accepted") in left
    assert {(withdrew, "v1", "accepted"), (withdrew, "v1", "withdrawn")} <= left
    assert report.consent_records_deleted == 1

    clock.set(datetime(2031, 5, 16, tzinfo=UTC))
    report = await retention.run()
    left = {(r.citizen_id, r.version, r.action) for r in await all_of(uow_factory, ConsentRecord)}
    assert left == {(keeps, "v2", "accepted")}, "the acceptance in force stays, however old"
    assert report.consent_records_deleted == 2


async def test_without_statistics_erasure_and_retention_delete_appointments(
    uow_factory: UnitOfWorkFactory, agency: Agency,
) -> None:
    agency = agency.model_copy(update={"retention": agency.retention.model_copy(
        update={"keep_anonymised_statistics": False})})
    clock = FixedClock(NOW)
    services = services_for(agency, uow_factory, clock)
    core = (services.agency, services.uow, services.clock, services.audit)
    erased = await new_citizen(uow_factory, agency, NOW)
    await add_appointment(uow_factory, agency, erased, NOW - timedelta(days=10), NOW)
    await add_appointment(uow_factory, agency, erased, NOW + timedelta(days=2), NOW)
    result = await PrivacyService(*core).erase(erased, language="fr")
    assert len(result.cancelled) == 1 and result.deleted == 2 and result.anonymised == 0
    assert await all_of(uow_factory, Appointment) == []
    assert await all_of(uow_factory, SlotClaim) == [] and await all_of(uow_factory, Job) == []

    kept = await new_citizen(uow_factory, agency, NOW + timedelta(days=800))
    await add_appointment(uow_factory, agency, kept, NOW - timedelta(days=800), NOW)
    clock.set(NOW + timedelta(days=801))
    report = await RetentionService(*core).run()
    assert report.appointments_deleted == 1 and report.citizens_erased == 0
    assert await all_of(uow_factory, Appointment) == []
    assert (await verify(uow_factory, agency.id)).ok


async def test_with_statistics_old_appointments_lose_every_link_to_the_person(
    uow_factory: UnitOfWorkFactory, agency: Agency,
) -> None:
    clock = FixedClock(NOW)
    active = await new_citizen(uow_factory, agency, NOW + timedelta(days=900))
    appointment_id = await add_appointment(uow_factory, agency, active, NOW - timedelta(days=800), NOW)
    clock.set(NOW + timedelta(days=10))
    report = await RetentionService(agency, uow_factory, clock, AuditTrail(agency.id, clock)).run()
    assert report.appointments_anonymised == 1 and report.citizens_erased == 0
    [row] = await all_of(uow_factory, Appointment)
    assert row.id == appointment_id and row.citizen_id is None and row.anonymised_at is not None
    assert (row.cancel_note, row.join_url, row.meeting_id) == (None, None, None)
    assert (row.subject_id, row.mode, row.interview_language) == (agency.subjects[0].id, "video", "fr")
    [citizen] = await all_of(uow_factory, Citizen)
    assert citizen.first_name == "Ysaline", "an active citizen keeps their data"


async def test_guichet_retention_run_on_the_real_clock(
    database_url: str, agency: Agency, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    await upgrade_database(database_url)
    engine = create_engine(database_url)
    try:
        await _retention_on_the_real_clock(UnitOfWorkFactory(create_session_factory(engine)), agency, database_url,
                                           monkeypatch, capsys)
    finally:
        await engine.dispose()


async def _retention_on_the_real_clock(uow_factory: UnitOfWorkFactory, agency: Agency, database_url: str,
                                       monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=agency.retention.citizen_inactive_months * 31 + 10)
    citizen_id = await new_citizen(uow_factory, agency, long_ago)
    await add_appointment(uow_factory, agency, citizen_id, long_ago, long_ago)
    async with uow_factory() as uow:
        await AuditTrail(agency.id, FixedClock(long_ago)).record(
            uow, EventType.BOOKED, actor=citizen_actor(citizen_id), citizen_id=citizen_id, payload={})
        await uow.commit()
    monkeypatch.setenv("GUICHET_DATABASE_URL", database_url)
    monkeypatch.setenv("GUICHET_AGENCY", str(agency.base_dir / "agency.toml"))

    assert await asyncio.to_thread(main, ["retention", "run"]) == 0
    out = capsys.readouterr().out
    assert "appointments anonymised: 1" in out and "citizens erased: 1" in out
    # No consent proof points at the erased citizen: nothing is left of them at all.
    assert "erased citizens removed: 1" in out
    assert await all_of(uow_factory, Citizen) == []
    [appointment] = await all_of(uow_factory, Appointment)
    assert appointment.citizen_id is None

    assert await asyncio.to_thread(main, ["retention", "run"]) == 0
    out = capsys.readouterr().out
    assert "appointments anonymised: 0" in out and "citizens erased: 0" in out
    assert (await verify(uow_factory, agency.id)).ok
