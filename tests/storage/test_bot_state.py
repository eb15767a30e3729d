"""Bot state storage: the SDK's Storage contract, e-tag concurrency, and dialogs that survive restarts."""

from __future__ import annotations

import asyncio
import copy
import sqlite3
from datetime import UTC, datetime

import pytest
from botbuilder.core import ConversationState, MessageFactory, StoreItem, TurnContext
from botbuilder.core import adapters as bot_adapters
from botbuilder.dialogs import (
    DialogSet,
    DialogState,
    DialogTurnResult,
    DialogTurnStatus,
    PromptOptions,
    TextPrompt,
    WaterfallDialog,
    WaterfallStepContext,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.bot_state import DatabaseStorage, EtagConflict
from storage.mapping import BotStateItem


@pytest.fixture
def storage(session_factory: async_sessionmaker[AsyncSession]) -> DatabaseStorage:
    return DatabaseStorage(session_factory)


async def _stored_row(session_factory: async_sessionmaker[AsyncSession], key: str) -> BotStateItem | None:
    async with session_factory() as session:
        return await session.get(BotStateItem, key)


async def test_reading_unknown_keys_gives_nothing(storage: DatabaseStorage) -> None:
    assert await storage.read(["nobody/conversations/1/"]) == {}
    assert await storage.read([]) == {}


async def test_written_items_read_back_with_an_etag(storage: DatabaseStorage) -> None:
    when = datetime(2025, 5, 6, 7, 30, tzinfo=UTC)
    await storage.write({"a": {"count": 1, "nested": {"when": when, "tags": ["x", "y"]}}, "b": {"count": 2}})

    items = await storage.read(["a", "b", "c"])

    assert set(items) == {"a", "b"}
    assert items["a"]["count"] == 1
    assert items["a"]["nested"] == {"when": when, "tags": ["x", "y"]}
    assert items["a"]["e_tag"] and items["b"]["e_tag"]
    assert items["a"]["e_tag"] != items["b"]["e_tag"]


async def test_etag_is_not_stored_inside_the_document(
    storage: DatabaseStorage, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await storage.write({"k": {"count": 1, "e_tag": "*"}})

    row = await _stored_row(session_factory, "k")

    assert row is not None
    assert "e_tag" not in row.data
    assert row.etag == (await storage.read(["k"]))["k"]["e_tag"]


async def test_write_with_current_etag_succeeds_and_changes_the_etag(storage: DatabaseStorage) -> None:
    await storage.write({"k": {"count": 1}})
    item = (await storage.read(["k"]))["k"]
    first_etag = item["e_tag"]

    item["count"] = 2
    await storage.write({"k": item})

    reread = (await storage.read(["k"]))["k"]
    assert reread["count"] == 2
    assert reread["e_tag"] != first_etag


async def test_stale_etag_is_rejected_and_nothing_is_overwritten(storage: DatabaseStorage) -> None:
    await storage.write({"k": {"count": 1}})
    mine = (await storage.read(["k"]))["k"]
    theirs = copy.deepcopy(mine)
    theirs["count"] = 10
    await storage.write({"k": theirs})

    mine["count"] = 2
    with pytest.raises(EtagConflict):
        await storage.write({"k": mine})

    assert (await storage.read(["k"]))["k"]["count"] == 10


async def test_conflict_on_one_key_writes_none_of_the_others(storage: DatabaseStorage) -> None:
    await storage.write({"a": {"v": 1}, "b": {"v": 1}})
    items = await storage.read(["a", "b"])
    stale_b = copy.deepcopy(items["b"])
    await storage.write({"b": {**items["b"], "v": 5}})

    with pytest.raises(EtagConflict):
        await storage.write({"a": {**items["a"], "v": 2}, "b": {**stale_b, "v": 2}, "c": {"v": 2}})

    after = await storage.read(["a", "b", "c"])
    assert after["a"]["v"] == 1 and after["b"]["v"] == 5 and "c" not in after


async def test_star_and_missing_etags_overwrite_whatever_is_stored(storage: DatabaseStorage) -> None:
    await storage.write({"k": {"count": 1}})
    stale = (await storage.read(["k"]))["k"]
    await storage.write({"k": {**stale, "count": 2}})

    await storage.write({"k": {**stale, "count": 3, "e_tag": "*"}})
    assert (await storage.read(["k"]))["k"]["count"] == 3

    await storage.write({"k": {"count": 4, "e_tag": None}})
    assert (await storage.read(["k"]))["k"]["count"] == 4


async def test_empty_etag_is_refused(storage: DatabaseStorage) -> None:
    await storage.write({"k": {"count": 1}})

    with pytest.raises(ValueError):
        await storage.write({"k": {"count": 2, "e_tag": ""}})

    assert (await storage.read(["k"]))["k"]["count"] == 1


async def test_write_with_etag_of_a_deleted_item_conflicts(storage: DatabaseStorage) -> None:
    await storage.write({"k": {"count": 1}})
    item = (await storage.read(["k"]))["k"]
    await storage.delete(["k"])

    with pytest.raises(EtagConflict):
        await storage.write({"k": {**item, "count": 2}})
    assert await storage.read(["k"]) == {}


async def test_a_second_save_after_a_successful_write_does_not_conflict(storage: DatabaseStorage) -> None:
    await storage.write({"k": {"count": 1}})
    item = (await storage.read(["k"]))["k"]

    item["count"] = 2
    await storage.write({"k": item})
    item["count"] = 3
    await storage.write({"k": item})

    assert (await storage.read(["k"]))["k"]["count"] == 3


async def test_delete_removes_items_and_ignores_unknown_keys(storage: DatabaseStorage) -> None:
    await storage.write({"a": {"v": 1}, "b": {"v": 2}})

    await storage.delete(["a", "unknown"])

    assert set(await storage.read(["a", "b"])) == {"b"}


async def test_store_items_keep_their_class_and_their_etag(storage: DatabaseStorage) -> None:
    await storage.write({"item": StoreItem(count=1, e_tag="*")})

    item = (await storage.read(["item"]))["item"]
    assert isinstance(item, StoreItem)
    assert item.count == 1 and item.e_tag not in (None, "*")

    stale = copy.copy(item)
    item.count = 2
    await storage.write({"item": item})
    stale.count = 99
    with pytest.raises(EtagConflict):
        await storage.write({"item": stale})
    assert (await storage.read(["item"]))["item"].count == 2


async def test_odd_keys_are_stored_verbatim(storage: DatabaseStorage) -> None:
    key = "msteams/conversations/a:1-B_2?x=%20'\";--/users/29:é/"
    await storage.write({key: {"v": 1}})

    assert (await storage.read([key]))[key]["v"] == 1


async def test_concurrent_writers_from_one_etag_exactly_one_wins(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await DatabaseStorage(session_factory).write({"k": {"writer": None}})
    base = (await DatabaseStorage(session_factory).read(["k"]))["k"]

    async def write_as(writer: int) -> int | None:
        # Each writer has its own storage object, hence its own session and connection.
        item = {**copy.deepcopy(base), "writer": writer}
        try:
            await DatabaseStorage(session_factory).write({"k": item})
        except EtagConflict:
            return None
        return writer

    outcomes = await asyncio.gather(*(write_as(writer) for writer in range(5)))

    winners = [writer for writer in outcomes if writer is not None]
    assert len(winners) == 1
    assert (await DatabaseStorage(session_factory).read(["k"]))["k"]["writer"] == winners[0]



async def test_a_write_waits_for_another_processs_writer_without_stalling_the_bot(
    session_factory: async_sessionmaker[AsyncSession], backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's file lock")
    storage = DatabaseStorage(session_factory)
    await storage.write({"k": {"v": 1}})
    path = session_factory.kw["bind"].url.database
    other = sqlite3.connect(path, isolation_level=None)  # as another process would hold the file
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    write = asyncio.create_task(storage.write({"k": {"v": 2, "e_tag": "*"}}))
    await asyncio.sleep(0.3)
    assert not write.done(), "the write waits for the lock"
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(write, 10)
    ticker.cancel()
    assert ticks >= 10, "the event loop kept running while the write waited"
    assert (await storage.read(["k"]))["k"]["v"] == 2
    await storage.close()

async def test_dialog_state_objects_round_trip(storage: DatabaseStorage) -> None:
    from botbuilder.dialogs import DialogInstance

    when = datetime(2025, 9, 1, 8, 15, tzinfo=UTC)
    state = DialogState(
        [
            DialogInstance(
                "book",
                {
                    "stepIndex": 2,
                    "values": {"slot": when, "subject": "benefits"},
                    "options": PromptOptions(prompt=MessageFactory.text("Which day?")),
                },
            ),
            DialogInstance("main", {"stepIndex": 0}),
        ]
    )
    await storage.write({"conv": {"DialogState": state}})

    restored = (await storage.read(["conv"]))["conv"]["DialogState"]

    assert isinstance(restored, DialogState)
    assert [instance.id for instance in restored.dialog_stack] == ["book", "main"]
    top = restored.dialog_stack[0].state
    assert top["stepIndex"] == 2
    assert top["values"] == {"slot": when, "subject": "benefits"}
    assert top["options"].prompt.text == "Which day?"


async def test_a_waterfall_continues_across_turns_from_stored_state(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """Every turn builds new state objects on a new storage object, as a restarted process would."""
    started = datetime(2025, 9, 1, 8, 15, tzinfo=UTC)

    async def ask_name(step: WaterfallStepContext) -> DialogTurnResult:
        step.values["started"] = started
        return await step.prompt("text", PromptOptions(prompt=MessageFactory.text("Your name?")))

    async def ask_city(step: WaterfallStepContext) -> DialogTurnResult:
        step.values["name"] = step.result
        return await step.prompt("text", PromptOptions(prompt=MessageFactory.text("Your city?")))

    async def finish(step: WaterfallStepContext) -> DialogTurnResult:
        values = step.values
        await step.context.send_activity(f"{values['name']} from {step.result}, {values['started']:%H:%M}")
        return await step.end_dialog()

    storage_keys: set[str] = set()

    async def turn(context: TurnContext) -> None:
        conversation_state = ConversationState(DatabaseStorage(session_factory))
        storage_keys.add(conversation_state.get_storage_key(context))
        dialogs = DialogSet(conversation_state.create_property("DialogState"))
        dialogs.add(TextPrompt("text"))
        dialogs.add(WaterfallDialog("profile", [ask_name, ask_city, finish]))
        dialog_context = await dialogs.create_context(context)
        result = await dialog_context.continue_dialog()
        if result.status == DialogTurnStatus.Empty:
            await dialog_context.begin_dialog("profile")
        await conversation_state.save_changes(context)

    adapter = bot_adapters.TestAdapter(turn)
    flow = await adapter.send("hello")
    flow = await flow.assert_reply("Your name?")
    flow = await flow.send("Amélie")
    flow = await flow.assert_reply("Your city?")

    (key,) = storage_keys
    stored = (await DatabaseStorage(session_factory).read([key]))[key]
    stack = stored["DialogState"].dialog_stack
    # The innermost dialog comes first: the prompt, then the waterfall that started it.
    assert [instance.id for instance in stack] == ["text", "profile"]
    assert stack[1].state["values"] == {"started": started, "name": "Amélie"}

    flow = await flow.send("Namur")
    await flow.assert_reply("Amélie from Namur, 08:15")

    stored = (await DatabaseStorage(session_factory).read([key]))[key]
    assert stored["DialogState"].dialog_stack == []
