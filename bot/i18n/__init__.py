"""Message catalogs in French, Dutch, German and English, for every layer: cards, the edge, the CLI,
the Teams package and calendar files.

Each feature owns one TOML file per language: `bot/i18n/locales/<lang>/<feature>.toml`. Keys are
addressed as `<feature>.<key>` (nested tables add dots). Placeholders use `str.format` names.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

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


def language_of(locale: str | None, allowed: tuple[str, ...] | list[str] = LANGUAGES) -> str | None:
    """The catalog language for a BCP-47 locale ('nl-BE' → 'nl'), or None if not allowed."""
    if not locale:
        return None
    code = locale.replace("_", "-").split("-")[0].lower()
    return code if code in allowed else None


def t(language: str, key: str, /, **params: object) -> str:
    """The message `key` in `language` (English if missing), with `params` filled in."""
    text = catalog(language).get(key)
    if text is None:
        text = catalog(FALLBACK).get(key)
    if text is None:
        raise KeyError(f"no message {key!r}")
    return text.format(**params) if params else text
