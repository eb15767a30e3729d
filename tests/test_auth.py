"""Bot Framework authentication over HTTP, against a local OpenID metadata and signing-key endpoint.

The channel signs each request with a key published in its OpenID metadata (JWKS). Here the keys
are an RSA pair made for the test, published by a small aiohttp server on 127.0.0.1, and the bot's
token validation is pointed at it (Settings.openid_metadata_url). Only a token signed with that key,
issued by the Bot Framework, for our app id and for the activity's serviceUrl gets in; anything else
gets 401 and reaches no handler: no reply at the connector, no citizen row.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from botframework.connector.auth import MicrosoftAppCredentials
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import func, select

from bot.app import UOW, create_app
from bot.domain.agency import Agency
from bot.domain.people import Citizen
from bot.settings import Settings
from storage.migrate import upgrade_database
from tests.harness import FakeConnector, TeamsUser, free_port

APP_ID = "3f1b8d0e-0000-4000-8000-00000000a11d"
ISSUER = "https://api.botframework.com"
KEY_ID = "guichet-test-key"
OUTGOING_TOKEN = "token-from-entra-for-the-connector"


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class MetadataServer:
    """OpenID metadata and JWKS, served from a thread of its own.

    Its own thread and event loop, because the SDK fetches the keys with blocking `requests` calls
    from the bot's event loop: a server on that same loop could never answer.
    """

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.jwks = jwks
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.requests = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="openid-metadata", daemon=True)

    @property
    def metadata_url(self) -> str:
        return f"{self.base}/v1/.well-known/openidconfiguration"

    def _serve(self) -> None:
        async def metadata(_request: web.Request) -> web.Response:
            self.requests += 1
            return web.json_response({"issuer": ISSUER, "jwks_uri": f"{self.base}/v1/.well-known/keys",
                                      "id_token_signing_alg_values_supported": ["RS256"]})

        async def keys(_request: web.Request) -> web.Response:
            self.requests += 1
            return web.json_response(self.jwks)

        app = web.Application()
        app.router.add_get("/v1/.well-known/openidconfiguration", metadata)
        app.router.add_get("/v1/.well-known/keys", keys)
        runner = web.AppRunner(app, access_log=None)
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    def __enter__(self) -> MetadataServer:
        self._thread.start()
        assert self._ready.wait(10), "metadata server did not start"
        return self

    def __exit__(self, *_exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="module")
def channel_key() -> rsa.RSAPrivateKey:
    return _new_key()


@pytest.fixture
def metadata(channel_key: rsa.RSAPrivateKey) -> Iterator[MetadataServer]:
    jwk = json.loads(RSAAlgorithm.to_jwk(channel_key.public_key()))
    jwk.update({"kid": KEY_ID, "use": "sig", "endorsements": ["msteams"]})
    with MetadataServer({"keys": [jwk]}) as server:
        yield server


@pytest.fixture
def outgoing_token(monkeypatch: pytest.MonkeyPatch) -> None:
    # The bot's own token for the connector comes from Entra ID, which tests do not reach.
    monkeypatch.setattr(MicrosoftAppCredentials, "get_access_token", lambda self, force_refresh=False: OUTGOING_TOKEN)


@pytest.fixture
async def secured_bot(tmp_path: Path, agency: Agency, metadata: MetadataServer,
                      outgoing_token: None) -> AsyncIterator[tuple[str, web.Application]]:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/auth.db", app_id=APP_ID,
                        app_password="not-a-real-secret", openid_metadata_url=metadata.metadata_url)
    await upgrade_database(settings.database_url)
    app = create_app(settings, agency=agency)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", app
    await runner.cleanup()


@pytest.fixture
def user(secured_bot: tuple[str, web.Application], connector: FakeConnector,
         http: aiohttp.ClientSession) -> TeamsUser:
    return TeamsUser(bot_url=secured_bot[0], connector=connector, http=http)


def channel_token(user: TeamsUser, *, key: rsa.RSAPrivateKey, kid: str = KEY_ID, algorithm: str = "RS256",
                  **claims: Any) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {"iss": ISSUER, "aud": APP_ID, "serviceurl": user.connector.url,
                               "nbf": now - 60, "iat": now - 60, "exp": now + 3600}
    payload.update(claims)
    payload = {name: value for name, value in payload.items() if value is not None}
    if algorithm == "none":
        return jwt.encode(payload, None, algorithm="none")
    return jwt.encode(payload, key, algorithm=algorithm, headers={"kid": kid})


async def _citizens(app: web.Application) -> int:
    async with app[UOW]() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(Citizen)) or 0)


async def test_a_token_signed_by_the_channel_for_our_app_is_accepted(
    user: TeamsUser, secured_bot: tuple[str, web.Application], channel_key: rsa.RSAPrivateKey,
    connector: FakeConnector,
) -> None:
    user.headers = {"Authorization": f"Bearer {channel_token(user, key=channel_key)}"}
    status, _ = await user.post(user.activity(text="aide"))

    assert status in (200, 201)
    replies = user.replies()
    assert replies, "the bot answered"
    # With an app id, what the bot sends the connector carries the bot's own token.
    assert all(reply.headers.get("Authorization") == f"Bearer {OUTGOING_TOKEN}" for reply in replies)
    assert await _citizens(secured_bot[1]) == 1


BAD_TOKENS = {
    "unsigned": {"algorithm": "none"},
    "expired": {"exp": int(time.time()) - 3600, "nbf": int(time.time()) - 7200, "iat": int(time.time()) - 7200},
    "not yet valid": {"nbf": int(time.time()) + 3600},
    "for another bot": {"aud": "00000000-0000-4000-8000-0000000000b0"},
    "without audience": {"aud": None},
    "from another issuer": {"iss": "https://sts.windows.net/attacker/"},
    "without issuer": {"iss": None},
    "for another service url": {"serviceurl": "https://evil.example/"},
    "signed with another key": {"key": "other"},
    "with an unknown key id": {"kid": "unknown-key"},
    "HS256 with the public key as secret": {"algorithm": "HS256"},
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_a_bad_token_gets_401_and_reaches_no_handler(
    case: str, user: TeamsUser, secured_bot: tuple[str, web.Application], channel_key: rsa.RSAPrivateKey,
    connector: FakeConnector,
) -> None:
    options = dict(BAD_TOKENS[case])
    key: Any = channel_key
    if options.pop("key", None) == "other":
        key = _new_key()
    algorithm = options.pop("algorithm", "RS256")
    if algorithm == "HS256":
        # The classic confusion: an HMAC "signed" with what the attacker knows of the public key.
        key = channel_key.public_key().public_numbers().n.to_bytes(256, "big")
    kid = options.pop("kid", KEY_ID)
    token = channel_token(user, key=key, kid=kid, algorithm=algorithm, **options)

    for activity in (user.activity(text="aide"),
                     user.activity(type="invoke", name="adaptiveCard/action",
                                   value={"action": {"type": "Action.Execute", "verb": "menu_book", "data": {}}})):
        user.headers = {"Authorization": f"Bearer {token}"}
        status, body = await user.post(activity)
        assert status == 401, (case, status, body)
    assert connector.received == [], "nothing was sent on behalf of a refused request"
    assert await _citizens(secured_bot[1]) == 0, "a refused request stores nothing"


async def test_requests_without_a_bearer_token_get_401(
    user: TeamsUser, secured_bot: tuple[str, web.Application], connector: FakeConnector,
) -> None:
    for headers in ({}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwYXNz"},
                    {"Authorization": "Bearer not.a.jwt"}, {"Authorization": "Bearer " + "A" * 5000}):
        user.headers = headers
        status, _ = await user.post(user.activity(text="aide"))
        assert status == 401, headers
    assert connector.received == []
    assert await _citizens(secured_bot[1]) == 0


async def test_when_the_signing_keys_cannot_be_fetched_the_channel_is_asked_to_retry(
    tmp_path: Path, agency: Agency, connector: FakeConnector, http: aiohttp.ClientSession,
    channel_key: rsa.RSAPrivateKey, outgoing_token: None,
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/v1/.well-known/openidconfiguration"  # nothing listens
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/keys.db", app_id=APP_ID,
                        app_password="not-a-real-secret", openid_metadata_url=nowhere)
    await upgrade_database(settings.database_url)
    runner = web.AppRunner(create_app(settings, agency=agency), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        user = TeamsUser(bot_url=f"http://127.0.0.1:{port}", connector=connector, http=http)
        user.headers = {"Authorization": f"Bearer {channel_token(user, key=channel_key)}"}
        async with http.post(f"{user.bot_url}/api/messages", json=user.activity(text="aide"),
                             headers=user.headers) as response:
            assert response.status == 503, "not the caller's fault: the channel may send it again"
            assert response.headers.get("Retry-After")
        assert connector.received == []
    finally:
        await runner.cleanup()
