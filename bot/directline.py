"""POST /api/directline/token: a Direct Line token for the agency's Web Chat page.

The page (or the agency's website, server-to-server) asks; the bot makes a fresh unguessable user id
(`dl_` + random), gets a token for it from Direct Line with the channel secret (which never leaves the
server) and answers `{token, expires_in, user_id, conversation_id, proven}`. With a proof in the body, a
manage link's token (`manage_token`) or the agency's signed sign-in assertion (`assertion`), the proof is
checked first (a 401 naming the reason when it does not hold), then the new user id is bound to that
citizen in the conversation Direct Line made the token for (a token works in that conversation only).
Browsers are answered only from the agency's origins (CORS); each client address has a small token bucket.
Tokens and links are never logged.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web

from bot.domain.web_identity import ProofRefused
from bot.services.container import Services
from bot.services.web_identity import WebIdentityService
from bot.settings import Settings
from bot.signin_assertion import AssertionCheck

log = logging.getLogger(__name__)

TOKEN_PATH = "/api/directline/token"
_MAX_BODY = 16 * 1024


@dataclass
class TokenBuckets:
    """One bucket per client address: `per_minute` tokens a minute, bursts of up to `burst`."""

    per_minute: float
    burst: int = 5
    now: Callable[[], float] = time.monotonic
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, key: str) -> float:
        """0 when the caller may go on, else the seconds until it may."""
        now = self.now()
        rate = self.per_minute / 60
        level, last = self._buckets.get(key, (float(self.burst), now))
        level = min(float(self.burst), level + (now - last) * rate)
        if len(self._buckets) > 10_000:  # forget full buckets rather than grow without bound
            self._buckets = {k: v for k, v in self._buckets.items() if v[0] < self.burst}
        if level < 1:
            self._buckets[key] = (level, now)
            return (1 - level) / rate
        self._buckets[key] = (level - 1, now)
        return 0.0


class DirectLineUnavailable(Exception):
    """Direct Line did not give a token (down, refused the secret)."""


class DirectLineTokens:
    """Tokens from Direct Line (`POST {endpoint}/v3/directline/tokens/generate`) with the channel secret."""

    def __init__(self, endpoint: str, secret: str) -> None:
        self._url = f"{endpoint}/v3/directline/tokens/generate"
        self._secret = secret
        self._session: aiohttp.ClientSession | None = None

    async def generate(self, user_id: str) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        try:
            async with self._session.post(self._url, json={"user": {"id": user_id}},
                                          headers={"Authorization": f"Bearer {self._secret}"}) as response:
                if response.status != 200:
                    raise DirectLineUnavailable(f"HTTP {response.status}")
                answer = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise DirectLineUnavailable(type(error).__name__) from None
        if not isinstance(answer, dict) or not isinstance(answer.get("token"), str):
            raise DirectLineUnavailable("no token in the answer")
        return answer

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def client_address(request: web.Request, forwarded_hops: int) -> str:
    """Who asks, for the rate limit. Behind `forwarded_hops` proxies that each append the address they saw
    to X-Forwarded-For, the client is that many entries from the right (what a client writes to the left of
    it is not trusted); without proxies, or a header shorter than that, the peer address."""
    if forwarded_hops:
        seen = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",") if part.strip()]
        if len(seen) >= forwarded_hops:
            return seen[-forwarded_hops]
    return request.remote or "unknown"


def _error(status: int, error: str, message: str, headers: dict[str, str], **extra: Any) -> web.Response:
    return web.json_response({"error": error, "message": message, **extra}, status=status, headers=headers)


def token_endpoint(
    tokens: DirectLineTokens | None,
    identities: WebIdentityService,
    *,
    origins: list[str],
    buckets: TokenBuckets,
    assertions: AssertionCheck | None,
    now: Callable[[], datetime],
    forwarded_hops: int = 0,
) -> tuple[Callable[[web.Request], Awaitable[web.Response]], Callable[[web.Request], Awaitable[web.Response]]]:
    """The POST handler and the CORS preflight (OPTIONS) handler."""
    allowed = set(origins)

    def cors(request: web.Request) -> dict[str, str] | None:
        """CORS headers for an allowed origin, {} without an Origin (server-to-server), None when refused."""
        origin = request.headers.get("Origin")
        if origin is None:
            return {}
        if origin not in allowed:
            return None
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}

    async def preflight(request: web.Request) -> web.Response:
        headers = cors(request)
        if not headers:
            return web.Response(status=403)
        headers.update({"Access-Control-Allow-Methods": "POST", "Access-Control-Allow-Headers": "Content-Type",
                        "Access-Control-Max-Age": "600"})
        return web.Response(status=204, headers=headers)

    def slow_down(request: web.Request, headers: dict[str, str]) -> web.Response | None:
        wait = buckets.take(client_address(request, forwarded_hops))
        if not wait:
            return None
        headers["Retry-After"] = str(max(1, round(wait)))
        return _error(429, "too_many_requests", "too many tokens asked for; try again shortly", headers)

    def unavailable(headers: dict[str, str]) -> web.Response:
        headers["Retry-After"] = "5"
        return _error(503, "unavailable", "the chat cannot start right now; try again in a moment", headers)

    async def issue(request: web.Request) -> web.Response:
        headers = cors(request)
        if headers is None:
            return _error(403, "origin_not_allowed", "this page may not ask for tokens", {})
        try:
            raw = await request.content.read(_MAX_BODY + 1)
            body = json.loads(raw) if raw.strip() else {}
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict) or len(raw) > _MAX_BODY:
            return slow_down(request, headers) or _error(
                400, "bad_request", "send a JSON object, {} or with manage_token or assertion", headers)
        user_id = "dl_" + secrets.token_urlsafe(24)
        proof = "unproven"
        counted = False
        key = ""
        try:
            if "assertion" in body and assertions is not None:
                # The agency's own server signs these: a valid one is not counted against its address
                # (all its citizens come from there); a refused one is.
                proof = "sign_in"
                key = assertions.subject_of(body["assertion"], now())
            else:
                counted = True
                if too_many := slow_down(request, headers):
                    return too_many
            if tokens is None:
                return _error(503, "not_configured", "the website chat is not set up", headers)
            if proof != "sign_in" and "manage_token" in body:
                proof = "manage_link"
                # Checked before a token is made (a refused link costs Direct Line nothing), bound after:
                # the binding names the conversation Direct Line made the token for.
                await identities.check_manage_link(body["manage_token"])
            elif proof != "sign_in" and "assertion" in body:
                return _error(400, "bad_request", "this agency's sign-in is not set up", headers)
            try:
                answer = await tokens.generate(user_id)
            except DirectLineUnavailable as error:
                log.warning("directline: no token from Direct Line: %s", error)
                return unavailable(headers)
            conversation_id = answer.get("conversationId")
            if proof != "unproven" and not isinstance(conversation_id, str):
                log.warning("directline: Direct Line named no conversation; the proof cannot be bound")
                return unavailable(headers)
            if proof == "sign_in":
                locale = body.get("locale") if isinstance(body.get("locale"), str) else None
                await identities.bind_signed_in(user_id, str(conversation_id), key, locale=locale)
            elif proof == "manage_link":
                await identities.bind_manage_link(user_id, str(conversation_id), body["manage_token"])
        except ProofRefused as refused:
            log.info("directline: %s proof refused (%s)", proof, refused.problem.value)
            return (None if counted else slow_down(request, headers)) or _error(
                401, "proof_refused", "the link or sign-in could not be accepted", headers,
                reason=refused.problem.value)
        log.info("directline: token made (proof: %s)", proof)
        return web.json_response({"token": answer["token"], "expires_in": answer.get("expires_in"),
                                  "user_id": user_id, "conversation_id": conversation_id,
                                  "proven": proof != "unproven"}, headers={**headers, "Cache-Control": "no-store"})

    return issue, preflight


def add_token_route(app: web.Application, settings: Settings, services: Services,
                    identities: WebIdentityService) -> None:
    """Register the token endpoint (and its CORS preflight) on the bot's app."""
    tokens = DirectLineTokens(settings.directline_endpoint, settings.directline_secret) \
        if settings.directline_secret else None
    assertions = None
    if settings.signin_public_key_path is not None:
        assertions = AssertionCheck(settings.signin_public_key_path.read_text(encoding="utf-8"),
                                    issuer=settings.signin_issuer, audience=settings.signin_audience)
    issue, preflight = token_endpoint(
        tokens, identities,
        origins=settings.web_origins, buckets=TokenBuckets(settings.web_tokens_per_minute),
        assertions=assertions, now=services.clock.now, forwarded_hops=settings.forwarded_hops,
    )
    app.router.add_post(TOKEN_PATH, issue)
    app.router.add_route("OPTIONS", TOKEN_PATH, preflight)
    if tokens is not None:
        async def close_tokens(_app: web.Application) -> None:
            await tokens.close()
        app.on_cleanup.append(close_tokens)
