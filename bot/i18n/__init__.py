"""Message catalogs in French, Dutch, German and English, for every layer: cards, the edge, the CLI,
the Teams package and calendar files.

Each feature owns one TOML file per language: `bot/i18n/locales/<lang>/<feature>.toml`. Keys are
addressed as `<feature>.<key>` (nested tables add dots). Placeholders use `str.format` names.

A message that reads differently on the agency's website (Web Chat) than in Teams ("in this chat",
"your Teams account") has a sibling key with the suffix `_web` (`change_until_web`, or `x_web.one` for a
plural): `t` and `tn` take it while the reader is on the web (bot.domain.channels.reader_on_web).

A message that holds a count is a table of CLDR plural categories (`{one = "…", other = "…"}`),
read with `tn`, which picks the language's own category for the count (French says "0 heure",
English "0 hours"); `other` is always present and stands in for a category a language leaves out.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale

from bot.domain.channels import reader_on_web

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
LANGUAGES = ("fr", "nl", "de", "en")
FALLBACK = "en"


def _flatten(prefix: str, table: dict[str, Any], out: dict[str, str]) -> None:
    for key, value in table.items():
        name = f"{prefix}.{key}"
        if isinstance(value, dict):
            _flatten(name, value, out)
        else:
            out[name] = str(value)


@cache
def catalog(language: str) -> dict[str, str]:
    """Every message of one language, keyed `<feature>.<key>`."""
    messages: dict[str, str] = {}
    for path in sorted((LOCALES_DIR / language).glob("*.toml")):
        _flatten(path.stem, tomllib.loads(path.read_text(encoding="utf-8")), messages)
    return messages


WEB_SUFFIX = "_web"


@cache
def web_catalog(language: str) -> dict[str, str]:
    """The language's messages as read on the agency's website: each `_web` variant in place of its key."""
    messages = dict(catalog(language))
    for name, text in catalog(language).items():
        if WEB_SUFFIX in name:
            parts = name.split(".")
            if any(part.endswith(WEB_SUFFIX) for part in parts):
                messages[".".join(part.removesuffix(WEB_SUFFIX) for part in parts)] = text
    return messages


def _messages(language: str) -> dict[str, str]:
    return web_catalog(language) if reader_on_web() else catalog(language)


def language_of(locale: str | None, allowed: tuple[str, ...] | list[str] = LANGUAGES) -> str | None:
    """The catalog language for a BCP-47 locale ('nl-BE' → 'nl'), or None if not allowed."""
    if not locale:
        return None
    code = locale.replace("_", "-").split("-")[0].lower()
    return code if code in allowed else None


def t(language: str, key: str, /, **params: object) -> str:
    """The message `key` in `language` (English if missing), with `params` filled in; its web variant
    while the reader is on the agency's website."""
    text = _messages(language).get(key)
    if text is None:
        text = _messages(FALLBACK).get(key)
    if text is None:
        raise KeyError(f"no message {key!r}")
    return text.format(**params) if params else text


@cache
def _plural_form(language: str) -> Any:
    return Locale.parse(language).plural_form


def tn(language: str, key: str, count: int, /, **params: object) -> str:
    """The plural message `key` for `count` in `language`: its CLDR category's text ("1 minute",
    "2 minutes"), or `other`; `{count}` and `params` are filled in."""
    category = _plural_form(language)(count)
    messages = _messages(language)
    if f"{key}.{category}" not in messages and f"{key}.other" in messages:
        category = "other"
    return t(language, f"{key}.{category}", count=count, **params)
