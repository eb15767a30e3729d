"""Booking use cases: free days and times, booking, moving and cancelling an appointment.

Every change is one transaction that re-checks everything the card showed (cards can be replayed or
tampered with): the subject and mode, the office, the slot as the engine offers it now, the personal
data, the interview language and the upcoming-appointment limit. The database has the last word on
races: a counselor's time is held by slot claims (and, on PostgreSQL, an exclusion constraint), so
of two citizens confirming the same time only one gets it; the other gets fresh alternatives, in
the same process or another one sharing the database. A citizen's own time is held the same way:
times overlapping one of their appointments are not offered, and of two overlapping bookings of one
person (two chats, a move racing a booking) only one goes through.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from uuid import uuid4

from bot.domain.agency import Agency, Mode, PersonalField, Subject
from bot.domain.appointment import (
    Appointment,
    AppointmentStatus,
    AppointmentView,
    CancelReason,
    MeetingState,
    Outcome,
    is_appointment_id,
)
from bot.domain.audit import EventType
from bot.domain.booking_rules import (
    MAX_ALTERNATIVES,
    can_change,
    can_replace_at,
    clashes_with_own,
    counselor_preference,
    has_room_for_another,
    own_times,
    pick_alternatives,
    plan_jobs,
)
from bot.domain.interview_language import decide_interview_language
from bot.domain.jobs import JobKind, NewJob
from bot.domain.personal_data import booking_fields, validate_personal_data
from bot.domain.reminders import reminder_times
from bot.domain.slots import BusyIndex, CitizenBusy, Slot, SlotEngine, SlotTaken, claim_steps, epoch_us, ordered_by_load
from bot.services.audit import AuditTrail, citizen_actor
from bot.services.cancellation import cancel_appointment
from bot.services.emails import EmailChannel, plan_confirmation_email
from bot.services.meetings import plan_meeting_cancel
from bot.services.ports import AvailabilityProvider, Clock, MeetingProvider, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)
R = TypeVar("R")

_ERRORS = "booking_errors."
TOO_MANY_UPCOMING = _ERRORS + "too_many_upcoming"
CUTOFF_PASSED = _ERRORS + "cutoff_passed"
NOT_FOUND = _ERRORS + "not_found"
NOT_ACTIVE = _ERRORS + "not_active"
INVALID_SLOT = _ERRORS + "invalid_slot"
NOT_BOOKABLE = _ERRORS + "not_bookable"
INVALID_PERSONAL_DATA = _ERRORS + "invalid_personal_data"
INVALID_LANGUAGE = _ERRORS + "invalid_language"

REFUSAL_KEYS = (TOO_MANY_UPCOMING, CUTOFF_PASSED, NOT_FOUND, NOT_ACTIVE, INVALID_SLOT, NOT_BOOKABLE,
                INVALID_PERSONAL_DATA, INVALID_LANGUAGE)
"""Every reason a Refused can carry; each is a message in all four booking_errors catalogs."""

# A free-text note typed by the citizen when cancelling; bounded so a pasted novel stays out.
CANCEL_NOTE_MAX_LENGTH = 500
_EMPTY = BusyIndex({})
# Days of appointments read at once while looking for free days: two weeks, as the ten days asked for
# by default (closed weekends) are never found in one.
_DAYS_PER_READ = 14


@dataclass(frozen=True)
class SlotOffer:
    """A time the citizen may pick; the counselor is chosen when the booking is confirmed."""

    start: datetime
    end: datetime
    office_id: str | None


@dataclass(frozen=True)
class Booked:
    appointment: AppointmentView
    # When the reminders of this booking will come (UTC, as planned); empty when none will.
    reminders: tuple[datetime, ...] = ()


@dataclass(frozen=True)
class SlotGone:
    """The time was just taken (or is no longer free); `alternatives` are free right now."""

    alternatives: list[SlotOffer]


@dataclass(frozen=True)
class Refused:
    """`reason` is a catalog key; show it with `t(language, reason, **params)`."""

    reason: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Cancelled:
    appointment: AppointmentView


@dataclass(frozen=True)
class _Target:
    """What is being booked, once checked against the agency's configuration."""

    mode: Mode
    subject: Subject
    # The office the engine searches in: the office itself (office mode) or a counselor filter (video).
    search_office: str | None
    # The office stored on the appointment: office mode only.
    office_id: str | None


