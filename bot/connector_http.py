"""How replies reach the Bot Connector: one shared aiohttp session, with retries.

The SDK's connector client sends each reply with `requests` in a thread executor and rebuilds an
urllib3 retry table per client. Here the same msrest pipeline (user agent, credentials, JSON
deserialisation, HTTP logging) ends in an aiohttp sender on the event loop, sharing one connection
pool for the process, and transient connector failures get a short, bounded retry:

- 429, 500, 502, 503, 504, connection errors and timeouts are retried, at most `attempts` times
  in all, within `budget` seconds (the channel waits for our HTTP answer, so a turn cannot wait
  long); the wait doubles from `first_wait` with jitter, or follows Retry-After when the connector
  sends one, unless that is longer than `max_wait`, in which case we give up at once.
- Anything else (4xx) is final: the SDK raises ErrorResponseException as usual.
- A retried POST may deliver a reply twice if the connector had in fact accepted it; a duplicate
  message is better than a lost one.

Replies and new messages skip msrest's operation layer (`QuickConversations`); other connector
calls keep it. Credentials are applied on every attempt as msrest's own policy does (`Authorization: Bearer`
from MicrosoftAppCredentials when the bot has an app id); the token is fetched in a thread because
MSAL blocks on the network when its cache is empty.
"""

from __future__ import annotations

import asyncio
import copy
import email.utils
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
from botbuilder.schema import ResourceResponse
from botframework.connector.auth import AuthenticationConstants
from botframework.connector.models import ErrorResponseException
from msrest.exceptions import ClientRequestError
from msrest.pipeline import AsyncHTTPPolicy, AsyncHTTPSender, AsyncPipeline, Request, Response
from msrest.pipeline.universal import RawDeserializer
from msrest.universal_http import ClientRequest
from msrest.universal_http.aiohttp import AioHttpClientResponse
from yarl import URL

from bot.activity_json import ActivitySerializer, NotPlain, activity_json

log = logging.getLogger(__name__)

RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


class ConnectorSession:
    """The process's one aiohttp session towards Bot Connector service URLs, opened on first use."""

    def __init__(self, *, attempt_timeout: float = 4.0, connect_timeout: float = 2.0,
                 observe: Callable[[int | None], None] | None = None) -> None:
        self._timeout = aiohttp.ClientTimeout(total=attempt_timeout, sock_connect=connect_timeout)
        self._session: aiohttp.ClientSession | None = None
        # Told each answer's status, None when there was none (bot.metrics counts them).
        self.observe = observe or _ignore

    def get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # limit_per_host bounds the sockets towards one connector; requests beyond it queue.
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=100, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _ignore(_status: int | None) -> None:
    return None


class _Response(AioHttpClientResponse):  # type: ignore[misc]
    """msrest's aiohttp response, but an empty body (a bare 429 or 503) is a body, not an error."""

    def body(self) -> bytes:
        if self._body is None:
            raise ValueError("the body was not loaded")
        return bytes(self._body)


class AiohttpSender(AsyncHTTPSender):  # type: ignore[misc]
    """The last step of the msrest pipeline: one HTTP exchange on the shared session."""

    def __init__(self, session: ConnectorSession) -> None:
        self._session = session

    async def __aenter__(self) -> AiohttpSender:
        return self

    async def __aexit__(self, *exc_details: Any) -> None:
        return None

    def build_context(self) -> Any:
        return None

    async def send(self, request: Request, **config: Any) -> Response:
        http_request = request.http_request
        if http_request.files:
            raise ClientRequestError("multipart uploads are not used by this bot")
        # encoded=True: the URL as msrest quoted it (yarl would turn %3A back into ':').
        try:
            aiohttp_response = await self._session.get().request(
                http_request.method, URL(http_request.url, encoded=True), headers=http_request.headers,
                data=http_request.data,
                allow_redirects=False,
            )
            response = _Response(http_request, aiohttp_response)
            await response.load_body()  # reads the whole body and frees the connection
        except BaseException:
            self._session.observe(None)
            raise
        self._session.observe(aiohttp_response.status)
        return Response(request, response)


