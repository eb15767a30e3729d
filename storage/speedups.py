"""The storage speed-ups that lean on other libraries' internals: their switches and their version check.

Three speed-ups in storage/ go below the libraries' public API, so a new SQLAlchemy, aiosqlite or
jsonpickle can break them silently. They are all switched here, and nowhere else:

- `one_trip_driver` (storage/sqlite_driver.py): SQLite units of work through subclasses of
  SQLAlchemy's private aiosqlite adapter classes, one thread trip per statement instead of four.
- `direct_state_io` (storage/bot_state.py): bot state read and written with plain sqlite3 on the
  event loop (SQLite files) or straight on the pool's asyncpg connection (PostgreSQL), not through a
  session.
- `fast_state_documents` (storage/state_documents.py): jsonpickle's document format written and read
  by hand for plain dialog stacks.

`bench/storage_speedups.py` measures what each buys (bench/README.md has the figures). The versions
they were tested with are TESTED (pyproject.toml pins the same range): outside it the tests fail
(tests/storage/test_speedups.py) and a running bot switches them all off (`check_once`, when the first
engine is made).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version

from packaging.version import Version

# distribution: (lowest tested, first untested). Keep in step with pyproject.toml.
TESTED: dict[str, tuple[str, str]] = {
    "sqlalchemy": ("2.0.30", "2.1"),
    "aiosqlite": ("0.20", "0.23"),
    "jsonpickle": ("3.0", "4"),
}


@dataclass(frozen=True)
class Speedups:
    """Which speed-ups are on. All on in production; benchmarks switch them off one at a time."""

    one_trip_driver: bool = True
    direct_state_io: bool = True
    fast_state_documents: bool = True


ACTIVE = Speedups()
_checked = False
log = logging.getLogger(__name__)


class IncompatibleVersion(RuntimeError):
    """A library the speed-ups reach into is outside the range they were tested with."""


def incompatible(installed: dict[str, str] | None = None) -> list[str]:
    """One line per library outside its tested range (empty when all are inside)."""
    problems = []
    for distribution, (lowest, first_untested) in TESTED.items():
        found = (installed or {}).get(distribution) or version(distribution)
        if not Version(lowest) <= Version(found) < Version(first_untested):
            problems.append(f"{distribution} {found} is outside the tested range >={lowest},<{first_untested}")
    return problems


def check_versions(installed: dict[str, str] | None = None) -> None:
    """Raise IncompatibleVersion if a library the speed-ups depend on is outside its tested range."""
    problems = incompatible(installed)
    if problems:
        raise IncompatibleVersion(
            "storage speed-ups (storage/speedups.py) were not tested with: " + "; ".join(problems)
            + ". Run tests/storage/test_speedups.py and bench/storage_speedups.py, then widen TESTED.")


def check_once() -> None:
    """Once per process (engines are made often): outside the tested range, every speed-up goes off.

    The bot then runs on the libraries' public paths only, slower but correct, and says so in the log;
    tests/storage/test_speedups.py fails on such an installation, so it never reaches a release.
    """
    global _checked, ACTIVE
    if _checked:
        return
    _checked = True
    problems = incompatible()
    if problems:
        log.warning("storage speed-ups off, untested library versions: %s", "; ".join(problems))
        ACTIVE = Speedups(one_trip_driver=False, direct_state_io=False, fast_state_documents=False)


@contextmanager
def using(speedups: Speedups) -> Iterator[None]:
    """Run a block with other switches (benchmarks and tests only)."""
    global ACTIVE
    previous, ACTIVE = ACTIVE, speedups
    try:
        yield
    finally:
        ACTIVE = previous
