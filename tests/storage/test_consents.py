"""Consent records: append-only proof; the latest record per document kind decides."""

from __future__ import annotations

from datetime import timedelta

from bot.domain.consent import ConsentRecord
from storage.unit_of_work import UnitOfWorkFactory
from tests.storage.helpers import AGENCY, NOW, new_citizen


def _record(citizen_id: str, kind: str, version: str, action: str, minutes: int) -> ConsentRecord:
    return ConsentRecord(
        citizen_id=citizen_id,
        agency_id=AGENCY,
        document_kind=kind,
        version=version,
        content_hash=f"{kind}-{version}".ljust(64, "0"),
        language="fr",
        action=action,
        channel="msteams",
        activity_id=f"activity-{minutes}",
        occurred_at=NOW + timedelta(minutes=minutes),
    )


async def test_history_keeps_every_record_in_order(uow_factory: UnitOfWorkFactory) -> None:
    citizen_id = await new_citizen(uow_factory)
    async with uow_factory() as uow:
        await uow.consents.append(_record(citizen_id, "terms", "1", "accepted", 0))
        await uow.consents.append(_record(citizen_id, "privacy", "1", "accepted", 1))
        await uow.consents.append(_record(citizen_id, "privacy", "1", "withdrawn", 2))
        await uow.consents.append(_record(citizen_id, "privacy", "2", "accepted", 3))
        await uow.commit()

    async with uow_factory() as uow:
        history = await uow.consents.history(citizen_id)

    assert [(r.document_kind, r.version, r.action) for r in history] == [
        ("terms", "1", "accepted"),
        ("privacy", "1", "accepted"),
        ("privacy", "1", "withdrawn"),
        ("privacy", "2", "accepted"),
    ]
    assert [r.occurred_at for r in history] == [NOW + timedelta(minutes=m) for m in range(4)]


async def test_latest_per_kind_is_the_newest_record_of_each_kind(uow_factory: UnitOfWorkFactory) -> None:
    citizen_id = await new_citizen(uow_factory)
    other_id = await new_citizen(uow_factory, "object-2")
    async with uow_factory() as uow:
        await uow.consents.append(_record(citizen_id, "terms", "1", "accepted", 0))
        await uow.consents.append(_record(citizen_id, "privacy", "1", "accepted", 1))
        await uow.consents.append(_record(citizen_id, "terms", "2", "accepted", 2))
        await uow.consents.append(_record(citizen_id, "privacy", "1", "withdrawn", 3))
        await uow.consents.append(_record(other_id, "terms", "3", "accepted", 4))
        await uow.commit()

    async with uow_factory() as uow:
        latest = await uow.consents.latest_per_kind(citizen_id)
        nobody = await uow.consents.latest_per_kind("no-such-citizen")

    assert {kind: (r.version, r.action) for kind, r in latest.items()} == {
        "terms": ("2", "accepted"),
        "privacy": ("1", "withdrawn"),
    }
    assert nobody == {}
