"""The agency's website around the bot, for the Web Chat tests: the bot on a port with the Direct Line
stand-in, the example page of deployment/webchat served as the agency's site, and headless Chromium."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bot.app import SERVICES
from bot.domain.agency import Agency
from bot.domain.clock import FixedClock
from bot.services.web_identity import WebIdentityService
from bot.settings import Settings
from tests.directline_server import DirectLineStandIn
from tests.harness import RunningBot, free_port, start_bot

ORIGIN = "https://www.agency.example"
LINK_SECRET = "manage-link-secret-0123456789abcdef"
ISSUER = "https://login.agency.example"
AUDIENCE = "guichet-bot"
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)

WEBCHAT_PAGE = Path(__file__).resolve().parent.parent / "deployment" / "webchat"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Skip where Debian's chromium is missing, unless the run demands the browser tests (CI does).
needs_browser = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("GUICHET_REQUIRE_BROWSER"),
    reason="needs Debian's chromium (CI installs it and sets GUICHET_REQUIRE_BROWSER)")


@dataclass
class Site:
    bot: RunningBot
    directline: DirectLineStandIn
    http: aiohttp.ClientSession
    clock: FixedClock
    signing_key: ec.EllipticCurvePrivateKey
    # The port the agency's page is served on by `serve_page` (an allowed origin, like ORIGIN).
    page_port: int

    @property
    def page_url(self) -> str:
        return f"http://127.0.0.1:{self.page_port}/chat"

    @property
    def identities(self) -> WebIdentityService:
        return WebIdentityService(self.bot.app[SERVICES], link_secret=LINK_SECRET)

    async def ask(self, body: Any = None, *, origin: str | None = ORIGIN) -> tuple[int, dict[str, Any], Any]:
        headers = {"Origin": origin} if origin else {}
        async with self.http.post(f"{self.bot.url}/api/directline/token", json=body if body is not None else {},
                                  headers=headers) as response:
            return response.status, dict(response.headers), await response.json()

    def assertion(self, subject: str = "eid-subject-42", *, key: Any = None, lifetime: int = 120,
                  **claims: Any) -> str:
        issued = int(self.clock.now().timestamp())
        payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "iat": issued, "exp": issued + lifetime, **claims}
        return jwt.encode(payload, key or self.signing_key, algorithm="ES256")

    async def citizen(self) -> str:
        async with self.bot.app[SERVICES].uow() as uow:
            citizen = await uow.citizens.upsert_identity(
                agency_id=self.bot.app[SERVICES].agency.id, tenant_id="t", aad_object_id="person-1",
                teams_user_id=None, conversation_reference=None, locale="fr-BE", now=self.clock.now())
            await uow.commit()
        return citizen.id


@contextlib.asynccontextmanager
async def open_site(tmp_path: Path, agency_path: Path, agency: Agency, *, now: datetime = NOW,
                    **settings: Any) -> AsyncIterator[Site]:
    """The bot (SQLite in tmp_path, a fixed clock at `now`) with Direct Line, manage links and the agency's
    sign-in configured; `settings` override or add to that (mail, jobs, rate limit…)."""
    directline = DirectLineStandIn()
    await directline.start()
    key = ec.generate_private_key(ec.SECP256R1())
    public = tmp_path / "agency-signin.pem"
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    page_port = free_port()
    configured = Settings(**{
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/bot.db", "agency": agency_path,
        "directline_secret": directline.secret, "directline_endpoint": directline.url,
        "web_origins": [ORIGIN, f"http://127.0.0.1:{page_port}"],
        "manage_link_secret": LINK_SECRET, "manage_link_url": f"http://127.0.0.1:{page_port}/chat",
        "signin_public_key_path": public,
        "signin_issuer": ISSUER, "signin_audience": AUDIENCE, **settings,
    })
    clock = FixedClock(now)
    try:
        async with start_bot(configured, agency, clock) as bot, aiohttp.ClientSession() as http:
            directline.bot_messages_url = f"{bot.url}/api/messages"
            yield Site(bot, directline, http, clock, key, page_port)
    finally:
        await directline.stop()


@contextlib.asynccontextmanager
async def serve_page(site: Site) -> AsyncIterator[str]:
    """deployment/webchat as the agency's website would serve it at /chat, pointed at this bot and Direct Line
    (polling: the stand-in has no WebSocket); yields the page's address."""
    page = (WEBCHAT_PAGE / "index.html").read_text(encoding="utf-8")
    page = page.replace('data-bot="http://localhost:3978"', f'data-bot="{site.bot.url}" data-websocket="false"')
    page = page.replace("https://europe.directline.botframework.com/v3/directline",
                        f"{site.directline.url}/v3/directline")

    async def index(_request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/chat", index)
    app.router.add_static("/", WEBCHAT_PAGE)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", site.page_port).start()
    try:
        yield site.page_url
    finally:
        await runner.cleanup()


# A message or card the bot sent, as Web Chat renders it (the visitor's own bubbles carry --from-user).
BOT_BUBBLE = ".webchat__bubble:not(.webchat__bubble--from-user)"


class WebChat:
    """One browser tab on the agency's page, driven as a person does: typing in Web Chat's send box,
    clicking the buttons and filling the inputs of the Adaptive Cards it rendered; each step waits for the
    bot's answer and leaves a screenshot in `shots` (`<prefix>NN-<step>.png`)."""

    def __init__(self, page: Any, shots: Path, prefix: str, *, timeout: float = 15.0) -> None:
        self.page = page
        self.shots = shots
        self.prefix = prefix
        self.timeout = timeout
        self._steps = 0
        shots.mkdir(parents=True, exist_ok=True)

    def bubbles(self, text: str | re.Pattern[str] | None = None) -> Any:
        bubbles = self.page.locator(BOT_BUBBLE)
        return bubbles if text is None else bubbles.filter(has_text=text)

    async def shot(self, name: str) -> Path:
        self._steps += 1
        path = self.shots / f"{self.prefix}{self._steps:02d}-{re.sub(r'[^a-z0-9]+', '-', name.lower())[:30]}.png"
        await self.page.screenshot(path=str(path))
        return path

    async def _answered(self, expect: str | re.Pattern[str], before: int, step: str) -> None:
        """Waits until one more bot bubble shows `expect` than before the step."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while await self.bubbles(expect).count() <= before:
            if loop.time() > deadline:
                await self.shot(f"stuck {step}")
                last = await self.bubbles().last.inner_text() if await self.bubbles().count() else ""
                raise AssertionError(f"after {step!r} the bot did not show {expect!r}; last bubble: {last[-400:]!r}")
            await asyncio.sleep(0.1)
        await self.page.wait_for_timeout(300)  # the rest of the turn's activities, for the screenshot
        await self.shot(step)

    async def say(self, text: str, *, expect: str | re.Pattern[str]) -> None:
        before = await self.bubbles(expect).count()
        box = self.page.locator("[data-id=webchat-sendbox-input]").first
        await box.fill(text)
        await box.press("Enter")
        await self._answered(expect, before, f"say {text}")

    def _card_with(self, role: str, name: str | re.Pattern[str]) -> Any:
        """The latest bot bubble that offers this control (an older card may offer the same one)."""
        control = self.page.get_by_role(role, name=name)
        return self.bubbles().filter(has=control).last.get_by_role(role, name=name).last

    async def click(self, button: str | re.Pattern[str], *, expect: str | re.Pattern[str]) -> None:
        before = await self.bubbles(expect).count()
        await self._card_with("button", button).click()
        await self._answered(expect, before, f"click {button}")

    async def click_page(self, button: str | re.Pattern[str], *, expect: str | re.Pattern[str]) -> None:
        """A button of the agency's page around Web Chat (waits until the page enables it)."""
        before = await self.bubbles(expect).count()
        await self.page.locator("header").get_by_role("button", name=button).click()
        await self._answered(expect, before, f"page {button}")

    async def choose(self, option: str | re.Pattern[str]) -> None:
        """A radio button of a card's choice set."""
        await self._card_with("radio", option).check()

    async def select(self, label: str | re.Pattern[str], option: str) -> None:
        """An option of a card's drop-down list."""
        await self.bubbles().filter(has=self.page.get_by_label(label)).last.get_by_label(label).last \
            .select_option(label=option)

    async def fill(self, fields: dict[str, str]) -> None:
        """Text inputs of the latest card, by their labels (as the person reads them)."""
        for label, value in fields.items():
            named = re.compile("^" + re.escape(label))
            await self.bubbles().filter(has=self.page.get_by_label(named)).last.get_by_label(named).last.fill(value)
