"""What happened at an appointment: counselors' reports (identity checked, absent, technical problem), the
citizen's own (technical problem, nobody joined), and the close of slots nobody reported on.

Every report is checked on arrival: the appointment must exist, belong to the reporting counselor (or a
supervisor may report), and still be open to that report. A refusal changes nothing and leaves an audit
event. A report is kept as an outcome row (who, when, why), sets the appointment's status when it settles
it, and plans in the same transaction what must follow: a message to the citizen or an alert to the
agency (durable jobs, sent by the runner), the end of the appointment's pending jobs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.domain.agency import Agency
from bot.domain.appointment import (
    FINAL_STATUS,
    PRESENCE,
    Appointment,
    AppointmentOutcome,
    AppointmentStatus,
    AppointmentView,
    CancelReason,
    NotVerifiedReason,
    Outcome,
    agency_late,
    closing_status,
    is_appointment_id,
    no_show_reached,
)
from bot.domain.audit import EventType
from bot.domain.jobs import EmailKind, JobKind, NoticeKind
from bot.services.audit import SYSTEM_ACTOR, AuditTrail, citizen_actor, counselor_actor
from bot.services.emails import plan_notice_email
from bot.services.meetings import plan_meeting_cancel
from bot.services.ports import Clock, UnitOfWork, UnitOfWorkFactory
from bot.services.staff import StaffService

log = logging.getLogger(__name__)

# What staff may report from their cards.
STAFF_OUTCOMES = frozenset({Outcome.IDENTITY_VERIFIED, Outcome.IDENTITY_NOT_VERIFIED, Outcome.ABSENT_REPORTED,
                            Outcome.NO_SHOW, Outcome.CLIENT_JOINED, Outcome.TECHNICAL_PROBLEM})
# What a citizen may report about their own appointment.
CITIZEN_OUTCOMES = frozenset({Outcome.TECHNICAL_PROBLEM, Outcome.AGENCY_LATE})
_EVENTS = {
    Outcome.IDENTITY_VERIFIED: EventType.IDENTITY_CHECKED,
    Outcome.IDENTITY_NOT_VERIFIED: EventType.IDENTITY_CHECKED,
    Outcome.NO_SHOW: EventType.NO_SHOW,
    Outcome.TECHNICAL_PROBLEM: EventType.TECHNICAL_PROBLEM,
}
# Ended without the interview: the time is given back.
_RELEASES_TIME = frozenset({Outcome.NO_SHOW})
CLOSE_EVERY = timedelta(minutes=15)


@dataclass(frozen=True)
class Recorded:
    outcome: Outcome
    appointment: AppointmentView
    at: datetime
    reason: str | None = None
    # The citizen's "nobody joined": whether the alert it plans can reach anyone of the agency (what the
    # citizen may be told); None for reports that alert nobody.
    team_alerted: bool | None = None


@dataclass(frozen=True)
class AskLater:
    """"Absent" before the no-show delay: noted; the bot asks the counselor again at `at`."""

    appointment: AppointmentView
    at: datetime


@dataclass(frozen=True)
class NotYet:
    """The citizen reports nobody joined before the agency's commitment has run out (or before the start)."""

    appointment: AppointmentView
    started: bool
    until: datetime


@dataclass(frozen=True)
class TooEarly:
    """A report about the interview before it can have begun (the counselor's card opens at `opens_at`)."""

    appointment: AppointmentView
    opens_at: datetime


@dataclass(frozen=True)
class Settled:
    """The appointment was already settled: by whom, how and when (the card shows it instead)."""

    appointment: AppointmentView
    outcome: Outcome | None
    actor: str | None
    at: datetime | None


@dataclass(frozen=True)
class Refusal:
    """Not theirs, not found, or not an action this card may send."""

    reason: str  # "not_allowed" | "not_found" | "invalid"


StaffReport = Recorded | AskLater | TooEarly | Settled | Refusal
Report = StaffReport | NotYet


