"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from storage.db import create_engine
from storage.migrate import current_revision, downgrade_database, head_revision, upgrade_database
from storage.tables import metadata

# What the models cannot express and compare_metadata would not see anyway; listed so that a
# diff mentioning it would be recognised and ignored, not silently accepted elsewhere.
PG_ONLY_CONSTRAINT = "ex_appointments_counselor_overlap"
PG_ONLY_CITIZEN_CONSTRAINT = "ex_appointments_citizen_overlap"


async def _schema_diffs(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:

            def compare(sync_connection):  # type: ignore[no-untyped-def]
                context = MigrationContext.configure(
                    sync_connection, opts={"compare_type": True, "compare_server_default": True}
                )
                return compare_metadata(context, metadata)

            diffs = await connection.run_sync(compare)
    finally:
        await engine.dispose()
    return [diff for diff in diffs
            if PG_ONLY_CONSTRAINT not in repr(diff) and PG_ONLY_CITIZEN_CONSTRAINT not in repr(diff)]


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def test_upgrade_builds_the_schema_of_the_models(database_url: str) -> None:
    assert await current_revision(database_url) is None

    await upgrade_database(database_url)

    assert await current_revision(database_url) == head_revision()
    assert await _schema_diffs(database_url) == []


async def test_upgrade_twice_is_harmless(database_url: str) -> None:
    await upgrade_database(database_url)
    await upgrade_database(database_url)

    assert await current_revision(database_url) == head_revision()


async def test_downgrade_to_base_removes_every_table_and_upgrade_restores_them(database_url: str) -> None:
    await upgrade_database(database_url)
    await downgrade_database(database_url, "base")

    assert await _tables(database_url) <= {"alembic_version"}

    await upgrade_database(database_url)
    assert set(metadata.tables) <= await _tables(database_url)
    assert await _schema_diffs(database_url) == []


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
@pytest.mark.parametrize(("name", "key"), [(PG_ONLY_CONSTRAINT, "counselor_id"),
                                           (PG_ONLY_CITIZEN_CONSTRAINT, "citizen_id")])
async def test_postgres_schema_has_the_overlap_exclusion_constraints(database_url: str, backend: str, name: str,
                                                                      key: str) -> None:
    await upgrade_database(database_url)
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            definition = await connection.scalar(
                text(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conname = :name AND contype = 'x'"
                ),
                {"name": name},
            )
    finally:
        await engine.dispose()
    assert definition is not None
    assert "gist" in definition and f"{key} WITH =" in definition and "'booked'" in definition
