"""The agency's side of the chat: who is staff, where the bot reaches them, their day, the prompt before an
interview and the statistics a supervisor reads.

Counselors and supervisors are the agency file's (Entra object ids); the bot mirrors them into the
counselors table with the personal chat it reaches each one in. A prompt carries what the counselor needs
to check the citizen's identity, as the agency configures it, with identifiers masked.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from bot.domain.agency import Agency, PersonalField
from bot.domain.appointment import AppointmentStatus, AppointmentView, Outcome
from bot.domain.audit import EventType
from bot.domain.people import Citizen, TeamsIdentity
from bot.domain.personal_data import mask
from bot.domain.staff_reach import staff_reachable, unreachable_counselors
from bot.i18n import language_of
from bot.services.audit import SYSTEM_ACTOR, AuditTrail
from bot.services.ports import AppInstaller, Clock, UnitOfWork, UnitOfWorkFactory

# Shown in full on the prompt: the counselor compares them with the identity document.
_SHOWN_IN_FULL = frozenset({PersonalField.FIRST_NAME, PersonalField.LAST_NAME, PersonalField.BIRTH_DATE})
_TOUCH_INTERVAL = timedelta(minutes=10)


@dataclass(frozen=True)
class StaffMember:
    id: str
    display_name: str
    supervisor: bool


@dataclass(frozen=True)
class Chat:
    """Where and in which language the bot writes to a staff member."""

    reference: dict[str, Any]
    language: str


@dataclass(frozen=True)
class Prompt:
    appointment: AppointmentView
    counselor: StaffMember
    citizen_name: str
    # The agency's identity-check fields the citizen gave: names and birth date as given, numbers masked.
    identity: list[tuple[PersonalField, str | date]]
    chat: Chat | None


@dataclass(frozen=True)
class DayEntry:
    appointment: AppointmentView
    counselor_name: str
    # As the citizen gave it ("" once erased or never given): the counselor prepares with it.
    citizen_name: str


def citizen_name(citizen: Citizen | None) -> str:
    """The citizen's first and last name as given, "" when there is none."""
    return " ".join(part for part in (getattr(citizen, "first_name", None), getattr(citizen, "last_name", None))
                    if part)


@dataclass(frozen=True)
class WeekCounts:
    week_start: date
    counts: dict[Outcome, int]
    booked: int


