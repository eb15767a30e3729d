"""The reminder job: checks the reminder is still wanted and on time, sends the card, records it; or hands it to
an e-mail job when the chat does not reach the citizen (the agency's website, or Teams refuses the bot)."""

from __future__ import annotations

from functools import partial

from bot.domain.booking_rules import can_change
from bot.domain.jobs import Job, JobResult
from bot.domain.people import client_timezone
from bot.jobs.runner import Failed, Finished, Result
from bot.services.container import Services
from bot.services.ports import Notifier, OutgoingMessage, RecipientUnreachable
from bot.services.reminders import ReminderService
from cards.formatting import client_zone
from cards.reminders import build_reminder_card


class ReminderJob:
    def __init__(self, services: Services, reminders: ReminderService, notifier: Notifier, *, meetings: bool) -> None:
        self._services = services
        self._reminders = reminders
        self._notifier = notifier
        self._meetings = meetings

    async def __call__(self, job: Job) -> Result:
        due = await self._reminders.due(job)
        if isinstance(due, JobResult):
            return Finished(due)
        if due.recipient.by_email:
            return Finished(JobResult.HANDED_TO_EMAIL, record=partial(self._reminders.hand_reminder_to_email,
                                                                      reminder=due))
        agency = self._services.agency
        changeable = can_change(due.appointment.starts_at, self._services.clock.now(), agency.booking)
        with client_zone(client_timezone(due.reference)):
            card = build_reminder_card(agency, due.language, due.appointment, offset_minutes=due.offset_minutes,
                                       changeable=changeable, meetings=self._meetings)
        try:
            await self._notifier.send(due.reference, OutgoingMessage(card=card))
        except RecipientUnreachable as error:
            if due.recipient.has_email:  # refused for good (blocked): the e-mail carries it, nothing is lost
                return Finished(JobResult.HANDED_TO_EMAIL, record=partial(self._reminders.hand_reminder_to_email,
                                                                          reminder=due, refused=True))
            return Failed(f"RecipientUnreachable: {error}"[:200],
                          record=partial(self._reminders.record_unreachable, citizen_id=due.citizen_id))
        return Finished(JobResult.SENT, record=partial(self._reminders.record_sent, reminder=due))
