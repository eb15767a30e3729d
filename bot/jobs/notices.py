"""The message to a citizen about their appointment, sent by the runner: the join link as soon as the
Teams meeting exists (or that it changed), or what the agency reported: a no-show, an identity that could
not be checked, a technical problem (with new times, the same counselor first)."""

from __future__ import annotations

from functools import partial
from typing import Any

from bot.domain.jobs import Job
from bot.i18n import language_of
from bot.jobs.runner import Failed, Finished, Result
from bot.services.booking import BookingService, appointment_view
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
        async with self._services.uow.read() as uow:
            appointment = await uow.appointments.get(str(job.payload.get("appointment_id")))
            citizen = await uow.citizens.get(appointment.citizen_id) \
                if appointment is not None and appointment.citizen_id else None
        if appointment is None or citizen is None or citizen.erased_at is not None \
                or not citizen.conversation_reference:
            return Finished("skipped_no_chat")
        if citizen.unreachable_since is not None:
            return Finished("skipped_unreachable")
        language = language_of(citizen.locale) or agency.default_language
        notice = job.payload.get("notice")
        card: dict[str, Any]
        if notice == "no_show":
            card = build_no_show_notice(agency, language, appointment_view(agency, appointment))
        elif notice == "not_verified":
            reason = job.payload.get("reason")
            card = build_not_verified_notice(agency, language, appointment_view(agency, appointment),
                                             reason if isinstance(reason, str) else None)
        elif notice in ("link", "link_changed"):
            if not appointment.is_active(self._services.clock.now()) or not appointment.join_url:
                return Finished("skipped_inactive")
            card = build_link_card(agency, language, appointment_view(agency, appointment),
                                   changed=notice == "link_changed")
        elif notice == "technical":
            offered = await self._booking.rebook_offers(citizen.id, appointment.id)
            if offered is None:
                return Finished("skipped_inactive")
            view, offers, same = offered
            card = build_new_times_card(agency, language, view, offers, why="technical", same_counselor=same)
        else:
            return Failed(f"unknown notice {notice!r}")
        try:
            await self._notifier.send(citizen.conversation_reference, OutgoingMessage(card=card))
        except RecipientUnreachable as error:
            return Failed(f"RecipientUnreachable: {error}"[:200],
                          record=partial(self._reminders.record_unreachable, citizen_id=citizen.id))
        return Finished("sent")
