"""`MicrosoftAppType=UserAssignedMSI`: the bot's identity is a user-assigned managed identity (Azure Container
Apps), so no secret exists anywhere. Its token for the connector comes from the platform's managed-identity
endpoint (tests/identity_server.py), through our reused connector clients (bot/adapter.py,
bot/connector_http.py): replies to a citizen's message, through the HTTP harness with the channel's token
checked, and messages the bot writes on its own (the Notifier) both carry it, and a reused client asks again
for a token about to expire rather than keeping the first one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import msal
import pytest
from aiohttp import web
from botframework.connector.auth import ManagedIdentityAppCredentials
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.app import create_app
from bot.domain.agency import Agency
from bot.services.ports import OutgoingMessage
from bot.settings import Settings
from bot.wiring import build_services
from storage.migrate import upgrade_database
from tests.harness import TENANT_ID, FakeConnector, TeamsUser, free_port
from tests.identity_server import APP_SERVICE_PATH, IdentityServer
from tests.test_auth import APP_ID, MetadataServer, channel_key, channel_token, metadata  # noqa: F401 (fixtures)

BOT_FRAMEWORK = "https://api.botframework.com"


@pytest.fixture
async def identity(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[IdentityServer]:
    server = IdentityServer(client_id=APP_ID)
    await server.start()
    # The SDK keeps managed-identity tokens in one cache for the process: each test starts without any.
    monkeypatch.setattr(ManagedIdentityAppCredentials, "global_token_cache", msal.TokenCache())
    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT",
                 "MSI_ENDPOINT", "MSI_SECRET", "AZURE_POD_IDENTITY_AUTHORITY_HOST"):
        monkeypatch.delenv(name, raising=False)
    yield server
    await server.stop()


@pytest.fixture(params=["app service", "imds"])
def platform(request: pytest.FixtureRequest, identity: IdentityServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """What Container Apps (and App Service) set in the container, or a virtual machine's IMDS."""
    if request.param == "app service":
        monkeypatch.setenv("IDENTITY_ENDPOINT", identity.root + APP_SERVICE_PATH)
        monkeypatch.setenv("IDENTITY_HEADER", identity.header_secret)
    else:
        monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", identity.root)
    return str(request.param)


def msi_settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/msi.db", app_id=APP_ID,
                    app_type="UserAssignedMSI", app_tenant_id=TENANT_ID, **values)  # type: ignore[arg-type]


@pytest.fixture
async def msi_bot(tmp_path: Path, agency: Agency, metadata: MetadataServer,  # noqa: F811
                  platform: str) -> AsyncIterator[str]:
    settings = msi_settings(tmp_path, openid_metadata_url=metadata.metadata_url)
    await upgrade_database(settings.database_url)
    runner = web.AppRunner(create_app(settings, agency=agency), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_replies_carry_the_managed_identity_token(
        msi_bot: str, platform: str, identity: IdentityServer, connector: FakeConnector,
        http: aiohttp.ClientSession, channel_key: rsa.RSAPrivateKey) -> None:  # noqa: F811
    user = TeamsUser(bot_url=msi_bot, connector=connector, http=http)
    for text in ("aide", "aide"):
        user.headers = {"Authorization": f"Bearer {channel_token(user, key=channel_key)}"}
        status, _ = await user.post(user.activity(text=text))
        assert status in (200, 201)

    replies = user.replies()
    assert len(replies) >= 2, "the citizen got the bot's answers"
    assert {reply.headers.get("Authorization") for reply in replies} == {"Bearer managed-identity-token-1"}
    # One token for both turns: the reused client's credential kept it while it was valid.
    [asked] = identity.requests
    assert asked.shape == platform
    assert asked.query["resource"] == BOT_FRAMEWORK and asked.query["client_id"] == APP_ID


async def test_the_notifier_signs_with_the_managed_identity_and_renews_a_token_about_to_expire(
        tmp_path: Path, agency: Agency, platform: str, identity: IdentityServer, connector: FakeConnector) -> None:
    identity.lifetime = 120  # under MSAL's five-minute margin: every use asks for a fresh token
    wiring = build_services(msi_settings(tmp_path), agency=agency)
    notifier = wiring.services.notifier
    assert notifier is not None
    reference = {"serviceUrl": connector.url, "channelId": "msteams", "bot": {"id": "28:bot"},
                 "user": {"id": "29:citizen"}, "conversation": {"id": "a:citizen", "tenantId": TENANT_ID}}
    try:
        for text in ("first", "second"):
            await notifier.send(reference, OutgoingMessage(text=text))
    finally:
        await wiring.close()

    sent = connector.messages_for("a:citizen")
    assert [message.headers.get("Authorization") for message in sent] == [
        "Bearer managed-identity-token-1", "Bearer managed-identity-token-2"]
    assert [request.shape for request in identity.requests] == [platform, platform]
