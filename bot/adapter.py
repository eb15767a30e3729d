"""The Bot Framework edge: CloudAdapter with reused connector clients and a safe turn-error handler.

The stock SDK builds a new ConnectorClient and a new UserTokenClient on every turn; each msrest
configuration costs milliseconds of CPU. Here both are built once and reused: connector clients per
(service URL, audience), the user-token client only when a turn actually asks for it. Connector
clients send over one aiohttp session with a bounded retry (bot/connector_http.py) instead of
`requests` in a thread.

A turn's replies wait in its Outbox until its state is saved (TeamsBot.on_turn), so that what the
person sees and where the conversation stands cannot drift apart when the connector or the
database fails mid-turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
    ConfigurationServiceClientCredentialFactory,
)
from botbuilder.schema import Activity, ActivityTypes, CallerIdConstants, ResourceResponse
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import (
    AuthenticateRequestResult,
    AuthenticationConstants,
    BotFrameworkAuthentication,
    ClaimsIdentity,
    ConnectorFactory,
    MicrosoftAppCredentials,
    ServiceClientCredentialsFactory,
    UserTokenClient,
)
from botframework.connector.skills import BotFrameworkClient
from msal import ConfidentialClientApplication
from msrest.authentication import Authentication

from bot.connector_http import ConnectorSession, RetryPolicy, install_pipeline
from bot.domain.channels import can_change_sent_messages
from bot.i18n import t
from bot.metrics import Metrics, turn_kind
from bot.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BotFrameworkConfiguration:
    """The attribute names ConfigurationBotFrameworkAuthentication reads."""

    APP_ID: str
    APP_PASSWORD: str
    APP_TYPE: str
    APP_TENANTID: str
    TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL: str | None = None
    TO_BOT_FROM_CHANNEL_TOKEN_ISSUER: str | None = None
    TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL: str | None = None
    TO_CHANNEL_FROM_BOT_LOGIN_URL: str | None = None
    TO_CHANNEL_FROM_BOT_OAUTH_SCOPE: str | None = None
    OAUTH_URL: str | None = None
    CALLER_ID: str | None = None
    VALIDATE_AUTHORITY: bool = True


class ReusingConnectorFactory(ConnectorFactory):
    """Hands out one ConnectorClient per (service URL, audience) for the life of the process."""

    def __init__(self, inner: ConnectorFactory, session: ConnectorSession, retry: RetryPolicy) -> None:
        self._inner = inner
        self._session = session
        self._retry = retry
        self._clients: dict[tuple[str, str | None], ConnectorClient] = {}

    async def create(self, service_url: str, audience: str | None = None) -> ConnectorClient:
        key = (service_url, audience)
        client = self._clients.get(key)
        if client is None:
            client = await self._inner.create(service_url, audience)
            install_pipeline(client, self._session, self._retry)
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

    def __init__(self, inner: BotFrameworkAuthentication, *, retry: RetryPolicy | None = None,
                 observe: Callable[[int | None], None] | None = None) -> None:
        self._inner = inner
        self._factories: dict[tuple[str | None, str | None], ReusingConnectorFactory] = {}
        self.connector_session = ConnectorSession(observe=observe)
        self.retry = retry or RetryPolicy()

    def _reusing(self, claims: ClaimsIdentity, inner: ConnectorFactory) -> ReusingConnectorFactory:
        # Connector credentials depend on the bot's app id and the caller's audience only.
        claims_map = claims.claims or {}
        key = (claims_map.get("aud"), claims_map.get("appid") or claims_map.get("azp"))
        factory = self._factories.get(key)
        if factory is None:
            factory = ReusingConnectorFactory(inner, self.connector_session, self.retry)
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


OUTBOX_KEY = "guichet.outbox"


class Outbox:
    """A turn's outgoing activities, held until the turn's state is saved, then sent in order.

    Sending first and saving after would leave, when the save fails, cards in the chat that the
    conversation never reached (their buttons refused as stale); saving first and sending after
    leaves, when sending fails, a conversation ahead of what the person saw, which can be undone.
    Invoke responses are not held: they are the HTTP answer, not messages.
    """

    def __init__(self, context: TurnContext) -> None:
        self._context = context
        self.held: list[Activity] = []
        # Updates of messages already in the chat (a pressed card rewritten), sent after the new ones.
        self.held_updates: list[Activity] = []
        self.holding = True

    @classmethod
    def start(cls, context: TurnContext) -> Outbox:
        outbox = cls(context)
        context.turn_state[OUTBOX_KEY] = outbox
        return outbox

    def discard(self) -> None:
        """The turn failed: what it meant to say is not said."""
        self.holding = False
        self.held.clear()
        self.held_updates.clear()

    async def flush(self) -> None:
        self.holding = False
        held, self.held = self.held, []
        updates, self.held_updates = self.held_updates, []
        if held:
            await self._context.adapter.send_activities(self._context, held)
        for update in updates:
            await self._context.adapter.update_activity(self._context, update)


class HoldingCloudAdapter(CloudAdapter):
    """CloudAdapter whose replies wait in the turn's Outbox while it holds them."""

    async def send_activities(self, context: TurnContext, activities: list[Activity]) -> list[ResourceResponse]:
        outbox = context.turn_state.get(OUTBOX_KEY)
        if not isinstance(outbox, Outbox) or not outbox.holding:
            return await super().send_activities(context, activities)
        responses: list[ResourceResponse] = []
        for activity in activities:
            if activity.type == ActivityTypes.invoke_response:
                responses += await super().send_activities(context, [activity])
            else:
                outbox.held.append(activity)
                responses.append(ResourceResponse())
        return responses

    async def update_activity(self, context: TurnContext, activity: Activity) -> ResourceResponse | None:
        if not can_change_sent_messages(context.activity.channel_id):
            # Direct Line refuses to change a sent message (405): the chat keeps it, and its buttons answer
            # kindly if pressed again.
            return None
        outbox = context.turn_state.get(OUTBOX_KEY)
        if not isinstance(outbox, Outbox) or not outbox.holding:
            return await super().update_activity(context, activity)
        outbox.held_updates.append(activity)
        return ResourceResponse(id=activity.id)


    async def delete_activity(self, context: TurnContext, reference: Any) -> None:
        if can_change_sent_messages(context.activity.channel_id):
            await super().delete_activity(context, reference)


