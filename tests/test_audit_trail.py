"""The tamper-evident audit trail: hashing, tampering that `guichet audit verify` names, pruning that keeps
the chain verifiable, and the per-appointment proof (`guichet audit export`), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy import text

from bot.cli import main
from bot.domain.agency import Agency
from bot.domain.audit import (
    GENESIS,
    PRUNED_ACTOR,
    ChainedEvent,
    EventType,
    event_hash,
    prune,
    verify_chain,
    verify_proof,
)
from bot.domain.clock import FixedClock
from bot.services.audit import AuditTrail, citizen_actor, counselor_actor, verify
from storage.db import create_engine, create_session_factory
from storage.migrate import upgrade_database
from storage.unit_of_work import UnitOfWorkFactory

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


# --- The chain, without a database -----------------------------------------------------------------------


def chain(count: int) -> list[ChainedEvent]:
    events: list[ChainedEvent] = []
    previous = GENESIS
    for number in range(1, count + 1):
        fields = {"agency_id": "example-be", "occurred_at": NOW + timedelta(seconds=number),
                  "actor": citizen_actor(f"p{number % 2}"), "event_type": str(EventType.BOOKED),
                  "citizen_pseudonym": f"p{number % 2}", "appointment_id": f"a{number}", "payload": {"n": number}}
        digest = event_hash(prev_hash=previous, **fields)
        events.append(ChainedEvent(id=number, prev_hash=previous, hash=digest, **fields))
        previous = digest
    return events


def replaced(event: ChainedEvent, **changes: object) -> ChainedEvent:
    return ChainedEvent(**{**event.__dict__, **changes})


def test_an_untouched_chain_verifies_and_names_its_head() -> None:
    events = chain(5)
    report = verify_chain(events)
    assert report.ok and report.checked == 5 and report.head_id == 5 and report.head_hash == events[-1].hash


def test_a_changed_payload_names_that_row_and_a_deleted_row_names_the_next() -> None:
    events = chain(5)
    changed = verify_chain([*events[:2], replaced(events[2], payload={"n": 99}), *events[3:]])
    assert (changed.broken_id, changed.checked) == (3, 2)
    assert "changed" in changed.reason

    deleted = verify_chain([*events[:2], *events[3:]])
    assert deleted.broken_id == 4
    assert "event 2" in deleted.reason and "deleted" in deleted.reason


def test_pruned_events_still_verify_but_cannot_be_given_a_name() -> None:
    events = chain(4)
    pruned_fields = prune(events[1])
    pruned = replaced(events[1], actor=pruned_fields.actor, citizen_pseudonym=None, payload=pruned_fields.payload)
    assert pruned.actor == PRUNED_ACTOR and "p1" not in json.dumps(pruned.payload)
    assert verify_chain([events[0], pruned, *events[2:]]).ok
    assert prune(pruned) == pruned_fields, "pruning twice changes nothing"

    # Someone puts a pseudonym on a pruned row: its hash no longer covers that column, so it is refused.
    forged = replaced(pruned, citizen_pseudonym="p0")
    assert verify_chain([events[0], forged, *events[2:]]).broken_id == 2
    malformed = replaced(pruned, payload={"$pruned": {"actor": "x"}})
    assert verify_chain([events[0], malformed, *events[2:]]).broken_id == 2


def test_the_trail_refuses_reserved_names_that_would_pass_for_pruned_events() -> None:
    trail = AuditTrail("example-be", FixedClock(NOW))
    with pytest.raises(ValueError):
        asyncio.run(trail.record(None, EventType.BOOKED, actor=PRUNED_ACTOR))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        asyncio.run(trail.record(None, EventType.BOOKED, actor="system", payload={"$pruned": {}}))  # type: ignore[arg-type]


# --- On the database, through the CLI ----------------------------------------------------------------------


@pytest.fixture
async def audit_db(
    database_url: str, monkeypatch: pytest.MonkeyPatch, agency: Agency
) -> AsyncIterator[UnitOfWorkFactory]:
    """A migrated database the `guichet` command is pointed at (environment), and a unit of work on it."""
    await upgrade_database(database_url)
    monkeypatch.setenv("GUICHET_DATABASE_URL", database_url)
    monkeypatch.setenv("GUICHET_AGENCY", str(agency.base_dir / "agency.toml"))
    engine = create_engine(database_url)
    yield UnitOfWorkFactory(create_session_factory(engine))
    await engine.dispose()


async def guichet(*argv: str) -> int:
    """The `guichet` command, in a thread of its own (it runs its own event loop)."""
    return await asyncio.to_thread(main, list(argv))


async def record_history(uow_factory: UnitOfWorkFactory) -> tuple[str, str, str, str]:
    """Two citizens' interleaved events: (citizen A, A's appointment, citizen B, B's appointment)."""
    trail = AuditTrail("example-be", FixedClock(NOW))
    a, b, appointment_a, appointment_b = (str(uuid4()) for _ in range(4))
    steps = [
        (EventType.CONSENT_ACCEPTED, citizen_actor(a), a, None, {"kind": "terms"}),
        (EventType.BOOKED, citizen_actor(a), a, appointment_a, {"mode": "video"}),
        (EventType.BOOKED, citizen_actor(b), b, appointment_b, {"mode": "office"}),
        (EventType.COUNSELOR_PROMPTED, counselor_actor("c1"), None, appointment_a, {}),
        (EventType.CANCELLED, citizen_actor(b), b, appointment_b, {"reason": "citizen"}),
        (EventType.IDENTITY_CHECKED, counselor_actor("c1"), a, appointment_a, {"result": "ok"}),
        (EventType.DATA_EXPORTED, citizen_actor(a), a, None, {"delivery": "inline"}),
    ]
    for event_type, actor, citizen, appointment, payload in steps:
        async with uow_factory() as uow:
            await trail.record(uow, event_type, actor=actor, citizen_id=citizen, appointment_id=appointment,
                               payload=payload)
            await uow.commit()
    return a, appointment_a, b, appointment_b


