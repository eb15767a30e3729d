"""Unit of work: one AsyncSession, one transaction, the repositories over it (bot.services.ports.UnitOfWork).

    async with uow_factory() as uow:
        citizen = await uow.citizens.get(citizen_id)
        ...
        await uow.commit()

Leaving the block without commit (or with an exception) rolls back. Rows returned inside the
block stay readable after it (detached, attributes as loaded).

A use case that only reads takes `uow_factory.read()` instead: no place in the SQLite writer
queue, no write transaction (see storage.db.read_only_session_factory); it cannot commit, and any
statement but a SELECT raises ReadOnlyViolation.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import acquire_write_lock, read_only_session_factory, sqlite_write_lock
from storage.repositories.appointments import AppointmentRepository, SlotClaimRepository
from storage.repositories.audit import AuditRepository
from storage.repositories.citizens import CitizenRepository
from storage.repositories.consents import ConsentRepository
from storage.repositories.counselors import CounselorRepository
from storage.repositories.jobs import JobRepository
from storage.repositories.outcomes import OutcomeRepository
from storage.repositories.privacy import PrivacyRepository
from storage.repositories.web_identities import WebIdentityRepository


class UnitOfWork:
    citizens: CitizenRepository
    counselors: CounselorRepository
    consents: ConsentRepository
    appointments: AppointmentRepository
    slot_claims: SlotClaimRepository
    jobs: JobRepository
    audit: AuditRepository
    privacy: PrivacyRepository
    outcomes: OutcomeRepository
    web_identities: WebIdentityRepository

    def __init__(self, session_factory: async_sessionmaker[AsyncSession], *, read_only: bool = False,
                 on_due_jobs: Callable[[], None] | None = None) -> None:
        self._session_factory = session_factory
        self._on_due_jobs = on_due_jobs
        self._session: AsyncSession | None = None
        self.read_only = read_only
        # SQLite: every writing transaction takes the write lock (BEGIN IMMEDIATE); this process's
        # writers wait in turn. Read-only sessions have no lock to take.
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
        self.privacy = PrivacyRepository(session)
        self.outcomes = OutcomeRepository(session)
        self.web_identities = WebIdentityRepository(session)
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
        if self.read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        await self.session.commit()
        if self.jobs.due_now_added:
            self.jobs.due_now_added = False
            if self._on_due_jobs is not None:
                self._on_due_jobs()  # a runner of this process starts on it at once

    async def rollback(self) -> None:
        await self.session.rollback()

    async def flush(self) -> None:
        await self.session.flush()


class UnitOfWorkFactory:
    """Call it for a fresh unit of work; also hands out the session factory (bot state uses it)."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self.session_factory = session_factory
        self._read_session_factory: async_sessionmaker[AsyncSession] | None = None
        # Called after a commit that added a job due now (bot.jobs: the in-process wake-up).
        self.on_due_jobs: Callable[[], None] | None = None

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory, on_due_jobs=self.on_due_jobs)

    def read(self) -> UnitOfWork:
        """A unit of work for a use case that only reads."""
        if self._read_session_factory is None:
            self._read_session_factory = read_only_session_factory(self.session_factory)
        return UnitOfWork(self._read_session_factory, read_only=True)
