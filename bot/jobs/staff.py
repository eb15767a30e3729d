"""Jobs that write to the agency's staff: the prompt before an interview, the no-show question, alerts.

A staff member is reached in their personal chat with the bot. When the bot has none yet, it installs
itself for them through Graph when it may (then tries again shortly: Teams announces the new chat), and
otherwise, or if that does not work in time, posts to the agency's fallback channel. When neither is
possible the job fails with a log line naming the setting to add, never a person.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial
from typing import Any

from bot.domain.appointment import PRESENCE, Outcome
from bot.domain.jobs import Job, JobResult
from bot.jobs.runner import Failed, Finished, Result, RetryLater
from bot.services.container import Services
from bot.services.ports import Notifier, OutgoingMessage, RecipientUnreachable
from bot.services.staff import StaffService, citizen_name
from cards.outcomes import build_staff_alert_card
from cards.staff import build_no_show_question_card, build_prompt_card

log = logging.getLogger(__name__)

# After installing the bot for a counselor, how long to wait for Teams to announce the new chat, and
# how many times, before the fallback channel.
INSTALL_WAIT = timedelta(seconds=30)
INSTALL_TRIES = 3


def fallback_reference(services: Services) -> dict[str, Any] | None:
    channel = services.agency.fallback_channel
    if channel is None:
        return None
    return {"serviceUrl": channel.service_url, "channelId": "msteams",
            "conversation": {"id": channel.conversation_id, "tenantId": channel.tenant_id,
                             "conversationType": "channel"}}


class StaffDelivery:
    """Sends a card to a staff member, or to the agency's fallback channel when they cannot be reached."""

    def __init__(self, services: Services, staff: StaffService, notifier: Notifier) -> None:
        self._services = services
        self._staff = staff
        self._notifier = notifier

    async def send(self, job: Job, staff_id: str, build: Any) -> Result:
        """`build(language, for_channel)` makes the card; the job's attempts count the install waits."""
        chat = await self._staff.chat(staff_id)
        if chat is not None:
            try:
                await self._notifier.send(chat.reference, OutgoingMessage(card=build(chat.language, False)))
                return Finished(JobResult.SENT)
            except RecipientUnreachable:
                log.warning("a staff member's chat refused the bot's message; using the fallback channel")
        elif (self._services.installer is not None and job.attempts <= INSTALL_TRIES
              and await self._services.installer.install_for(staff_id)):
            return RetryLater("waiting for the new chat after installing the app", INSTALL_WAIT)
        channel = fallback_reference(self._services)
        if channel is None:
            log.warning("cannot reach a staff member: no chat with them, %s, and no fallback_channel in the "
                        "agency file", "installing the app failed" if self._services.installer is not None
                        else "GUICHET_TEAMS_APP_ID and Graph are not set to install the app for them")
            return Failed("no chat with the staff member and no fallback channel")
        await self._notifier.send(channel, OutgoingMessage(card=build(self._services.agency.default_language, True)))
        return Finished(JobResult.SENT_TO_CHANNEL)


class CounselorPromptJob:
    def __init__(self, services: Services, staff: StaffService, notifier: Notifier) -> None:
        self._services = services
        self._staff = staff
        self._delivery = StaffDelivery(services, staff, notifier)

    async def __call__(self, job: Job) -> Result:
        prompt = await self._staff.prompt(str(job.payload.get("appointment_id")))
        if prompt is None:
            return Finished(JobResult.SKIPPED_INACTIVE)
        agency = self._services.agency

        def build(language: str, for_channel: bool) -> dict[str, Any]:
            return build_prompt_card(agency, language, prompt.appointment, citizen_name=prompt.citizen_name,
                                     identity=prompt.identity,
                                     counselor_name=prompt.counselor.display_name if for_channel else None)

        result = await self._delivery.send(job, prompt.counselor.id, build)
        if isinstance(result, Finished):
            return Finished(result.outcome, record=partial(self._staff.record_prompted,
                                                           appointment_id=prompt.appointment.id))
        return result


class NoShowCheckJob:
    """At the start plus the no-show delay: if nobody reported the citizen present, ask the counselor once."""

    def __init__(self, services: Services, staff: StaffService, notifier: Notifier) -> None:
        self._services = services
        self._staff = staff
        self._delivery = StaffDelivery(services, staff, notifier)

    async def __call__(self, job: Job) -> Result:
        appointment_id = str(job.payload.get("appointment_id"))
        prompt = await self._staff.prompt(appointment_id)
        if prompt is None:
            return Finished(JobResult.SKIPPED_INACTIVE)
        async with self._services.uow.read() as uow:
            reported = {Outcome(o.outcome) for o in await uow.outcomes.for_appointment(appointment_id)}
        # Someone reported the citizen there, or the citizen reported a problem (they are waiting).
        if reported & (PRESENCE | {Outcome.TECHNICAL_PROBLEM, Outcome.AGENCY_LATE}):
            return Finished(JobResult.NOT_NEEDED)
        agency = self._services.agency

        def build(language: str, for_channel: bool) -> dict[str, Any]:
            return build_no_show_question_card(agency, language, prompt.appointment, citizen_name=prompt.citizen_name,
                                               counselor_name=prompt.counselor.display_name if for_channel else None)

        return await self._delivery.send(job, prompt.counselor.id, build)


class StaffAlertJob:
    """The citizen says nobody joined, or reports a technical problem; a meeting could not be created."""

    def __init__(self, services: Services, staff: StaffService, notifier: Notifier) -> None:
        self._services = services
        self._staff = staff
        self._delivery = StaffDelivery(services, staff, notifier)
        self._notifier = notifier

    async def __call__(self, job: Job) -> Result:
        alert = str(job.payload.get("alert"))
        async with self._services.uow.read() as uow:
            appointment = await uow.appointments.get(str(job.payload.get("appointment_id")))
            citizen = await uow.citizens.get(appointment.citizen_id) \
                if appointment is not None and appointment.citizen_id else None
        if appointment is None:
            return Finished(JobResult.SKIPPED_INACTIVE)
        view = appointment.view()
        counselor = self._staff.member(appointment.counselor_id)
        counselor_name = counselor.display_name if counselor else appointment.counselor_id
        name = citizen_name(citizen)

        def build(language: str, for_channel: bool) -> dict[str, Any]:
            return build_staff_alert_card(self._services.agency, language, view, alert=alert,
                                          counselor_name=counselor_name, citizen_name=name)

        result = await self._delivery.send(job, appointment.counselor_id, build)
        channel = fallback_reference(self._services)
        # An agency that left a citizen waiting, or a meeting that could not be made, is the team's business too.
        if alert in ("agency_late", "meeting_failed") and channel is not None \
                and result != Finished(JobResult.SENT_TO_CHANNEL):
            await self._notifier.send(channel, OutgoingMessage(
                card=build(self._services.agency.default_language, True)))
        return result


