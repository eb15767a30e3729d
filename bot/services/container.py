"""The services a running bot shares, built once in create_app and handed to every feature."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.agency import Agency
from bot.domain.clock import Clock
from bot.domain.slots import SlotEngine
from bot.services.audit import AuditTrail
from storage.unit_of_work import UnitOfWorkFactory


@dataclass(frozen=True)
class Services:
    agency: Agency
    uow: UnitOfWorkFactory
    clock: Clock
    audit: AuditTrail
    slots: SlotEngine
