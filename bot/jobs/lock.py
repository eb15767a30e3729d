"""One runner per SQLite database file: an exclusive lock on a file beside it.

SQLite has a single writer, so two runners on one file would only queue behind each other and,
worse, could both see a job as due between their claims. PostgreSQL needs no such lock: its runners
share the work (FOR UPDATE SKIP LOCKED). The lock is the operating system's (flock): it goes with the
process, so a killed runner never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sqlalchemy.engine import make_url


class RunnerLockBusy(RuntimeError):
    """Another process already runs the jobs of this SQLite database."""


class RunnerLock:
    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        database = url.database or ""
        self.path: Path | None = None
        if url.get_backend_name() == "sqlite" and database not in ("", ":memory:"):
            self.path = Path(database).resolve().with_name(Path(database).name + ".jobs-lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise RunnerLockBusy at once (nothing to take on PostgreSQL)."""
        if self.path is None or self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunnerLockBusy(
                f"another process already runs the jobs of this SQLite database (lock {self.path}); "
                "run one runner per database file: set GUICHET_JOBS=off on the other process, or use PostgreSQL"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
