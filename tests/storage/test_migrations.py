"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, text

from storage.db import create_engine
from storage.migrate import current_revision, downgrade_database, head_revision, upgrade_database
from storage.tables import citizens, metadata, web_identities, web_link_epochs

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


async def test_0008_drops_bindings_that_name_no_conversation_and_keeps_the_citizens(database_url: str) -> None:
    """A binding made before 0008 could be replayed in any conversation: the upgrade drops it (the citizen
    opens the manage link again); their citizen row and link epoch stay."""
    await upgrade_database(database_url, "0007")
    now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(citizens).values(id="c-1", agency_id="agency", created_at=now,
                                                             last_seen_at=now))
            # The 0007 shape: no conversation named.
            await connection.execute(insert(web_identities).values(user_id="dl_old", citizen_id="c-1",
                                                                   proof="manage_link", created_at=now))
            await connection.execute(insert(web_link_epochs).values(citizen_id="c-1", epoch=2))
        await upgrade_database(database_url)
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT count(*) FROM web_identities"))).scalar() == 0
            assert (await connection.execute(text("SELECT count(*) FROM citizens"))).scalar() == 1
            assert (await connection.execute(text("SELECT epoch FROM web_link_epochs"))).scalar() == 2
            columns = await connection.run_sync(lambda sync: inspect(sync).get_columns("web_identities"))
        [conversation] = [column for column in columns if column["name"] == "conversation_id"]
        assert conversation["nullable"] is False
    finally:
        await engine.dispose()
