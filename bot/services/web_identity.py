"""Who a citizen on the agency's website is: manage links signed for them, conversations bound by a proof.

The token endpoint (bot.directline) checks the proof, asks Direct Line for a token, then calls
`bind_manage_link` or `bind_signed_in` for the fresh Direct Line user id it made and the conversation the
token was made for; `who_is` holds only for both (bot.services.people reads the binding on each web turn).
Tokens are never logged.
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

    async def check_manage_link(self, token: object) -> str:
        """The citizen a manage link names while it holds (signature, expiry, agency, epoch); binds nothing.
        Raises ProofRefused. The token endpoint checks before asking Direct Line for a token."""
        async with self._services.uow.read() as uow:
            return await self._linked_citizen(uow, token)

    async def _linked_citizen(self, uow: UnitOfWork, token: object) -> str:
        link = read_manage_link(self._secret, token, self._services.clock.now())
        if link.agency_id != self._services.agency.id:
            raise ProofRefused(ProofProblem.WRONG_AGENCY)
        citizen = await uow.citizens.get(link.citizen_id)
        if citizen is None or citizen.erased_at is not None or citizen.agency_id != link.agency_id:
            raise ProofRefused(ProofProblem.UNKNOWN_CITIZEN)
        if link.epoch != await uow.web_identities.link_epoch(citizen.id):
            raise ProofRefused(ProofProblem.REVOKED)
        return citizen.id

    async def bind_manage_link(self, user_id: str, conversation_id: str, token: object) -> str:
        """Bind the Direct Line user id, in its token's conversation, to the link's citizen; the citizen id.
        Raises ProofRefused (checked again here: the link may have been revoked since `check_manage_link`)."""
        async with self._services.uow() as uow:
            citizen_id = await self._linked_citizen(uow, token)
            await uow.web_identities.bind(user_id, conversation_id, citizen_id, proof="manage_link",
                                          now=self._services.clock.now())
            await uow.commit()
        log.info("web identity: a conversation proved a citizen by a manage link")
        return citizen_id

    async def bind_signed_in(self, user_id: str, conversation_id: str, subject_key: str, *,
                             locale: str | None = None) -> str:
        """Bind the Direct Line user id, in its token's conversation, to the citizen the agency signed in
        (created on their first visit)."""
        now = self._services.clock.now()
        async with self._services.uow() as uow:
            citizen = await uow.citizens.upsert_identity(
                agency_id=self._services.agency.id, tenant_id=SIGN_IN_TENANT, aad_object_id=subject_key,
                teams_user_id=None, conversation_reference=None, locale=locale, now=now)
            if citizen.erased_at is not None:
                # Erased at their request: a new visit starts as a new person, never the erased shell.
                raise ProofRefused(ProofProblem.UNKNOWN_CITIZEN)
            await uow.web_identities.bind(user_id, conversation_id, citizen.id, proof="sign_in", now=now)
            await uow.commit()
        log.info("web identity: a conversation proved a citizen by the agency's sign-in")
        return citizen.id

    async def who_is(self, user_id: str, conversation_id: str) -> str | None:
        """The citizen this Direct Line user id was proven to be in this conversation, or None (no proof,
        another conversation, or revoked since)."""
        async with self._services.uow.read() as uow:
            return await uow.web_identities.citizen_of(user_id, conversation_id)
