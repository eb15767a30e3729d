"""Privacy rights in the chat: see, export, correct and erase one's data; restrict processing; reminders.

Each use case is one transaction ending with its audit event (payloads name fields and counts, never
values). Erasure keeps only what the agency must keep (see docs/privacy.md):

- the citizen row stays as a pseudonymous shell (its random id, dates, flags) so that consent proofs
  and the audit trail stay attributable to "the person behind this pseudonym" for their legal period,
  while nothing on it identifies or reaches the person any more;
- appointments are kept anonymised for statistics (citizen unlinked, note and meeting link dropped)
  when the agency keeps statistics, and deleted otherwise;
- consent proofs get a withdrawal record, which starts their retention period;
- the conversation state of the chat is deleted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import uuid4

from bot.domain.agency import Agency, PersonalField
from bot.domain.appointment import Appointment, AppointmentView, CancelReason
from bot.domain.audit import AuditEvent, EventType
from bot.domain.booking_rules import plan_jobs
from bot.domain.consent import ConsentRecord
from bot.domain.interview_language import decide_interview_language
from bot.domain.jobs import JobKind
from bot.domain.people import Citizen
from bot.domain.personal_data import corrected_fields, held_fields, validate_personal_data
from bot.services.audit import AuditTrail, citizen_actor
from bot.services.cancellation import cancel_appointment
from bot.services.consent import append_withdrawals
from bot.services.export_schema import EXPORT_FORMAT, EXPORT_SCHEMA, export_about
from bot.services.ports import Clock, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

# Jobs that exist only for the citizen's convenience: restriction and opting out stop them.
NON_ESSENTIAL_JOBS = (str(JobKind.REMINDER),)


@dataclass(frozen=True)
class ConsentView:
    kind: str
    version: str
    action: str
    occurred_at: datetime


@dataclass(frozen=True)
class Overview:
    """What the agency holds about one citizen, as the "my data" card shows it."""

    personal: dict[PersonalField, str | date]
    interview_language: str | None
    has_teams_identity: bool
    consents: list[ConsentView]
    upcoming: list[AppointmentView]
    past_count: int
    processing_restricted: bool
    reminders_opt_out: bool
    created_at: datetime


@dataclass(frozen=True)
class RectifyResult:
    errors: dict[PersonalField, str] = field(default_factory=dict)
    changed: tuple[PersonalField, ...] = ()
    # A new postal code changed the interview language of future bookings (or made it a choice again).
    interview_language_changed: bool = False
    nothing_stored: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors and not self.nothing_stored


@dataclass(frozen=True)
class EraseResult:
    cancelled: tuple[AppointmentView, ...] = ()
    anonymised: int = 0
    deleted: int = 0
    consents_withdrawn: tuple[str, ...] = ()
    # Nothing was done: the citizen booked since the confirmation card was shown.
    upcoming_changed: bool = False
    already_erased: bool = False




def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


class PrivacyService:
    def __init__(self, agency: Agency, uow: UnitOfWorkFactory, clock: Clock, audit: AuditTrail) -> None:
        self._agency = agency
        self._uow = uow
        self._clock = clock
        self._audit = audit

    # -- access ------------------------------------------------------------------------------------

    async def overview(self, citizen_id: str) -> Overview | None:
        now = self._clock.now()
        async with self._uow() as uow:
            citizen = await uow.citizens.get(citizen_id)
            if citizen is None or citizen.erased_at is not None:
                return None
            history = await uow.consents.history(citizen_id)
            appointments = await uow.appointments.all_for_citizen(citizen_id)
        latest: dict[str, ConsentRecord] = {}
        for record in history:
            latest[record.document_kind] = record
        upcoming = [a.view() for a in appointments if a.is_active(now)]
        return Overview(
            personal=self._personal(citizen),
            interview_language=citizen.interview_language,
            has_teams_identity=bool(citizen.aad_object_id or citizen.teams_user_id),
            consents=[ConsentView(r.document_kind, r.version, r.action, r.occurred_at) for r in latest.values()],
            upcoming=upcoming,
            past_count=len(appointments) - len(upcoming),
            processing_restricted=bool(citizen.processing_restricted),
            reminders_opt_out=bool(citizen.reminders_opt_out),
            created_at=citizen.created_at,
        )

    def _personal(self, citizen: Citizen) -> dict[PersonalField, str | date]:
        """The personal fields the citizen has given, in the agency's order (then any other they gave)."""
        values: dict[PersonalField, str | date] = {}
        for personal_field in held_fields(self._agency.personal_data_fields,
                                          lambda f: getattr(citizen, f.value) is not None):
            value = getattr(citizen, personal_field.value)
            if value is not None:
                values[personal_field] = value
        return values

    async def stored_personal_data(self, citizen_id: str) -> dict[PersonalField, str | date]:
        async with self._uow() as uow:
            citizen = await uow.citizens.get(citizen_id)
        return self._personal(citizen) if citizen is not None else {}

    # -- export (access and portability) ----------------------------------------------------------

    async def export(self, citizen_id: str, language: str) -> dict[str, Any] | None:
        """Everything about the citizen, as one JSON document (see bot/services/export_schema.py)."""
        async with self._uow() as uow:
            citizen = await uow.citizens.get(citizen_id)
            if citizen is None or citizen.erased_at is not None:
                return None
            consents = await uow.consents.history(citizen_id)
            appointments = await uow.appointments.all_for_citizen(citizen_id)
            events = await uow.audit.about(citizen_id, [a.id for a in appointments])
        return {
            "format": EXPORT_FORMAT,
            "generated_at": self._clock.now().isoformat(),
            "about": export_about(self._agency, language),
            "controller": {
                "agency_id": self._agency.id,
                "name": self._agency.display_name(language),
                "contact": self._agency.contact.model_dump(),
                "data_protection_officer": self._agency.dpo_contact,
            },
            "pseudonym": citizen.id,
            "profile": self._profile(citizen),
            "consents": [self._consent(record) for record in consents],
            "appointments": [self._appointment(row, language) for row in appointments],
            "audit_events": [self._event(event) for event in events],
            "retention_months": self._agency.retention.model_dump(),
            "schema": EXPORT_SCHEMA,
        }

    def _profile(self, citizen: Citizen) -> dict[str, Any]:
        personal = {
            personal_field.value: _iso(value) if isinstance(value, date) else value
            for personal_field in PersonalField
            if (value := getattr(citizen, personal_field.value)) is not None
        }
        return {
            "personal_data": personal,
            "interview_language": citizen.interview_language,
            "locale": citizen.locale,
            "teams": {
                "tenant_id": citizen.tenant_id,
                "aad_object_id": citizen.aad_object_id,
                "teams_user_id": citizen.teams_user_id,
                "conversation_reference": citizen.conversation_reference,
            },
            "processing_restricted": bool(citizen.processing_restricted),
            "reminders_opt_out": bool(citizen.reminders_opt_out),
            "first_seen_at": _iso(citizen.created_at),
            "last_seen_at": _iso(citizen.last_seen_at),
        }

    @staticmethod
    def _consent(record: ConsentRecord) -> dict[str, Any]:
        return {
            "document": record.document_kind, "version": record.version, "content_hash": record.content_hash,
            "language": record.language, "action": record.action, "channel": record.channel,
            "activity_id": record.activity_id, "occurred_at": _iso(record.occurred_at),
        }

    def _appointment(self, row: Appointment, language: str) -> dict[str, Any]:
        subject = self._agency.subject(row.subject_id)
        office = self._agency.office(row.office_id) if row.office_id else None
        counselor = self._agency.counselor(row.counselor_id)
        return {
            "id": row.id,
            "status": row.status,
            "mode": row.mode,
            "subject": {"id": row.subject_id,
                        "name": (subject.name.get(language) or subject.name[self._agency.default_language])
                        if subject else None},
            "office": {"id": office.id, "name": office.name.get(language) or office.name[self._agency.default_language],
                       "address": f"{office.street}, {office.postal_code} {office.city}"} if office else None,
            "counselor": counselor.display_name if counselor else None,
            "starts_at": _iso(row.starts_at),
            "ends_at": _iso(row.ends_at),
            "interview_language": row.interview_language,
            "cancel_reason": row.cancel_reason,
            "cancel_note": row.cancel_note,
            "join_url": row.join_url,
            "identity_check": row.identity_check,
            "created_at": _iso(row.created_at),
            "updated_at": _iso(row.updated_at),
        }

    @staticmethod
    def _event(event: AuditEvent) -> dict[str, Any]:
        # Staff are named by their role only: their own identifiers are not the citizen's data.
        return {
            "id": event.id, "occurred_at": _iso(event.occurred_at), "event_type": event.event_type,
            "actor": event.actor.split(":", 1)[0], "appointment_id": event.appointment_id,
            "payload": event.payload, "prev_hash": event.prev_hash, "hash": event.hash,
        }

    async def record_export(self, citizen_id: str, *, delivery: str, size_bytes: int) -> None:
        """Audit a delivered export (after the file reached the citizen)."""
        async with self._uow() as uow:
            await self._audit.record(
                uow, EventType.DATA_EXPORTED, actor=citizen_actor(citizen_id), citizen_id=citizen_id,
                payload={"delivery": delivery, "bytes": size_bytes, "format": EXPORT_FORMAT},
            )
            await uow.commit()

    # -- rectification -------------------------------------------------------------------------------

    async def rectify(self, citizen_id: str, raw: Mapping[str, object]) -> RectifyResult:
        """Replace the citizen's personal data by the form's values, all checked as at booking."""
        now = self._clock.now()
        today = now.astimezone(self._agency.zone).date()
        raw = raw if isinstance(raw, Mapping) else {}
        checked = validate_personal_data(corrected_fields(self._agency.personal_data_fields, raw), raw,
                                         country=self._agency.country, today=today)
        if not checked.ok:
            return RectifyResult(errors=dict(checked.errors))
        async with self._uow() as uow:
            citizen = await uow.citizens.get(citizen_id)
            if citizen is None or not self._personal(citizen):
                return RectifyResult(nothing_stored=True)
            changed = tuple(f for f, value in checked.values.items() if getattr(citizen, f.value) != value)
            if not changed:
                return RectifyResult()
            values: dict[str, str | date | None] = {f.value: checked.values[f] for f in changed}
            language_changed = False
            if PersonalField.POSTAL_CODE in changed:
                # The interview language follows the residence (Belgium); a new one applies from the
                # next booking, and an open choice (Brussels) is asked again then.
                postal_code = checked.values[PersonalField.POSTAL_CODE]
                decision = decide_interview_language(
                    self._agency, postal_code=postal_code if isinstance(postal_code, str) else None,
                    preferred=citizen.interview_language,
                )
                if decision.language != citizen.interview_language:
                    values["interview_language"] = decision.language
                    language_changed = True
            await uow.citizens.save_personal_data(citizen_id, values)
            payload: dict[str, Any] = {"fields": [f.value for f in changed]}
            if language_changed:
                payload["interview_language_changed"] = True
            await self._audit.record(uow, EventType.DATA_RECTIFIED, actor=citizen_actor(citizen_id),
                                              citizen_id=citizen_id, payload=payload)
            await uow.commit()
        # Upcoming appointments read the citizen row, so they carry the new data; their Teams meetings
        # hold nothing about the person (bot.services.meetings), so nothing sent out needs refreshing.
        return RectifyResult(changed=changed, interview_language_changed=language_changed)

    # -- erasure ---------------------------------------------------------------------------------------

    async def upcoming_count(self, citizen_id: str) -> int:
        async with self._uow() as uow:
            return len(await uow.appointments.upcoming_for_citizen(citizen_id, self._clock.now()))

    async def erase(
        self,
        citizen_id: str,
        *,
        language: str,
        conversations: Iterable[Mapping[str, Any]] = (),
        activity_id: str | None = None,
        channel: str = "msteams",
        announced_upcoming: int | None = None,
    ) -> EraseResult:
        """Erase the citizen at their request (see the module docstring for what is kept)."""
        async with self._uow() as uow:
            now = self._clock.now()
            citizen = await uow.citizens.get(citizen_id)
            if citizen is None or citizen.erased_at is not None:
                return EraseResult(already_erased=True)
            if announced_upcoming is not None:
                upcoming = await uow.appointments.upcoming_for_citizen(citizen_id, now)
                if len(upcoming) > announced_upcoming:
                    return EraseResult(upcoming_changed=True)
            result = await erase_in(
                uow, self._agency, self._audit, citizen, now=now, actor=citizen_actor(citizen_id),
                reason="request", language=language, conversations=conversations, activity_id=activity_id,
                channel=channel,
            )
            await uow.commit()
        log.info("privacy: citizen erased at their request (%d appointments cancelled)", len(result.cancelled))
        return result

    # -- restriction, objection, reminders ------------------------------------------------------------

    async def set_restricted(self, citizen_id: str, restricted: bool) -> bool:
        """Restrict (or resume) non-essential processing; returns whether anything changed."""
        return await self._set_flag(citizen_id, restricted=restricted)

    async def set_reminders(self, citizen_id: str, enabled: bool) -> bool:
        """Opt out of (or back into) reminders; returns whether anything changed."""
        return await self._set_flag(citizen_id, reminders_opt_out=not enabled)

    async def _set_flag(self, citizen_id: str, *, restricted: bool | None = None,
                        reminders_opt_out: bool | None = None) -> bool:
        async with self._uow() as uow:
            now = self._clock.now()
            citizen = await uow.citizens.get(citizen_id)
            if citizen is None or citizen.erased_at is not None:
                return False
            was_allowed = not (citizen.processing_restricted or citizen.reminders_opt_out)
            new_restricted = citizen.processing_restricted if restricted is None else restricted
            new_opt_out = citizen.reminders_opt_out if reminders_opt_out is None else reminders_opt_out
            if (new_restricted, new_opt_out) == (citizen.processing_restricted, citizen.reminders_opt_out):
                return False
            await uow.citizens.set_flags(citizen_id, processing_restricted=restricted,
                                         reminders_opt_out=reminders_opt_out)
            now_allowed = not (new_restricted or new_opt_out)
            upcoming = await uow.appointments.upcoming_for_citizen(citizen_id, now)
            cancelled = planned = 0
            if was_allowed and not now_allowed:
                cancelled = await uow.privacy.cancel_pending_jobs([a.id for a in upcoming], NON_ESSENTIAL_JOBS)
            elif now_allowed and not was_allowed:
                planned = await self._plan_reminders(uow, upcoming, now)
            payload: dict[str, Any]
            if restricted is not None:
                event, payload = EventType.PROCESSING_RESTRICTED, {"restricted": restricted}
            else:
                event, payload = EventType.REMINDERS_CHANGED, {"reminders": not reminders_opt_out}
            payload.update(reminders_cancelled=cancelled, reminders_planned=planned)
            await self._audit.record(uow, event, actor=citizen_actor(citizen_id), citizen_id=citizen_id,
                                              payload=payload)
            await uow.commit()
        return True

    async def _plan_reminders(self, uow: UnitOfWork, upcoming: Sequence[Appointment], now: datetime) -> int:
        """Reminders for appointments booked while they were off (those still ahead)."""
        planned = 0
        resumed = uuid4().hex[:12]
        for appointment in upcoming:
            for job in plan_jobs(self._agency, appointment.starts_at, now, reminders_allowed=True):
                if job.kind is not JobKind.REMINDER:
                    continue
                # A fresh key: the reminders cancelled earlier keep theirs (a dedupe key is never reused).
                key = (f"{job.kind}:{appointment.id}:{appointment.starts_at.isoformat()}:"
                       f"{job.offset_minutes}m:resumed-{resumed}")
                await uow.jobs.schedule(str(job.kind), job.run_at,
                                        {"appointment_id": appointment.id, "offset_minutes": job.offset_minutes},
                                        key, appointment_id=appointment.id, now=now)
                planned += 1
        return planned


