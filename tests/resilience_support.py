"""Helpers for the hardening tests: a citizen booking through the real cards, a bot in a thread of its own.

`book_through_cards` presses, in each card the bot sends, the button of the next booking step (found by
verb, as in Teams) and fills the card's inputs: consent, mode, office, subject, day, time, personal
data, interview language, summary, confirm.

`ThreadedBot` runs the real app, the fake connector and an HTTP client on an event loop in another
thread, so that synchronous tests (hypothesis) can drive it turn by turn.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from bot.app import create_app
from bot.domain.agency import Agency
from bot.domain.clock import Clock
from bot.settings import Settings
from storage.migrate import upgrade_database
from tests.harness import FakeConnector, Recorded, TeamsUser, actions_of, free_port

FLOW_VERBS = ["consent_accept", "book_mode", "book_office", "book_subject", "book_day", "book_slot",
              "book_personal_data", "book_language", "book_confirm"]

_T = TypeVar("_T")


def national_register_number(birth: date, serial: int = 45) -> str:
    """A valid Belgian national register number for someone born in the 1900s."""
    base = f"{birth:%y%m%d}{serial:03d}"
    return f"{base}{97 - int(base) % 97:02d}"


def be_details(first_name: str = "Camille", last_name: str = "Dupont", postal_code: str = "1000") -> dict[str, str]:
    """Valid answers to example-be's personal-data form."""
    birth = date(1984, 3, 14)
    return {"first_name": first_name, "last_name": last_name, "birth_date": f"{birth:%d/%m/%Y}",
            "national_register_number": national_register_number(birth), "email": "camille@example.org",
            "phone": "+32 470 12 34 56", "postal_code": postal_code}


def verb_of(action: dict[str, Any]) -> str | None:
    return action.get("verb") or (action.get("data") or {}).get("verb")


def verbs_of(card: dict[str, Any]) -> set[str]:
    return {verb for action in actions_of(card) if (verb := verb_of(action))}


def _inputs(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            if str(value.get("type", "")).startswith("Input."):
                found.append(value)
            for key, inner in value.items():
                if key != "actions":
                    visit(inner)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit(node)
    return found


def card_inputs(card: dict[str, Any], answers: dict[str, str]) -> dict[str, Any]:
    """What a card's inputs send with its buttons: our answer, else the first choice, else the prefill."""
    values: dict[str, Any] = {}
    for element in _inputs(card.get("body") or []):
        name = element.get("id")
        if not isinstance(name, str):
            continue
        if name in answers:
            values[name] = answers[name]
        elif element["type"] == "Input.ChoiceSet" and element.get("choices"):
            values[name] = element["choices"][0]["value"]
        elif isinstance(element.get("value"), str):
            values[name] = element["value"]
    return values


def next_step(cards: list[dict[str, Any]]) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
    """(verb, action, card) of the next booking step offered by the newest card that offers one."""
    for card in reversed(cards):
        by_verb: dict[str, dict[str, Any]] = {}
        for action in actions_of(card):
            verb = verb_of(action)
            if verb in FLOW_VERBS and verb not in by_verb:
                if verb == "book_mode" and (action.get("data") or {}).get("mode") != "video":
                    continue
                by_verb[verb] = action
        for verb in FLOW_VERBS:
            if verb in by_verb:
                return verb, by_verb[verb], card
    return None


def is_confirmation(card: dict[str, Any]) -> bool:
    verbs = verbs_of(card)
    return "appt_cancel" in verbs and not verbs & set(FLOW_VERBS)


@dataclass
class Step:
    verb: str
    payload: dict[str, Any]
    replies: list[Recorded] = field(default_factory=list)


async def book_through_cards(user: TeamsUser, details: dict[str, str], *, max_turns: int = 25,
                             on_step: Callable[[Step], Awaitable[None]] | None = None) -> dict[str, Any]:
    """A whole booking by Action.Execute; returns the confirmation card. `on_step` sees each press."""
    start = len(user.replies())
    replies = await user.say("prendre rendez-vous")
    for _ in range(max_turns):
        cards = [card for reply in replies for card in reply.cards]
        # (A step hook may have finished the booking itself.)
        for card in [card for reply in user.replies()[start:] for card in reply.cards]:
            if is_confirmation(card):
                return card
        step = next_step(cards) or next_step([c for r in user.replies() for c in r.cards])
        if step is None and not any(reply.cards for reply in user.replies()[start:]):
            # The very first turn failed (the citizen was told): they ask again, as anyone would.
            replies = await user.say("prendre rendez-vous")
            continue
        if step is None:
            raise AssertionError(f"booking stuck; last texts: {[r.text for r in user.replies()[-4:]]}")
        verb, action, card = step
        payload = {**(action.get("data") or {}), **card_inputs(card, details)}
        _body, replies = await user.execute(verb, payload)
        if on_step is not None:
            await on_step(Step(verb, payload, replies))
    raise AssertionError("no confirmation")


async def resume_booking(user: TeamsUser, details: dict[str, str], *, max_turns: int = 25) -> dict[str, Any]:
    """Go on with an interrupted booking from the newest card; start again if that card is no longer live."""
    start = len(user.replies())
    for _ in range(max_turns):
        new_cards = [card for reply in user.replies()[start:] for card in reply.cards]
        for card in new_cards:
            if is_confirmation(card):
                return card
        step = next_step([card for reply in user.replies() for card in reply.cards])
        if step is None:
            return await book_through_cards(user, details, max_turns=max_turns)
        verb, action, card = step
        count = len(user.replies())
        await user.execute(verb, {**(action.get("data") or {}), **card_inputs(card, details)})
        answers = user.replies()[count:]
        if answers and not any(reply.cards for reply in answers):
            # "This card is no longer current" (or an apology): ask again from the start.
            return await book_through_cards(user, details, max_turns=max_turns)
    raise AssertionError("could not resume the booking")


class ThreadedBot:
    """The real bot, a fake connector and a client session on an event loop in a thread of its own."""

    def __init__(self, settings: Settings, agency: Agency, clock: Clock | None = None) -> None:
        self._settings = settings
        self._agency = agency
        self._clock = clock
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bot-under-test", daemon=True)
        self.connector = FakeConnector()
        self.failed_turns: list[logging.LogRecord] = []
        self._handler = _Collect(self.failed_turns)
        self.app: web.Application | None = None
        self.url = ""
        self.http: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None

    def run(self, coroutine: Coroutine[Any, Any, _T], timeout: float = 60) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def start(self) -> None:
        self._thread.start()
        logging.getLogger("bot.adapter").addHandler(self._handler)
        self.run(self._start())

    async def _start(self) -> None:
        await upgrade_database(self._settings.database_url)
        await self.connector.start()
        self.app = create_app(self._settings, agency=self._agency, clock=self._clock)
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        self.http = aiohttp.ClientSession()

    def user(self, **fields: Any) -> TeamsUser:
        assert self.http is not None
        return TeamsUser(bot_url=self.url, connector=self.connector, http=self.http, **fields)

    def stop(self) -> None:
        logging.getLogger("bot.adapter").removeHandler(self._handler)
        try:
            self.run(self._stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    async def _stop(self) -> None:
        if self.http is not None:
            await self.http.close()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.connector.stop()


class _Collect(logging.Handler):
    """Keeps the records of turns that failed (the adapter logs them at ERROR)."""

    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.ERROR)
        self._into = into

    def emit(self, record: logging.LogRecord) -> None:
        self._into.append(record)


def settings_for(database_url: str, agency_path: Path) -> Settings:
    return Settings(database_url=database_url, agency=agency_path)
