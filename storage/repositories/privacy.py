"""The writes that only erasure and retention may make: unlinking, anonymising and deleting.

The everyday repositories never delete proofs or unlink people; these statements do, and only the
privacy and retention services call them, inside their own unit of work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.appointment import Appointment
from bot.domain.consent import ConsentAction, ConsentRecord
from bot.domain.jobs import Job, JobStatus
from bot.domain.people import Citizen
from storage.bot_state import state_keys_of
from storage.mapping import BotStateItem, SlotClaim
from storage.repositories.citizens import PERSONAL_COLUMNS
from storage.repositories.statements import NO_SYNC, row_count
from storage.tables import (
    appointments,
    bot_state,
    citizen_claims,
    citizens,
    consent_records,
    scheduled_jobs,
    slot_claims,
)

# Everything on a citizen row that identifies the person or reaches them, beside PERSONAL_COLUMNS.
IDENTITY_COLUMNS: tuple[str, ...] = (
    "tenant_id", "aad_object_id", "teams_user_id", "conversation_reference", "locale",
)
# Appointment fields that may name or reach the person (a typed note, the meeting and its link).
APPOINTMENT_LINK_COLUMNS: tuple[str, ...] = ("cancel_note", "meeting_id", "join_url")
_FETCH = {"synchronize_session": "fetch"}
_A = appointments.c
_C = citizens.c
_J = scheduled_jobs.c
_R = consent_records.c


class PrivacyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def erase_identity(self, citizen_id: str, now: datetime) -> None:
        """Keep the row (consent proofs still point at its pseudonymous id) with nothing left on it
        that identifies or reaches the person."""
        values: dict[str, Any] = dict.fromkeys((*PERSONAL_COLUMNS, *IDENTITY_COLUMNS))
        values.update(erased_at=now, last_seen_at=now)
        await self._session.execute(
            update(Citizen).where(_C.id == citizen_id).values(**values), execution_options=_FETCH,
        )

    async def appointment_ids_of(self, citizen_id: str) -> list[str]:
        return list(await self._session.scalars(select(_A.id).where(_A.citizen_id == citizen_id)))

    async def anonymise_appointments(self, ids: Sequence[str], now: datetime) -> int:
        """Appointments kept for statistics: no citizen, no note, no meeting link."""
        if not ids:
            return 0
        values: dict[str, Any] = dict.fromkeys(APPOINTMENT_LINK_COLUMNS)
        values.update(citizen_id=None, anonymised_at=now)
        await self._delete_citizen_claims(ids)
        result = await self._session.execute(
            update(Appointment).where(_A.id.in_(list(ids))).values(**values), execution_options=_FETCH,
        )
        return row_count(result)

    async def delete_appointments(self, ids: Sequence[str]) -> int:
        """Appointments, their slot claims and their jobs, gone (no statistics kept)."""
        if not ids:
            return 0
        wanted = list(ids)
        await self._session.execute(delete(Job).where(_J.appointment_id.in_(wanted)),
                                    execution_options=NO_SYNC)
        await self._session.execute(delete(SlotClaim).where(slot_claims.c.appointment_id.in_(wanted)),
                                    execution_options=NO_SYNC)
        await self._delete_citizen_claims(wanted)
        result = await self._session.execute(delete(Appointment).where(_A.id.in_(wanted)),
                                             execution_options=NO_SYNC)
        return row_count(result)

    async def _delete_citizen_claims(self, appointment_ids: Sequence[str]) -> None:
        """The claims naming the citizen go with the link (the counselor's stay: they count their time)."""
        claims = citizen_claims.c
        await self._session.execute(delete(citizen_claims).where(claims.appointment_id.in_(list(appointment_ids))))

    async def delete_idle_jobs(self, appointment_ids: Sequence[str]) -> int:
        """Jobs of these appointments that no worker is running (a running one finds its appointment
        cancelled and does nothing)."""
        if not appointment_ids:
            return 0
        result = await self._session.execute(
            delete(Job).where(_J.appointment_id.in_(list(appointment_ids)),
                                         _J.status != JobStatus.RUNNING.value),
            execution_options=NO_SYNC,
        )
        return row_count(result)

    async def cancel_pending_jobs(self, appointment_ids: Sequence[str], kinds: Iterable[str]) -> int:
        if not appointment_ids:
            return 0
        result = await self._session.execute(
            update(Job)
            .where(_J.appointment_id.in_(list(appointment_ids)), _J.kind.in_(list(kinds)),
                   _J.status == JobStatus.PENDING.value)
            .values(status=JobStatus.CANCELLED.value, locked_until=None),
            execution_options=NO_SYNC,
        )
        return row_count(result)

    async def delete_bot_state_of(self, conversations: Iterable[Mapping[str, Any]]) -> int:
        wanted = sorted(set().union(*(state_keys_of(reference) for reference in conversations)))
        if not wanted:
            return 0
        result = await self._session.execute(delete(BotStateItem).where(bot_state.c.key.in_(wanted)),
                                             execution_options=NO_SYNC)
        return row_count(result)

    async def delete_bot_state_before(self, cutoff: datetime) -> int:
        """Conversation state nobody has touched since `cutoff` (an abandoned conversation)."""
        result = await self._session.execute(delete(BotStateItem).where(bot_state.c.updated_at < cutoff),
                                             execution_options=NO_SYNC)
        return row_count(result)

    async def delete_expired_consents(self, agency_id: str, cutoff: datetime) -> int:
        """Consent proofs whose period ran out: a withdrawal older than `cutoff`, and any record
        followed (same citizen, same document) by a newer record that is itself older than `cutoff`.
        The record in force (the latest acceptance) is never deleted."""
        later = consent_records.alias("later")
        superseded = exists().where(
            later.c.citizen_id == _R.citizen_id,
            later.c.document_kind == _R.document_kind,
            later.c.id > _R.id,
            later.c.occurred_at < cutoff,
        )
        expired = (_R.action == ConsentAction.WITHDRAWN.value) & (_R.occurred_at < cutoff)
        ids = list(await self._session.scalars(select(_R.id).where(_R.agency_id == agency_id, expired | superseded)))
        if not ids:
            return 0
        result = await self._session.execute(delete(ConsentRecord).where(_R.id.in_(ids)),
                                             execution_options=NO_SYNC)
        return row_count(result)

    async def delete_erased_shells(self, agency_id: str) -> int:
        """Erased citizens nothing points at any more (no proof, no appointment): the row itself goes."""
        has_consent = exists().where(_R.citizen_id == _C.id)
        has_appointment = exists().where(_A.citizen_id == _C.id)
        ids = list(await self._session.scalars(
            select(_C.id).where(_C.agency_id == agency_id, _C.erased_at.is_not(None), ~has_consent, ~has_appointment)
        ))
        if not ids:
            return 0
        result = await self._session.execute(delete(Citizen).where(_C.id.in_(ids)), execution_options=NO_SYNC)
        return row_count(result)
