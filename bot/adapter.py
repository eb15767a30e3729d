"""The Bot Framework edge: CloudAdapter with reused connector clients and a safe turn-error handler.

The stock SDK builds a new ConnectorClient and a new UserTokenClient on every turn; each msrest
configuration costs milliseconds of CPU. Here both are built once and reused: connector clients per
(service URL, audience), the user-token client only when a turn actually asks for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, ActivityTypes
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import (
    AuthenticateRequestResult,
    BotFrameworkAuthentication,
    ClaimsIdentity,
    ConnectorFactory,
    UserTokenClient,
)
from botframework.connector.skills import BotFrameworkClient

from bot.settings import Settings
from cards.i18n import t

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BotFrameworkConfiguration:
    """The attribute names ConfigurationBotFrameworkAuthentication reads."""

    APP_ID: str
    APP_PASSWORD: str
    APP_TYPE: str
    APP_TENANTID: str
    TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL: str | None = None


class ReusingConnectorFactory(ConnectorFactory):
    """Hands out one ConnectorClient per (service URL, audience) for the life of the process."""

    def __init__(self, inner: ConnectorFactory) -> None:
        self._inner = inner
        self._clients: dict[tuple[str, str | None], ConnectorClient] = {}

    async def create(self, service_url: str, audience: str | None = None) -> ConnectorClient:
        key = (service_url, audience)
        client = self._clients.get(key)
        if client is None:
            client = await self._inner.create(service_url, audience)
            self._clients[key] = client
        return client


class LazyUserTokenClient(UserTokenClient):
    """Builds the real user-token client on first use; most turns never sign anyone in."""

    def __init__(self, auth: BotFrameworkAuthentication, claims: ClaimsIdentity) -> None:
        self._auth = auth
        self._claims = claims
        self._real: UserTokenClient | None = None

    async def _client(self) -> UserTokenClient:
        if self._real is None:
            self._real = await self._auth.create_user_token_client(self._claims)
        return self._real

    async def get_user_token(self, *args: Any, **kwargs: Any) -> Any:
        return await (await self._client()).get_user_token(*args, **kwargs)

    async def get_sign_in_resource(self, *args: Any, **kwargs: Any) -> Any:
        return await (await self._client()).get_sign_in_resource(*args, **kwargs)

    async def sign_out_user(self, *args: Any, **kwargs: Any) -> Any:
        return await (await self._client()).sign_out_user(*args, **kwargs)

    async def get_token_status(self, *args: Any, **kwargs: Any) -> Any:
        return await (await self._client()).get_token_status(*args, **kwargs)

    async def get_aad_tokens(self, *args: Any, **kwargs: Any) -> Any:
        return await (await self._client()).get_aad_tokens(*args, **kwargs)

    async def exchange_token(self, *args: Any, **kwargs: Any) -> Any:
        return await (await self._client()).exchange_token(*args, **kwargs)


class ReusingAuthentication(BotFrameworkAuthentication):
    """Delegates authentication to the SDK, caching what the SDK rebuilds on every turn."""

    def __init__(self, inner: BotFrameworkAuthentication) -> None:
        self._inner = inner
        self._factories: dict[tuple[str | None, str | None], ReusingConnectorFactory] = {}

    def _reusing(self, claims: ClaimsIdentity, inner: ConnectorFactory) -> ReusingConnectorFactory:
        # Connector credentials depend on the bot's app id and the caller's audience only.
        claims_map = claims.claims or {}
        key = (claims_map.get("aud"), claims_map.get("appid") or claims_map.get("azp"))
        factory = self._factories.get(key)
        if factory is None:
            factory = ReusingConnectorFactory(inner)
            self._factories[key] = factory
        return factory

    async def authenticate_request(self, activity: Activity, auth_header: str) -> AuthenticateRequestResult:
        result = await self._inner.authenticate_request(activity, auth_header)
        if result.connector_factory is not None:
            result.connector_factory = self._reusing(result.claims_identity, result.connector_factory)
        return result

    async def authenticate_streaming_request(
        self, auth_header: str, channel_id_header: str
    ) -> AuthenticateRequestResult:
        return await self._inner.authenticate_streaming_request(auth_header, channel_id_header)

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return self._reusing(claims_identity, self._inner.create_connector_factory(claims_identity))

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        return LazyUserTokenClient(self._inner, claims_identity)

    def create_bot_framework_client(self) -> BotFrameworkClient:
        return self._inner.create_bot_framework_client()

    def get_originating_audience(self) -> str:
        return self._inner.get_originating_audience()

    async def authenticate_channel_request(self, auth_header: str) -> ClaimsIdentity:
        return await self._inner.authenticate_channel_request(auth_header)


def create_adapter(settings: Settings, *, default_language: str) -> CloudAdapter:
    """A CloudAdapter authenticated per the settings (none when no app id: local mode)."""
    configuration = BotFrameworkConfiguration(
        APP_ID=settings.app_id,
        APP_PASSWORD=settings.app_password,
        APP_TYPE=settings.app_type,
        APP_TENANTID=settings.app_tenant_id,
        TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=settings.openid_metadata_url,
    )
    auth = ReusingAuthentication(ConfigurationBotFrameworkAuthentication(configuration))
    adapter = CloudAdapter(auth)

    async def on_turn_error(context: TurnContext, error: Exception) -> None:
        # The citizen gets a friendly message; the log gets the error class and ids, never message text.
        log.error(
            "turn failed: %s (activity type %s, conversation %s)",
            type(error).__name__,
            context.activity.type,
            getattr(context.activity.conversation, "id", "?"),
            exc_info=error,
        )
        if context.activity.type in (ActivityTypes.message, ActivityTypes.invoke):
            language = _activity_language(context.activity, default_language)
            try:
                await context.send_activity(t(language, "conversation.error_generic"))
            except Exception:  # the connector itself may be what failed
                log.warning("could not tell the user about the failed turn")

    adapter.on_turn_error = on_turn_error
    return adapter


def _activity_language(activity: Activity, default: str) -> str:
    locale = (activity.locale or "").split("-")[0].lower()
    return locale if locale in ("fr", "nl", "de", "en") else default