class BookingService:
    def __init__(
        self, agency: Agency, uow: UnitOfWorkFactory, clock: Clock, audit: AuditTrail, *, slots: SlotEngine,
        availability: AvailabilityProvider | None, meetings: MeetingProvider | None, email: EmailChannel | None,
    ) -> None:
        self._agency = agency
        self._uow = uow
        self._clock = clock
        self._audit = audit
        self._engine = slots
        self._availability = availability
        # Whether there is a meetings provider and an e-mail channel decides which jobs a booking plans.
        self._meetings = meetings
        self._email = email
        self._rules = agency.booking

    # -- searching ------------------------------------------------------------------------

    async def days(
        self,
        *,
        mode: Mode | str,
        subject_id: str,
        office_id: str | None = None,
        language: str | None = None,
        exclude_appointment_id: str | None = None,
        limit: int = 10,
        from_day: date | None = None,
        citizen_id: str | None = None,
    ) -> list[date]:
        """The next local days with a free time, up to `limit`; [] for anything the agency does not offer.

        `exclude_appointment_id`: the appointment being moved, whose own time counts as free.
        `from_day`: start later than today (a "more days" button).
        `citizen_id`: who is choosing; times overlapping their other active appointments are not free.
        """
        target = self._target(mode, subject_id, office_id)
        if target is None:
            return []
        now = self._clock.now()
        today = self._local_today(now)
        day = today if not isinstance(from_day, date) else max(from_day, today)
        beyond = today + timedelta(days=self._rules.max_horizon_days + 1)
        found: list[date] = []
        async with self._uow.read() as uow:
            # Two weeks of appointments at a time: the first free days are usually near, and reading the
            # whole horizon's appointments costs more than searching it.
            while day < beyond and len(found) < limit:
                chunk_end = min(day + timedelta(days=_DAYS_PER_READ), beyond)
                busy = await self._busy(uow, self._day_start(day), self._day_start(chunk_end),
                                        exclude_appointment_id, citizen_id)
                candidates = self._engine.days_with_slots(
                    mode=target.mode, subject_id=target.subject.id, now=now, busy=busy, language=language,
                    office_id=target.search_office, limit=limit - len(found), from_day=day,
                )
                # Days past the chunk were searched without their appointments: not yet known.
                found.extend(candidate for candidate in candidates if candidate < chunk_end)
                day = chunk_end
        return found

    async def slots(
        self,
        *,
        mode: Mode | str,
        subject_id: str,
        day: date,
        office_id: str | None = None,
        language: str | None = None,
        exclude_appointment_id: str | None = None,
        citizen_id: str | None = None,
    ) -> list[SlotOffer]:
        """The free times of one local day, earliest first (in office mode without office: every office);
        `exclude_appointment_id` and `citizen_id` as for `days`."""
        target = self._target(mode, subject_id, office_id)
        if target is None or not isinstance(day, date):
            return []
        now = self._clock.now()
        async with self._uow.read() as uow:
            busy = await self._busy(uow, self._day_start(day), self._day_start(day + timedelta(days=1)),
                                    exclude_appointment_id, citizen_id)
        return self._offers(target, day, now, busy, language)

    # -- reading --------------------------------------------------------------------------

    async def saved_personal_data(self, citizen_id: str, *, on_web: bool = False) -> dict[PersonalField, str | date]:
        """What the citizen gave last time, for the fields a booking asks (to prefill the form); `on_web`:
        booking on the agency's website (bot.domain.personal_data.booking_fields)."""
        async with self._uow.read() as uow:
            citizen = await uow.citizens.get(citizen_id)
        if citizen is None:
            return {}
        saved: dict[PersonalField, str | date] = {}
        for personal_field in booking_fields(self._agency.personal_data_fields, on_web=on_web):
            value = getattr(citizen, personal_field.value)
            if value is not None:
                saved[personal_field] = value
        return saved

    async def saved_interview_language(self, citizen_id: str) -> str | None:
        """The interview language of the citizen's last booking, if any."""
        async with self._uow.read() as uow:
            citizen = await uow.citizens.get(citizen_id)
        return citizen.interview_language if citizen is not None else None

    async def upcoming(self, citizen_id: str) -> list[AppointmentView]:
        """Booked appointments not yet over, soonest first."""
        async with self._uow.read() as uow:
            return await uow.appointments.upcoming_views_for_citizen(citizen_id, self._clock.now())

    async def get_own(self, citizen_id: str, appointment_id: object) -> AppointmentView | None:
        """The citizen's appointment (any status); None for another person's id or anything malformed."""
        if not is_appointment_id(appointment_id) or not isinstance(citizen_id, str):
            return None
        async with self._uow.read() as uow:
            row = await uow.appointments.get_for_citizen(str(appointment_id), citizen_id)
        return row.view() if row is not None else None

    # -- changing -------------------------------------------------------------------------

    async def book(
        self,
        *,
        citizen_id: str,
        mode: Mode | str,
        subject_id: str,
        office_id: str | None,
        start: datetime,
        personal_data: Mapping[PersonalField, str | date],
        interview_language: str,
        activity_id: str | None = None,
        on_web: bool = False,
    ) -> Booked | SlotGone | Refused:
        """Book `start` with the fairest free counselor who speaks `interview_language`; `on_web`: booked on
        the agency's website, where the e-mail address is required (bot.domain.personal_data.booking_fields).

        One transaction: the citizen's personal data, the appointment, its slot claims, its jobs and
        the audit event, or nothing. A confirmation sent twice returns the appointment it booked.
        """
        now = self._clock.now()
        target = self._target(mode, subject_id, office_id)
        if target is None or (target.mode is Mode.OFFICE and target.office_id is None):
            return Refused(NOT_BOOKABLE)
        if not _is_aware(start):
            return Refused(INVALID_SLOT)
        start = start.astimezone(UTC)
        checked = validate_personal_data(
            booking_fields(self._agency.personal_data_fields, on_web=on_web),
            {str(key): value for key, value in personal_data.items()} if isinstance(personal_data, Mapping) else {},
            country=self._agency.country, today=self._local_today(now),
        )
        if not checked.ok:
            return Refused(INVALID_PERSONAL_DATA)
        postal_code = checked.values.get(PersonalField.POSTAL_CODE)
        decision = decide_interview_language(
            self._agency, postal_code=postal_code if isinstance(postal_code, str) else None,
            preferred=interview_language if isinstance(interview_language, str) else None,
        )
        if decision.language is None or decision.language != interview_language:
            return Refused(INVALID_LANGUAGE)
        if self._find_slot(target, start, now, _EMPTY, language=None) is None:
            # Not a time the agency offers at all any more (closed, off the grid, too soon, too far).
            return Refused(INVALID_SLOT)
        if not isinstance(citizen_id, str):
            return Refused(NOT_BOOKABLE)

        async with self._uow() as uow:
            # Writing the citizen row first also locks it (PostgreSQL), so two confirmations from one
            # person are counted one after the other against the upcoming-appointment limit. No row:
            # no such citizen, and nothing written.
            flags = await uow.citizens.save_personal_data_for_booking(citizen_id, {
                **{personal_field.value: value for personal_field, value in checked.values.items()},
                "interview_language": interview_language,
            })
            if flags is None:
                return Refused(NOT_BOOKABLE)
            upcoming = await uow.appointments.upcoming_views_for_citizen(citizen_id, now)
            for existing in upcoming:
                if (existing.starts_at == start and existing.subject_id == target.subject.id
                        and existing.mode == target.mode and existing.office_id == target.office_id):
                    return Booked(existing)
            if not has_room_for_another(len(upcoming), self._rules):
                return Refused(TOO_MANY_UPCOMING)

            end = start + timedelta(minutes=target.subject.duration_minutes)
            secured = None
            if not clashes_with_own(start, end, upcoming):
                slot = await self._live_slot(uow, target, start, now, interview_language)
                secured = await _first_free(
                    "booking", start, counselor_preference(slot.counselor_ids if slot else ()),
                    lambda counselor_id: self._insert(uow, citizen_id, counselor_id, target, start, end,
                                                      interview_language, now))
            if secured is None:
                return SlotGone(await self._alternatives(uow, target, start, now, interview_language, None,
                                                         citizen_id))
            booked_with, booked = secured

            reminders = flags.wants_reminders
            await self._schedule_jobs(uow, booked.id, start, now, reminders_allowed=reminders, revision=0,
                                      meeting=self._meeting_job(target.mode, False))
            payload = {"mode": str(target.mode), "subject": target.subject.id, "office": target.office_id,
                       "start": start.isoformat(), "counselor": booked_with}
            if activity_id is not None:
                payload["activity_id"] = str(activity_id)[:256]
            await self._audit.record(uow, EventType.BOOKED, actor=citizen_actor(citizen_id),
                                              citizen_id=citizen_id, appointment_id=booked.id, payload=payload)
            await uow.commit()
        log.info("booking: appointment %s booked with counselor %s", booked.id, booked_with)
        return Booked(booked, tuple(reminder_times(self._agency, start, now, allowed=reminders)))

    async def reschedule(
        self, *, citizen_id: str, appointment_id: object, start: datetime, office_id: str | None = None
    ) -> Booked | SlotGone | Refused:
        """Move the citizen's appointment to `start` (same subject and mode; office mode: `office_id`
        or the same office). The id stays; the old time is released only once the new one is held."""
        now = self._clock.now()
        start_or_refused = _move_request(citizen_id, appointment_id, start)
        if isinstance(start_or_refused, Refused):
            return start_or_refused
        start = start_or_refused
        async with self._uow() as uow:
            row = await self._changeable(uow, citizen_id, str(appointment_id), now)
            if isinstance(row, Refused):
                return row
            wanted_office = (office_id or row.office_id) if row.mode == Mode.OFFICE else None
            target = self._target(row.mode, row.subject_id, wanted_office)
            if target is None:
                return Refused(NOT_BOOKABLE)
            if start == row.starts_at and target.office_id == row.office_id:
                return Booked(row.view())
            if self._find_slot(target, start, now, _EMPTY, language=None) is None:
                return Refused(INVALID_SLOT)

            end = start + timedelta(minutes=target.subject.duration_minutes)
            old_start, old_counselor = row.starts_at, row.counselor_id
            secured = None
            if not await self._clashes(uow, citizen_id, start, end, now, moving=row.id):
                slot = await self._live_slot(uow, target, start, now, row.interview_language, exclude=row)
                # Inside this transaction only: if no counselor can be secured below, the rollback puts
                # the old claims and jobs back.
                await uow.slot_claims.release(row.id)
                await uow.jobs.cancel_for_appointment(row.id)
                secured = await _first_free(
                    "reschedule", start, counselor_preference(slot.counselor_ids if slot else (), keep=old_counselor),
                    lambda counselor_id: uow.appointments.move(
                        row, counselor_id=counselor_id, starts_at=start, ends_at=end, office_id=target.office_id,
                        steps=claim_steps(start, end), now=now))
            if secured is None:
                return SlotGone(await self._alternatives(uow, target, start, now, row.interview_language, row,
                                                         citizen_id))
            moved_to = secured[0]

            citizen = await uow.citizens.get(citizen_id)
            reminders = citizen is not None and citizen.wants_reminders
            # Jobs of earlier times keep their keys; counting them gives this move fresh keys even
            # when the citizen moves back to a time they had before.
            revision = len(await uow.jobs.for_appointment(row.id))
            await self._schedule_jobs(uow, row.id, start, now, reminders_allowed=reminders, revision=revision,
                                      meeting=self._meeting_job(row.mode, row.meeting_id is not None))
            await self._audit.record(
                uow, EventType.RESCHEDULED, actor=citizen_actor(citizen_id), citizen_id=citizen_id,
                appointment_id=row.id,
                payload={"from": old_start.isoformat(), "to": start.isoformat(), "office": target.office_id,
                         "counselor": moved_to, "previous_counselor": old_counselor},
            )
            await uow.commit()
        log.info("reschedule: appointment %s moved", row.id)
        return Booked(row.view(),
                      tuple(reminder_times(self._agency, start, now, allowed=reminders)))

    async def cancel(
        self, *, citizen_id: str, appointment_id: object, reason_note: str | None = None
    ) -> Cancelled | Refused:
        """Cancel the citizen's appointment, up to the agency's cut-off before it starts."""
        now = self._clock.now()
        if not is_appointment_id(appointment_id) or not isinstance(citizen_id, str):
            return Refused(NOT_FOUND)
        note = reason_note.strip()[:CANCEL_NOTE_MAX_LENGTH] if isinstance(reason_note, str) else ""
        async with self._uow() as uow:
            row = await self._changeable(uow, citizen_id, str(appointment_id), now)
            if isinstance(row, Refused):
                return row
            await cancel_appointment(uow, row, reason=CancelReason.CITIZEN, now=now, note=note or None)
            await self._audit.record(uow, EventType.CANCELLED, actor=citizen_actor(citizen_id),
                                              citizen_id=citizen_id, appointment_id=row.id,
                                              payload={"reason": CancelReason.CITIZEN})
            await uow.commit()
        log.info("cancel: appointment %s cancelled by the citizen", row.id)
        return Cancelled(row.view())

    # -- after a technical problem or an absent agency -------------------------------------------------

    async def rebook_offers(self, citizen_id: str, appointment_id: object, *, same: int = 3,
                            others: int = 3) -> tuple[AppointmentView, list[SlotOffer], int] | None:
        """New times for an appointment that could not take place: first up to `same` times when its own
        counselor is free (they know the file), then up to `others` with anyone else. The appointment,
        the offers, and how many of them are with the same counselor; None if it is not the citizen's."""
        if not is_appointment_id(appointment_id) or not isinstance(citizen_id, str):
            return None
        async with self._uow.read() as uow:
            row = await uow.appointments.get_for_citizen(str(appointment_id), citizen_id)
        if row is None:
            return None
        target = self._target(row.mode, row.subject_id, row.office_id if row.mode == Mode.OFFICE else None)
        view = row.view()
        if target is None:
            return view, [], 0
        now = self._clock.now()
        with_same: list[SlotOffer] = []
        with_others: list[SlotOffer] = []
        days = await self.days(mode=row.mode, subject_id=row.subject_id, office_id=target.search_office,
                               language=row.interview_language, exclude_appointment_id=row.id, citizen_id=citizen_id)
        async with self._uow.read() as uow:
            for day in days:
                busy = await self._busy(uow, self._day_start(day), self._day_start(day + timedelta(days=1)), row,
                                        citizen_id)
                for offer in self._offers(target, day, now, busy, row.interview_language):
                    if not can_replace_at(offer.start, row.starts_at, now):
                        continue
                    slot = self._find_slot(target, offer.start, now, busy, language=row.interview_language)
                    if slot is None:
                        continue
                    if row.counselor_id in slot.counselor_ids and len(with_same) < same:
                        with_same.append(offer)
                    elif set(slot.counselor_ids) - {row.counselor_id} and len(with_others) < others:
                        with_others.append(offer)
                if len(with_same) >= same and len(with_others) >= others:
                    break
        return view, with_same + with_others, len(with_same)

    async def rebook(self, *, citizen_id: str, appointment_id: object, start: datetime) -> Booked | SlotGone | Refused:
        """Book `start` in place of an appointment that could not take place (a technical problem, an agency
        that did not come): the same subject, mode and language, its counselor first. One transaction: the
        new appointment is held before the old one is given up (and closed as a technical problem)."""
        now = self._clock.now()
        start_or_refused = _move_request(citizen_id, appointment_id, start)
        if isinstance(start_or_refused, Refused):
            return start_or_refused
        start = start_or_refused
        async with self._uow() as uow:
            row = await uow.appointments.get_own_for_update(str(appointment_id), citizen_id)
            if row is None:
                return Refused(NOT_FOUND)
            reported = {outcome.outcome for outcome in await uow.outcomes.for_appointment(row.id)}
            if row.status not in (AppointmentStatus.BOOKED, AppointmentStatus.TECHNICAL_PROBLEM) \
                    or not reported & {Outcome.TECHNICAL_PROBLEM, Outcome.AGENCY_LATE}:
                return Refused(NOT_ACTIVE)
            target = self._target(row.mode, row.subject_id, row.office_id if row.mode == Mode.OFFICE else None)
            if target is None or not can_replace_at(start, row.starts_at, now) \
                    or self._find_slot(target, start, now, _EMPTY, language=None) is None:
                return Refused(INVALID_SLOT)
            end = start + timedelta(minutes=target.subject.duration_minutes)
            secured = None
            if not await self._clashes(uow, citizen_id, start, end, now, moving=row.id):
                slot = await self._live_slot(uow, target, start, now, row.interview_language, exclude=row)
                # The old appointment is given up first (inside this transaction only: a lost race rolls it
                # back), so that the new one may overlap what is left of its time.
                if row.status == AppointmentStatus.BOOKED:
                    row.status = AppointmentStatus.TECHNICAL_PROBLEM
                    row.updated_at = now
                    # After the status change: releasing flushes it, before the new row counts as booked.
                    await uow.slot_claims.release(row.id)
                    await uow.jobs.cancel_for_appointment(row.id)
                    await plan_meeting_cancel(uow, row, now)
                else:
                    await uow.slot_claims.release_citizen(row.id)
                secured = await _first_free(
                    "rebook", start, counselor_preference(slot.counselor_ids if slot else (), keep=row.counselor_id),
                    lambda counselor_id: self._insert(uow, citizen_id, counselor_id, target, start, end,
                                                      row.interview_language, now))
            if secured is None:
                alternatives = await self._alternatives(uow, target, start, now, row.interview_language, row,
                                                        citizen_id)
                return SlotGone([offer for offer in alternatives if can_replace_at(offer.start, row.starts_at, now)])
            booked = secured[1]
            citizen = await uow.citizens.get(citizen_id)
            reminders = citizen is not None and citizen.wants_reminders
            await self._schedule_jobs(uow, booked.id, start, now, reminders_allowed=reminders, revision=0,
                                      meeting=self._meeting_job(row.mode, False))
            await self._audit.record(uow, EventType.REBOOKED, actor=citizen_actor(citizen_id),
                                              citizen_id=citizen_id, appointment_id=booked.id,
                                              payload={"replaces": row.id, "start": start.isoformat()})
            await uow.commit()
        log.info("rebook: appointment %s replaces %s", booked.id, row.id)
        return Booked(booked, tuple(reminder_times(self._agency, start, now, allowed=reminders)))

    def can_cancel(self, appointment: AppointmentView) -> bool:
        """Whether the chat may still cancel or move it (booked, and before the cut-off)."""
        return appointment.status == AppointmentStatus.BOOKED and can_change(appointment.starts_at, self._clock.now(),
                                                                             self._rules)

    # -- internals ------------------------------------------------------------------------

    def _target(self, mode: object, subject_id: object, office_id: object) -> _Target | None:
        """The checked mode, subject and office; None if the agency does not offer this combination."""
        if not isinstance(mode, str) or mode not in set(Mode):
            return None
        checked_mode = Mode(mode)
        subject = self._agency.subject(subject_id) if isinstance(subject_id, str) else None
        if checked_mode not in self._agency.modes or subject is None or checked_mode not in subject.modes:
            return None
        if office_id is not None and (not isinstance(office_id, str) or self._agency.office(office_id) is None):
            return None
        if checked_mode is Mode.OFFICE:
            if office_id is None:
                # Searching every office is fine, booking needs one.
                return _Target(checked_mode, subject, None, None)
            return _Target(checked_mode, subject, office_id, office_id)
        return _Target(checked_mode, subject, office_id, None)

    def _find_slot(
        self,
        target: _Target,
        start: datetime,
        now: datetime,
        busy: BusyIndex,
        *,
        language: str | None,
        load: Mapping[str, int] | None = None,
    ) -> Slot | None:
        """The engine's slot at exactly `start` (and office), counselors fairest first; None if not offered."""
        if target.mode is Mode.OFFICE and target.office_id is None:
            return None
        slots = self._engine.slots_at(
            mode=target.mode, subject_id=target.subject.id, start=start, now=now, busy=busy, language=language,
            office_id=target.search_office, load=load if load is not None else {},
        )
        return next((slot for slot in slots if slot.office_id == target.office_id), None)

    async def _live_slot(
        self, uow: UnitOfWork, target: _Target, start: datetime, now: datetime, language: str,
        exclude: Appointment | None = None,
    ) -> Slot | None:
        """The slot as the database says it is now, its counselors ordered by their current load (fairness)."""
        day = start.astimezone(self._agency.zone).date()
        busy = await self._busy(uow, self._day_start(day), self._day_start(day + timedelta(days=1)), exclude)
        slot = self._find_slot(target, start, now, busy, language=language)
        if slot is None or len(slot.counselor_ids) < 2:
            return slot  # nobody to order: the load is not read
        load = await uow.appointments.load_by_counselor(self._agency.id, now, self._horizon_end(now),
                                                        counselor_ids=slot.counselor_ids)
        return ordered_by_load(slot, load)

    def _offers(self, target: _Target, day: date, now: datetime, busy: BusyIndex,
                language: str | None) -> list[SlotOffer]:
        times = self._engine.times_for_day(
            mode=target.mode, subject_id=target.subject.id, day=day, now=now, busy=busy, language=language,
            office_id=target.search_office,
        )
        return [SlotOffer(start=start, end=end, office_id=office_id) for start, end, office_id in times]

    async def _alternatives(
        self, uow: UnitOfWork, target: _Target, requested: datetime, now: datetime, language: str,
        exclude: Appointment | None, citizen_id: str,
    ) -> list[SlotOffer]:
        """Fresh offers after a slot was lost: nearest times that day, then the following days (none
        overlapping the citizen's other appointments)."""
        day = requested.astimezone(self._agency.zone).date()
        busy = await self._busy(uow, self._day_start(day), self._horizon_end(now), exclude, citizen_id)
        same_day = [offer for offer in self._offers(target, day, now, busy, language) if offer.start != requested]
        later: list[SlotOffer] = []
        next_days = self._engine.days_with_slots(
            mode=target.mode, subject_id=target.subject.id, now=now, busy=busy, language=language,
            office_id=target.search_office, limit=MAX_ALTERNATIVES, from_day=day + timedelta(days=1),
        )
        for next_day in next_days:
            if len(same_day) + len(later) >= MAX_ALTERNATIVES:
                break
            later.extend(self._offers(target, next_day, now, busy, language))
        return pick_alternatives(requested, same_day, later)

    async def _busy(
        self, uow: UnitOfWork, start: datetime, end: datetime, exclude: Appointment | str | None,
        citizen_id: str | None = None,
    ) -> BusyIndex:
        """Booked time overlapping [start, end) per counselor, with their Outlook busy times when the agency
        asks for them; the excluded appointment counts as free. With `citizen_id`, that citizen's own
        appointments (but the excluded one) make their times busy for every counselor."""
        intervals = await uow.appointments.busy_between_us(self._agency.id, start, end)
        outlook = await self._outlook_busy(start, end)
        if outlook:
            intervals = [*intervals, *outlook]
        if isinstance(exclude, str):
            exclude = await uow.appointments.get(exclude) if is_appointment_id(exclude) else None
        if isinstance(citizen_id, str):
            own = own_times(await uow.appointments.upcoming_views_for_citizen(citizen_id, self._clock.now()),
                            moving=exclude.id if exclude is not None else None)
            intervals = [*intervals, *((counselor.id, epoch_us(begin), epoch_us(finish))
                                       for begin, finish in own for counselor in self._agency.counselors)]
        if exclude is None or exclude.status != AppointmentStatus.BOOKED:
            return BusyIndex.from_epoch_us(intervals)
        # One counselor never has two booked appointments over the same time, so the triple names the
        # excluded appointment (and its own Teams event in Outlook, which has the same times).
        skip = (exclude.counselor_id, epoch_us(exclude.starts_at), epoch_us(exclude.ends_at))
        return BusyIndex.from_epoch_us(item for item in intervals if tuple(item) != skip)

    async def _clashes(self, uow: UnitOfWork, citizen_id: str, start: datetime, end: datetime, now: datetime, *,
                       moving: str) -> bool:
        """Whether [start, end) overlaps another active appointment of the citizen than `moving`."""
        return clashes_with_own(start, end, await uow.appointments.upcoming_views_for_citizen(citizen_id, now),
                                moving=moving)

    async def _outlook_busy(self, start: datetime, end: datetime) -> list[tuple[str, int, int]]:
        """Counselors' Outlook busy times in [start, end) (cached by the provider; none when it cannot tell)."""
        availability = self._availability
        if availability is None or not self._agency.outlook_availability:
            return []
        busy = await availability.busy([(c.id, c.email) for c in self._agency.counselors if c.email], start, end)
        return [(counselor_id, epoch_us(begin), epoch_us(finish))
                for counselor_id, spans in busy.items() for begin, finish in spans]

    async def _insert(
        self, uow: UnitOfWork, citizen_id: str, counselor_id: str, target: _Target, start: datetime,
        end: datetime, interview_language: str, now: datetime,
    ) -> AppointmentView:
        """The appointment with its claims, or SlotTaken with nothing written (one savepoint).

        Claims are held before the row counts as booked (see storage's AppointmentRepository.insert_booked):
        once they are, no other transaction can be booking an overlapping time.
        """
        appointment_id = str(uuid4())
        await uow.appointments.book({
            "id": appointment_id, "agency_id": self._agency.id, "citizen_id": citizen_id,
            "counselor_id": counselor_id, "mode": str(target.mode), "office_id": target.office_id,
            "subject_id": target.subject.id, "starts_at": start, "ends_at": end,
            "interview_language": interview_language, "created_at": now, "updated_at": now,
            "meeting_state": MeetingState.PENDING.value if self._meeting_job(target.mode, False)
            else MeetingState.NONE.value,
        }, claim_steps(start, end))
        return AppointmentView(
            id=appointment_id, mode=target.mode, subject_id=target.subject.id, office_id=target.office_id,
            starts_at=start, ends_at=end, status=AppointmentStatus.BOOKED, interview_language=interview_language,
            join_url=None, counselor_id=counselor_id, cancel_reason=None, updated_at=now,
        )

    async def _changeable(self, uow: UnitOfWork, citizen_id: str, appointment_id: str,
                          now: datetime) -> Appointment | Refused:
        """The citizen's appointment, locked, if they may still move or cancel it; else why not."""
        row = await uow.appointments.get_own_for_update(appointment_id, citizen_id)
        if row is None:
            return Refused(NOT_FOUND)
        if not row.is_active(now):
            return Refused(NOT_ACTIVE)
        if not can_change(row.starts_at, now, self._rules):
            return Refused(CUTOFF_PASSED, {"phone": self._agency.contact.phone})
        return row

    def _meeting_job(self, mode: Mode | str, has_meeting: bool) -> JobKind | None:
        """The Teams meeting job a video booking or move needs (none in local mode: no Graph)."""
        if self._meetings is None or Mode(mode) is not Mode.VIDEO:
            return None
        return JobKind.MEETING_MOVE if has_meeting else JobKind.MEETING_CREATE

    async def _schedule_jobs(
        self, uow: UnitOfWork, appointment_id: str, start: datetime, now: datetime, *, reminders_allowed: bool,
        revision: int, meeting: JobKind | None = None,
    ) -> None:
        """The appointment's reminders, prompt, no-show check and meeting job, in one statement; the e-mail."""
        jobs: list[NewJob] = []
        if meeting is not None:
            # Due now: the link should reach the citizen within the minute (the runner is woken at commit).
            jobs.append(NewJob(str(meeting), now, {"appointment_id": appointment_id},
                               f"{meeting}:{appointment_id}:{start.isoformat()}:r{revision}"))
        for job in plan_jobs(self._agency, start, now, reminders_allowed=reminders_allowed):
            key = f"{job.kind}:{appointment_id}:{start.isoformat()}"
            payload: dict[str, Any] = {"appointment_id": appointment_id}
            if job.offset_minutes is not None:
                key += f":{job.offset_minutes}m"
                payload["offset_minutes"] = job.offset_minutes
            jobs.append(NewJob(str(job.kind), job.run_at, payload, f"{key}:r{revision}"))
        await uow.jobs.schedule_many(jobs, appointment_id=appointment_id, now=now)
        if self._email is not None:  # for a citizen the chat may not reach (bot.jobs.email decides)
            await plan_confirmation_email(uow, appointment_id, start, now)

    def _local_today(self, now: datetime) -> date:
        return now.astimezone(self._agency.zone).date()

    def _day_start(self, day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=self._agency.zone).astimezone(UTC)

    def _horizon_end(self, now: datetime) -> datetime:
        """The end of the last local day the engine offers (today + max_horizon_days)."""
        return self._day_start(self._local_today(now) + timedelta(days=self._rules.max_horizon_days + 1))


async def _first_free(
    change: str, start: datetime, counselor_ids: Sequence[str], attempt: Callable[[str], Awaitable[R]]
) -> tuple[str, R] | None:
    """The first counselor (in order) whose time `attempt` secures, with what it returned; None when all
    are taken, or at once when the citizen's own time was taken meanwhile (no counselor can help)."""
    for counselor_id in counselor_ids:
        try:
            return counselor_id, await attempt(counselor_id)
        except CitizenBusy:
            log.info("%s: the citizen booked an overlapping time meanwhile (%s)", change, start.isoformat())
            return None
        except SlotTaken:
            log.info("%s: counselor %s taken at %s, trying the next", change, counselor_id, start.isoformat())
    return None


def _is_aware(value: object) -> bool:
    return isinstance(value, datetime) and value.tzinfo is not None and value.utcoffset() is not None


def _move_request(citizen_id: object, appointment_id: object, start: object) -> datetime | Refused:
    """The new start in UTC for a move of one's own appointment, or why the request is refused."""
    if not is_appointment_id(appointment_id) or not isinstance(citizen_id, str):
        return Refused(NOT_FOUND)
    if not isinstance(start, datetime) or not _is_aware(start):
        return Refused(INVALID_SLOT)
    return start.astimezone(UTC)
