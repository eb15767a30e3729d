"""The message to a citizen about their appointment, sent by the runner: the join link as soon as the
Teams meeting exists (or that it changed), or what the agency reported: a no-show, an identity that could
not be checked, a technical problem (with new times, the same counselor first). A citizen the chat does not
reach gets it by e-mail: the job hands it to an e-mail job (bot.services.emails)."""

from __future__ import annotations

from functools import partial
from typing import Any

from bot.domain.jobs import EmailKind, Job, JobResult, NoticeKind
from bot.jobs.runner import Failed, Finished, Result
from bot.services.booking import BookingService
from bot.services.container import Services
from bot.services.ports import Notifier, OutgoingMessage, RecipientUnreachable
from bot.services.reminders import ReminderService
from cards.outcomes import build_new_times_card, build_no_show_notice, build_not_verified_notice
from cards.reminders import build_link_card


class CitizenNoticeJob:
    def __init__(self, services: Services, notifier: Notifier, *, booking: BookingService,
                 reminders: ReminderService) -> None:
        self._services = services
        self._notifier = notifier
        self._booking = booking
        self._reminders = reminders

    async def __call__(self, job: Job) -> Result:
        agency = self._services.agency
        recipient = await self._reminders.recipient(job.payload.get("appointment_id"), reminder=False)
        if isinstance(recipient, JobResult):
            return Finished(recipient)
        appointment, language = recipient.appointment, recipient.language
        notice = job.payload.get("notice")
        reason = job.payload.get("reason")
        reason = reason if isinstance(reason, str) else None
        what = EmailKind(notice) if notice in set(NoticeKind) else None
        hand_over = partial(self._reminders.hand_notice_to_email, recipient=recipient, what=what, reason=reason) \
            if what is not None else None
        if recipient.by_email and hand_over is not None:
            if what in (EmailKind.LINK, EmailKind.LINK_CHANGED) and (
                    not appointment.is_active(self._services.clock.now()) or not appointment.join_url):
                return Finished(JobResult.SKIPPED_INACTIVE)
            return Finished(JobResult.HANDED_TO_EMAIL, record=hand_over)
        card: dict[str, Any]
        if notice == NoticeKind.NO_SHOW:
            card = build_no_show_notice(agency, language, appointment.view())
        elif notice == NoticeKind.NOT_VERIFIED:
            card = build_not_verified_notice(agency, language, appointment.view(), reason)
        elif notice in (NoticeKind.LINK, NoticeKind.LINK_CHANGED):
            if not appointment.is_active(self._services.clock.now()) or not appointment.join_url:
                return Finished(JobResult.SKIPPED_INACTIVE)
            card = build_link_card(agency, language, appointment.view(),
                                   changed=notice == NoticeKind.LINK_CHANGED)
        elif notice == NoticeKind.TECHNICAL:
            offered = await self._booking.rebook_offers(recipient.citizen_id, appointment.id)
            if offered is None:
                return Finished(JobResult.SKIPPED_INACTIVE)
            view, offers, same = offered
            card = build_new_times_card(agency, language, view, offers, why="technical", same_counselor=same)
        else:
            return Failed(f"unknown notice {notice!r}")
        try:
            await self._notifier.send(recipient.reference, OutgoingMessage(card=card))
        except RecipientUnreachable as error:
            if hand_over is not None and recipient.has_email:  # refused for good: the e-mail carries it
                return Finished(JobResult.HANDED_TO_EMAIL, record=partial(hand_over, refused=True))
            return Failed(f"RecipientUnreachable: {error}"[:200],
                          record=partial(self._reminders.record_unreachable, citizen_id=recipient.citizen_id))
        return Finished(JobResult.SENT)
