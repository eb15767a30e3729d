"""Consent use cases: what a citizen still has to accept, recording an acceptance, withdrawing consent.

Every acceptance is checked against the agency's CURRENT document before anything is written: a
button from an older card, or data edited by hand, is refused and changes nothing. Proof rows are
append-only and written in the same transaction as their audit event. Declining writes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.domain.agency import Agency, DocumentKind
from bot.domain.appointment import Appointment, CancelReason
from bot.domain.audit import EventType
from bot.domain.consent import (
    REQUIRED,
    ConsentAction,
    LatestConsent,
    LatestConsentRecord,
    PendingDocument,
    Purpose,
    content_hash,
    is_current,
    pending_documents,
)
from bot.services.audit import AuditTrail, citizen_actor
from bot.services.cancellation import cancel_upcoming_for_citizen
from bot.services.ports import Clock, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

# Cards carry only a prefix of the content hash (see cards.consent.HASH_PREFIX_LENGTH).
DOC_HASH_LENGTH = 16
CITIZEN_REF_LENGTH = 16
DEFAULT_CHANNEL = "msteams"


def citizen_ref(citizen_id: str) -> str:
    """The citizen as named on their own cards: a one-way digest, never the internal id itself.

    Cards leave our systems (Teams stores them); the internal id is the audit pseudonym, so it is
    not printed on them. 64 bits tell the citizens of one agency apart without revealing anyone.
    """
    return hashlib.sha256(f"guichet.citizen-ref:{citizen_id}".encode()).hexdigest()[:CITIZEN_REF_LENGTH]


class Refusal(StrEnum):
    """Why an acceptance was not recorded (catalog keys `consent_flow.refused.<value>`)."""

    # The card showed a version or text that is no longer the agency's current one.
    NOT_CURRENT = "not_current"
    # The action's data does not describe any document we show (unknown kind, language, hash form).
    INVALID = "invalid"
    # The card was made for someone else.
    NOT_YOURS = "not_yours"


@dataclass(frozen=True)
class AcceptResult:
    refusal: Refusal | None = None
    # When the acceptance of this version was recorded (now, or earlier if it already was).
    accepted_at: datetime | None = None
    version: str | None = None
    # True when the citizen had already accepted this exact version: nothing new was written.
    already: bool = False

    @property
    def accepted(self) -> bool:
        return self.refusal is None


@dataclass(frozen=True)
class CancelledAppointment:
    """What the citizen needs to recognise an appointment that was cancelled (no personal data)."""

    starts_at: datetime
    subject_id: str
    mode: str


@dataclass(frozen=True)
class WithdrawResult:
    withdrawn: tuple[DocumentKind, ...]
    cancelled: tuple[CancelledAppointment, ...]
    # Nothing was done: the citizen booked since the confirmation card was shown.
    upcoming_changed: bool = False

    @property
    def cancelled_count(self) -> int:
        return len(self.cancelled)

    @property
    def changed(self) -> bool:
        return bool(self.withdrawn or self.cancelled)


@dataclass(frozen=True)
class DocumentStatus:
    """One document as it stands for one citizen."""

    kind: DocumentKind
    # The latest acceptance still in force, when there is one.
    accepted_at: datetime | None = None
    version: str | None = None
    # What to read and accept, when the citizen's consent to this document is not current.
    pending: PendingDocument | None = None

    @property
    def current(self) -> bool:
        return self.pending is None


def _activity_id(activity_id: str | None) -> str | None:
    return activity_id[:256] if activity_id else None


def _latest(records: dict[str, LatestConsentRecord]) -> dict[DocumentKind, LatestConsent]:
    latest: dict[DocumentKind, LatestConsent] = {}
    for kind_value, record in records.items():
        try:
            kind = DocumentKind(kind_value)
            action = ConsentAction(record.action)
        except ValueError:
            continue  # a kind or action this version of the bot does not know counts as nothing
        latest[kind] = LatestConsent(version=record.version, content_hash=record.content_hash, action=action)
    return latest


class ConsentService:
    def __init__(self, agency: Agency, uow: UnitOfWorkFactory, clock: Clock, audit: AuditTrail) -> None:
        self._agency = agency
        self._uow = uow
        self._clock = clock
        self._audit = audit

    async def pending(self, citizen_id: str, purpose: Purpose = Purpose.BOOK) -> list[PendingDocument]:
        """The documents still to (re)accept before `purpose`, terms first."""
        async with self._uow.read() as uow:
            records = await uow.consents.latest_per_kind(citizen_id)
        return pending_documents(self._agency, purpose, _latest(records))

    async def status(self, citizen_id: str, kind: DocumentKind) -> DocumentStatus:
        async with self._uow.read() as uow:
            records = await uow.consents.latest_per_kind(citizen_id)
        record = records.get(kind.value)
        latest = _latest(records).get(kind)
        if record is not None and is_current(self._agency, kind, latest):
            return DocumentStatus(kind, accepted_at=record.occurred_at, version=record.version)
        document = self._agency.current_document(kind)
        previous = latest.version if latest is not None and latest.action is ConsentAction.ACCEPTED else None
        return DocumentStatus(kind, pending=PendingDocument(kind, document, content_hash(self._agency, document),
                                                            previous))

    async def accept(
        self,
        citizen_id: str,
        *,
        kind: object,
        version: object,
        doc_hash: object,
        language: object,
        citizen_ref: object,
        activity_id: str | None,
        channel: str = DEFAULT_CHANNEL,
    ) -> AcceptResult:
        """Record that the citizen accepted the document their card showed, if it is the current one.

        The arguments are the card action's data as received, hence `object`: they are checked here.
        """
        refusal = self._check(citizen_id, kind, version, doc_hash, language, citizen_ref)
        if refusal is not None:
            log.info("consent acceptance refused: %s", refusal.value)
            return AcceptResult(refusal=refusal)
        kind = DocumentKind(str(kind))
        document = self._agency.current_document(kind)
        full_hash = content_hash(self._agency, document)
        async with self._uow() as uow:
            records = await uow.consents.latest_per_kind(citizen_id)
            previous = records.get(kind.value)
            if previous is not None and is_current(self._agency, kind, _latest(records).get(kind)):
                # A second press of a card already recorded (e.g. two tabs): the proof exists once.
                return AcceptResult(accepted_at=previous.occurred_at, version=previous.version, already=True)
            now = self._clock.now()
            await uow.consents.add(
                citizen_id=citizen_id, agency_id=self._agency.id, document_kind=kind.value,
                version=document.version, content_hash=full_hash, language=str(language),
                action=ConsentAction.ACCEPTED.value, channel=channel or DEFAULT_CHANNEL,
                activity_id=_activity_id(activity_id), occurred_at=now,
            )
            await self._audit.record(
                uow, EventType.CONSENT_ACCEPTED, actor=citizen_actor(citizen_id), citizen_id=citizen_id,
                payload={"kind": kind.value, "version": document.version, "content_hash": full_hash,
                         "language": str(language)},
            )
            await uow.commit()
        return AcceptResult(accepted_at=now, version=document.version)

    def _check(
        self, citizen_id: str, kind: object, version: object, doc_hash: object, language: object, ref: object
    ) -> Refusal | None:
        if not isinstance(ref, str) or not hmac.compare_digest(ref, citizen_ref(citizen_id)):
            return Refusal.NOT_YOURS
        if not isinstance(kind, str) or kind not in {k.value for k in DocumentKind}:
            return Refusal.INVALID
        if not isinstance(version, str) or not isinstance(doc_hash, str) or len(doc_hash) != DOC_HASH_LENGTH:
            return Refusal.INVALID
        document = self._agency.current_document(DocumentKind(kind))
        if not isinstance(language, str) or language not in document.files:
            return Refusal.INVALID
        if version != document.version or doc_hash != content_hash(self._agency, document)[:DOC_HASH_LENGTH]:
            return Refusal.NOT_CURRENT
        return None

    async def upcoming_count(self, citizen_id: str) -> int:
        async with self._uow.read() as uow:
            return len(await uow.appointments.upcoming_views_for_citizen(citizen_id, self._clock.now()))

    async def has_consent(self, citizen_id: str) -> bool:
        """Whether any document's latest record is an acceptance (of any version): something to withdraw."""
        async with self._uow.read() as uow:
            records = await uow.consents.latest_per_kind(citizen_id)
        return any(r.action == ConsentAction.ACCEPTED.value for r in records.values())

    async def withdraw(
        self,
        citizen_id: str,
        *,
        language: str,
        activity_id: str | None,
        channel: str = DEFAULT_CHANNEL,
        announced_upcoming: int | None = None,
    ) -> WithdrawResult:
        """End the citizen's consent: a withdrawal record per accepted document, upcoming appointments
        cancelled, one audit event; all in one transaction.

        With `announced_upcoming` (what the confirmation card said), nothing happens if the citizen
        now has more upcoming appointments than that: they must not lose one they were not warned of.
        """
        async with self._uow() as uow:
            now = self._clock.now()
            if announced_upcoming is not None:
                upcoming = await uow.appointments.upcoming_for_citizen(citizen_id, now)
                if len(upcoming) > announced_upcoming:
                    return WithdrawResult(withdrawn=(), cancelled=(), upcoming_changed=True)
            withdrawn = await append_withdrawals(
                uow, agency_id=self._agency.id, citizen_id=citizen_id, language=language,
                activity_id=activity_id, channel=channel, now=now,
            )
            cancelled = await self._cancel_upcoming(uow, citizen_id, now)
            if withdrawn or cancelled:
                await self._audit.record(
                    uow, EventType.CONSENT_WITHDRAWN, actor=citizen_actor(citizen_id), citizen_id=citizen_id,
                    payload={"kinds": [kind.value for kind in withdrawn], "cancelled": len(cancelled)},
                )
                await uow.commit()
        return WithdrawResult(
            withdrawn=tuple(withdrawn),
            cancelled=tuple(CancelledAppointment(a.starts_at, a.subject_id, a.mode) for a in cancelled),
        )

    async def _cancel_upcoming(self, uow: UnitOfWork, citizen_id: str, now: datetime) -> list[Appointment]:
        return await cancel_upcoming_for_citizen(
            uow, self._audit, citizen_id, reason=CancelReason.CONSENT_WITHDRAWN,
            actor=citizen_actor(citizen_id), now=now,
        )


async def append_withdrawals(
    uow: UnitOfWork, *, agency_id: str, citizen_id: str, language: str, activity_id: str | None,
    channel: str | None, now: datetime,
) -> list[DocumentKind]:
    """A withdrawal record for each document the citizen currently accepts, in reading order, inside the
    caller's transaction (consent withdrawal and erasure both end consent this way)."""
    records = await uow.consents.latest_per_kind(citizen_id)
    withdrawn = [
        DocumentKind(kind) for kind, record in records.items()
        if record.action == ConsentAction.ACCEPTED.value and kind in {k.value for k in DocumentKind}
    ]
    order = {kind: i for i, kind in enumerate(REQUIRED[Purpose.BOOK])}
    withdrawn.sort(key=lambda kind: order.get(kind, len(order)))
    for kind in withdrawn:
        accepted = records[kind.value]
        await uow.consents.add(
            citizen_id=citizen_id, agency_id=agency_id, document_kind=kind.value,
            version=accepted.version, content_hash=accepted.content_hash, language=language,
            action=ConsentAction.WITHDRAWN.value, channel=channel or DEFAULT_CHANNEL,
            activity_id=_activity_id(activity_id), occurred_at=now,
        )
    return withdrawn
