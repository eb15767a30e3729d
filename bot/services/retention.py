"""The retention run: what is past the agency's retention periods is anonymised, erased or deleted.

`RetentionService.run()` (also `guichet retention run`, and the daily job) applies, in order:

1. appointments that ended more than `appointments_months` ago: anonymised (kept for statistics) or
   deleted, per `keep_anonymised_statistics`;
2. citizens not seen for `citizen_inactive_months`: erased exactly as at their own request;
3. consent proofs superseded or withdrawn more than `consent_proof_months` ago: deleted; then the
   erased citizens nothing points at any more are deleted too;
4. audit events older than `audit_months`: pruned (actor, pseudonym and payload replaced by their
   digests, so the chain still verifies; see bot.domain.audit);
5. conversation state untouched for `citizen_inactive_months`: deleted.

Work goes in small transactions, so a run can be interrupted and started again: it is idempotent
(a second run finds nothing to do) and ends with one RETENTION_RUN audit event carrying the counts.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime

from bot.domain.agency import Agency
from bot.domain.audit import EventType, prune
from bot.domain.retention import cutoffs
from bot.services.audit import SYSTEM_ACTOR, AuditTrail
from bot.services.ports import Clock, UnitOfWorkFactory
from bot.services.privacy import erase_in

log = logging.getLogger(__name__)

BATCH_SIZE = 200


@dataclass
class RetentionReport:
    appointments_anonymised: int = 0
    appointments_deleted: int = 0
    citizens_erased: int = 0
    consent_records_deleted: int = 0
    erased_citizens_removed: int = 0
    audit_events_pruned: int = 0
    conversation_states_deleted: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def total(self) -> int:
        return sum(self.as_dict().values())


class RetentionService:
    def __init__(self, agency: Agency, uow: UnitOfWorkFactory, clock: Clock, audit: AuditTrail, *,
                 batch_size: int = BATCH_SIZE) -> None:
        self._agency = agency
        self._uow = uow
        self._clock = clock
        self._trail = audit
        self._batch = batch_size

    async def run(self) -> RetentionReport:
        now = self._clock.now()
        limits = cutoffs(self._agency.retention, now)
        report = RetentionReport()
        await self._appointments(limits.appointments, now, report)
        await self._inactive_citizens(limits.citizens, report)
        await self._consents(limits.consents, report)
        await self._audit(limits.audit, report)
        async with self._uow() as uow:
            report.conversation_states_deleted = await uow.privacy.delete_bot_state_before(
                limits.citizens
            )
            await self._trail.record(uow, EventType.RETENTION_RUN, actor=SYSTEM_ACTOR,
                                     payload=report.as_dict())
            await uow.commit()
        log.info("retention run done: %s", report.as_dict())
        return report

    async def _appointments(self, cutoff: datetime, now: datetime, report: RetentionReport) -> None:
        keep = self._agency.retention.keep_anonymised_statistics
        while True:
            async with self._uow() as uow:
                rows = await uow.appointments.not_anonymised_before(self._agency.id, cutoff, self._batch)
                ids = [row.id for row in rows]
                repository = uow.privacy
                if keep:
                    await repository.delete_idle_jobs(ids)
                    report.appointments_anonymised += await repository.anonymise_appointments(ids, now)
                else:
                    report.appointments_deleted += await repository.delete_appointments(ids)
                await uow.commit()
            if len(ids) < self._batch:
                return

    async def _inactive_citizens(self, cutoff: datetime, report: RetentionReport) -> None:
        while True:
            async with self._uow() as uow:
                candidates = [c.id for c in await uow.citizens.inactive_since(self._agency.id, cutoff, self._batch)]
            for citizen_id in candidates:
                # One transaction per citizen: erasure ends with its audit events (the chain lock).
                async with self._uow() as uow:
                    citizen = await uow.citizens.get(citizen_id)
                    if citizen is None or citizen.erased_at is not None or citizen.last_seen_at >= cutoff:
                        continue  # came back (or was erased) since the candidates were read
                    now = self._clock.now()
                    await erase_in(
                        uow, self._agency, self._trail, citizen, now=now, actor=SYSTEM_ACTOR, reason="retention",
                        language=self._agency.default_language, channel="retention",
                    )
                    await uow.commit()
                report.citizens_erased += 1
            if len(candidates) < self._batch:
                return

    async def _consents(self, cutoff: datetime, report: RetentionReport) -> None:
        async with self._uow() as uow:
            repository = uow.privacy
            report.consent_records_deleted += await repository.delete_expired_consents(self._agency.id, cutoff)
            report.erased_citizens_removed += await repository.delete_erased_shells(self._agency.id)
            await uow.commit()

    async def _audit(self, cutoff: datetime, report: RetentionReport) -> None:
        while True:
            async with self._uow() as uow:
                rows = await uow.audit.unpruned_before(self._agency.id, cutoff, self._batch)
                for row in rows:
                    assert row.id is not None  # read from the table: stored events have their row id
                    pruned = prune(row.chained())
                    await uow.audit.store_pruned(row.id, actor=pruned.actor, payload=pruned.payload)
                await uow.commit()
            report.audit_events_pruned += len(rows)
            if len(rows) < self._batch:
                return