async def erase_in(
    uow: UnitOfWork,
    agency: Agency,
    audit: AuditTrail,
    citizen: Citizen,
    *,
    now: datetime,
    actor: str,
    reason: str,
    language: str,
    conversations: Iterable[Mapping[str, Any]] = (),
    activity_id: str | None = None,
    channel: str = "msteams",
) -> EraseResult:
    """Erase one citizen inside the caller's transaction (request or retention); audit writes come last.
    The Teams meetings of the cancelled appointments are cancelled by jobs planned here too."""
    citizen_id = citizen.id
    repository = uow.privacy
    upcoming = [a for a in await uow.appointments.upcoming_for_citizen(citizen_id, now) if a.is_active(now)]
    for appointment in upcoming:
        await cancel_appointment(uow, appointment, reason=CancelReason.ERASURE, now=now)
    cancelled = tuple(a.view() for a in upcoming)

    # Consent ends with the data: the withdrawal record starts the proofs' retention period.
    withdrawn = [kind.value for kind in await append_withdrawals(
        uow, agency_id=agency.id, citizen_id=citizen_id, language=language, activity_id=activity_id,
        channel=channel, now=now,
    )]

    appointment_ids = await repository.appointment_ids_of(citizen_id)
    anonymised = deleted = 0
    if agency.retention.keep_anonymised_statistics:
        await repository.delete_idle_jobs(appointment_ids)
        anonymised = await repository.anonymise_appointments(appointment_ids, now)
    else:
        deleted = await repository.delete_appointments(appointment_ids)
    # The bot state of the conversation erased from, and of the one the citizen's reference names.
    await repository.delete_bot_state_of([*conversations, citizen.conversation_reference or {}])
    await repository.erase_identity(citizen_id, now)
    await uow.web_identities.revoke(citizen_id)  # every manage link and web conversation of theirs

    for appointment in upcoming:
        await audit.record(uow, EventType.CANCELLED, actor=actor, citizen_id=citizen_id,
                           appointment_id=appointment.id, payload={"reason": CancelReason.ERASURE})
    if withdrawn:
        await audit.record(uow, EventType.CONSENT_WITHDRAWN, actor=actor, citizen_id=citizen_id,
                           payload={"kinds": withdrawn, "cancelled": len(upcoming), "reason": "erasure"})
    await audit.record(uow, EventType.DATA_ERASED, actor=actor, citizen_id=citizen_id, payload={
        "reason": reason, "appointments_cancelled": len(upcoming), "appointments_anonymised": anonymised,
        "appointments_deleted": deleted, "consents_withdrawn": withdrawn,
    })
    return EraseResult(cancelled=cancelled, anonymised=anonymised, deleted=deleted,
                       consents_withdrawn=tuple(withdrawn))


def export_bytes(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=False).encode("utf-8")


__all__ = [
    "EraseResult", "Overview", "PrivacyService",
    "RectifyResult", "erase_in", "export_bytes",
]
