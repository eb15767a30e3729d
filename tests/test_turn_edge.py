"""The bot's edge does per process what the SDK does per turn, and sends exactly what msrest would send."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest
from aiohttp import web
from botbuilder.core import BotAdapter, MessageFactory, TurnContext
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    Attachment,
    CardAction,
    ChannelAccount,
    ConversationAccount,
    Entity,
    Mention,
    ResourceResponse,
    SuggestedActions,
)
from botframework.connector import models as connector_models
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import MicrosoftAppCredentials, _user_token_client_impl
from botframework.connector.models import ErrorResponseException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msrest import Serializer
from msrest.universal_http import requests as msrest_requests

from bench.servers import serving
from bot.activity_json import NotPlain, activity_from_json, activity_json
from bot.connector_http import (
    ConnectorSession,
    QuickConversations,
    RetryPolicy,
    install_pipeline,
    retry_after_seconds,
)
from bot.replies import card_message
from cards.verbs import Verb
from storage.bot_state import DatabaseStorage
from tests.conftest import RunningBot
from tests.harness import FakeConnector, TeamsUser

# --- built once per process, not per turn ---------------------------------------------------------------


@pytest.fixture
def constructions(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many msrest client configurations (each builds a retry table) and user-token clients were built."""
    counts = {"msrest_configurations": 0, "user_token_clients": 0}
    retry_init = msrest_requests.ClientRetryPolicy.__init__
    token_init = _user_token_client_impl._UserTokenClientImpl.__init__

    def counting_retry(self: Any, *args: Any, **kwargs: Any) -> None:
        counts["msrest_configurations"] += 1
        retry_init(self, *args, **kwargs)

    def counting_token(self: Any, *args: Any, **kwargs: Any) -> None:
        counts["user_token_clients"] += 1
        token_init(self, *args, **kwargs)

    monkeypatch.setattr(msrest_requests.ClientRetryPolicy, "__init__", counting_retry)
    monkeypatch.setattr(_user_token_client_impl._UserTokenClientImpl, "__init__", counting_token)
    return counts


async def test_connector_and_token_clients_are_not_rebuilt_on_every_turn(
    citizen: TeamsUser, constructions: dict[str, int]
) -> None:
    assert await citizen.say("aide"), "the first turn is answered"
    first_turn = dict(constructions)
    for _ in range(5):
        assert await citizen.say("aide")

    assert constructions == first_turn, "later turns reuse the connector client"
    assert first_turn["msrest_configurations"] == 1, "one connector client, built on the first turn"
    assert constructions["user_token_clients"] == 0, "no one signs in, so no user-token client is built"


async def test_a_second_conversation_on_the_same_service_url_reuses_the_client(
    citizen: TeamsUser, connector: FakeConnector, http: Any, bot_url: str, constructions: dict[str, int]
) -> None:
    await citizen.say("aide")
    before = dict(constructions)
    other = TeamsUser(bot_url=bot_url, connector=connector, http=http)
    assert await other.say("aide")
    assert constructions == before


async def test_replies_go_out_with_the_bots_identity_and_the_teams_conversation(citizen: TeamsUser) -> None:
    replies = await citizen.say("aide")
    sent = replies[0].activity
    assert sent["from"]["id"] == "28:guichet-test-bot"
    assert sent["recipient"]["id"] == citizen.user_id
    assert sent["conversation"]["id"] == citizen.conversation_id
    assert sent["replyToId"], "a reply names the message it answers"


# --- state written only when it changed -------------------------------------------------------------------


async def test_unchanged_conversation_state_is_not_written_again(
    citizen: TeamsUser, running_bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[str] = []
    write_documents = DatabaseStorage.write_documents

    async def counting(self: DatabaseStorage, changes: Any) -> None:
        writes.extend(changes)
        await write_documents(self, changes)

    monkeypatch.setattr(DatabaseStorage, "write_documents", counting)
    await citizen.say("aide")
    after_first = len(writes)
    for _ in range(3):
        await citizen.say("aide")

    assert after_first == 1, "the first turn stores the (empty) dialog stack"
    assert len(writes) == after_first, "help changes nothing in the conversation, so nothing is written"


# --- Activity JSON: the quick path sends what msrest sends ----------------------------------------------

_MSREST = Serializer({k: v for k, v in connector_models.__dict__.items() if isinstance(v, type)})

_text = st.text(max_size=40)
_json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False) | _text
_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=25,
)
_account = st.builds(ChannelAccount, id=_text, name=st.none() | _text, aad_object_id=st.none() | _text)
_moment = st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2100, 1, 1),
                       timezones=st.just(dt.UTC))


