"""The e-mail job: the confirmation of a booking, with its .ics and the citizen's manage link, sent through
the Mailer (Graph sendMail or .eml files) to a citizen the chat may not reach."""

from __future__ import annotations

from bot.domain.jobs import Job, JobResult
from bot.domain.web_identity import reached_by_email
from bot.i18n import language_of
from bot.jobs.runner import Failed, Finished, Result
from bot.services.container import Services
from bot.services.emails import EmailChannel
from bot.services.web_identity import WebIdentityService
from cards.calendar import build_ics
from cards.emails import build_confirmation_email


class EmailJob:
    def __init__(self, services: Services, channel: EmailChannel, identities: WebIdentityService) -> None:
        self._services = services
        self._mailer = channel.mailer
        self._sender = channel.sender
        self._identities = identities
        self._manage_page = channel.manage_page

    async def __call__(self, job: Job) -> Result:
        if job.payload.get("what") != "confirmation":
            return Failed(f"unknown e-mail {job.payload.get('what')!r}")
        agency = self._services.agency
        now = self._services.clock.now()
        async with self._services.uow.read() as uow:
            appointment = await uow.appointments.get(str(job.payload.get("appointment_id")))
            citizen = await uow.citizens.get(appointment.citizen_id) \
                if appointment is not None and appointment.citizen_id else None
            if appointment is None or citizen is None or citizen.erased_at is not None \
                    or not appointment.is_active(now):
                return Finished(JobResult.SKIPPED_INACTIVE)
            reference = citizen.conversation_reference or {}
            if not citizen.email or not reached_by_email(
                    tenant_id=citizen.tenant_id, channel_id=reference.get("channelId"),
                    blocked_the_bot=citizen.unreachable_since is not None):
                return Finished(JobResult.SKIPPED_NO_EMAIL)
            manage_url = None
            if self._manage_page and self._identities.links_enabled:
                token = await self._identities.manage_link_token_in(uow, citizen.id)
                manage_url = f"{self._manage_page}#manage={token}"
        language = language_of(citizen.locale, agency.languages) or agency.default_language
        view = appointment.view()
        ics = build_ics(agency, view, language, now=now, meetings=self._services.meetings is not None)
        message = build_confirmation_email(agency, language, view, sender=self._sender, recipient=citizen.email,
                                           ics=ics, manage_url=manage_url)
        await self._mailer.send(message, key=job.dedupe_key or f"email-{job.id}")
        return Finished(JobResult.SENT)
