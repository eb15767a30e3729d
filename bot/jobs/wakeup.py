"""PostgreSQL's LISTEN/NOTIFY as a wake-up: a job due now, added by any process, starts without waiting
for the next poll (storage's JobRepository notifies at commit).

A dedicated asyncpg connection listens; if it drops, the runner still polls, and listening resumes
at the next attempt. SQLite has one process per database, which wakes its runner directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from bot.jobs.runner import WakeSignal
from storage.repositories.jobs import NOTIFY_CHANNEL

log = logging.getLogger(__name__)
RECONNECT_SECONDS = 10.0


def asyncpg_dsn(database_url: str) -> str:
    """The plain postgresql:// address asyncpg takes for a SQLAlchemy postgresql+asyncpg URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresWakeup:
    def __init__(self, database_url: str, wake: WakeSignal) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._wake = wake
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        while True:
            connection: Any = None
            try:
                connection = await asyncpg.connect(self._dsn, timeout=10)
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
                await connection.add_listener(NOTIFY_CHANNEL, lambda *_args: self._wake.wake())
                self._wake.wake()  # anything added while not listening
                await lost.wait()
            except (OSError, asyncpg.PostgresError, TimeoutError) as error:
                log.info("job wake-up: not listening (%s); polling meanwhile", type(error).__name__)
            finally:
                if connection is not None and not connection.is_closed():
                    await connection.close()
            await asyncio.sleep(RECONNECT_SECONDS)
