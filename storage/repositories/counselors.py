"""Counselors: the agency file's counselors mirrored with the Teams chat the bot reaches them in."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.people import CounselorAccount
from storage.repositories.statements import dialect_insert
from storage.tables import counselors as _COUNSELORS


class CounselorRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, counselor_id: str) -> CounselorAccount | None:
        return await self._session.get(CounselorAccount, counselor_id)

    async def list_for_agency(self, agency_id: str, *, active_only: bool = True) -> list[CounselorAccount]:
        statement = select(CounselorAccount).where(_COUNSELORS.c.agency_id == agency_id)
        if active_only:
            statement = statement.where(_COUNSELORS.c.active.is_(True))
        return list(await self._session.scalars(statement.order_by(_COUNSELORS.c.id)))

    async def upsert(
        self, counselor_id: str, agency_id: str, display_name: str, *, active: bool = True
    ) -> None:
        """Mirror one counselor of the agency file; keeps the stored conversation reference."""
        statement = dialect_insert(self._session, CounselorAccount).values(
            id=counselor_id, agency_id=agency_id, display_name=display_name, active=active
        )
        statement = statement.on_conflict_do_update(
            index_elements=[_COUNSELORS.c.id],
            set_={"agency_id": agency_id, "display_name": display_name, "active": active},
        )
        await self._session.execute(statement)

    async def set_conversation_reference(self, counselor_id: str, reference: dict[str, Any],
                                         locale: str | None = None) -> None:
        """Where the bot reaches them (their personal chat), and its language when known."""
        values: dict[str, Any] = {"conversation_reference": reference}
        if locale is not None:
            values["locale"] = locale
        await self._session.execute(
            update(CounselorAccount).where(_COUNSELORS.c.id == counselor_id).values(**values),
            execution_options={"synchronize_session": "fetch"},
        )
