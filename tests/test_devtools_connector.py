"""The connector stand-in of bot/devtools, as a bot sees it: what it records, how it fails on demand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.devtools.activities import Identity
from bot.devtools.connector import MESSAGE_WRITES_BLOCKED, ConnectorStandIn, Failure

PERSON = Identity(role="citizen", user_id="29:1person", aad_object_id="6f1c2b8e-0000-4000-8000-000000000009",
                  name="Lotte Peeters", tenant_id="t", conversation_id="a:1chat", bot_id="28:bot")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _send(http: aiohttp.ClientSession, url: str, text: str) -> tuple[int, dict[str, str], object]:
    async with http.post(url, json={"type": "message", "text": text}) as response:
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, dict(response.headers), body


async def test_writes_fail_as_told_then_go_through_and_are_recorded(http: aiohttp.ClientSession) -> None:
    async with ConnectorStandIn() as connector:
        url = f"{connector.service_url}v3/conversations/a:1chat/activities"
        connector.fail_next = [Failure(429, retry_after="2"), 502, MESSAGE_WRITES_BLOCKED]

        throttled, headers, _ = await _send(http, url, "one")
        bad_gateway, _, _ = await _send(http, url, "two")
        blocked, _, body = await _send(http, url, "three")
        sent, _, answer = await _send(http, url, "four")

    assert (throttled, headers["Retry-After"]) == (429, "2")
    assert bad_gateway == 502
    assert (blocked, body) == (403, {"error": {"code": "MessageWritesBlocked"}})
    assert sent == 200 and isinstance(answer, dict) and answer["id"]
    assert connector.failed == 3
    [recorded] = connector.received
    assert (recorded.event, recorded.text, recorded.activity_id) == ("send", "four", answer["id"])
    assert connector.messages_for("a:1chat") == [recorded]


async def test_a_delayed_answer_plays_a_connector_that_times_out(http: aiohttp.ClientSession) -> None:
    async with ConnectorStandIn() as connector:
        # Five times the client's timeout: only the delay can make the client give up.
        connector.fail_next = [Failure(200, delay=1.0)]
        with pytest.raises(TimeoutError):
            async with http.post(f"{connector.service_url}v3/conversations/a:1chat/activities",
                                 json={"type": "message"}, timeout=aiohttp.ClientTimeout(total=0.2)):
                pass
        assert connector.fail_next == []  # the delayed answer was the one planned
    assert connector.received == []


async def test_a_proactive_message_is_waited_for(http: aiohttp.ClientSession) -> None:
    async with ConnectorStandIn() as connector:
        url = f"{connector.service_url}v3/conversations/a:1chat/activities"

        async def later() -> None:
            await asyncio.sleep(0.1)
            await _send(http, url, "Reminder: tomorrow 10:00")

        sender = asyncio.create_task(later())
        recorded = await connector.wait_for(lambda r: (r.text or "").startswith("Reminder"), within=2)
        await sender
        with pytest.raises(TimeoutError):
            await connector.wait_for(lambda r: r.text == "never", within=0.1)

    assert recorded.conversation_id == "a:1chat"


async def test_a_new_conversation_with_a_known_person_is_their_personal_chat(http: aiohttp.ClientSession) -> None:
    async with ConnectorStandIn(people=[PERSON]) as connector:
        async with http.post(f"{connector.service_url}v3/conversations",
                             json={"members": [{"id": PERSON.user_id}], "activity": {"type": "message"}}) as known:
            known_body = await known.json()
        async with http.post(f"{connector.service_url}v3/conversations",
                             json={"members": [{"id": "29:1stranger"}]}) as stranger:
            stranger_body = await stranger.json()
        async with http.get(f"{connector.service_url}v3/conversations/a:1chat/members/{PERSON.aad_object_id}") as who:
            member = await who.json()

    assert (known.status, known_body["id"]) == (201, PERSON.conversation_id)
    assert known_body["activityId"] == connector.received[0].activity_id
    assert stranger_body["id"] != PERSON.conversation_id
    assert (member["id"], member["name"]) == (PERSON.user_id, PERSON.name)


async def test_without_history_each_conversation_keeps_only_what_was_not_taken(http: aiohttp.ClientSession) -> None:
    async with ConnectorStandIn(history=False) as connector:
        for conversation, text in (("a:1", "x"), ("a:2", "y"), ("a:1", "z")):
            await _send(http, f"{connector.service_url}v3/conversations/{conversation}/activities/9", text)

        first = connector.take("a:1")
        again = connector.take("a:1")

    assert [(r.event, r.text, r.headers) for r in first] == [("reply", "x", {}), ("reply", "z", {})]
    assert again == []
    assert [r.text for r in connector.take("a:2")] == ["y"]
    assert connector.received == []
