"""Teams text as terminal text: Adaptive Card markdown, the HTML subset of Teams messages, ANSI styles.

Cards and messages hold markdown (`**bold**`, `_italic_`, `[label](url)`, `{{DATE(...)}}`) or, in plain
messages, a little HTML. A terminal shows links as "label <url>", dates in the client's locale and time
zone, and emphasis as ANSI styles only when it is a colour terminal.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from datetime import time as dt_time
from zoneinfo import ZoneInfo

from babel.core import Locale, UnknownLocaleError
from babel.dates import format_date, format_time

from bot.devtools.activities import CLIENT_TIMEZONE

_BOLD_ON, _BOLD_OFF = "\x1b[1m", "\x1b[22m"
_ITALIC_ON, _ITALIC_OFF = "\x1b[3m", "\x1b[23m"
_DIM_ON, _DIM_OFF = "\x1b[2m", "\x1b[22m"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*|(?<!\w)__(.+?)__(?!\w)")
_ITALIC = re.compile(
    r"(?<![\w*])\*(?![\s*])(.+?)(?<![\s*])\*(?![\w*])|(?<!\w)_(?![\s_])(.+?)(?<![\s_])_(?!\w)"
)
_DATE_TIME = re.compile(r"\{\{(DATE|TIME)\(\s*([^,)\s]+)\s*(?:,\s*(COMPACT|SHORT|LONG)\s*)?\)\}\}")
_HTML_LINK = re.compile(r"<a\s[^>]*href=\"([^\"]*)\"[^>]*>(.*?)</a>", re.IGNORECASE | re.DOTALL)
_HTML_BOLD = re.compile(r"<(b|strong)>(.*?)</\1>", re.IGNORECASE | re.DOTALL)
_HTML_BREAK = re.compile(r"<br\s*/?>|</p>|</div>|</li>", re.IGNORECASE)
_HTML_ITEM = re.compile(r"<li[^>]*>", re.IGNORECASE)
_HTML_MENTION = re.compile(r"<at>(.*?)</at>", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(
    r"</?(?:p|div|span|i|em|u|s|ul|ol|code|pre|blockquote|h[1-6])(?:\s[^>]*)?>", re.IGNORECASE
)


def format_markdown(
    text: str, *, color: bool = False, locale: str = "en", timezone: str = CLIENT_TIMEZONE
) -> str:
    """Adaptive Card / Teams markdown as terminal text: bold via ANSI on a TTY, links as "text <url>"."""
    text = _DATE_TIME.sub(lambda m: _date_time(m, locale, timezone), text)

    def bold(match: re.Match[str]) -> str:
        inner = match.group(1) or match.group(2)
        return bold_text(inner) if color else inner

    def italic(match: re.Match[str]) -> str:
        inner = match.group(1) or match.group(2)
        return f"{_ITALIC_ON}{inner}{_ITALIC_OFF}" if color else inner

    def link(match: re.Match[str]) -> str:
        label, url = match.group(1), match.group(2)
        return url if label == url else f"{label} <{url}>"

    # Links last would mangle emphasis inside URLs; links first keep URLs out of the emphasis rules.
    parts: list[str] = []
    last = 0
    for match in _LINK.finditer(text):
        parts.append(_ITALIC.sub(italic, _BOLD.sub(bold, text[last : match.start()])))
        parts.append(link(match))
        last = match.end()
    parts.append(_ITALIC.sub(italic, _BOLD.sub(bold, text[last:])))
    return "".join(parts)


def _babel_locale(locale: str) -> Locale:
    try:
        return Locale.parse(locale.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def _date_time(match: re.Match[str], locale: str, timezone: str) -> str:
    kind, raw, style = match.group(1), match.group(2), match.group(3) or "COMPACT"
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return match.group(0)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(ZoneInfo(timezone))
    babel_locale = _babel_locale(locale)
    if kind == "TIME":
        # A naive time: Babel 2.9.1 names zones wrongly, and Teams shows no zone either.
        return format_time(dt_time(local.hour, local.minute), "short", locale=babel_locale)
    width = {"COMPACT": "short", "SHORT": "medium", "LONG": "full"}[style]
    return format_date(local.date(), width, locale=babel_locale)


def message_text(text: str, *, color: bool = False, locale: str = "en") -> str:
    """The text of a Teams message (markdown, or the small HTML subset Teams accepts) as terminal text."""
    text = _HTML_MENTION.sub(r"@\1", text)
    text = _HTML_LINK.sub(
        lambda m: m.group(1) if m.group(1) == m.group(2) else f"{m.group(2)} <{m.group(1)}>", text
    )
    text = _HTML_BOLD.sub(lambda m: f"**{m.group(2)}**", text)
    text = _HTML_ITEM.sub("• ", text)
    text = _HTML_BREAK.sub("\n", text)
    text = _HTML_TAG.sub("", text)
    text = text.replace("&nbsp;", " ").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return format_markdown(text.strip("\n"), color=color, locale=locale)


def plain(text: str) -> str:
    """Markdown as text without styles (labels, headings)."""
    return format_markdown(text, color=False)


def shorten(text: str, limit: int = 70) -> str:
    """The first line of `text`, cut to `limit` characters with an ellipsis."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


def bold_text(text: str) -> str:
    return f"{_BOLD_ON}{text}{_BOLD_OFF}"


def dim_text(text: str) -> str:
    return f"{_DIM_ON}{text}{_DIM_OFF}"


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)