# Where the bot gets its own token for the connector (multi-tenant apps sign in at the botframework.com tenant).
PUBLIC_BOT_LOGIN_URL = (AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX
                        + AuthenticationConstants.DEFAULT_CHANNEL_AUTH_TENANT)


def bot_framework_configuration(settings: Settings) -> BotFrameworkConfiguration:
    configuration = BotFrameworkConfiguration(
        APP_ID=settings.app_id,
        APP_PASSWORD=settings.app_password,
        APP_TYPE=settings.app_type,
        APP_TENANTID=settings.app_tenant_id,
    )
    if settings.openid_metadata_url is None and settings.bot_login_url is None:
        return configuration
    # Setting any endpoint switches the SDK to its "parameterized" authentication, which leaves
    # every endpoint not given empty: the token issuer check would then accept a token with no
    # issuer at all. So the public cloud's values go with it; only the test endpoints change.
    return replace(
        configuration,
        TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=settings.openid_metadata_url
        or AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL,
        TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER,
        TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL=AuthenticationConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL,
        TO_CHANNEL_FROM_BOT_LOGIN_URL=settings.bot_login_url or PUBLIC_BOT_LOGIN_URL,
        TO_CHANNEL_FROM_BOT_OAUTH_SCOPE=AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE,
        OAUTH_URL=AuthenticationConstants.OAUTH_URL,
        CALLER_ID=CallerIdConstants.public_azure_channel,
        # A local sign-in stand-in is unknown to Microsoft's instance discovery.
        VALIDATE_AUTHORITY=settings.bot_login_url is None,
    )


class LocalAuthorityCredentials(MicrosoftAppCredentials):
    """The bot's client-secret credential, signing in at an authority MSAL must not look up at
    login.microsoftonline.com (the SDK carries VALIDATE_AUTHORITY to its credentials but never to MSAL)."""

    def __init__(self, app_id: str, password: str, authority: str, oauth_scope: str | None) -> None:
        super().__init__(app_id, password, oauth_scope=oauth_scope)
        self.oauth_endpoint = authority

    def get_access_token(self, force_refresh: bool = False) -> str:
        if getattr(self, "app", None) is None:
            # Built here, in the thread that fetches the token: MSAL reads the authority's metadata first.
            self.app = ConfidentialClientApplication(
                self.microsoft_app_id, client_credential=self.microsoft_app_password, authority=self.oauth_endpoint,
                validate_authority=False)
        return str(super().get_access_token(force_refresh))


