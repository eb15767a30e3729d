"""Who a citizen on the agency's website is: manage links signed for them, conversations bound by a proof.

The token endpoint (bot.directline) calls `bind_manage_link` or `bind_signed_in` for the fresh Direct Line
user id it made; the dialogs ask `who_is` (None: the conversation proved nothing, so it may book but sees
no appointment or personal data). Tokens are never logged.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.domain.web_identity import (
    SIGN_IN_TENANT,
    ManageLink,
    ProofProblem,
    ProofRefused,
    read_manage_link,
    sign_manage_link,
)
from bot.services.container import Services
from bot.services.ports import UnitOfWork

log = logging.getLogger(__name__)


class WebIdentityService:
    def __init__(self, services: Services, *, link_secret: str) -> None:
        self._services = services
        self._secret = link_secret

    @property
    def links_enabled(self) -> bool:
        return bool(self._secret)

    async def manage_link_token(self, citizen_id: str) -> str:
        """A fresh manage-link token for the citizen (for an e-mail)."""
        async with self._services.uow.read() as uow:
            return await self.manage_link_token_in(uow, citizen_id)

    async def manage_link_token_in(self, uow: UnitOfWork, citizen_id: str) -> str:
        agency = self._services.agency
        expires = self._services.clock.now() + timedelta(days=agency.manage_link_days)
        epoch = await uow.web_identities.link_epoch(citizen_id)
        return sign_manage_link(self._secret, ManageLink(citizen_id, agency.id, epoch, expires))

    async def bind_manage_link(self, user_id: str, token: object) -> str:
        """Bind the Direct Line user id to the link's citizen; the citizen id. Raises ProofRefused."""
        now = self._services.clock.now()
        link = read_manage_link(self._secret, token, now)
        if link.agency_id != self._services.agency.id:
            raise ProofRefused(ProofProblem.WRONG_AGENCY)
        async with self._services.uow() as uow:
            citizen = await uow.citizens.get(link.citizen_id)
            if citizen is None or citizen.erased_at is not None or citizen.agency_id != link.agency_id:
                raise ProofRefused(ProofProblem.UNKNOWN_CITIZEN)
            if link.epoch != await uow.web_identities.link_epoch(citizen.id):
                raise ProofRefused(ProofProblem.REVOKED)
            await uow.web_identities.bind(user_id, citizen.id, proof="manage_link", now=now)
            await uow.commit()
        log.info("web identity: a conversation proved a citizen by a manage link")
        return citizen.id

    async def bind_signed_in(self, user_id: str, subject_key: str, *, locale: str | None = None) -> str:
        """Bind the Direct Line user id to the citizen the agency signed in (created on their first visit)."""
        now = self._services.clock.now()
        async with self._services.uow() as uow:
            citizen = await uow.citizens.upsert_identity(
                agency_id=self._services.agency.id, tenant_id=SIGN_IN_TENANT, aad_object_id=subject_key,
                teams_user_id=None, conversation_reference=None, locale=locale, now=now)
            if citizen.erased_at is not None:
                # Erased at their request: a new visit starts as a new person, never the erased shell.
                raise ProofRefused(ProofProblem.UNKNOWN_CITIZEN)
            await uow.web_identities.bind(user_id, citizen.id, proof="sign_in", now=now)
            await uow.commit()
        log.info("web identity: a conversation proved a citizen by the agency's sign-in")
        return citizen.id

    async def who_is(self, user_id: str) -> str | None:
        """The citizen this Direct Line user id was proven to be, or None (no proof, or revoked since)."""
        async with self._services.uow.read() as uow:
            return await uow.web_identities.citizen_of(user_id)
