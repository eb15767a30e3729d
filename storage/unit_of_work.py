"""Unit of work: one AsyncSession, one transaction, the repositories over it.

    async with uow_factory() as uow:
        citizen = await uow.citizens.get(citizen_id)
        ...
        await uow.commit()

Leaving the block without commit (or with an exception) rolls back. Rows returned inside the
block stay readable after it (detached, attributes as loaded).
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import acquire_write_lock, sqlite_write_lock
from storage.repositories import (
    AppointmentRepository,
    AuditRepository,
    CitizenRepository,
    ConsentRepository,
    CounselorRepository,
    JobRepository,
    SlotClaimRepository,
)


class UnitOfWork:
    citizens: CitizenRepository
    counselors: CounselorRepository
    consents: ConsentRepository
    appointments: AppointmentRepository
    slot_claims: SlotClaimRepository
    jobs: JobRepository
    audit: AuditRepository

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory
        self._session: AsyncSession | None = None
        # SQLite: every transaction is a writer (BEGIN IMMEDIATE); this process's wait in turn.
        self._write_lock = sqlite_write_lock(session_factory)

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("the unit of work is used outside `async with`")
        return self._session

    async def __aenter__(self) -> UnitOfWork:
        if self._session is not None:
            raise RuntimeError("a unit of work cannot be entered twice")
        if self._write_lock is not None:
            await acquire_write_lock(self._write_lock)
        session = self._session_factory()
        self._session = session
        self.citizens = CitizenRepository(session)
        self.counselors = CounselorRepository(session)
        self.consents = ConsentRepository(session)
        self.appointments = AppointmentRepository(session)
        self.slot_claims = SlotClaimRepository(session)
        self.jobs = JobRepository(session)
        self.audit = AuditRepository(session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        session = self.session
        self._session = None
        # Closing rolls back whatever was not committed, exception or not. Unlike rollback() it
        # does not expire the loaded rows, so callers may still read them after the block.
        try:
            await session.close()
        finally:
            if self._write_lock is not None:
                self._write_lock.release()

    async def commit(self) -> None:
        await self.session.commit()

    async def rollback(self) -> None:
        await self.session.rollback()

    async def flush(self) -> None:
        await self.session.flush()


class UnitOfWorkFactory:
    """Call it for a fresh unit of work; also hands out the session factory (bot state uses it)."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self.session_factory = session_factory

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory)