async def execute(uow_factory: UnitOfWorkFactory, statement: str, **params: object) -> None:
    async with uow_factory() as uow:
        await uow.session.execute(text(statement), params)
        await uow.commit()


async def test_verify_passes_then_names_an_updated_row(audit_db: UnitOfWorkFactory,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    await record_history(audit_db)
    assert await guichet("audit", "verify") == 0
    assert "intact: 7 events" in capsys.readouterr().out

    await execute(audit_db, "UPDATE audit_events SET payload = :payload WHERE id = 3", payload='{"mode": "video"}')
    assert await guichet("audit", "verify") == 1
    out = capsys.readouterr().out
    assert "BROKEN at event 3" in out and "changed" in out
    report = await verify(audit_db, "example-be")
    assert (report.broken_id, report.checked) == (3, 2)


async def test_verify_names_the_row_after_a_deleted_one(audit_db: UnitOfWorkFactory,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    await record_history(audit_db)
    await execute(audit_db, "DELETE FROM audit_events WHERE id = 4")
    assert await guichet("audit", "verify") == 1
    out = capsys.readouterr().out
    assert "BROKEN at event 5" in out and "event 3" in out and "deleted" in out


async def test_an_appointment_proof_shows_its_events_redacts_the_others_and_verifies_alone(
    audit_db: UnitOfWorkFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    citizen_a, appointment_a, citizen_b, appointment_b = await record_history(audit_db)
    out = tmp_path / "proof.json"
    assert await guichet("audit", "export", "--appointment", appointment_a, "--out", str(out)) == 0
    proof = json.loads(out.read_text(encoding="utf-8"))
    # The segment runs from the appointment's first event (id 2) to its last (id 6), hanging from event 1.
    assert [event["id"] for event in proof["events"]] == [2, 3, 4, 5, 6]
    assert proof["start_hash"] != GENESIS and not proof["starts_at_genesis"]
    shown = [event for event in proof["events"] if not event["redacted"]]
    assert [event["id"] for event in shown] == [2, 4, 6]
    assert all(event["appointment_id"] == appointment_a for event in shown)
    # The other citizen's events are there for the chain only: nothing names them or their appointment.
    assert citizen_b not in out.read_text() and appointment_b not in out.read_text()
    assert verify_proof(proof["events"], start_hash=proof["start_hash"]).ok
    assert await guichet("audit", "check-proof", str(out)) == 0
    capsys.readouterr()

    proof["events"][1]["digests"]["payload"] = "0" * 64
    out.write_text(json.dumps(proof), encoding="utf-8")
    assert await guichet("audit", "check-proof", str(out)) == 1
    assert "BROKEN at event 3" in capsys.readouterr().out

    assert await guichet("audit", "export", "--appointment", str(uuid4())) == 1


async def test_pruning_in_the_database_keeps_verify_passing(audit_db: UnitOfWorkFactory) -> None:
    await record_history(audit_db)
    async with audit_db() as uow:
        maintenance = uow.audit
        for row in await maintenance.unpruned_before("example-be", NOW + timedelta(days=1), 3):
            fields = prune(row.chained())
            await maintenance.store_pruned(row.id, actor=fields.actor, payload=fields.payload)
        await uow.commit()
    async with audit_db() as uow:
        assert len(await uow.audit.unpruned_before("example-be", NOW + timedelta(days=1), 10)) == 4
    assert (await verify(audit_db, "example-be")).ok


async def test_a_trail_appends_after_the_real_head_whoever_moved_it(uow_factory: UnitOfWorkFactory) -> None:
    """A trail remembers the head it wrote; another writer, a rollback or a concurrent one must not fork the chain."""
    clock = FixedClock(NOW)
    ours, theirs = AuditTrail("example-be", clock), AuditTrail("example-be", clock)

    async def record(trail: AuditTrail, number: int, *, commit: bool = True) -> None:
        async with uow_factory() as uow:
            await trail.record(uow, EventType.DATA_EXPORTED, actor="system", payload={"n": number})
            if commit:
                await uow.commit()

    await record(ours, 1)
    await record(theirs, 2)  # the head ours remembers is no longer the head
    await record(ours, 3)
    await record(ours, 4, commit=False)  # ours remembers an event that was rolled back
    await record(ours, 5)
    clock.set(NOW - timedelta(hours=1))  # a clock step backwards must not reorder the chain
    await record(ours, 6)
    await asyncio.gather(*(record(ours if number % 2 else theirs, number) for number in range(7, 17)))

    async with uow_factory() as uow:
        chain = [row.chained() async for row in uow.audit.iterate("example-be")]
    assert [event.payload["n"] for event in chain[:5]] == [1, 2, 3, 5, 6]
    assert sorted(event.payload["n"] for event in chain[5:]) == list(range(7, 17))
    assert chain[0].prev_hash == GENESIS
    assert [event.prev_hash for event in chain[1:]] == [event.hash for event in chain[:-1]]
    assert chain[4].occurred_at == chain[3].occurred_at == NOW
    assert verify_chain(chain).ok and (await verify(uow_factory, "example-be")).ok