class CredentialsPolicy(AsyncHTTPPolicy):  # type: ignore[misc]
    """Signs each attempt with the bot's token, as MicrosoftAppCredentials.signed_session would."""

    def __init__(self, credentials: Any) -> None:
        super().__init__()
        self._credentials = credentials

    def _signs(self) -> bool:
        app_id = getattr(self._credentials, "microsoft_app_id", None)
        return bool(app_id) and app_id != AuthenticationConstants.ANONYMOUS_SKILL_APP_ID

    async def send(self, request: Request, **kwargs: Any) -> Response:
        headers = request.http_request.headers
        if self._signs():
            token = await asyncio.get_running_loop().run_in_executor(None, self._credentials.get_access_token)
            headers["Authorization"] = f"Bearer {token}"
        else:
            headers.pop("Authorization", None)
        assert self.next is not None, "a policy of a pipeline has a next step"
        return await self.next.send(request, **kwargs)


class RetryPolicy(AsyncHTTPPolicy):  # type: ignore[misc]
    """Bounded retry of transient connector failures (see the module docstring)."""

    def __init__(self, *, attempts: int = 3, first_wait: float = 0.25, max_wait: float = 3.0,
                 budget: float = 9.0, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        super().__init__()
        self.attempts = attempts
        self.first_wait = first_wait
        self.max_wait = max_wait
        self.budget = budget
        # Injectable, so that tests check the waits without waiting.
        self.monotonic = monotonic
        self.sleep = sleep

    async def send(self, request: Request, **kwargs: Any) -> Response:
        assert self.next is not None, "a policy of a pipeline has a next step"
        deadline = self.monotonic() + self.budget
        for attempt in range(1, self.attempts + 1):
            wait: float | None
            try:
                response = await self.next.send(request, **kwargs)
            except (aiohttp.ClientError, TimeoutError) as error:
                wait = self._backoff(attempt)
                if attempt == self.attempts or self.monotonic() + wait >= deadline:
                    log.warning("connector unreachable after %d attempt(s): %s", attempt, type(error).__name__)
                    raise ClientRequestError(f"connector request failed: {type(error).__name__}") from error
                log.info("connector request failed (%s); retrying in %.2fs", type(error).__name__, wait)
            else:
                status = response.http_response.status_code
                if status not in RETRIED_STATUSES or attempt == self.attempts:
                    return response
                wait = self._wait_for(response, attempt)
                if wait is None or self.monotonic() + wait >= deadline:
                    log.warning("connector answered %d; not retrying", status)
                    return response
                log.info("connector answered %d; retrying in %.2fs", status, wait)
            await self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int) -> float:
        return self.first_wait * (2 ** (attempt - 1)) * random.uniform(0.8, 1.2)

    def _wait_for(self, response: Response, attempt: int) -> float | None:
        """The wait before the next attempt; None when the connector asks for longer than we can wait."""
        header = response.http_response.headers.get("Retry-After")
        if header is None:
            return self._backoff(attempt)
        wait = retry_after_seconds(header)
        if wait is None:
            return self._backoff(attempt)
        return wait if wait <= self.max_wait else None


def retry_after_seconds(value: str) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if unreadable."""
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def install_pipeline(client: Any, session: ConnectorSession, retry: RetryPolicy) -> None:
    """Give a ConnectorClient our pipeline: same policies as msrest's, aiohttp at the end."""
    config = client.config
    # A policy links to the next one of its pipeline: each client needs its own retry policy, or
    # the last client built would sign every client's requests with its own credentials.
    policies: list[Any] = [config.user_agent_policy, copy.copy(retry)]
    if config.credentials is not None:
        policies.append(CredentialsPolicy(config.credentials))
    policies += [RawDeserializer(), config.http_logger_policy]
    config.pipeline = AsyncPipeline(policies, AiohttpSender(session))
    conversations = client.conversations
    # Activity bodies without msrest's generic walk, for whatever still goes through msrest.
    conversations._serialize = ActivitySerializer(conversations._serialize)
    client.conversations = QuickConversations(client, conversations, session, retry)


