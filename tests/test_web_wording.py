"""The website's wording over real HTTP: a Web Chat visitor reads that reminders and links come by e-mail
and how to come back (the manage link, signing in), where a Teams citizen reads that they come in the chat."""

from __future__ import annotations

import re
import string
from typing import Any

import aiohttp

from bot.domain.agency import Agency, DocumentKind
from bot.i18n import WEB_SUFFIX, catalog, t, tn
from cards.validation import validate_card
from tests.conftest import RunningBot
from tests.harness import (
    FakeConnector,
    Recorded,
    TeamsUser,
    WebUser,
    action_with_verb,
    card_nodes,
    card_text,
)
from tests.test_booking_flow import BE_DETAILS, Chat, book, booking_bot, clock, confirmation

__all__ = ["booking_bot", "clock"]  # fixtures shared with the Teams booking tests


class WebChat(Chat):
    """A visitor of the agency's website: every button is an Action.Submit, which Web Chat sends as a
    message carrying the button's data and the card's inputs."""

    def __init__(self, user: WebUser) -> None:
        super().__init__(user)  # type: ignore[arg-type]

    async def press(self, verb: str, inputs: dict[str, Any] | None = None, *, card: dict[str, Any] | None = None,
                    data: dict[str, Any] | None = None) -> list[Recorded]:
        action = action_with_verb(card or self.card_with(verb), verb)
        assert action["type"] == "Action.Submit"
        return self._check(await self.user.submit({**action["data"], **(data or {}), **(inputs or {})}))


def reads(text: str, message: str) -> bool:
    """Whether `text` holds the catalog `message`, whatever its placeholders were filled with."""
    parts = [literal.strip() for literal, *_ in string.Formatter().parse(message)]
    return all(part in text for part in parts if part)


def teams_only_wording_in(text: str, language: str) -> list[str]:
    """The keys whose Teams wording (a base key with a `_web` variant) reads in `text`."""
    messages = catalog(language)
    bases = {".".join(part.removesuffix(WEB_SUFFIX) for part in name.split("."))
             for name in messages if WEB_SUFFIX in name}
    return sorted(base for base in bases if reads(text, messages[base]))


BOOKING = {"mode": "video", "details": {**BE_DETAILS, "postal_code": "1000"}, "language_choice": "fr"}


async def test_a_web_booking_reads_the_web_wording_and_a_teams_one_the_teams_wording(
    booking_bot: RunningBot, agency: Agency, connector: FakeConnector, http: aiohttp.ClientSession
) -> None:
    two_hours = tn("fr", "common.count.hours", 2)
    web = WebChat(WebUser(bot_url=booking_bot.url, connector=connector, http=http))
    await book(web, **BOOKING)
    text = card_text(confirmation(web))
    # Reminders come by e-mail, and the visitor comes back by the manage link or by signing in.
    assert t("fr", "booking.confirmation.change_until_web", duration=two_hours) in text
    assert reads(text, t("fr", "booking.confirmation.reminders_planned_web", times="{times}"))
    assert t("fr", "booking.confirmation.access_local_mode_web", phone=agency.contact.phone) in text
    assert teams_only_wording_in(text, "fr") == []
    assert "dans cette conversation" not in text and "ce chat" not in text
    # The calendar file comes inline, to open (no file consent card to accept on the website).
    assert t("fr", "booking.confirmation.calendar_note_web") in text
    assert "text/calendar" in [a["contentType"] for r in web.replies for a in r.activity.get("attachments") or []]

    teams = Chat(TeamsUser(bot_url=booking_bot.url, connector=connector, http=http))
    await book(teams, **BOOKING)
    text = card_text(confirmation(teams))
    assert t("fr", "booking.confirmation.change_until", duration=two_hours) in text
    assert reads(text, t("fr", "booking.confirmation.reminders_planned", times="{times}"))
    assert teams_only_wording_in(text, "fr") == [
        "booking.confirmation.access_local_mode", "booking.confirmation.calendar_note",
        "booking.confirmation.change_until",
        "booking.confirmation.reminders_planned"]


async def test_the_terms_and_the_privacy_policy_read_on_the_website_have_web_buttons_and_wording(
    booking_bot: RunningBot, agency: Agency, connector: FakeConnector, http: aiohttp.ClientSession
) -> None:
    visitor = WebUser(bot_url=booking_bot.url, connector=connector, http=http)
    for command, kind in (("conditions", DocumentKind.TERMS), ("confidentialité", DocumentKind.PRIVACY)):
        [card] = [card for reply in await visitor.say(command) for card in reply.cards]
        validate_card(card)
        document = agency.current_document(kind)
        text = card_text(card)
        assert t("fr", f"consent.{kind.value}.question") in text and document.version in text
        # Web Chat renders no Action.Execute: every button is a plain Submit, the toggles and links stay.
        kinds = {node["type"] for node in card_nodes(card) if str(node.get("type", "")).startswith("Action.")}
        assert "Action.Execute" not in kinds and "Action.Submit" in kinds
        assert card["fallbackText"] == t("fr", "common.fallback_text_web")
        assert teams_only_wording_in(text, "fr") == []
    # The privacy policy in force describes the chat on the website too, in every language it exists in.
    privacy = agency.current_document(DocumentKind.PRIVACY)
    for language in privacy.files:
        assert re.search(r"Direct.Line", agency.document_text(privacy, language)), language