class StaffService:
    def __init__(self, agency: Agency, uow: UnitOfWorkFactory, clock: Clock, audit: AuditTrail, *,
                 installer: AppInstaller | None) -> None:
        self._agency = agency
        self._uow = uow
        self._clock = clock
        self._audit = audit
        # Only whether there is one matters here: a counselor without a chat can then be reached.
        self._installer = installer
        self._recent: dict[str, tuple[str, datetime, str | None]] = {}

    def member(self, object_id: str | None) -> StaffMember | None:
        if object_id is None:
            return None
        counselor = self._agency.counselor(object_id)
        if counselor is not None:
            return StaffMember(counselor.id, counselor.display_name, False)
        supervisor = self._agency.supervisor(object_id)
        if supervisor is not None:
            return StaffMember(supervisor.id, supervisor.display_name, True)
        return None

    async def remember_chat(self, identity: TeamsIdentity, reference: dict[str, Any], locale: str | None) -> str | None:
        """Store where the bot reaches a staff member (unchanged chats are not rewritten on every turn);
        their chat's locale: this turn's, else the last one Teams gave (an install carries none)."""
        member = self.member(identity.aad_object_id)
        if member is None:
            return None
        lasting = {key: value for key, value in reference.items() if key != "activityId"}
        fingerprint = json.dumps([lasting, locale], sort_keys=True, default=str)
        now = self._clock.now()
        recent = self._recent.get(member.id)
        if recent is not None and recent[0] == fingerprint and now - recent[1] < _TOUCH_INTERVAL:
            return recent[2]
        async with self._uow() as uow:
            account = await uow.counselors.get(member.id)
            if account is None:
                await uow.counselors.upsert(member.id, self._agency.id, member.display_name)
            await uow.counselors.set_conversation_reference(member.id, reference, locale)
            await uow.commit()
        known = locale or (account.locale if account is not None else None)
        self._recent[member.id] = (fingerprint, now, known)
        return known

    async def chat(self, staff_id: str) -> Chat | None:
        async with self._uow.read() as uow:
            account = await uow.counselors.get(staff_id)
        if account is None or not account.conversation_reference:
            return None
        return Chat(account.conversation_reference, language_of(account.locale) or self._agency.default_language)

    async def reachable(self, staff_id: str) -> bool:
        """Whether a message for this staff member can reach anyone, from what is known now."""
        return staff_reachable(has_chat=await self.chat(staff_id) is not None,
                               can_install=self._installer is not None,
                               has_fallback_channel=self._agency.fallback_channel is not None)

    async def unreachable_counselors(self) -> list[str]:
        """The agency file's ids of the counselors no message can reach (no chat, no install, no channel)."""
        async with self._uow.read() as uow:
            accounts = await uow.counselors.list_for_agency(self._agency.id)
        return unreachable_counselors(self._agency, can_install=self._installer is not None,
                                      with_chat={a.id for a in accounts if a.conversation_reference})

    async def prompt(self, appointment_id: str) -> Prompt | None:
        """What the counselor's prompt shows, or None when the appointment is no longer active."""
        now = self._clock.now()
        async with self._uow.read() as uow:
            appointment = await uow.appointments.get(appointment_id)
            if appointment is None or not appointment.is_active(now):
                return None
            citizen = await uow.citizens.get(appointment.citizen_id) if appointment.citizen_id else None
        counselor = self.member(appointment.counselor_id)
        if counselor is None:
            return None
        identity: list[tuple[PersonalField, str | date]] = []
        for field in self._agency.identity_fields:
            value = getattr(citizen, field.value, None) if citizen is not None else None
            if value is not None:
                identity.append((field, value if field in _SHOWN_IN_FULL else mask(field, value)))
        return Prompt(appointment.view(), counselor, citizen_name(citizen), identity,
                      await self.chat(counselor.id))

    async def record_prompted(self, uow: UnitOfWork, appointment_id: str) -> None:
        """Inside the transaction that completes the prompt's job: its audit trace."""
        await self._audit.record(uow, EventType.COUNSELOR_PROMPTED, actor=SYSTEM_ACTOR,
                                          appointment_id=appointment_id, payload={})

    async def day(self, staff_id: str, day: date, *, days: int = 2) -> list[DayEntry]:
        """The appointments of `day` and the next (`days` in all): the counselor's own, or everyone's for a
        supervisor; cancelled ones left out."""
        member = self.member(staff_id)
        if member is None:
            return []
        zone = self._agency.zone
        start = datetime.combine(day, time(0), tzinfo=zone)
        end = datetime.combine(day + timedelta(days=days), time(0), tzinfo=zone)
        async with self._uow.read() as uow:
            rows = await uow.appointments.of_counselors_between(
                self._agency.id, start, end, None if member.supervisor else [member.id])
            shown = [row for row in rows if row.status != AppointmentStatus.CANCELLED]
            citizens = {row.citizen_id: await uow.citizens.get(row.citizen_id)
                        for row in shown if row.citizen_id is not None}
        entries = []
        for row in shown:
            counselor = self.member(row.counselor_id)
            entries.append(DayEntry(row.view(),
                                    counselor.display_name if counselor else row.counselor_id,
                                    citizen_name(citizens.get(row.citizen_id) if row.citizen_id else None)))
        return entries

    async def statistics(self, *, weeks: int = 8) -> list[WeekCounts]:
        """Outcomes per week (Monday first, agency time), the newest week first, over the last `weeks`."""
        zone = self._agency.zone
        today = self._clock.now().astimezone(zone).date()
        first_monday = today - timedelta(days=today.weekday() + 7 * (weeks - 1))
        start = datetime.combine(first_monday, time(0), tzinfo=zone)
        end = datetime.combine(today + timedelta(days=1), time(0), tzinfo=zone)
        async with self._uow.read() as uow:
            reported = await uow.outcomes.between(self._agency.id, start, end)
            appointments = await uow.appointments.of_counselors_between(self._agency.id, start, end)
        per_week: dict[date, Counter[Outcome]] = {}
        booked: Counter[date] = Counter()
        for outcome, when in reported:
            local = when.astimezone(zone).date()
            per_week.setdefault(local - timedelta(days=local.weekday()), Counter())[Outcome(outcome)] += 1
        for appointment in appointments:
            local = appointment.starts_at.astimezone(zone).date()
            booked[local - timedelta(days=local.weekday())] += 1
        return [WeekCounts(first_monday + timedelta(days=7 * i), dict(per_week.get(first_monday + timedelta(days=7 * i),
                                                                                    Counter())),
                           booked[first_monday + timedelta(days=7 * i)])
                for i in reversed(range(weeks))]
