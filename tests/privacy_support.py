"""Helpers for the privacy tests: a citizen's chat that books through the real app, an upload endpoint
standing in for OneDrive, and a scan of every column of every table for given values."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from aiohttp import web
from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.i18n import t
from cards.validation import validate_card
from cards.verbs import Verb
from tests.harness import Recorded, TeamsUser, action_with_verb, actions_of, free_port

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


def national_register_number(birth: date, serial: int = 33) -> str:
    base = int(f"{birth:%y%m%d}{serial:03d}")
    return f"{base:09d}{97 - base % 97:02d}"


BIRTH = date(1985, 7, 30)
DETAILS = {
    "first_name": "Gwendolyne",
    "last_name": "Vanderelst",
    "birth_date": "30/07/1985",
    "national_register_number": national_register_number(BIRTH),
    "email": "gwendolyne.vanderelst@example.org",
    "phone": "0470 12 34 56",
    "postal_code": "4000",
}
# The same values as stored (normalised): what must disappear after erasure.
STORED = {
    "first_name": "Gwendolyne",
    "last_name": "Vanderelst",
    "birth_date": "1985-07-30",
    "national_register_number": national_register_number(BIRTH),
    "email": "gwendolyne.vanderelst@example.org",
    "phone": "+32470123456",
    "postal_code": "4000",
}


class Chat:
    """One citizen's personal chat: presses the buttons of the cards received; every card is validated."""

    def __init__(self, user: TeamsUser) -> None:
        self.user = user
        self.language = user.locale[:2]
        self.refreshed: list[dict[str, Any]] = []
        self.invoke_bodies: list[Any] = []

    @property
    def replies(self) -> list[Recorded]:
        return self.user.replies()

    def cards(self) -> list[dict[str, Any]]:
        return [card for reply in self.replies for card in reply.cards]

    def attachments(self, content_type: str) -> list[dict[str, Any]]:
        return [a for reply in self.replies for a in reply.activity.get("attachments") or []
                if a.get("contentType") == content_type]

    def texts(self) -> list[str]:
        return [reply.text for reply in self.replies if reply.text]

    def card_with(self, verb: str) -> dict[str, Any]:
        for card in reversed(self.cards()):
            if any((a.get("data") or {}).get("verb") == verb for a in actions_of(card)):
                return card
        raise AssertionError(f"no card with {verb!r}; last texts: {self.texts()[-3:]}")

    @staticmethod
    def _check(replies: list[Recorded]) -> list[Recorded]:
        for reply in replies:
            for card in reply.cards:
                validate_card(card)
        return replies

    async def say(self, text: str) -> list[Recorded]:
        return self._check(await self.user.say(text))

    async def press(self, verb: str, inputs: dict[str, Any] | None = None, *, card: dict[str, Any] | None = None,
                    data: dict[str, Any] | None = None) -> list[Recorded]:
        action = action_with_verb(card or self.card_with(verb), verb)
        body, replies = await self.user.execute(verb, {**action["data"], **(data or {}), **(inputs or {})})
        self.invoke_bodies.append(body)
        if isinstance(body, dict) and body.get("type") == ADAPTIVE_CARD:
            validate_card(body["value"])
            self.refreshed.append(body["value"])
        return self._check(replies)

    async def submit(self, verb: str, inputs: dict[str, Any] | None = None) -> list[Recorded]:
        action = action_with_verb(self.card_with(verb), verb)
        return self._check(await self.user.submit({**action["fallback"]["data"], **(inputs or {})}))

    async def answer_file_consent(self, attachment: dict[str, Any], *, accept: bool,
                                  upload_info: dict[str, Any] | None = None) -> tuple[int, Any]:
        """What Teams sends when the person allows or declines a file the bot offered."""
        content = attachment["content"]
        value: dict[str, Any] = {
            "type": "fileUpload", "action": "accept" if accept else "decline",
            "context": content["acceptContext" if accept else "declineContext"],
        }
        if accept:
            value["uploadInfo"] = upload_info
        return await self.user.post(self.user.activity(type="invoke", name="fileConsent/invoke", value=value,
                                                       replyToId="offer-1"))

    async def accept_consent(self) -> None:
        for _ in range(2):
            last = self.cards()[-1] if self.cards() else {}
            if not any((a.get("data") or {}).get("verb") == Verb.CONSENT_ACCEPT for a in actions_of(last)):
                return
            await self.press(Verb.CONSENT_ACCEPT, card=last)

    async def book(self, details: dict[str, str] | None = None, *, day_index: int = 0) -> None:
        """A whole video booking of the first subject, through the real dialogs."""
        await self.say(t(self.language, "help.command.book"))
        await self.accept_consent()
        mode_card = self.card_with(Verb.BOOK_MODE)
        video = [a for a in actions_of(mode_card) if (a.get("data") or {}).get("mode") == "video"]
        await self.press(Verb.BOOK_MODE, card={"type": "AdaptiveCard", "version": "1.5", "actions": video})
        await self.press(Verb.BOOK_SUBJECT, {"subject": "benefit-application"})
        day_card = self.card_with(Verb.BOOK_DAY)
        days = [a for a in actions_of(day_card) if (a.get("data") or {}).get("verb") == Verb.BOOK_DAY]
        await self.press(Verb.BOOK_DAY, card={"type": "AdaptiveCard", "version": "1.5", "actions": [days[day_index]]})
        slot_card = self.card_with(Verb.BOOK_SLOT)
        await self.press(Verb.BOOK_SLOT, {"start": _first_time(slot_card)})
        await self.press(Verb.BOOK_PERSONAL_DATA, details or DETAILS)
        await self.press(Verb.BOOK_CONFIRM)


