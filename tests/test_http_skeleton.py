"""The walking skeleton over real HTTP: Teams activities in, replies at the connector, bad input refused."""

from __future__ import annotations

import json

import aiohttp
from sqlalchemy import select

from bot.app import UOW
from bot.domain.people import Citizen
from bot.i18n import catalog
from tests.conftest import RunningBot
from tests.harness import FakeConnector, TeamsUser, card_text


async def test_install_shows_the_welcome_card_in_the_users_language(citizen: TeamsUser) -> None:
    citizen.locale = "nl-BE"
    replies = await citizen.install()
    cards = [card for reply in replies for card in reply.cards]
    assert len(cards) == 1, "exactly one welcome card on install, though Teams sends two events"
    assert cards[0]["version"] == "1.5"
    assert "Fictieve" in card_text(cards[0]) or "afspraak" in card_text(cards[0]).lower()


async def test_the_english_texts_spell_counselor_one_way_as_the_code_does(citizen: TeamsUser) -> None:
    citizen.locale = "en-US"
    replies = await citizen.install()
    welcome = card_text([card for reply in replies for card in reply.cards][0])
    assert "counselor" in welcome and "counsellor" not in welcome.lower()
    # And everywhere else a person reads English: cards, the Teams package, the calendar file.
    assert [key for key, text in catalog("en").items() if "counsellor" in text.lower()] == []


async def test_a_message_gets_a_reply_at_the_service_url(citizen: TeamsUser, connector: FakeConnector) -> None:
    replies = await citizen.say("qsdfghjklm")
    assert replies, "the bot answered at the serviceUrl"
    assert all(r.conversation_id == citizen.conversation_id for r in replies)
    # Unknown input gets help: a card listing what the bot can do.
    assert any(reply.cards for reply in replies)
    assert replies[0].activity["from"]["id"] == "28:guichet-test-bot"


async def test_the_tenant_is_read_from_channel_data(citizen: TeamsUser, running_bot: RunningBot) -> None:
    await citizen.say("aide")
    # The stored identity carries the Teams tenant even though botbuilder-schema drops conversation.tenantId.
    async with running_bot.app[UOW]() as uow:
        row = (await uow.session.execute(select(Citizen))).scalar_one()
    assert row.tenant_id == "7e5b2c1a-0000-4000-8000-000000000001"
    assert row.aad_object_id == citizen.aad_object_id
    assert row.conversation_reference["conversation"]["id"] == citizen.conversation_id


async def test_malformed_requests_get_400_never_500(bot_url: str, http: aiohttp.ClientSession,
                                                   citizen: TeamsUser) -> None:
    url = f"{bot_url}/api/messages"
    headers = {"Content-Type": "application/json"}
    bodies = [b"{not json", b"[]", b'"text"', b"{}", b'{"type": 42}',
              json.dumps({"type": "message", "text": "hi"}).encode(),  # no serviceUrl, conversation, sender
              json.dumps({**citizen.activity(text="x"), "serviceUrl": "file:///etc/passwd"}).encode(),
              json.dumps({**citizen.activity(text="x"), "conversation": "nope"}).encode(),
              b"\xff\xfe garbage"]
    for body in bodies:
        async with http.post(url, data=body, headers=headers) as response:
            assert response.status == 400, body
            payload = await response.json()
            assert "Traceback" not in json.dumps(payload)
    async with http.post(url, data=b"hello", headers={"Content-Type": "text/plain"}) as response:
        assert response.status == 415


async def test_an_oversized_body_gets_413(bot_url: str, http: aiohttp.ClientSession, citizen: TeamsUser) -> None:
    activity = citizen.activity(text="x" * (300 * 1024))
    async with http.post(f"{bot_url}/api/messages", json=activity) as response:
        assert response.status == 413


async def test_health_and_readiness(bot_url: str, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{bot_url}/healthz") as response:
        assert response.status == 200
    async with http.get(f"{bot_url}/readyz") as response:
        assert response.status == 200
        assert (await response.json())["database"] == "ok"


async def test_with_an_app_id_a_request_without_a_valid_token_gets_401(
    tmp_path, agency, connector: FakeConnector, http: aiohttp.ClientSession
) -> None:
    from aiohttp import web

    from bot.app import create_app
    from bot.settings import Settings
    from storage.migrate import upgrade_database
    from tests.harness import free_port

    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/auth.db",
                        app_id="11111111-2222-3333-4444-555555555555", app_password="not-a-real-secret")
    await upgrade_database(settings.database_url)
    runner = web.AppRunner(create_app(settings, agency=agency), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        user = TeamsUser(bot_url=f"http://127.0.0.1:{port}", connector=connector, http=http)
        for headers in ({}, {"Authorization": "Bearer not.a.token"}, {"Authorization": "Basic abc"}):
            user.headers = headers
            status, _ = await user.post(user.activity(text="aide"))
            assert status == 401, headers
        assert connector.received == [], "an unauthenticated request reaches no handler"
    finally:
        await runner.cleanup()


async def test_readiness_is_503_while_the_database_cannot_be_reached(agency, http: aiohttp.ClientSession) -> None:
    from bot.settings import Settings
    from tests.fixtures.database import _create_database, _drop_database, _postgres_url
    from tests.harness import start_bot

    name = await _create_database()
    try:
        async with start_bot(Settings(database_url=_postgres_url(name)), agency) as bot:
            async with http.get(f"{bot.url}/readyz") as response:
                assert response.status == 200
            await _drop_database(name)  # the database goes away under the running bot
            for _ in range(2):  # the pooled connection, then a new one
                async with http.get(f"{bot.url}/readyz") as response:
                    assert response.status == 503
                    assert await response.json() == {"status": "unavailable", "database": "unreachable"}
            async with http.get(f"{bot.url}/healthz") as response:
                assert response.status == 200  # alive all the same: no restart would help
    finally:
        await _drop_database(name)