class BotCredentialsFactory(ServiceClientCredentialsFactory):
    """The SDK's credentials per MicrosoftAppType (secret or user-assigned managed identity), except that a
    secret signing in at an unvalidated authority (GUICHET_BOT_LOGIN_URL, tests only) skips the lookup."""

    def __init__(self, configuration: BotFrameworkConfiguration) -> None:
        self._inner = ConfigurationServiceClientCredentialFactory(configuration)
        self._configuration = configuration

    async def is_valid_app_id(self, app_id: str) -> bool:
        return bool(await self._inner.is_valid_app_id(app_id))

    async def is_authentication_disabled(self) -> bool:
        return bool(await self._inner.is_authentication_disabled())

    async def create_credentials(self, app_id: str, oauth_scope: str, login_endpoint: str,
                                 validate_authority: bool) -> Authentication:
        configuration = self._configuration
        if (validate_authority or not configuration.APP_ID or configuration.APP_TYPE == "UserAssignedMSI"
                or app_id != configuration.APP_ID):
            return await self._inner.create_credentials(app_id, oauth_scope, login_endpoint, validate_authority)
        return LocalAuthorityCredentials(app_id, configuration.APP_PASSWORD, login_endpoint, oauth_scope)


def bot_framework_authentication(settings: Settings) -> ConfigurationBotFrameworkAuthentication:
    """The SDK's authentication for these settings: tokens checked on the way in, the bot's own on the way out."""
    configuration = bot_framework_configuration(settings)
    return ConfigurationBotFrameworkAuthentication(configuration,
                                                   credentials_factory=BotCredentialsFactory(configuration))


async def obtain_bot_token(settings: Settings) -> None:
    """Get the bot's own token for the connector, with the credential a reply would use (`guichet doctor`).
    Raises what the credential raises: PermissionError for a refused secret (MSAL's message, with Entra's
    AADSTS code), KeyError when a managed identity endpoint gives no token, network errors."""
    claims = ClaimsIdentity({AuthenticationConstants.AUDIENCE_CLAIM: settings.app_id,
                             AuthenticationConstants.APP_ID_CLAIM: settings.app_id}, True)
    factory = bot_framework_authentication(settings).create_connector_factory(claims)
    credentials = (await factory.create("https://smba.trafficmanager.net/teams/", None)).config.credentials
    try:
        # MSAL blocks on the network: in a thread, as the connector pipeline fetches it.
        await asyncio.to_thread(credentials.get_access_token)
    finally:
        # MSAL's HTTP session: the bot keeps it for the process; this one-off check is done with it.
        app = getattr(credentials, "app", None)
        session = getattr(app, "http_client", None) or getattr(app, "_http_client", None)
        if session is not None:
            session.close()


def create_adapter(settings: Settings, *, default_language: str, metrics: Metrics | None = None) -> CloudAdapter:
    """A CloudAdapter authenticated per the settings (none when no app id: local mode); `metrics` counts
    its exchanges with the connector and the failed turns."""
    auth = ReusingAuthentication(bot_framework_authentication(settings),
                                 observe=metrics.connector_observer("reply") if metrics is not None else None)
    adapter = HoldingCloudAdapter(auth)

    async def on_turn_error(context: TurnContext, error: Exception) -> None:
        if metrics is not None:
            metrics.turn_failed(turn_kind(context.activity))
        # The citizen gets a friendly message; the log gets the error class and ids, never message text.
        log.error(
            "turn failed: %s (activity type %s, conversation %s)",
            type(error).__name__,
            context.activity.type,
            getattr(context.activity.conversation, "id", "?"),
            exc_info=error,
        )
        outbox = context.turn_state.get(OUTBOX_KEY)
        if isinstance(outbox, Outbox):
            outbox.discard()  # what the failed turn meant to say is not said; the apology goes out now
        if context.activity.type in (ActivityTypes.message, ActivityTypes.invoke):
            language = _activity_language(context.activity, default_language)
            text = t(language, "conversation.error_generic")
            if context.activity.type == ActivityTypes.invoke:
                # The HTTP answer to a card action does not go through the connector, so the person
                # hears about the failure even when the connector is what failed. It replaces any
                # refreshed card the failed turn prepared: the pressed card must stay usable.
                body = {"statusCode": 200, "type": "application/vnd.microsoft.activity.message", "value": text}
                await context.send_activity(
                    Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=200, body=body))
                )
            try:
                await context.send_activity(text)
            except Exception:  # the connector itself may be what failed
                log.warning("could not tell the user about the failed turn")

    adapter.on_turn_error = on_turn_error
    return adapter


async def close_adapter(adapter: CloudAdapter) -> None:
    """Close the connector's HTTP session (at application shutdown)."""
    auth = adapter.bot_framework_authentication
    if isinstance(auth, ReusingAuthentication):
        await auth.connector_session.close()


def _activity_language(activity: Activity, default: str) -> str:
    locale = (activity.locale or "").split("-")[0].lower()
    return locale if locale in ("fr", "nl", "de", "en") else default
