"""The agency's website around the bot for tests: the bot on a port with the Direct Line stand-in and the
token endpoint with both proofs configured (manage links, the agency's sign-in); a visitor whose Web Chat
talks through them (`Visitor`); the example page of deployment/webchat served as the agency's site and
driven in headless Chromium (`serve_page`, `WebChat`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
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
from bot.i18n import t
from bot.services.web_identity import WebIdentityService
from bot.settings import Settings
from cards.validation import validate_card
from cards.verbs import Verb
from tests.directline_server import BOT_ID, DirectLineStandIn
from tests.harness import RunningBot, action_with_verb, actions_of, card_text, free_port, start_bot

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

    async def who(self, answer: dict[str, Any]) -> str | None:
        """The citizen the token endpoint's answer was proven to be, in the conversation it names."""
        return await self.identities.who_is(answer["user_id"], answer["conversation_id"])

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


@dataclass
class Visitor:
    """One Web Chat conversation on the agency's page: a token from the bot's endpoint, then every activity
    through the Direct Line stand-in (which stamps the token's user id), the bot's answers read there.

    `Visitor.forged(...)` plays a page that reuses a `dl_` user id in a conversation of its own choosing, posting
    straight to the bot as if Direct Line had forwarded it (what a proof must not be fooled by)."""

    site: Site
    user_id: str
    conversation_id: str
    token: str | None
    language: str = "fr"
    seen: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    async def open(cls, site: Site, proof: dict[str, Any] | None = None, *, language: str = "fr") -> Visitor:
        status, _headers, answer = await site.ask(proof or {}, origin=None if proof and "assertion" in proof
                                                  else ORIGIN)
        assert status == 200, answer
        async with site.http.post(f"{site.directline.url}/v3/directline/conversations",
                                  headers={"Authorization": f"Bearer {answer['token']}"}) as response:
            assert response.status == 201
            conversation_id = (await response.json())["conversationId"]
        return cls(site, answer["user_id"], conversation_id, answer["token"], language)

    @classmethod
    def forged(cls, site: Site, user_id: str, conversation_id: str, *, language: str = "fr") -> Visitor:
        site.directline.conversations.setdefault(conversation_id, [])
        return cls(site, user_id, conversation_id, None, language)

    async def send(self, activity: dict[str, Any]) -> list[dict[str, Any]]:
        """One activity from the page; the bot's answers to it."""
        activity = {"locale": f"{self.language}-BE", "from": {"id": self.user_id, "name": ""}, **activity}
        self.sent.append(activity)
        dl = self.site.directline
        if self.token is not None:
            async with self.site.http.post(f"{dl.url}/v3/directline/conversations/{self.conversation_id}/activities",
                                           json=activity, headers={"Authorization": f"Bearer {self.token}"}) as r:
                assert r.status == 200, await r.text()
        else:
            activity = {**activity, "id": f"{self.conversation_id}|forged{len(self.sent)}", "channelId": "webchat",
                        "serviceUrl": dl.url, "conversation": {"id": self.conversation_id},
                        "recipient": {"id": BOT_ID, "name": "Guichet"}}
            dl.conversations[self.conversation_id].append(activity)
            async with self.site.http.post(dl.bot_messages_url, json=activity) as r:
                assert r.status in (200, 201), await r.text()
        return self.answers()

    def answers(self) -> list[dict[str, Any]]:
        """The bot's activities since the last call."""
        activities = self.site.directline.conversations[self.conversation_id]
        new = [a for a in activities[self.seen:] if (a.get("from") or {}).get("id") != self.user_id
               and a not in self.sent]
        self.seen = len(activities)
        for card in cards_of(new):
            validate_card(card)
        return new

    def all_answers(self) -> list[dict[str, Any]]:
        activities = self.site.directline.conversations[self.conversation_id]
        return [a for a in activities if (a.get("from") or {}).get("id") != self.user_id and a not in self.sent]

    def cards(self) -> list[dict[str, Any]]:
        return cards_of(self.all_answers())

    def card_with(self, verb: str) -> dict[str, Any]:
        for card in reversed(self.cards()):
            if any((a.get("data") or {}).get("verb") == verb for a in actions_of(card)):
                return card
        raise AssertionError(f"no card with {verb!r}")

    async def say(self, text: str) -> list[dict[str, Any]]:
        return await self.send({"type": "message", "text": text})

    async def submit(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """Action.Submit as Web Chat sends it: a message whose value is the action's data and the inputs."""
        return await self.send({"type": "message", "value": data})

    async def press(self, verb: str, inputs: dict[str, Any] | None = None, *,
                    card: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        action = action_with_verb(card or self.card_with(verb), verb)
        assert action["type"] == "Action.Submit", "on the web every button is an Action.Submit"
        return await self.submit({**action["data"], **(inputs or {})})

    async def accept_consent(self) -> list[dict[str, Any]]:
        """Accept the terms and the privacy policy when the last card asks; the answers after."""
        answers: list[dict[str, Any]] = []
        for _ in range(2):
            last = self.cards()[-1]
            if not any((a.get("data") or {}).get("verb") == Verb.CONSENT_ACCEPT for a in actions_of(last)):
                break
            answers = await self.press(Verb.CONSENT_ACCEPT, card=last)
        return answers

    async def book(self, details: dict[str, str]) -> None:
        """A whole video booking of the first subject, through the real dialogs."""
        await self.say(t(self.language, "help.command.book"))
        await self.accept_consent()
        video = [a for a in actions_of(self.card_with(Verb.BOOK_MODE)) if (a.get("data") or {}).get("mode") == "video"]
        await self.submit(video[0]["data"])
        await self.press(Verb.BOOK_SUBJECT, {"subject": "benefit-application"})
        days = [a for a in actions_of(self.card_with(Verb.BOOK_DAY)) if a["data"]["verb"] == Verb.BOOK_DAY]
        await self.submit(days[0]["data"])
        await self.press(Verb.BOOK_SLOT, {"start": _first_time(self.card_with(Verb.BOOK_SLOT))})
        await self.press(Verb.BOOK_PERSONAL_DATA, details)
        await self.press(Verb.BOOK_CONFIRM)


def cards_of(activities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [attachment["content"] for activity in activities for attachment in activity.get("attachments") or []
            if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive"]


def card_texts(activities: list[dict[str, Any]]) -> str:
    """Everything a visitor reads in these answers: texts and cards."""
    return "\n".join([a["text"] for a in activities if a.get("text")] + [card_text(c) for c in cards_of(activities)])


def _first_time(card: dict[str, Any]) -> str:
    for element in card["body"]:
        if element.get("type") == "Input.ChoiceSet" and element.get("id") == "start":
            return str(element["choices"][0]["value"])
    return str([a for a in actions_of(card) if a["data"]["verb"] == Verb.BOOK_SLOT][0]["data"]["start"])


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
