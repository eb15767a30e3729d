"""The message to a citizen about their appointment, sent by the runner: the join link as soon as the
Teams meeting exists (or that it changed), or what the agency reported: a no-show, an identity that could
not be checked, a technical problem (with new times, the same counselor first)."""

from __future__ import annotations

from functools import partial
from typing import Any

from bot.domain.jobs import Job, JobResult, NoticeKind
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
        card: dict[str, Any]
        if notice == NoticeKind.NO_SHOW:
            card = build_no_show_notice(agency, language, appointment.view())
        elif notice == NoticeKind.NOT_VERIFIED:
            reason = job.payload.get("reason")
            card = build_not_verified_notice(agency, language, appointment.view(),
                                             reason if isinstance(reason, str) else None)
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
            return Failed(f"RecipientUnreachable: {error}"[:200],
                          record=partial(self._reminders.record_unreachable, citizen_id=recipient.citizen_id))
        return Finished(JobResult.SENT)
