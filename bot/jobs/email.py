"""The e-mail job: what the chat cannot carry, sent through the Mailer (Graph sendMail or .eml files).

- the confirmation of a booking, with its .ics: planned with the booking, decided here (a citizen of the
  agency's website or of its sign-in, or one who blocked the bot in Teams, and who gave an address);
- a reminder, the join link (new or changed, with the updated .ics), a notice after an outcome (no-show,
  identity not verified, technical problem): handed over by the chat's job, which decided the chat does not
  reach the citizen (bot.services.reminders.ReminderService.recipient);
- after the citizen said nobody joined (agency late): planned with the report, decided here like the
  confirmation (the answer with new times is in the chat, which a website visitor may have left).

Every e-mail carries the citizen's manage link when links are on (it opens the chat on the agency's page).
The texts are built as for a reader on the web (bot.domain.channels.web_reader): no "in this chat", no buttons.
"""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from functools import partial

from bot.domain.booking_rules import can_change
from bot.domain.channels import web_reader
from bot.domain.jobs import EmailKind, Job, JobResult
from bot.domain.reminders import reminder_is_late
from bot.domain.web_identity import reached_by_email
from bot.i18n import language_of
from bot.jobs.runner import Failed, Finished, Result
from bot.services.container import Services
from bot.services.emails import EmailChannel
from bot.services.reminders import DueReminder, Recipient, ReminderService
from bot.services.web_identity import WebIdentityService
from cards.calendar import build_ics
from cards.emails import build_confirmation_email, build_link_email, build_notice_email, build_reminder_email

# E-mails about an appointment still to come; the notices after an outcome are about one that is over.
_ABOUT_ACTIVE = frozenset({EmailKind.CONFIRMATION, EmailKind.REMINDER, EmailKind.LINK, EmailKind.LINK_CHANGED})
# Planned for every citizen by the change they tell about; the others are handed over by a chat job.
_DECIDED_HERE = frozenset({EmailKind.CONFIRMATION, EmailKind.AGENCY_LATE})


class EmailJob:
    def __init__(self, services: Services, channel: EmailChannel, identities: WebIdentityService,
                 reminders: ReminderService | None = None) -> None:
        self._services = services
        self._mailer = channel.mailer
        self._sender = channel.sender
        self._identities = identities
        self._manage_page = channel.manage_page
        self._reminders = reminders

    async def __call__(self, job: Job) -> Result:
        try:
            what = EmailKind(str(job.payload.get("what")))
        except ValueError:
            return Failed(f"unknown e-mail {job.payload.get('what')!r}")
        agency = self._services.agency
        now = self._services.clock.now()
        async with self._services.uow.read() as uow:
            appointment = await uow.appointments.get(str(job.payload.get("appointment_id")))
            citizen = await uow.citizens.get(appointment.citizen_id) \
                if appointment is not None and appointment.citizen_id else None
            if appointment is None or citizen is None or citizen.erased_at is not None \
                    or (what in _ABOUT_ACTIVE and not appointment.is_active(now)):
                return Finished(JobResult.SKIPPED_INACTIVE)
            reference = citizen.conversation_reference or {}
            # The confirmation and the agency-late notice decide here who gets them; the other e-mails were
            # handed over by a chat job that decided the chat does not reach this citizen (a citizen who wrote to
            # the bot since still gets it).
            if not citizen.email or (what in _DECIDED_HERE and not reached_by_email(
                    tenant_id=citizen.tenant_id, channel_id=reference.get("channelId"),
                    blocked_the_bot=citizen.unreachable_since is not None)):
                return Finished(JobResult.SKIPPED_NO_EMAIL)
            if what is EmailKind.REMINDER and not citizen.wants_reminders:
                return Finished(JobResult.SKIPPED_OPT_OUT)
            if what in (EmailKind.LINK, EmailKind.LINK_CHANGED) and not appointment.join_url:
                return Finished(JobResult.SKIPPED_INACTIVE)
            manage_url = None
            if self._manage_page and self._identities.links_enabled:
                token = await self._identities.manage_link_token_in(uow, citizen.id)
                manage_url = f"{self._manage_page}#manage={token}"
        language = language_of(citizen.locale, agency.languages) or agency.default_language
        view = appointment.view()
        meetings = self._services.meetings is not None
        address = citizen.email
        record = None
        message: EmailMessage
        with web_reader():  # the wording for a reader away from Teams (`_web` catalog keys)
            if what is EmailKind.CONFIRMATION:
                message = build_confirmation_email(
                    agency, language, view, sender=self._sender, recipient=address,
                    ics=build_ics(agency, view, language, now=now, meetings=meetings), manage_url=manage_url)
            elif what is EmailKind.REMINDER:
                offset = job.payload.get("offset_minutes")
                offset = offset if isinstance(offset, int) else None
                # A reminder that would come late (the mailer was down) is dropped, as in the chat.
                due_at = appointment.starts_at - timedelta(minutes=offset) if offset is not None else job.created_at
                if reminder_is_late(due_at=due_at, starts_at=appointment.starts_at, now=now,
                                    tolerance=timedelta(minutes=agency.reminder_late_tolerance_minutes)):
                    return Finished(JobResult.DROPPED_LATE)
                message = build_reminder_email(
                    agency, language, view, sender=self._sender, recipient=address, offset_minutes=offset,
                    changeable=can_change(appointment.starts_at, now, agency.booking), meetings=meetings,
                    manage_url=manage_url)
                if self._reminders is not None:
                    due = DueReminder(Recipient(appointment, citizen.id, reference, language, by_email=True),
                                      offset_minutes=offset)
                    record = partial(self._reminders.record_sent, reminder=due)
            elif what in (EmailKind.LINK, EmailKind.LINK_CHANGED):
                message = build_link_email(
                    agency, language, view, sender=self._sender, recipient=address,
                    changed=what is EmailKind.LINK_CHANGED, ics=build_ics(agency, view, language, now=now),
                    manage_url=manage_url)
            else:  # a notice after an outcome
                reason = job.payload.get("reason")
                message = build_notice_email(agency, language, view, what=what, sender=self._sender,
                                             recipient=address, manage_url=manage_url,
                                             reason=reason if isinstance(reason, str) else None)
        await self._mailer.send(message, key=job.dedupe_key or f"email-{job.id}")
        return Finished(JobResult.SENT, record=record)
