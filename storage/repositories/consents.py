"""Consent proof: append-only records of acceptances and withdrawals (no update, no delete here)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.consent import ConsentRecord, LatestConsentRecord
from storage.tables import consent_records as _CONSENTS

_LATEST_CONSENTS = select(
    _CONSENTS.c.id, _CONSENTS.c.document_kind, _CONSENTS.c.version, _CONSENTS.c.content_hash,
    _CONSENTS.c.action, _CONSENTS.c.occurred_at,
).where(_CONSENTS.c.id.in_(
    select(func.max(_CONSENTS.c.id))
    .where(_CONSENTS.c.citizen_id == bindparam("citizen_id"))
    .group_by(_CONSENTS.c.document_kind)
    .scalar_subquery()
))
_INSERT_CONSENT = insert(_CONSENTS)


class ConsentRepository:
    """Consent proof is append-only: there is deliberately no update or delete here."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def append(self, record: ConsentRecord) -> ConsentRecord:
        self._session.add(record)
        await self._session.flush()
        return record

    async def add(
        self, *, citizen_id: str, agency_id: str, document_kind: str, version: str, content_hash: str,
        language: str, action: str, channel: str, activity_id: str | None, occurred_at: datetime,
    ) -> None:
        """Append one record (as `append`, without building an entity)."""
        await self._session.execute(_INSERT_CONSENT, {
            "citizen_id": citizen_id, "agency_id": agency_id, "document_kind": document_kind, "version": version,
            "content_hash": content_hash, "language": language, "action": action, "channel": channel,
            "activity_id": activity_id, "occurred_at": occurred_at,
        })

    async def latest_per_kind(self, citizen_id: str) -> dict[str, LatestConsentRecord]:
        """The newest record of each document kind (acceptance or withdrawal), by kind."""
        rows = await self._session.execute(_LATEST_CONSENTS, {"citizen_id": citizen_id})
        return {row.document_kind: LatestConsentRecord._make(row) for row in rows}

    async def history(self, citizen_id: str) -> list[ConsentRecord]:
        statement = select(ConsentRecord).where(_CONSENTS.c.citizen_id == citizen_id).order_by(_CONSENTS.c.id)
        return list(await self._session.scalars(statement))