def _first_time(card: dict[str, Any]) -> str:
    for element in card["body"]:
        if element.get("type") == "Input.ChoiceSet" and element.get("id") == "start":
            return str(element["choices"][0]["value"])
    return str([a for a in actions_of(card) if a["data"]["verb"] == Verb.BOOK_SLOT][0]["data"]["start"])


@dataclass
class UploadSite:
    """Stands in for the OneDrive upload session Teams opens when a person allows a file."""

    url: str = ""
    received: dict[str, bytes] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    fail_with: int | None = None
    runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_put("/upload/{name}", self._put)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _put(self, request: web.Request) -> web.Response:
        if self.fail_with is not None:
            return web.Response(status=self.fail_with)
        name = request.match_info["name"]
        self.received[name] = await request.read()
        self.headers[name] = dict(request.headers)
        return web.json_response({"id": name, "name": name}, status=201)

    def upload_info(self, name: str) -> dict[str, Any]:
        return {"name": name, "uploadUrl": f"{self.url}/upload/{name}", "contentUrl": f"https://files.example/{name}",
                "uniqueId": f"unique-{name}", "fileType": "json"}

    def json(self, name: str) -> Any:
        return json.loads(self.received[name])


async def all_rows(engine: AsyncEngine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of the database, reflected (not from our models)."""
    metadata = MetaData()
    async with engine.connect() as connection:
        await connection.run_sync(metadata.reflect)
        rows: dict[str, list[dict[str, Any]]] = {}
        for table in metadata.sorted_tables:
            result = await connection.execute(select(table))
            rows[table.name] = [dict(row._mapping) for row in result]
    return rows


def _as_text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def find_values(rows: dict[str, list[dict[str, Any]]], needles: dict[str, str]) -> list[str]:
    """Where any needle occurs, as "table.column (needle name)"; case-insensitive substring match."""
    found: list[str] = []
    for table, table_rows in rows.items():
        for row in table_rows:
            for column, value in row.items():
                if value is None:
                    continue
                text = _as_text(value).casefold()
                for name, needle in needles.items():
                    if needle and needle.casefold() in text:
                        found.append(f"{table}.{column} ({name})")
    return sorted(set(found))