@st.composite
def _activities(draw: st.DrawFn) -> Activity:
    activity = Activity(
        type=draw(st.sampled_from([ActivityTypes.message, "message", ActivityTypes.typing])),
        text=draw(st.none() | _text),
        text_format=draw(st.none() | st.sampled_from(["plain", "markdown"])),
        locale=draw(st.none() | st.just("fr-BE")),
        timestamp=draw(st.none() | _moment),
        from_property=draw(_account),
        recipient=draw(_account),
        conversation=ConversationAccount(id=draw(_text), conversation_type="personal"),
        reply_to_id=draw(st.none() | _text),
        service_url="https://smba.trafficmanager.net/emea/",
        channel_data=draw(st.none() | st.dictionaries(_text, _json, max_size=3)),
        value=draw(st.none() | _json),
        attachments=draw(st.none() | st.lists(st.builds(
            Attachment, content_type=st.just("application/vnd.microsoft.card.adaptive"),
            content=st.dictionaries(_text, _json, max_size=5), name=st.none() | _text), max_size=2)),
        entities=draw(st.none() | st.lists(
            st.builds(Entity, type=_text) | st.builds(Mention, mentioned=_account, text=_text, type=st.just("mention")),
            max_size=2)),
        suggested_actions=draw(st.none() | st.builds(SuggestedActions, actions=st.lists(
            st.builds(CardAction, type=st.just("imBack"), title=_text, value=_text), max_size=3))),
    )
    return activity


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_activities())
def test_the_quick_activity_json_is_what_msrest_would_send(activity: Activity) -> None:
    expected = _MSREST.body(copy.deepcopy(activity), "Activity")
    assert activity_json(activity) == expected



@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_activities(), st.dictionaries(_text, _json, max_size=3))
def test_an_incoming_activity_is_read_as_msrest_reads_it(activity: Activity, unknown: dict[str, Any]) -> None:
    body = json.loads(json.dumps({**unknown, **_MSREST.body(copy.deepcopy(activity), "Activity")}))
    expected = Activity.deserialize(copy.deepcopy(body))
    read = activity_from_json(body)
    assert read == expected
    assert read.from_property == expected.from_property and read.entities == expected.entities
    for mine, theirs in zip(read.entities or [], expected.entities or [], strict=True):
        assert mine.additional_properties == theirs.additional_properties


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["type", "id", "timestamp", "from", "conversation", "entities",
                                        "value", "locale", "channelData", "membersAdded", "textFormat"]),
                       _json, max_size=6))
def test_odd_json_is_read_as_msrest_reads_it_or_left_to_msrest(body: dict[str, Any]) -> None:
    try:
        expected: Any = Activity.deserialize(copy.deepcopy(body))
    except Exception as error:  # msrest refuses it: the quick path must not accept it
        expected = type(error)
    try:
        read: Any = activity_from_json(copy.deepcopy(body))
    except NotPlain:
        return  # msrest decides
    except Exception as error:
        read = type(error)
    assert read == expected

def test_a_reply_built_by_the_sdk_takes_the_quick_path() -> None:
    incoming = Activity().deserialize({
        "type": "message", "id": "1", "serviceUrl": "https://smba.example/", "channelId": "msteams",
        "from": {"id": "29:u", "aadObjectId": "o"}, "recipient": {"id": "28:b"},
        "conversation": {"id": "a:1", "tenantId": "t", "conversationType": "personal"}, "locale": "fr-BE",
    })
    reply = TurnContext.apply_conversation_reference(
        MessageFactory.attachment(Attachment(content_type="application/vnd.microsoft.card.adaptive",
                                             content={"type": "AdaptiveCard", "body": [{"text": "é [x]"}]})),
        TurnContext.get_conversation_reference(incoming),
    )
    assert activity_json(reply) == _MSREST.body(copy.deepcopy(reply), "Activity")


def test_a_card_with_our_verbs_takes_the_quick_path() -> None:
    # Cards carry StrEnum verbs and kinds (keys and values): they are plain strings on the wire, and a reply
    # that fell back to msrest for them cost every greeting about 1.7 ms.
    card = {"type": "AdaptiveCard", "actions": [{"type": "Action.Execute", "verb": Verb.APPT_REBOOK,
                                                 "data": {"verb": Verb.APPT_REBOOK, Verb.APPT_CANCEL: 1}}]}
    reply = MessageFactory.attachment(Attachment(content_type="application/vnd.microsoft.card.adaptive",
                                                 content=card))
    sent = activity_json(reply)
    assert sent == _MSREST.body(copy.deepcopy(reply), "Activity")
    assert json.loads(json.dumps(sent))["attachments"][0]["content"]["actions"][0]["data"] == {
        "verb": "appt_rebook", "appt_cancel": 1}


