"""Who talks to the bot: records each person's Teams identity and conversation reference.

On the agency's website (`touch_web`) the Direct Line user id proves nothing: a conversation bound by a
proof is its citizen, any other is the anonymous citizen of that conversation (bot.domain.web_identity).

The conversation reference is what lets reminders reach the person later, so it is stored on install
and refreshed on messages. Unchanged references are not rewritten on every turn (one write per
person per TOUCH_INTERVAL keeps `last_seen_at` accurate enough for retention, counted in months).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.domain.agency import Agency
from bot.domain.clock import SystemClock
from bot.domain.people import TeamsIdentity
from bot.domain.web_identity import keeps_stored_reference, who_is_web_turn
from bot.services.ports import Clock, UnitOfWorkFactory

TOUCH_INTERVAL = timedelta(minutes=10)
MAX_REMEMBERED = 50_000


@dataclass(frozen=True)
class WebVisit:
    """Who a web turn is: the citizen (None before the visitor wrote or pressed anything), their stored
    locale, and whether the conversation proved who they are."""

    citizen_id: str | None
    locale: str | None
    proven: bool


class PeopleService:
    def __init__(self, agency: Agency, uow: UnitOfWorkFactory, clock: Clock | None = None) -> None:
        self._agency = agency
        self._uow = uow
        self._clock = clock or SystemClock()
        # identity key → (citizen id, stored locale, fingerprint of what was written, when)
        self._recent: dict[str, tuple[str, str | None, str, datetime]] = {}
        # Web conversations (Direct Line user id, conversation id) found without a proof: they stay so.
        self._unproven: set[tuple[str, str]] = set()

    async def touch(
        self, identity: TeamsIdentity, *, conversation_reference: dict[str, Any], locale: str | None
    ) -> tuple[str, str | None]:
        now = self._clock.now()
        fingerprint = _fingerprint(conversation_reference, locale)
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

    def forget(self, identity_key: str, citizen_id: str | None = None) -> None:
        """Drop what is cached of the person (after erasure, the next turn must write again): their
        identity's entry, and any other naming that citizen (a web conversation's is keyed otherwise)."""
        self._recent.pop(identity_key, None)
        if citizen_id is not None:
            for key in [key for key, entry in self._recent.items() if entry[0] == citizen_id]:
                del self._recent[key]

    async def touch_web(
        self, user_id: str, conversation_id: str, *, conversation_reference: dict[str, Any], locale: str | None,
        visitor_acted: bool,
    ) -> WebVisit:
        """Who this Web Chat turn is (`visitor_acted`: a message or a card press, not the page opening)."""
        now = self._clock.now()
        # A proof binds a conversation before its first turn (the token endpoint binds, then hands out the
        # token), so one found unproven stays so: only proven or new conversations read the binding, which a
        # proven one does on every turn (a revocation counts at once).
        conversation = (user_id, conversation_id)
        if conversation not in self._unproven:
            async with self._uow() as uow:
                proven = await uow.web_identities.citizen_of(user_id, conversation_id)
                citizen = await uow.citizens.get(proven) if proven is not None else None
                if citizen is not None and citizen.erased_at is None:
                    # Seen now (to TOUCH_INTERVAL: retention counts in months; unchanged values write nothing),
                    # in this language; where reminders go changes only from one web page to the next.
                    if now - citizen.last_seen_at >= TOUCH_INTERVAL:
                        citizen.last_seen_at = now
                    if locale is not None:
                        citizen.locale = locale
                    if not keeps_stored_reference(citizen.conversation_reference):
                        citizen.conversation_reference = conversation_reference
                    await uow.commit()
                    return WebVisit(citizen.id, citizen.locale, proven=True)
            if proven is None and visitor_acted:
                if len(self._unproven) >= MAX_REMEMBERED:
                    self._unproven.clear()
                self._unproven.add(conversation)
        # Unproven (or its citizen erased since: erasure unbinds too, this covers a turn racing it).
        who = who_is_web_turn(proven_citizen_id=None, conversation_id=conversation_id, visitor_acted=visitor_acted)
        if not who.creates:
            return WebVisit(None, None, proven=False)
        # As for Teams: one write per conversation per TOUCH_INTERVAL while nothing changes.
        key = f"{who.tenant_id}/{who.object_id}"
        fingerprint = _fingerprint(conversation_reference, locale)
        recent = self._recent.get(key)
        if recent is not None and recent[2] == fingerprint and now - recent[3] < TOUCH_INTERVAL:
            return WebVisit(recent[0], recent[1], proven=False)
        async with self._uow() as uow:
            citizen = await uow.citizens.upsert_identity(
                agency_id=self._agency.id, tenant_id=who.tenant_id, aad_object_id=who.object_id,
                teams_user_id=None, conversation_reference=conversation_reference, locale=locale, now=now)
            await uow.commit()
        if len(self._recent) >= MAX_REMEMBERED:
            self._recent.clear()
        self._recent[key] = (citizen.id, citizen.locale, fingerprint, now)
        return WebVisit(citizen.id, citizen.locale, proven=False)


def _fingerprint(conversation_reference: dict[str, Any], locale: str | None) -> str:
    """What a touch writes, but the activity id: the reference names the activity it was taken from, which
    changes on every turn; what reminders need (service URL, conversation, user, bot) does not."""
    lasting = {key: value for key, value in conversation_reference.items() if key != "activityId"}
    return json.dumps([lasting, locale], sort_keys=True, default=str)
