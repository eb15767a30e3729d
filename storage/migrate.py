"""Schema migrations on demand: `guichet db upgrade`, application start-up and tests call these."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from storage.db import create_engine

log = logging.getLogger(__name__)

ALEMBIC_INI = Path(__file__).resolve().parent / "alembic.ini"
# Any constant works; it only has to be the same in every process that migrates this database.
_MIGRATION_LOCK_ID = 0x6775_6963_6865_74  # "guichet"


def alembic_config(database_url: str | None = None) -> Config:
    """Alembic configuration for this package; the URL travels in `attributes`, not in the ini."""
    config = Config(str(ALEMBIC_INI))
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config


async def _run(url: str, action: Callable[[Config], None]) -> None:
    engine = create_engine(url)

    def run_with(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            # Replicas starting together must not run the same migration twice; the lock ends
            # with the transaction. SQLite already serialises writers (BEGIN IMMEDIATE).
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        config = alembic_config(url)
        config.attributes["connection"] = connection
        action(config)

    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_with)
    finally:
        await engine.dispose()


async def upgrade_database(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision` (default: the newest), in one transaction."""
    log.info("upgrading database schema to %s", revision)
    await _run(url, lambda config: command.upgrade(config, revision))


async def downgrade_database(url: str, revision: str) -> None:
    """Take the database at `url` back to `revision` ("base" removes every table)."""
    log.info("downgrading database schema to %s", revision)
    await _run(url, lambda config: command.downgrade(config, revision))


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(url: str) -> str | None:
    """The revision the database is at, None when it was never migrated."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()