def test_what_only_msrest_knows_is_left_to_msrest() -> None:
    odd = Activity(type="message", timestamp="2025-01-01T00:00:00Z")  # a string where a datetime belongs
    with pytest.raises(NotPlain):
        activity_json(odd)
    odd = Activity(type="message", value={"when": dt.date(2025, 1, 1)})  # msrest would send str(date)
    with pytest.raises(NotPlain):
        activity_json(odd)



class _Capture(BotAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[Activity] = []

    async def send_activities(self, context: TurnContext, activities: list[Activity]) -> list[ResourceResponse]:
        self.sent += activities
        return [ResourceResponse(id=str(i)) for i, _ in enumerate(activities)]

    async def update_activity(self, context: TurnContext, activity: Activity) -> None:
        raise NotImplementedError

    async def delete_activity(self, context: TurnContext, reference: Any) -> None:
        raise NotImplementedError


async def test_a_card_reply_shares_its_card_but_not_its_activity() -> None:
    # The SDK deep-copies each outgoing activity; our card messages keep that for the activity (the
    # conversation reference is applied to the copy only) but share the card, built for this reply.
    adapter = _Capture()
    incoming = Activity().deserialize({
        "type": "message", "id": "7", "serviceUrl": "https://smba.example/", "channelId": "msteams",
        "from": {"id": "29:u"}, "recipient": {"id": "28:b"}, "conversation": {"id": "a:1"}})
    context = TurnContext(adapter, incoming)
    card = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "Bonjour"}]}
    message = card_message(card)
    await context.send_activity(message)
    [sent] = adapter.sent
    assert sent is not message and message.conversation is None and sent.conversation.id == "a:1"
    assert sent.attachments[0].content is card
    assert activity_json(sent)["attachments"][0] == {"contentType": "application/vnd.microsoft.card.adaptive",
                                                      "content": card}


class _Recorder:
    """A connector that records each request and answers with the status it is told."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.status = 200

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path_qs, dict(request.headers), await request.json()))
        if self.status >= 400:
            return web.json_response({"error": {"code": "BadArgument", "message": "no"}}, status=self.status)
        return web.json_response({"id": f"r{len(self.requests)}"}, status=self.status)


@pytest.mark.parametrize("operation", ["reply_to_activity", "send_to_conversation"])
async def test_replies_sent_directly_are_the_requests_msrest_would_send(operation: str) -> None:
    recorder = _Recorder()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    session = ConnectorSession()
    async with serving(app) as url:
        stock = ConnectorClient(MicrosoftAppCredentials.empty(), base_url=f"{url}/emea/")
        ours = ConnectorClient(MicrosoftAppCredentials.empty(), base_url=f"{url}/emea/")
        install_pipeline(ours, session, RetryPolicy(attempts=1))
        assert isinstance(ours.conversations, QuickConversations)
        reply = card_message({"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "é"}]})
        reply.conversation = ConversationAccount(id="a:1/x?y")
        arguments: list[Any] = ["a:1/x?y", "f:9#1", reply] if operation == "reply_to_activity" else ["a:1/x?y", reply]
        try:
            expected = await getattr(stock.conversations, operation)(*arguments)
            answered = await getattr(ours.conversations, operation)(*arguments)
            assert (type(answered), expected.id, answered.id) == (type(expected), "r1", "r2")
            (method, path, headers, body), (our_method, our_path, our_headers, our_body) = recorder.requests
            assert (our_method, our_path, our_body) == (method, path, body)
            for name in ("Accept", "Content-Type", "x-ms-conversation-id", "User-Agent"):
                assert our_headers.get(name) == headers.get(name), name

            recorder.status = 403  # final: the same exception as msrest's, nothing retried
            with pytest.raises(ErrorResponseException) as stock_error:
                await getattr(stock.conversations, operation)(*arguments)
            with pytest.raises(ErrorResponseException) as our_error:
                await getattr(ours.conversations, operation)(*arguments)
            # .response is the HTTP library's own: aiohttp's for us, requests' for msrest's stock sender.
            assert our_error.value.response.status == stock_error.value.response.status_code == 403
            assert str(our_error.value) == str(stock_error.value)
        finally:
            await session.close()

# --- Retry-After ---------------------------------------------------------------------------------------


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds(" 0.5 ") == 0.5
    assert retry_after_seconds("-3") == 0.0
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    waited = retry_after_seconds(soon.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    assert waited is not None and 25 <= waited <= 31
    assert retry_after_seconds("soon") is None
