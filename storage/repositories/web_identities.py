"""Web identities: which citizen a Direct Line user id was proven to be, and each citizen's manage-link epoch."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.repositories.statements import row_count
from storage.tables import web_identities as _IDENTITIES
from storage.tables import web_link_epochs as _EPOCHS

_I = _IDENTITIES.c
_E = _EPOCHS.c


class WebIdentityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def bind(self, user_id: str, conversation_id: str, citizen_id: str, *, proof: str,
                   now: datetime) -> None:
        """Bind a fresh Direct Line user id in its token's conversation (a new id for every proof)."""
        await self._session.execute(insert(_IDENTITIES), {
            "user_id": user_id, "conversation_id": conversation_id, "citizen_id": citizen_id,
            "proof": proof, "created_at": now})

    async def citizen_of(self, user_id: str, conversation_id: str) -> str | None:
        """The citizen bound to this user id in this conversation; None in any other conversation."""
        return await self._session.scalar(select(_I.citizen_id).where(
            _I.user_id == user_id, _I.conversation_id == conversation_id))

    async def link_epoch(self, citizen_id: str) -> int:
        """0 until the citizen's links were first revoked."""
        return await self._session.scalar(select(_E.epoch).where(_E.citizen_id == citizen_id)) or 0

    async def revoke(self, citizen_id: str) -> int:
        """Revoke every manage link issued so far and unbind every web conversation; the bindings removed."""
        raised = await self._session.execute(update(_EPOCHS).where(_E.citizen_id == citizen_id)
                                             .values(epoch=_E.epoch + 1))
        if row_count(raised) == 0:
            await self._session.execute(insert(_EPOCHS), {"citizen_id": citizen_id, "epoch": 1})
        removed = await self._session.execute(delete(_IDENTITIES).where(_I.citizen_id == citizen_id))
        return row_count(removed)
