"""The domain's entities mapped onto the tables (SQLAlchemy's imperative mapping, as cosmicpython does).

The domain classes stay plain dataclasses that import nothing from here; importing this module (the
unit of work does) instruments them, once per process. `SlotClaim` and `BotStateItem` are storage's
own rows: no service handles them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import registry

from bot.domain.appointment import Appointment, AppointmentOutcome
from bot.domain.audit import AuditEvent
from bot.domain.consent import ConsentRecord
from bot.domain.jobs import Job
from bot.domain.people import Citizen, CounselorAccount
from storage import tables

mapper_registry = registry(metadata=tables.metadata)


@dataclass(eq=False)
class SlotClaim:
    """One step of a counselor's time held by a booked appointment (see tables.slot_claims)."""

    counselor_id: str
    step_start: datetime
    appointment_id: str


@dataclass(eq=False)
class BotStateItem:
    """One Bot Framework state document with its e-tag (see storage.bot_state)."""

    key: str
    etag: str
    data: dict[str, Any]
    updated_at: datetime


def _map() -> None:
    for entity, table in (
        (Citizen, tables.citizens),
        (CounselorAccount, tables.counselors),
        (ConsentRecord, tables.consent_records),
        (Appointment, tables.appointments),
        (AppointmentOutcome, tables.appointment_outcomes),
        (SlotClaim, tables.slot_claims),
        (Job, tables.scheduled_jobs),
        (AuditEvent, tables.audit_events),
        (BotStateItem, tables.bot_state),
    ):
        mapper_registry.map_imperatively(entity, table)


_map()
