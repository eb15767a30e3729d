"""Small building blocks shared by the card builders: the card envelope, text, the agency contact."""

from __future__ import annotations

from typing import Any

from bot.domain.agency import Agency
from bot.i18n import t
from cards.document import escape_markdown
from cards.validation import CARD_VERSION


def adaptive_card(
    language: str | None, body: list[dict[str, Any]], actions: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The card envelope, in `language` for screen readers and with a text for clients too old."""
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": CARD_VERSION,
    }
    if language:
        card["lang"] = language
        card["fallbackText"] = t(language, "common.fallback_text")
    card["body"] = body
    if actions:
        card["actions"] = actions
    return card


def text_block(text: str, **style: Any) -> dict[str, Any]:
    """A wrapping TextBlock; `text` is card Markdown, so escape anything not written by us."""
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def heading(text: str) -> dict[str, Any]:
    return text_block(text, size="large", weight="bolder", style="heading")


def contact_facts(agency: Agency, language: str) -> dict[str, Any]:
    """The agency's phone, e-mail, website and postal address as a FactSet."""
    contact = agency.contact
    rows = [
        ("common.contact.phone", contact.phone),
        ("common.contact.email", contact.email),
        ("common.contact.website", contact.website),
        ("common.contact.address", contact.postal_address),
    ]
    return {
        "type": "FactSet",
        "facts": [{"title": t(language, key), "value": escape_markdown(value)} for key, value in rows],
    }
