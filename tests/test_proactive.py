"""The Teams notifier over real HTTP, against the connector stand-in: it writes into a stored conversation,
waits out throttling, retries what is transient a bounded number of times, stops for a person who blocked
the bot, and keeps under Teams' limits so that the connector has nothing to refuse."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from botbuilder.integration.aiohttp import ConfigurationBotFrameworkAuthentication

from bot.adapter import ReusingAuthentication, bot_framework_configuration
from bot.connector_http import ConnectorSession, RetryPolicy
from bot.devtools.connector import MESSAGE_WRITES_BLOCKED, TeamsLimits
from bot.proactive import TeamsNotifier
from bot.rate_limit import RateLimiter
from bot.services.ports import MessageRejected, OutgoingMessage, RecipientUnreachable, SendFailed
from bot.settings import Settings
from tests.fake_time import FakeTime
from tests.harness import TENANT_ID, Failure, FakeConnector

CARD = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "Rappel"}]}


def reference(connector: FakeConnector, conversation: str = "a:citizen") -> dict[str, Any]:
    return {"serviceUrl": connector.url, "channelId": "msteams", "bot": {"id": "28:bot"},
            "user": {"id": "29:citizen"}, "conversation": {"id": conversation, "tenantId": TENANT_ID}}


@pytest.fixture
async def auth() -> AsyncIterator[ReusingAuthentication]:
    auth = ReusingAuthentication(ConfigurationBotFrameworkAuthentication(bot_framework_configuration(Settings())),
                                 retry=RetryPolicy(attempts=1))
    # A connector that does not answer within half a second counts as a timeout here.
    auth.connector_session = ConnectorSession(attempt_timeout=0.5, connect_timeout=0.5)
    yield auth
    await auth.connector_session.close()


@pytest.fixture
def notifier(auth: ReusingAuthentication) -> TeamsNotifier:
    return TeamsNotifier(auth, app_id="", limiter=RateLimiter())


async def test_a_message_reaches_the_stored_conversation_as_a_teams_notification(
    notifier: TeamsNotifier, connector: FakeConnector,
) -> None:
    activity_id = await notifier.send(reference(connector), OutgoingMessage(card=CARD))
    [sent] = connector.messages_for("a:citizen")
    assert sent.activity_id == activity_id and sent.event == "send"
    assert sent.cards == [CARD]
    assert sent.activity["channelData"] == {"notification": {"alert": True}, "tenant": {"id": TENANT_ID}}
    assert sent.activity["recipient"]["id"] == "29:citizen"


async def test_a_short_retry_after_is_waited_out_and_a_long_one_goes_back_to_the_runner(
    auth: ReusingAuthentication, connector: FakeConnector,
) -> None:
    time = FakeTime()
    notifier = TeamsNotifier(auth, app_id="", limiter=RateLimiter(monotonic=time.monotonic, sleep=time.sleep),
                             sleep=time.sleep)
    connector.fail_next.append(Failure(429, retry_after="1"))
    started = time.now
    await notifier.send(reference(connector), OutgoingMessage(text="x"))
    assert time.now - started == pytest.approx(1.0, abs=0.05)  # as long as the connector asked, no longer
    assert len(connector.messages_for("a:citizen")) == 1

    connector.fail_next.append(Failure(429, retry_after="120"))
    with pytest.raises(SendFailed) as failed:
        await notifier.send(reference(connector, "a:other"), OutgoingMessage(text="x"))
    assert failed.value.retry_after == 120.0
    assert connector.messages_for("a:other") == []


async def test_transient_failures_are_retried_a_bounded_number_of_times(
    notifier: TeamsNotifier, connector: FakeConnector,
) -> None:
    connector.fail_next += [503, 502]
    await notifier.send(reference(connector), OutgoingMessage(text="x"))
    assert len(connector.messages_for("a:citizen")) == 1 and connector.failed == 2

    connector.fail_next += [503, 504, 412]
    with pytest.raises(SendFailed):
        await notifier.send(reference(connector), OutgoingMessage(text="y"))
    assert len(connector.messages_for("a:citizen")) == 1 and connector.failed == 5


async def test_a_connector_that_does_not_answer_in_time_is_a_transient_failure(
    notifier: TeamsNotifier, connector: FakeConnector,
) -> None:
    connector.fail_next += [Failure(200, delay=2.0)] * 3
    with pytest.raises(SendFailed):
        await notifier.send(reference(connector), OutgoingMessage(text="x"))
    assert connector.messages_for("a:citizen") == []


async def test_a_person_who_blocked_the_bot_is_not_retried(notifier: TeamsNotifier, connector: FakeConnector) -> None:
    connector.fail_next.append(MESSAGE_WRITES_BLOCKED)
    with pytest.raises(RecipientUnreachable, match="MessageWritesBlocked"):
        await notifier.send(reference(connector), OutgoingMessage(text="x"))
    assert connector.failed == 1  # one request, no retry
    connector.fail_next.append(Failure(404, body={"error": {"code": "ConversationNotFound"}}))
    with pytest.raises(RecipientUnreachable, match="ConversationNotFound"):
        await notifier.send(reference(connector), OutgoingMessage(text="x"))
    connector.fail_next.append(400)
    with pytest.raises(MessageRejected):
        await notifier.send(reference(connector), OutgoingMessage(text="x"))


async def test_a_storm_under_teams_limits_provokes_no_429(notifier: TeamsNotifier, connector: FakeConnector) -> None:
    connector.limits = TeamsLimits()
    # Ten messages to each of three conversations at once: 7 per second per conversation.
    await asyncio.gather(*(notifier.send(reference(connector, f"a:{i % 3}"), OutgoingMessage(text=str(i)))
                           for i in range(30)))
    assert connector.limits.throttled == 0
    assert sorted(len(connector.messages_for(f"a:{i}")) for i in range(3)) == [10, 10, 10]