class OutcomeService:
    def __init__(self, agency: Agency, uow: UnitOfWorkFactory, clock: Clock, audit: AuditTrail,
                 staff: StaffService, *, email: bool = False) -> None:
        """`email`: this installation e-mails citizens the chat may not reach (GUICHET_MAIL is not off)."""
        self._agency = agency
        self._uow = uow
        self._clock = clock
        self._audit = audit
        self._staff = staff
        self._email = email

    async def report_by_staff(self, actor_id: str | None, appointment_id: object, outcome: object,
                              reason: object = None, *, presser: str | None = None) -> StaffReport:
        """A counselor's (or supervisor's) report from their card; `presser` is the audit actor of whoever
        pressed (a citizen replaying a counselor's card is refused and named as such)."""
        chosen = _outcome(outcome, STAFF_OUTCOMES)
        wanted = appointment_id if is_appointment_id(appointment_id) else None
        if chosen is None or wanted is None:
            return Refusal("invalid")
        known_reason = isinstance(reason, str) and reason in {r.value for r in NotVerifiedReason}
        if chosen is Outcome.IDENTITY_NOT_VERIFIED and not known_reason:
            return Refusal("invalid")
        now = self._clock.now()
        async with self._uow() as uow:
            appointment = await uow.appointments.get_for_update(wanted)
            if appointment is None or appointment.agency_id != self._agency.id:
                return Refusal("not_found")
            if not self._agency.may_act_for(actor_id, appointment.counselor_id):
                await self._audit.record(
                    uow, EventType.ACTION_REFUSED, actor=presser or SYSTEM_ACTOR, appointment_id=appointment.id,
                    payload={"action": chosen.value})
                await uow.commit()
                log.info("counselor action on appointment %s refused: not theirs", appointment.id)
                return Refusal("not_allowed")
            assert actor_id is not None
            settled = await self._settled(uow, appointment, chosen)
            if settled is not None:
                return settled
            if chosen is Outcome.ABSENT_REPORTED and no_show_reached(appointment.starts_at, now,
                                                                   self._agency.no_show_minutes):
                chosen = Outcome.NO_SHOW  # past the delay, "absent" is the no-show itself
            if chosen is Outcome.NO_SHOW and not no_show_reached(appointment.starts_at, now,
                                                                  self._agency.no_show_minutes):
                chosen = Outcome.ABSENT_REPORTED
            await self._record(uow, appointment, chosen, counselor_actor(actor_id), now,
                               str(reason) if chosen is Outcome.IDENTITY_NOT_VERIFIED else None)
            await uow.commit()
        view = appointment.view()
        if chosen is Outcome.ABSENT_REPORTED:
            return AskLater(view, appointment.starts_at + timedelta(minutes=self._agency.no_show_minutes))
        return Recorded(chosen, view, now, str(reason) if chosen is Outcome.IDENTITY_NOT_VERIFIED else None)

    async def report_by_citizen(self, citizen_id: str, appointment_id: object, outcome: object) -> Report:
        """The citizen's "I have a technical problem" or "Nobody has joined yet", on their own appointment."""
        chosen = _outcome(outcome, CITIZEN_OUTCOMES)
        wanted = appointment_id if is_appointment_id(appointment_id) else None
        if chosen is None or wanted is None:
            return Refusal("invalid")
        now = self._clock.now()
        async with self._uow() as uow:
            appointment = await uow.appointments.get_for_update(wanted)
            if appointment is None or appointment.citizen_id != citizen_id:
                return Refusal("not_found")
            settled = await self._settled(uow, appointment, chosen)
            if settled is not None:
                return settled
            if chosen is Outcome.AGENCY_LATE and not agency_late(
                    appointment.starts_at, now, self._agency.agency_wait_commitment_minutes):
                until = appointment.starts_at + timedelta(minutes=self._agency.agency_wait_commitment_minutes)
                return NotYet(appointment.view(), now >= appointment.starts_at, until)
            reported = {Outcome(o.outcome) for o in await uow.outcomes.for_appointment(appointment.id)}
            if chosen not in reported:  # a second press says nothing new
                await self._record(uow, appointment, chosen, citizen_actor(citizen_id), now, None)
                await uow.commit()
        alerted = await self._staff.reachable(appointment.counselor_id) if chosen is Outcome.AGENCY_LATE else None
        return Recorded(chosen, appointment.view(), now, team_alerted=alerted)

    async def close_ended(self) -> int:
        """Appointments still booked after their slot: their final status (no outcome, or technical problem)."""
        now = self._clock.now()
        closed = 0
        while True:
            async with self._uow() as uow:
                ended = await uow.appointments.booked_ending_before(self._agency.id, now, limit=100)
                for appointment in ended:
                    reported = {Outcome(o.outcome) for o in await uow.outcomes.for_appointment(appointment.id)}
                    status = closing_status(reported)
                    appointment.status = status
                    appointment.updated_at = now
                    if status is AppointmentStatus.NO_OUTCOME:
                        await uow.outcomes.add(appointment_id=appointment.id, agency_id=self._agency.id,
                                               outcome=Outcome.NO_OUTCOME, actor=SYSTEM_ACTOR, occurred_at=now)
                    await uow.jobs.cancel_for_appointment(appointment.id)
                for appointment in ended:
                    await self._audit.record(
                        uow, EventType.OUTCOME_REPORTED, actor=SYSTEM_ACTOR, appointment_id=appointment.id,
                        citizen_id=appointment.citizen_id, payload={"closed_as": appointment.status})
                await uow.commit()
            closed += len(ended)
            if len(ended) < 100:
                return closed

    async def last_outcome(self, appointment_id: str) -> AppointmentOutcome | None:
        async with self._uow.read() as uow:
            outcomes = await uow.outcomes.for_appointment(appointment_id)
        return outcomes[-1] if outcomes else None

    async def _settled(self, uow: UnitOfWork, appointment: Appointment, chosen: Outcome) -> Settled | TooEarly | None:
        """Why the appointment does not take `chosen` now, or None when it does."""
        outcomes = await uow.outcomes.for_appointment(appointment.id)
        reported = {Outcome(o.outcome) for o in outcomes}
        # After someone is there, no-show reports make no sense; nothing changes a settled appointment.
        if appointment.status == AppointmentStatus.BOOKED and not (
                chosen in (Outcome.NO_SHOW, Outcome.ABSENT_REPORTED) and reported & PRESENCE):
            opens_at = appointment.starts_at - timedelta(minutes=self._agency.counselor_prompt_minutes)
            if chosen in STAFF_OUTCOMES - {Outcome.TECHNICAL_PROBLEM} and self._clock.now() < opens_at:
                return TooEarly(appointment.view(), opens_at)
            return None
        last = outcomes[-1] if outcomes else None
        return Settled(appointment.view(), Outcome(last.outcome) if last else None,
                       last.actor if last else None, last.occurred_at if last else None)

    async def _record(self, uow: UnitOfWork, appointment: Appointment, outcome: Outcome, actor: str, now: datetime,
                      reason: str | None) -> None:
        # Outcome rows name staff by id and citizens by their role only: erasure need not touch them.
        await uow.outcomes.add(appointment_id=appointment.id, agency_id=self._agency.id, outcome=outcome,
                               actor=actor if actor.startswith("counselor:") else actor.split(":", 1)[0],
                               occurred_at=now, reason=reason)
        status = FINAL_STATUS.get(outcome)
        if status is not None:
            appointment.status = status
            appointment.updated_at = now
            if outcome is Outcome.IDENTITY_NOT_VERIFIED:
                appointment.identity_check = reason
            await uow.jobs.cancel_for_appointment(appointment.id)
            if outcome is Outcome.NO_SHOW:
                appointment.cancel_reason = CancelReason.NO_SHOW
                await uow.slot_claims.release(appointment.id)
                await plan_meeting_cancel(uow, appointment, now)
            else:
                # Over for the citizen, who may book again from now (a rebook after a technical problem).
                await uow.slot_claims.release_citizen(appointment.id)
        elif outcome in PRESENCE:
            await uow.jobs.cancel_for_appointment(appointment.id)  # no no-show question once they came
        # The citizen hears of what the agency reports (what they report themselves, they see in their turn).
        notice = _CITIZEN_NOTICE.get(outcome) if actor.startswith("counselor:") else None
        if notice is not None and appointment.citizen_id is not None:
            await self._plan(uow, JobKind.CITIZEN_NOTICE, appointment, now, notice=notice, reason=reason)
        if outcome is Outcome.AGENCY_LATE and self._email and appointment.citizen_id is not None:
            # The answer comes in the citizen's turn; a visitor of the agency's website waiting in the meeting
            # may not see it there, so an e-mail keeps the way to a new time (bot.jobs.email decides who).
            await plan_notice_email(uow, EmailKind.AGENCY_LATE, appointment.id, now)
        alert = _STAFF_ALERT.get((outcome, actor.split(":", 1)[0]))
        if alert is not None:
            await self._plan(uow, JobKind.STAFF_ALERT, appointment, now, alert=alert)
        payload: dict[str, Any] = {"outcome": outcome.value}
        if reason is not None:
            payload["reason"] = reason
        await self._audit.record(uow, _EVENTS.get(outcome, EventType.OUTCOME_REPORTED), actor=actor,
                                          citizen_id=appointment.citizen_id, appointment_id=appointment.id,
                                          payload=payload)

    @staticmethod
    async def _plan(uow: UnitOfWork, kind: JobKind, appointment: Appointment, now: datetime, **payload: Any) -> None:
        key = f"{kind}:{appointment.id}:{':'.join(str(v) for v in payload.values())}"
        await uow.jobs.schedule(str(kind), now, {"appointment_id": appointment.id, **payload}, key,
                                appointment_id=None, now=now)


# What the citizen is told after each outcome, and who on the agency's side hears of what the citizen says.
_CITIZEN_NOTICE = {
    Outcome.NO_SHOW: NoticeKind.NO_SHOW,
    Outcome.IDENTITY_NOT_VERIFIED: NoticeKind.NOT_VERIFIED,
    Outcome.TECHNICAL_PROBLEM: NoticeKind.TECHNICAL,
}
_STAFF_ALERT = {
    (Outcome.TECHNICAL_PROBLEM, "citizen"): "citizen_technical",
    (Outcome.AGENCY_LATE, "citizen"): "agency_late",
}


def _outcome(value: object, allowed: frozenset[Outcome]) -> Outcome | None:
    if not isinstance(value, str):
        return None
    try:
        outcome = Outcome(value)
    except ValueError:
        return None
    return outcome if outcome in allowed else None
