"""The Notifier: the bot writes first, into a conversation whose reference it stored earlier.

The same connector clients and authentication as replies (bot.adapter.ReusingAuthentication), with
no retry hidden in the HTTP pipeline: the decisions are taken here, under Teams' limits.

- Every message waits for the rate limiter (bot.rate_limit), so the connector should never have to
  refuse one.
- 429 Too Many Requests: the conversation is paused for Retry-After; a short wait is waited here, a
  long one goes back to the job runner as SendFailed(retry_after) so that no worker sits idle.
- 412, 500, 502, 503, 504, timeouts and connection errors: retried here a few times with
  exponential backoff and jitter, then SendFailed (the runner retries later, within its own bound).
- 403 (MessageWritesBlocked: the person blocked the bot; or it was removed) and 404 (the
  conversation is gone): RecipientUnreachable, nothing is retried.
- Other 4xx: MessageRejected (a bug of ours, not worth repeating).
Logs name conversations by nothing but the HTTP status and error code: no text, no ids of people.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from botbuilder.schema import Activity, ActivityTypes, ChannelAccount, ConversationAccount
from botframework.connector.auth import AuthenticationConstants, BotFrameworkAuthentication, ClaimsIdentity
from botframework.connector.models import ErrorResponseException
from msrest.exceptions import ClientRequestError

from bot.connector_http import retry_after_seconds
from bot.domain.json_parts import object_at
from bot.rate_limit import RateLimiter
from bot.replies import card_attachment
from bot.services.ports import MessageRejected, OutgoingMessage, RecipientUnreachable, SendFailed

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({412, 500, 502, 503, 504})
# A Retry-After up to this long is waited here; longer ones go back to the runner.
INLINE_WAIT_SECONDS = 5.0
ATTEMPTS = 3
FIRST_BACKOFF_SECONDS = 0.5


class TeamsNotifier:
    def __init__(
        self,
        auth: BotFrameworkAuthentication,
        *,
        app_id: str,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._auth = auth
        self._claims = ClaimsIdentity(
            {AuthenticationConstants.AUDIENCE_CLAIM: app_id, AuthenticationConstants.APP_ID_CLAIM: app_id}, True
        )
        self.limiter = limiter or RateLimiter()
        self._sleep = sleep

    async def send(self, reference: Mapping[str, Any], message: OutgoingMessage) -> str | None:
        service_url = reference.get("serviceUrl")
        conversation = object_at(reference, "conversation")
        conversation_id = conversation.get("id")
        if not isinstance(service_url, str) or not isinstance(conversation_id, str):
            raise RecipientUnreachable("the stored conversation reference is incomplete")
        tenant_id = conversation.get("tenantId") if isinstance(conversation.get("tenantId"), str) else None
        activity = _activity(reference, message, conversation_id, tenant_id)
        factory = self._auth.create_connector_factory(self._claims)
        client = await factory.create(service_url, None)
        for attempt in range(1, ATTEMPTS + 1):
            counted_at = await self.limiter.acquire(conversation_id, tenant_id)
            try:
                sent = await client.conversations.send_to_conversation(conversation_id, activity)
                return getattr(sent, "id", None)
            except ErrorResponseException as error:
                status, code, retry_after = _answer(error)
                if status in (429, 502, 503, 504):
                    # Refused without being taken: it does not use up Teams' allowance.
                    self.limiter.refund(conversation_id, tenant_id, counted_at)
                wait = self._decide(status, code, retry_after, attempt, conversation_id, tenant_id)
            except (ClientRequestError, TimeoutError) as error:
                log.info("proactive message: connector unreachable (%s), attempt %d", type(error).__name__, attempt)
                wait = self._backoff(attempt)
                if attempt == ATTEMPTS:
                    raise SendFailed(type(error).__name__) from error
            await self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _decide(self, status: int, code: str, retry_after: float | None, attempt: int, conversation_id: str,
                tenant_id: str | None) -> float:
        """How long to wait before the next attempt; raises when there is to be none."""
        log.info("proactive message: connector answered %d %s (attempt %d)", status, code or "", attempt)
        if status == 429:
            pause = retry_after if retry_after is not None else self._backoff(attempt)
            self.limiter.pause(conversation_id, tenant_id, pause, whole_tenant=False)
            if pause > INLINE_WAIT_SECONDS or attempt == ATTEMPTS:
                raise SendFailed("throttled (429)", retry_after=pause)
            return 0.0  # the limiter now holds the next attempt back until the pause is over
        if status in TRANSIENT_STATUSES:
            if attempt == ATTEMPTS:
                raise SendFailed(f"connector answered {status}", retry_after=retry_after)
            return retry_after if retry_after is not None and retry_after <= INLINE_WAIT_SECONDS \
                else self._backoff(attempt)
        if status in (403, 404):
            raise RecipientUnreachable(code or f"HTTP {status}")
        if status == 401:
            # Our credentials were refused: a configuration matter, worth trying again later.
            raise SendFailed("the connector refused the bot's credentials (401)")
        raise MessageRejected(f"connector answered {status} {code}".strip())

    @staticmethod
    def _backoff(attempt: int) -> float:
        return FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)


def _answer(error: ErrorResponseException) -> tuple[int, str, float | None]:
    """Status, Teams error code and Retry-After of a refused request.

    msrest keeps the underlying HTTP response (aiohttp's, here: `status`, its body already read and
    deserialised into `error.error`); msrest's own responses name the status `status_code`.
    """
    response = error.response
    status = int(getattr(response, "status", None) or getattr(response, "status_code", 0) or 0)
    header = response.headers.get("Retry-After") if response is not None else None
    retry_after = retry_after_seconds(header) if header else None
    code = getattr(getattr(error.error, "error", None), "code", None) or ""
    return status, str(code), retry_after


def _activity(reference: Mapping[str, Any], message: OutgoingMessage, conversation_id: str,
              tenant_id: str | None) -> Activity:
    bot = object_at(reference, "bot")
    user = object_at(reference, "user")
    channel_data: dict[str, Any] = {"notification": {"alert": True}}  # shows in the person's activity feed
    if tenant_id:
        channel_data["tenant"] = {"id": tenant_id}
    return Activity(
        type=ActivityTypes.message,
        text=message.text,
        attachments=[card_attachment(message.card)] if message.card is not None else None,
        conversation=ConversationAccount(id=conversation_id),
        from_property=ChannelAccount(id=bot.get("id"), name=bot.get("name")) if bot.get("id") else None,
        recipient=ChannelAccount(id=user.get("id")) if user.get("id") else None,
        channel_id=reference.get("channelId"),
        service_url=reference.get("serviceUrl"),
        channel_data=channel_data,
    )
