"""The services a running bot shares, built once by bot.wiring and handed to every feature and job."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.agency import Agency
from bot.domain.slots import SlotEngine
from bot.services.audit import AuditTrail
from bot.services.ports import Clock, UnitOfWorkFactory


@dataclass(frozen=True)
class Services:
    agency: Agency
    uow: UnitOfWorkFactory
    clock: Clock
    audit: AuditTrail
    slots: SlotEngine
