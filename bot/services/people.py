"""Who talks to the bot: records each person's Teams identity and conversation reference.

The conversation reference is what lets reminders reach the person later, so it is stored on install
and refreshed on messages. Unchanged references are not rewritten on every turn (one write per
person per TOUCH_INTERVAL keeps `last_seen_at` accurate enough for retention, counted in months).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from bot.domain.agency import Agency
from bot.domain.clock import SystemClock
from bot.domain.people import TeamsIdentity
from bot.services.ports import Clock, UnitOfWorkFactory

TOUCH_INTERVAL = timedelta(minutes=10)
MAX_REMEMBERED = 50_000


class PeopleService:
    def __init__(self, agency: Agency, uow: UnitOfWorkFactory, clock: Clock | None = None) -> None:
        self._agency = agency
        self._uow = uow
        self._clock = clock or SystemClock()
        # identity key → (citizen id, stored locale, fingerprint of what was written, when)
        self._recent: dict[str, tuple[str, str | None, str, datetime]] = {}

    async def touch(
        self, identity: TeamsIdentity, *, conversation_reference: dict[str, Any], locale: str | None
    ) -> tuple[str, str | None]:
        now = self._clock.now()
        # The reference names the activity it was taken from, which changes on every turn; what
        # reminders need (service URL, conversation, user, bot) does not.
        lasting = {key: value for key, value in conversation_reference.items() if key != "activityId"}
        fingerprint = json.dumps([lasting, locale], sort_keys=True, default=str)
        recent = self._recent.get(identity.key)
        if recent is not None and recent[2] == fingerprint and now - recent[3] < TOUCH_INTERVAL:
            return recent[0], recent[1]
        async with self._uow() as uow:
            citizen = await uow.citizens.upsert_identity(
                agency_id=self._agency.id,
                tenant_id=identity.tenant_id,
                aad_object_id=identity.aad_object_id,
                teams_user_id=identity.teams_user_id,
                conversation_reference=conversation_reference,
                locale=locale,
                now=now,
            )
            await uow.commit()
        if len(self._recent) >= MAX_REMEMBERED:
            self._recent.clear()
        self._recent[identity.key] = (citizen.id, citizen.locale, fingerprint, now)
        return citizen.id, citizen.locale

    def forget(self, identity_key: str) -> None:
        """Drop the cached entry (after erasure, the next turn must write again)."""
        self._recent.pop(identity_key, None)
