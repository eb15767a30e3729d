"""Free-text commands in French, Dutch, German and English ("prendre rendez-vous", "afspraak maken"…).

The phrases live in the message catalogs (`commands.<intent>`, alternatives separated by `|`), so a
translator can add synonyms without touching code. Matching ignores case, accents and punctuation.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from functools import cache

from bot.i18n import LANGUAGES, catalog


class Intent(StrEnum):
    BOOK = "book"
    MY_APPOINTMENTS = "my_appointments"
    RESCHEDULE = "reschedule"
    CANCEL_APPOINTMENT = "cancel_appointment"
    TERMS = "terms"
    PRIVACY = "privacy"
    WITHDRAW_CONSENT = "withdraw_consent"
    MY_DATA = "my_data"
    EXPORT = "export"
    RECTIFY = "rectify"
    ERASE = "erase"
    HELP = "help"
    STOP = "stop"
    START_OVER = "start_over"
    HELLO = "hello"
    # The agency's staff.
    MY_DAY = "my_day"
    STATISTICS = "statistics"



def normalize(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[^\w]+", " ", stripped).split())


@cache
def _phrases() -> list[tuple[str, Intent]]:
    """Every phrase of every language, longest first, so 'annuler mon rendez-vous' beats 'annuler'."""
    phrases: set[tuple[str, Intent]] = set()
    for language in LANGUAGES:
        messages = catalog(language)
        for intent in Intent:
            for phrase in messages.get(f"commands.{intent.value}", "").split("|"):
                if normalized := normalize(phrase):
                    phrases.add((normalized, intent))
    return sorted(phrases, key=lambda item: (-len(item[0]), item[0]))


def recognize(text: str | None, *, exact: bool = False) -> Intent | None:
    """The command a message asks for: the whole message, or (unless `exact`) a phrase at its start."""
    if not text:
        return None
    words = normalize(text)
    if not words or len(words.split()) > 8:
        return None
    for phrase, intent in _phrases():
        if words == phrase or (not exact and words.startswith(phrase + " ")):
            return intent
    return None