class QuickConversations:
    """A connector client's conversation operations, with replies and new messages sent directly.

    msrest's generated operation builds its request through the service client, runs it through five
    policy wrappers and reads the ResourceResponse with its generic deserializer: about as much CPU
    as the HTTP exchange itself. Here the same request (URL, headers, JSON body, credentials on
    every attempt, bounded retry) goes to the shared aiohttp session, and a failure raises the
    ErrorResponseException msrest would. Anything unusual (custom headers, raw responses, an activity
    only msrest can serialize) and every other operation take msrest's path.
    """

    def __init__(self, client: Any, inner: Any, session: ConnectorSession, retry: RetryPolicy) -> None:
        self._service = inner._client  # msrest's ServiceClient, which knows the base URL
        self._inner = inner
        policies: list[Any] = [copy.copy(retry)]
        if client.config.credentials is not None:
            policies.append(CredentialsPolicy(client.config.credentials))
        self._pipeline = AsyncPipeline(policies, AiohttpSender(session))
        self._user_agent = client.config.user_agent

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def reply_to_activity(self, conversation_id: str, activity_id: str, activity: Any, *,
                                custom_headers: Any = None, raw: bool = False, **operation_config: Any) -> Any:
        url = self._url(self._inner.reply_to_activity.metadata["url"], conversationId=conversation_id,
                        activityId=activity_id)
        sent = await self._post(url, activity, custom_headers or raw or operation_config,
                                {"x-ms-conversation-id": conversation_id})
        if sent is _MSREST:
            return await self._inner.reply_to_activity(conversation_id, activity_id, activity,
                                                       custom_headers=custom_headers, raw=raw, **operation_config)
        return sent

    async def send_to_conversation(self, conversation_id: str, activity: Any, *,
                                   custom_headers: Any = None, raw: bool = False, **operation_config: Any) -> Any:
        url = self._url(self._inner.send_to_conversation.metadata["url"], conversationId=conversation_id)
        sent = await self._post(url, activity, custom_headers or raw or operation_config, {})
        if sent is _MSREST:
            return await self._inner.send_to_conversation(conversation_id, activity, custom_headers=custom_headers,
                                                          raw=raw, **operation_config)
        return sent

    def _url(self, template: str, **arguments: str) -> str:
        # As msrest's Serializer.url and ServiceClient.format_url build it.
        return str(self._service.format_url(template, **{name: quote(str(value), safe="")
                                                        for name, value in arguments.items()}))

    async def _post(self, url: str, activity: Any, unusual: Any, headers: dict[str, str]) -> Any:
        if unusual:
            return _MSREST
        try:
            body = json.dumps(activity_json(activity))
        except NotPlain:
            return _MSREST
        request = ClientRequest("POST", url, headers={
            "Accept": "application/json", "Content-Type": "application/json; charset=utf-8", **headers,
            "User-Agent": self._user_agent,
        }, data=body)
        # msrest annotates run() as taking its pipeline Request, but wraps the ClientRequest it is given in one.
        response = (await self._pipeline.run(request)).http_response  # type: ignore[arg-type]
        if response.status_code not in (200, 201, 202):
            raise ErrorResponseException(self._inner._deserialize, response)
        return _resource_response(response)


_MSREST = object()  # "let msrest's operation send it"


def _resource_response(response: Any) -> ResourceResponse | None:
    """The connector's answer, as msrest's deserializer reads it (None for an empty body)."""
    text = response.text()
    if not text:
        return None
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("id", ""), str):
        return ResourceResponse.deserialize(data)  # type: ignore[no-any-return]
    return ResourceResponse(id=data.get("id"))
