"""The one composition root: settings in, the running parts out (engine, unit of work, clock, services).

The web app (`bot.app.create_app`), every CLI command and the job runner build what they need here,
so there is one place that decides which implementation stands behind each port. Tests pass fakes
(a clock, an agency) instead of the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.agency import Agency, load_agency
from bot.domain.clock import SystemClock
from bot.domain.slots import SlotEngine
from bot.services.audit import AuditTrail
from bot.services.container import Services
from bot.services.ports import Clock
from bot.services.ports import UnitOfWorkFactory as UnitOfWorkFactoryPort
from bot.settings import Settings
from storage.db import create_engine, create_session_factory
from storage.unit_of_work import UnitOfWorkFactory


@dataclass
class Wiring:
    """What a process runs on; `close()` releases it (the database connections)."""

    settings: Settings
    services: Services
    engine: AsyncEngine
    # The concrete factory behind services.uow; Bot Framework state shares its sessions (storage.bot_state).
    uow: UnitOfWorkFactory

    async def close(self) -> None:
        await self.engine.dispose()


def build_services(settings: Settings, *, agency: Agency | None = None, clock: Clock | None = None) -> Wiring:
    """Everything the services need, built from the settings; `agency` and `clock` replace the defaults."""
    agency = agency or load_agency(settings.agency)
    clock = clock or SystemClock()
    engine = create_engine(settings.database_url)
    uow = UnitOfWorkFactory(create_session_factory(engine))
    services = assemble_services(agency, uow, clock)
    return Wiring(settings=settings, services=services, engine=engine, uow=uow)


def assemble_services(agency: Agency, uow: UnitOfWorkFactoryPort, clock: Clock) -> Services:
    """The services over a given unit of work and clock (tests hand in their own)."""
    return Services(agency=agency, uow=uow, clock=clock, audit=AuditTrail(agency.id, clock), slots=SlotEngine(agency))
