"""Terminal client that plays the Microsoft Teams channel against a running Guichet bot over real HTTP.

It posts Teams-shaped activities to the bot's /api/messages and runs a local stand-in for the Bot Connector
(the `serviceUrl` of every activity) that receives the bot's messages, replies, card updates, proactive
messages and file uploads. Adaptive Cards are rendered as text; choosing one of their actions sends exactly
what Teams would: Action.Submit as a message whose `value` holds the data and inputs, Action.Execute as an
`adaptiveCard/action` invoke whose HTTP response replaces the card.

Layers, from pure to effectful: card rendering and input validation (`render_card`, `parse_answer`,
`collect_inputs`), activity builders (`build_message`, `build_invoke`, ...), the connector stand-in
(`ConnectorStub`), the conversation state machine (`ChatSession`, terminal-free thanks to `ChatIO`), and the
terminal (`TerminalIO`, `run_chat`). The client's own texts are English: it is a developer tool; everything
the citizen would read comes from the bot.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dt_time
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from babel.core import Locale, UnknownLocaleError
from babel.dates import format_date, format_time

DEFAULT_BOT_URL = "http://127.0.0.1:3978/api/messages"
PROFILE_FILE_NAME = ".guichet-chat.json"
ROLES = ("citizen", "counselor")
# Local bots run without a Microsoft App Id; Teams still addresses the bot as "28:<app id>".
LOCAL_BOT_APP_ID = "00000000-0000-0000-0000-000000000000"
CLIENT_TIMEZONE = "Europe/Brussels"
# Teams gives up on a bot that has not answered an HTTP request within this many seconds.
TEAMS_TIMEOUT_SECONDS = 15.0

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
HERO_CARD = "application/vnd.microsoft.card.hero"
THUMBNAIL_CARD = "application/vnd.microsoft.card.thumbnail"
FILE_CONSENT_CARD = "application/vnd.microsoft.teams.card.file.consent"
FILE_INFO_CARD = "application/vnd.microsoft.teams.card.file.info"
INVOKE_MESSAGE = "application/vnd.microsoft.activity.message"
INVOKE_ERROR = "application/vnd.microsoft.error"
INVOKE_LOGIN = "application/vnd.microsoft.activity.loginRequest"

_CITIZEN_NAMES = ("Camille Dubois", "Lotte Peeters", "Jonas Schmitz", "Amira El Idrissi", "Lucas Lambert")
_COUNSELOR_NAMES = ("Sophie Martin", "Pieter Janssens", "Anna Weber", "Nadia Benali")

# ---------------------------------------------------------------------------------------------------------
# Text formatting
# ---------------------------------------------------------------------------------------------------------

_BOLD_ON, _BOLD_OFF = "\x1b[1m", "\x1b[22m"
_ITALIC_ON, _ITALIC_OFF = "\x1b[3m", "\x1b[23m"
_DIM_ON, _DIM_OFF = "\x1b[2m", "\x1b[22m"

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
        return f"{_BOLD_ON}{inner}{_BOLD_OFF}" if color else inner

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


def _plain(text: str) -> str:
    return format_markdown(text, color=False)


def _shorten(text: str, limit: int = 70) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------------------
# Adaptive Card rendering
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputSpec:
    """One Adaptive Card input, as the client prompts for it."""

    id: str
    type: str
    label: str
    placeholder: str | None = None
    is_required: bool = False
    regex: str | None = None
    error_message: str | None = None
    value: str | None = None
    choices: tuple[tuple[str, str], ...] = ()
    is_multi_select: bool = False
    minimum: str | None = None
    maximum: str | None = None
    max_length: int | None = None
    value_on: str = "true"
    value_off: str = "false"
    visible: bool = True


@dataclass(frozen=True)
class CardAction:
    """A choosable action: Adaptive Card actions, hero-card buttons, suggested actions, file consent."""

    number: int
    type: str
    title: str
    key: str
    data: Any = None
    verb: str | None = None
    action_id: str | None = None
    url: str | None = None
    card: dict[str, Any] | None = None
    targets: tuple[tuple[str, bool | None], ...] = ()
    inputs: tuple[InputSpec, ...] = ()
    enabled: bool = True
    text: str | None = None


@dataclass(frozen=True)
class RenderedCard:
    lines: list[str]
    actions: list[CardAction]
    inputs: list[InputSpec]


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _input_spec(element: Mapping[str, Any], visible: bool) -> InputSpec:
    kind = str(element.get("type", ""))
    label = (
        element.get("label") or element.get("title") or element.get("placeholder") or element.get("id", "")
    )
    choices = tuple(
        (str(choice.get("title", choice.get("value", ""))), str(choice.get("value", "")))
        for choice in element.get("choices") or []
        if isinstance(choice, Mapping)
    )
    minimum = element.get("min")
    maximum = element.get("max")
    max_length = element.get("maxLength")
    return InputSpec(
        id=str(element.get("id", "")),
        type=kind,
        label=_plain(str(label)),
        placeholder=element.get("placeholder"),
        is_required=bool(element.get("isRequired", False)),
        regex=element.get("regex"),
        error_message=element.get("errorMessage"),
        value=_as_text(element.get("value")),
        choices=choices,
        is_multi_select=bool(element.get("isMultiSelect", False)),
        minimum=_as_text(minimum),
        maximum=_as_text(maximum),
        max_length=max_length if isinstance(max_length, int) else None,
        value_on=str(element.get("valueOn", "true")),
        value_off=str(element.get("valueOff", "false")),
        visible=visible,
    )


def _children(element: Mapping[str, Any]) -> list[Any]:
    kind = element.get("type")
    if kind == "ColumnSet":
        return list(element.get("columns") or [])
    if kind == "Table":
        cells: list[Any] = []
        for row in element.get("rows") or []:
            for cell in row.get("cells") or [] if isinstance(row, Mapping) else []:
                cells.extend(cell.get("items") or [] if isinstance(cell, Mapping) else [])
        return cells
    return list(element.get("items") or [])


def _is_visible(element: Mapping[str, Any], overrides: Mapping[str, bool]) -> bool:
    element_id = element.get("id")
    if isinstance(element_id, str) and element_id in overrides:
        return overrides[element_id]
    return element.get("isVisible", True) is not False


def card_inputs(card: Mapping[str, Any], visibility: Mapping[str, bool] | None = None) -> list[InputSpec]:
    """The inputs of one card's body, hidden ones included (their `visible` is False), in document order.

    Inputs of Action.ShowCard cards are not included: like the Adaptive Card renderers, they belong to the
    shown card, whose actions gather them together with those of its parents.
    """
    overrides = visibility or {}
    found: list[InputSpec] = []

    def walk(elements: Iterable[Any], visible: bool) -> None:
        for element in elements:
            if not isinstance(element, Mapping):
                continue
            shown = visible and _is_visible(element, overrides)
            if str(element.get("type", "")).startswith("Input."):
                found.append(_input_spec(element, shown))
            walk(_children(element), shown)

    walk(card.get("body") or [], True)
    return found


def default_visibility(card: Mapping[str, Any]) -> dict[str, bool]:
    """The declared visibility of every element with an id, show cards included."""
    result: dict[str, bool] = {}

    def walk(elements: Iterable[Any]) -> None:
        for element in elements:
            if not isinstance(element, Mapping):
                continue
            if isinstance(element.get("id"), str):
                result[element["id"]] = element.get("isVisible", True) is not False
            walk(_children(element))
            for action in element.get("actions") or []:
                if isinstance(action, Mapping) and isinstance(action.get("card"), Mapping):
                    walk_card(action["card"])

    def walk_card(sub: Mapping[str, Any]) -> None:
        walk(sub.get("body") or [])
        for action in sub.get("actions") or []:
            if isinstance(action, Mapping) and isinstance(action.get("card"), Mapping):
                walk_card(action["card"])

    walk_card(card)
    return result


def apply_toggle(
    card: Mapping[str, Any], visibility: Mapping[str, bool], action: CardAction
) -> dict[str, bool]:
    """The element visibility after an Action.ToggleVisibility, as the Adaptive Card renderers compute it."""
    current = {**default_visibility(card), **visibility}
    result = dict(visibility)
    for element_id, wanted in action.targets:
        result[element_id] = (not current.get(element_id, True)) if wanted is None else wanted
    return result


def _heading(element: Mapping[str, Any]) -> str:
    """A short title for a collapsed part: its first text, else its id."""
    stack: list[Any] = [element]
    while stack:
        current = stack.pop(0)
        if not isinstance(current, Mapping):
            continue
        kind = current.get("type")
        if kind == "TextBlock" and current.get("text"):
            return _shorten(_plain(str(current["text"])))
        if kind == "RichTextBlock":
            text = "".join(_inline_text(inline) for inline in current.get("inlines") or [])
            if text.strip():
                return _shorten(text)
        if kind == "FactSet" and current.get("facts"):
            return _shorten(_plain(str(current["facts"][0].get("title", ""))))
        if str(kind).startswith("Input.") and (current.get("label") or current.get("title")):
            return _shorten(_plain(str(current.get("label") or current.get("title"))))
        stack.extend(_children(current))
    return str(element.get("id") or "more")


def _inline_text(inline: Any) -> str:
    if isinstance(inline, str):
        return inline
    if isinstance(inline, Mapping):
        return str(inline.get("text", ""))
    return ""


class _CardRenderer:
    def __init__(
        self,
        *,
        color: bool,
        visibility: Mapping[str, bool],
        opened: set[str] | frozenset[str],
        locale: str,
        timezone: str,
    ) -> None:
        self.color = color
        self.visibility = visibility
        self.opened = opened
        self.locale = locale
        self.timezone = timezone
        self.lines: list[str] = []
        self.actions: list[CardAction] = []
        self.collapsed: list[tuple[int, str]] = []

    def md(self, text: str) -> str:
        return format_markdown(text, color=self.color, locale=self.locale, timezone=self.timezone)

    def emit(self, indent: str, text: str) -> None:
        for line in text.split("\n"):
            self.lines.append(f"{indent}{line}".rstrip())

    def card(
        self, card: Mapping[str, Any], indent: str, parent_inputs: tuple[InputSpec, ...], path: str
    ) -> None:
        scope = parent_inputs + tuple(card_inputs(card, self.visibility))
        self.elements(card.get("body") or [], indent, scope, f"{path}/body")
        actions = card.get("actions") or []
        if actions:
            self.action_row(actions, indent, scope, f"{path}/actions")

    def elements(self, elements: Sequence[Any], indent: str, scope: tuple[InputSpec, ...], path: str) -> None:
        for index, element in enumerate(elements):
            if isinstance(element, Mapping):
                self.element(element, indent, scope, f"{path}/{index}", first=index == 0)

    def element(
        self, element: Mapping[str, Any], indent: str, scope: tuple[InputSpec, ...], path: str, *, first: bool
    ) -> None:
        if not _is_visible(element, self.visibility):
            if isinstance(element.get("id"), str):
                self.collapsed.append((len(self.lines), element["id"]))
            self.lines.append(f"{indent}[+] {_heading(element)}")
            return
        if (
            not first
            and self.lines
            and (element.get("separator") or element.get("spacing") in ("large", "extraLarge", "padding"))
        ):
            self.lines.append("")
        kind = element.get("type")
        if kind == "TextBlock":
            self.text_block(element, indent)
        elif kind == "RichTextBlock":
            self.rich_text(element, indent)
        elif kind == "FactSet":
            for fact in element.get("facts") or []:
                if isinstance(fact, Mapping):
                    self.emit(
                        indent,
                        f"{self.md(str(fact.get('title', '')))}: {self.md(str(fact.get('value', '')))}",
                    )
        elif kind in ("Container", "Column"):
            self.elements(element.get("items") or [], indent, scope, f"{path}/items")
        elif kind == "ColumnSet":
            self.elements(element.get("columns") or [], indent, scope, f"{path}/columns")
        elif kind == "Table":
            self.table(element, indent)
        elif kind == "ActionSet":
            self.action_row(element.get("actions") or [], indent, scope, f"{path}/actions")
        elif kind == "Image":
            self.emit(indent, f"[image: {element['altText']}]" if element.get("altText") else "[image]")
        elif kind == "ImageSet":
            self.emit(indent, f"[{len(element.get('images') or [])} images]")
        elif kind == "Media":
            self.emit(indent, f"[media: {element.get('altText') or 'video'}]")
        elif isinstance(kind, str) and kind.startswith("Input."):
            self.input_line(_input_spec(element, True), indent)
        else:
            self.emit(indent, f"[{kind}]")
        select = element.get("selectAction")
        if isinstance(select, Mapping) and kind != "ActionSet":
            titled = dict(select)
            titled.setdefault("title", _heading(element))
            self.action_row([titled], indent, scope, f"{path}/selectAction")

    def text_block(self, element: Mapping[str, Any], indent: str) -> None:
        text = self.md(str(element.get("text", "")))
        strong = (
            element.get("weight") == "bolder"
            or element.get("style") == "heading"
            or element.get("size") in ("large", "extraLarge")
        )
        if self.color and strong:
            text = f"{_BOLD_ON}{text}{_BOLD_OFF}"
        elif self.color and element.get("isSubtle"):
            text = f"{_DIM_ON}{text}{_DIM_OFF}"
        self.emit(indent, text)

    def rich_text(self, element: Mapping[str, Any], indent: str) -> None:
        parts = []
        for inline in element.get("inlines") or []:
            text = _inline_text(inline)
            if self.color and isinstance(inline, Mapping) and inline.get("weight") == "bolder":
                text = f"{_BOLD_ON}{text}{_BOLD_OFF}"
            select = inline.get("selectAction") if isinstance(inline, Mapping) else None
            if isinstance(select, Mapping) and select.get("url"):
                text = f"{text} <{select['url']}>"
            parts.append(text)
        self.emit(indent, "".join(parts))

    def table(self, element: Mapping[str, Any], indent: str) -> None:
        for row in element.get("rows") or []:
            if not isinstance(row, Mapping):
                continue
            cells = []
            for cell in row.get("cells") or []:
                sub = _CardRenderer(
                    color=self.color,
                    visibility=self.visibility,
                    opened=self.opened,
                    locale=self.locale,
                    timezone=self.timezone,
                )
                sub.elements(cell.get("items") or [] if isinstance(cell, Mapping) else [], "", (), "")
                cells.append(" ".join(line.strip() for line in sub.lines if line.strip()))
            self.emit(indent, " | ".join(cells))

    def input_line(self, spec: InputSpec, indent: str) -> None:
        star = " *" if spec.is_required else ""
        if spec.type == "Input.Toggle":
            box = "[x]" if spec.value == spec.value_on else "[ ]"
            self.emit(indent, f"{box} {spec.label}{star}")
            return
        detail = ""
        if spec.type == "Input.ChoiceSet":
            detail = ": " + " | ".join(title for title, _ in spec.choices)
        elif spec.type == "Input.Date":
            detail = " (YYYY-MM-DD)"
        elif spec.type == "Input.Time":
            detail = " (HH:MM)"
        elif spec.placeholder and spec.placeholder != spec.label:
            detail = f" ({spec.placeholder})"
        if spec.value:
            titles = dict((value, title) for title, value in spec.choices)
            detail += " [" + ",".join(titles.get(v, v) for v in spec.value.split(",")) + "]"
        self.emit(indent, f"✎ {spec.label}{star}{detail}")

    def action_row(
        self, actions: Sequence[Any], indent: str, scope: tuple[InputSpec, ...], path: str
    ) -> None:
        labels = []
        shown: list[CardAction] = []
        for index, raw in enumerate(actions):
            if not isinstance(raw, Mapping):
                continue
            action = _card_action(raw, len(self.actions) + 1, f"{path}/{index}", scope)
            self.actions.append(action)
            shown.append(action)
            labels.append(self.action_label(action))
        if labels:
            self.emit(indent, "  ".join(labels))
        for action in shown:
            if action.type == "Action.ShowCard" and action.key in self.opened and action.card is not None:
                self.card(action.card, indent + "  ", scope, action.key + "/card")

    def action_label(self, action: CardAction) -> str:
        label = f"[{action.number}] {self.md(action.title)}"
        if action.type == "Action.OpenUrl":
            label += " ↗"
        elif action.type == "Action.ShowCard":
            label += " ▾" if action.key in self.opened else " ▸"
        if not action.enabled:
            label += " (disabled)"
        return label

    def annotate_collapsed(self) -> None:
        for line_index, element_id in self.collapsed:
            numbers = [
                f"[{action.number}]"
                for action in self.actions
                if action.type == "Action.ToggleVisibility"
                and any(t == element_id for t, _ in action.targets)
            ]
            if numbers:
                self.lines[line_index] += f" (choose {' or '.join(numbers)})"


def _card_action(raw: Mapping[str, Any], number: int, key: str, scope: tuple[InputSpec, ...]) -> CardAction:
    kind = str(raw.get("type", ""))
    title = str(raw.get("title") or raw.get("verb") or kind.removeprefix("Action."))
    targets: list[tuple[str, bool | None]] = []
    for target in raw.get("targetElements") or []:
        if isinstance(target, str):
            targets.append((target, None))
        elif isinstance(target, Mapping) and isinstance(target.get("elementId"), str):
            wanted = target.get("isVisible")
            targets.append((target["elementId"], wanted if isinstance(wanted, bool) else None))
    gathers = (
        kind in ("Action.Submit", "Action.Execute")
        and str(raw.get("associatedInputs", "auto")).lower() != "none"
    )
    return CardAction(
        number=number,
        type=kind,
        title=title,
        key=key,
        data=raw.get("data"),
        verb=raw.get("verb"),
        action_id=raw.get("id"),
        url=raw.get("url"),
        card=raw.get("card") if isinstance(raw.get("card"), dict) else None,
        targets=tuple(targets),
        inputs=scope if gathers else (),
        enabled=raw.get("isEnabled", True) is not False,
    )


def render_card(
    card: Mapping[str, Any],
    *,
    color: bool = False,
    visibility: Mapping[str, bool] | None = None,
    opened: set[str] | frozenset[str] = frozenset(),
    locale: str = "en",
    timezone: str = CLIENT_TIMEZONE,
) -> RenderedCard:
    """An Adaptive Card as terminal lines, numbered actions and the inputs of its body.

    `visibility` overrides `isVisible` by element id (Action.ToggleVisibility); `opened` holds the keys of
    the Action.ShowCard actions whose card is shown.
    """
    renderer = _CardRenderer(
        color=color, visibility=visibility or {}, opened=opened, locale=locale, timezone=timezone
    )
    renderer.card(card, "", (), "card")
    renderer.annotate_collapsed()
    return RenderedCard(renderer.lines, renderer.actions, card_inputs(card, visibility))


def render_hero_card(content: Mapping[str, Any], *, color: bool = False) -> RenderedCard:
    """A hero or thumbnail card (botbuilder's ChoicePrompt sends these to Teams) with its buttons."""
    lines: list[str] = []
    if content.get("title"):
        title = message_text(str(content["title"]), color=color)
        lines.append(f"{_BOLD_ON}{title}{_BOLD_OFF}" if color else title)
    for key in ("subtitle", "text"):
        if content.get(key):
            lines.extend(message_text(str(content[key]), color=color).split("\n"))
    actions = _button_actions(content.get("buttons") or [], "hero")
    if actions:
        lines.append(
            "  ".join(f"[{a.number}] {a.title}" + (" ↗" if a.type == "openUrl" else "") for a in actions)
        )
    return RenderedCard(lines, actions, [])


def _button_actions(buttons: Sequence[Any], prefix: str) -> list[CardAction]:
    actions: list[CardAction] = []
    for index, button in enumerate(buttons):
        if not isinstance(button, Mapping):
            continue
        kind = str(button.get("type", "imBack"))
        value = button.get("value")
        actions.append(
            CardAction(
                number=len(actions) + 1,
                type=kind,
                title=str(button.get("title") or button.get("displayText") or value or kind),
                key=f"{prefix}/{index}",
                data=value,
                url=str(value) if kind in ("openUrl", "signin") else None,
                text=button.get("text"),
            )
        )
    return actions


def render_suggested_actions(suggested: Mapping[str, Any]) -> RenderedCard:
    actions = _button_actions(suggested.get("actions") or [], "suggested")
    line = "  ".join(f"[{a.number}] {a.title}" for a in actions)
    return RenderedCard([line] if line else [], actions, [])


def render_file_consent(name: str, content: Mapping[str, Any]) -> RenderedCard:
    """Teams asks the user before a bot may upload a file to the user's OneDrive."""
    size = content.get("sizeInBytes")
    size_text = f" ({_human_size(size)})" if isinstance(size, int) else ""
    lines = [f"File offered: {name}{size_text}"]
    if content.get("description"):
        lines.append(str(content["description"]))
    accept = CardAction(1, "fileConsent/accept", "Allow", "file/accept", data=content.get("acceptContext"))
    decline = CardAction(
        2, "fileConsent/decline", "Decline", "file/decline", data=content.get("declineContext")
    )
    lines.append("[1] Allow  [2] Decline")
    return RenderedCard(lines, [accept, decline], [])


def _human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


# ---------------------------------------------------------------------------------------------------------
# Inputs: validation like the Adaptive Card renderers, values as Teams sends them (always strings)
# ---------------------------------------------------------------------------------------------------------


class InputError(ValueError):
    """Some inputs are invalid; `errors` maps input id to a message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{key}: {message}" for key, message in errors.items()))
        self.errors = dict(errors)


_YES = {"y", "yes", "o", "oui", "j", "ja", "true", "1", "x", "on"}
_NO = {"n", "no", "non", "nee", "nein", "false", "0", "off"}
_DATE_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME_FORMAT = re.compile(r"^(\d{1,2}):(\d{2})$")


def _js_number(value: float) -> str:
    """A number as JavaScript's toString writes it (what Teams puts in the submitted data)."""
    return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)


def parse_answer(spec: InputSpec, raw: str) -> str | None:
    """The value Teams would submit for what the user typed; None when the input stays unset.

    An empty answer keeps the input's initial value. Raises ValueError with the card's errorMessage (or a
    plain explanation) when the renderer would refuse to submit.
    """
    answer = raw.strip()
    if spec.type == "Input.Toggle":
        if not answer:
            return spec.value if spec.value is not None else spec.value_off
        if answer.lower() in _YES or answer == spec.value_on:
            return spec.value_on
        if answer.lower() in _NO or answer == spec.value_off:
            return spec.value_off
        raise ValueError("Answer y or n.")
    if not answer:
        answer = spec.value or ""
    if not answer:
        if spec.is_required:
            raise ValueError(spec.error_message or "This field is required.")
        return None
    try:
        value = _typed_value(spec, answer)
    except ValueError as exc:
        raise ValueError(spec.error_message or str(exc)) from exc
    return value


def _typed_value(spec: InputSpec, answer: str) -> str:
    if spec.type == "Input.Number":
        try:
            number = float(answer.replace(",", "."))
        except ValueError:
            raise ValueError("Type a number.") from None
        if spec.minimum is not None and number < float(spec.minimum):
            raise ValueError(f"The smallest allowed value is {spec.minimum}.")
        if spec.maximum is not None and number > float(spec.maximum):
            raise ValueError(f"The largest allowed value is {spec.maximum}.")
        return _js_number(number)
    if spec.type == "Input.Date":
        if not _DATE_FORMAT.match(answer):
            raise ValueError("Type the date as YYYY-MM-DD.")
        try:
            day = date.fromisoformat(answer)
        except ValueError:
            raise ValueError("This date does not exist.") from None
        if spec.minimum and day < date.fromisoformat(spec.minimum):
            raise ValueError(f"The earliest allowed date is {spec.minimum}.")
        if spec.maximum and day > date.fromisoformat(spec.maximum):
            raise ValueError(f"The latest allowed date is {spec.maximum}.")
        return answer
    if spec.type == "Input.Time":
        match = _TIME_FORMAT.match(answer)
        if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
            raise ValueError("Type the time as HH:MM.")
        value = f"{int(match.group(1)):02d}:{match.group(2)}"
        if spec.minimum and value < spec.minimum:
            raise ValueError(f"The earliest allowed time is {spec.minimum}.")
        if spec.maximum and value > spec.maximum:
            raise ValueError(f"The latest allowed time is {spec.maximum}.")
        return value
    if spec.type == "Input.ChoiceSet":
        return _choice_value(spec, answer)
    if spec.max_length is not None and len(answer) > spec.max_length:
        raise ValueError(f"At most {spec.max_length} characters.")
    # The renderers test the pattern anywhere in the value (JavaScript RegExp.test), not as a full match.
    if spec.regex and not re.search(spec.regex, answer):
        raise ValueError("This value does not have the expected format.")
    return answer


def _choice_value(spec: InputSpec, answer: str) -> str:
    picks = [part.strip() for part in answer.split(",")] if spec.is_multi_select else [answer]
    values = []
    for pick in picks:
        if not pick:
            continue
        if pick.isdigit() and 1 <= int(pick) <= len(spec.choices):
            values.append(spec.choices[int(pick) - 1][1])
            continue
        matches = [value for title, value in spec.choices if pick.lower() in (title.lower(), value.lower())]
        if not matches:
            raise ValueError(f"Choose a number between 1 and {len(spec.choices)}.")
        values.append(matches[0])
    if not values:
        raise ValueError("Choose at least one option.")
    return ",".join(values)


def collect_inputs(inputs: Sequence[InputSpec], answers: Mapping[str, str]) -> dict[str, str]:
    """Validate typed answers (by input id) for all inputs; the values Teams would submit.

    Unset inputs are left out, like the renderers do. Hidden inputs keep their initial value. Raises
    InputError listing every invalid input.
    """
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for spec in inputs:
        if not spec.id:
            continue
        raw = answers.get(spec.id, "") if spec.visible else ""
        try:
            value = parse_answer(spec, raw)
        except ValueError as exc:
            if spec.visible:
                errors[spec.id] = str(exc)
            continue
        if value is not None:
            values[spec.id] = value
    if errors:
        raise InputError(errors)
    return values


def input_prompt(spec: InputSpec) -> tuple[list[str], str]:
    """Lines to show before asking for an input, and the prompt itself."""
    star = " *" if spec.is_required else ""
    before: list[str] = []
    hint = ""
    if spec.type == "Input.ChoiceSet":
        before = [f"  {number}. {title}" for number, (title, _) in enumerate(spec.choices, 1)]
        hint = " (numbers, comma-separated)" if spec.is_multi_select else " (number)"
    elif spec.type == "Input.Date":
        hint = " (YYYY-MM-DD)"
    elif spec.type == "Input.Time":
        hint = " (HH:MM)"
    elif spec.type == "Input.Toggle":
        hint = " (y/n)"
    elif spec.type == "Input.Number" and (spec.minimum is not None or spec.maximum is not None):
        hint = f" (number {spec.minimum if spec.minimum is not None else ''}…{spec.maximum or ''})"
    if spec.placeholder and spec.type not in ("Input.ChoiceSet", "Input.Toggle"):
        hint += f" e.g. {spec.placeholder}"
    default = spec.value
    if spec.type == "Input.Toggle":
        default = "y" if (spec.value or spec.value_off) == spec.value_on else "n"
    elif spec.type == "Input.ChoiceSet" and spec.value:
        titles = {value: title for title, value in spec.choices}
        default = ",".join(titles.get(v, v) for v in spec.value.split(","))
    suffix = f" [{default}]" if default else ""
    return before, f"{spec.label}{star}{hint}{suffix}: "


# ---------------------------------------------------------------------------------------------------------
# Activities, shaped like those Teams posts to a bot
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """The Teams user the client plays, and the personal chat with the bot."""

    role: str
    user_id: str
    aad_object_id: str
    name: str
    tenant_id: str
    conversation_id: str
    bot_id: str
    bot_name: str = "Guichet"
    locale: str = "fr-BE"
    timezone: str = CLIENT_TIMEZONE

    @property
    def country(self) -> str:
        parts = self.locale.split("-")
        return parts[1].upper() if len(parts) > 1 else ""

    @property
    def email(self) -> str:
        local = re.sub(r"[^a-z0-9]+", ".", self.name.lower()).strip(".")
        return f"{local}@example.test"

    def account(self) -> dict[str, Any]:
        """The user as the connector's member APIs describe a Teams account."""
        given, _, surname = self.name.partition(" ")
        return {
            "id": self.user_id,
            "name": self.name,
            "aadObjectId": self.aad_object_id,
            "givenName": given,
            "surname": surname,
            "email": self.email,
            "userPrincipalName": self.email,
            "tenantId": self.tenant_id,
            "userRole": "user",
        }


class _ActivityIds:
    """Teams message ids are millisecond timestamps; keep them unique within the process."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns() // 1_000_000)
            return str(self._last)


_IDS = _ActivityIds()


def _utc_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _base_activity(
    identity: Identity, service_url: str, kind: str, activity_id: str | None, now: datetime | None
) -> dict[str, Any]:
    moment = now or datetime.now(UTC)
    return {
        "type": kind,
        "id": activity_id or _IDS.next(),
        "timestamp": _utc_stamp(moment),
        "localTimestamp": moment.astimezone(ZoneInfo(identity.timezone)).isoformat(timespec="milliseconds"),
        "localTimezone": identity.timezone,
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": {"id": identity.user_id, "name": identity.name, "aadObjectId": identity.aad_object_id},
        "conversation": {
            "conversationType": "personal",
            "tenantId": identity.tenant_id,
            "id": identity.conversation_id,
        },
        "recipient": {"id": identity.bot_id, "name": identity.bot_name},
        "entities": [
            {
                "type": "clientInfo",
                "locale": identity.locale,
                "country": identity.country,
                "platform": "Windows",
                "timezone": identity.timezone,
            }
        ],
        "channelData": {"tenant": {"id": identity.tenant_id}},
        "locale": identity.locale,
    }


def _reply_fields(activity: dict[str, Any], reply_to_id: str | None) -> None:
    # Teams marks actions taken on a card with the card's message id, twice.
    if reply_to_id:
        activity["replyToId"] = reply_to_id
        activity["channelData"]["source"] = {"name": "message"}
        activity["channelData"]["legacy"] = {"replyToId": reply_to_id}


def build_message(
    identity: Identity,
    service_url: str,
    *,
    text: str | None = None,
    value: Any = None,
    reply_to_id: str | None = None,
    activity_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A message activity: typed text, or a card submit (`value`, no text, `replyToId` = the card)."""
    activity = _base_activity(identity, service_url, "message", activity_id, now)
    if text is not None:
        activity["text"] = text
        activity["textFormat"] = "plain"
    if value is not None:
        activity["value"] = value
    _reply_fields(activity, reply_to_id)
    return activity


def build_invoke(
    identity: Identity,
    service_url: str,
    *,
    name: str,
    value: Any,
    reply_to_id: str | None = None,
    activity_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """An invoke activity (`adaptiveCard/action`, `fileConsent/invoke`): the bot answers in the HTTP body."""
    activity = _base_activity(identity, service_url, "invoke", activity_id or f"f:{uuid.uuid4()}", now)
    activity["name"] = name
    activity["value"] = value
    _reply_fields(activity, reply_to_id)
    return activity


def build_conversation_update(
    identity: Identity, service_url: str, *, activity_id: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """What Teams posts when the app is installed in a personal chat: the bot joined the conversation."""
    activity = _base_activity(
        identity, service_url, "conversationUpdate", activity_id or f"f:{uuid.uuid4()}", now
    )
    activity["membersAdded"] = [{"id": identity.bot_id}]
    return activity


def build_installation_update(
    identity: Identity,
    service_url: str,
    *,
    action: str = "add",
    activity_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    activity = _base_activity(
        identity, service_url, "installationUpdate", activity_id or f"f:{uuid.uuid4()}", now
    )
    activity["action"] = action
    return activity


def _with_inputs(data: Any, inputs: Mapping[str, str]) -> Any:
    # The renderers copy object data and add the inputs over it; non-object data is sent as it is.
    if data is None:
        return dict(inputs)
    if isinstance(data, Mapping):
        return {**data, **inputs}
    return data


def submit_payload(action: CardAction, inputs: Mapping[str, str]) -> tuple[str | None, Any]:
    """(text, value) of the message Teams sends for an Action.Submit; honours msteams imBack/messageBack."""
    data = action.data
    msteams = data.get("msteams") if isinstance(data, Mapping) else None
    if isinstance(msteams, Mapping):
        kind = msteams.get("type")
        if kind == "imBack":
            return str(msteams.get("value", "")), None
        if kind == "messageBack":
            value = msteams.get("value")
            if isinstance(value, str):
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            merged = _with_inputs(value, inputs) if value is not None or inputs else None
            return msteams.get("text"), merged
    return None, _with_inputs(data, inputs)


def execute_value(
    action: CardAction, inputs: Mapping[str, str], *, trigger: str = "manual"
) -> dict[str, Any]:
    """The `value` of the `adaptiveCard/action` invoke Teams sends for an Action.Execute."""
    invoke_action: dict[str, Any] = {"type": "Action.Execute"}
    if action.action_id:
        invoke_action["id"] = action.action_id
    if action.verb is not None:
        invoke_action["verb"] = action.verb
    invoke_action["data"] = _with_inputs(action.data, inputs)
    return {"action": invoke_action, "trigger": trigger}


@dataclass(frozen=True)
class InvokeOutcome:
    """What Teams does with the HTTP answer to an invoke."""

    kind: str  # "card", "message", "error", "login", "empty", "http_error"
    card: dict[str, Any] | None = None
    text: str = ""


def interpret_invoke_response(status: int, body: Any) -> InvokeOutcome:
    if status >= 300:
        return InvokeOutcome("http_error", text=f"HTTP {status}")
    if not isinstance(body, Mapping):
        return InvokeOutcome("empty", text="no invoke response body; Teams would show an error on the card")
    kind = body.get("type")
    value = body.get("value")
    if kind == ADAPTIVE_CARD and isinstance(value, dict):
        return InvokeOutcome("card", card=value)
    if kind == INVOKE_MESSAGE:
        return InvokeOutcome("message", text=str(value if value is not None else ""))
    if kind == INVOKE_ERROR:
        detail = value if isinstance(value, Mapping) else {}
        return InvokeOutcome(
            "error", text=f"{detail.get('code', 'error')}: {detail.get('message', '')}".strip()
        )
    if kind == INVOKE_LOGIN:
        return InvokeOutcome("login", text="the bot asks the user to sign in")
    return InvokeOutcome("empty", text=f"unexpected invoke response {json.dumps(body)[:200]}")


# ---------------------------------------------------------------------------------------------------------
# Profile: a stable person per role across sessions
# ---------------------------------------------------------------------------------------------------------


class ProfileError(ValueError):
    """The profile file cannot be read or written."""


def default_profile_path() -> Path:
    return Path.home() / PROFILE_FILE_NAME


def _read_profile(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProfileError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ProfileError(f"{path} is not a JSON object")
    return data


def _write_profile(path: Path, data: Mapping[str, Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    try:
        temporary.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.chmod(temporary, 0o600)
        temporary.replace(path)
    except OSError as exc:
        raise ProfileError(f"cannot write {path}: {exc}") from exc


def load_identity(
    path: Path,
    role: str,
    *,
    new: bool = False,
    locale: str = "fr-BE",
    bot_app_id: str = "",
    aad_object_id: str | None = None,
    name: str | None = None,
) -> Identity:
    """The person playing `role`, created on first use (or with `new`) and kept in the profile file.

    `aad_object_id` and `name` replace the stored ones and are remembered: a counselor must carry the
    Entra object id listed for them in the agency file.
    """
    if role not in ROLES:
        raise ProfileError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    data = _read_profile(path)
    tenant_id = data.get("tenant_id") or str(uuid.uuid4())
    stored = data.get("people")
    people: dict[str, Any] = stored if isinstance(stored, dict) else {}
    person: dict[str, Any] | None = (
        people.get(role) if isinstance(people.get(role), dict) and not new else None
    )
    if person is None:
        pool = _CITIZEN_NAMES if role == "citizen" else _COUNSELOR_NAMES
        person = {
            "user_id": "29:1" + secrets.token_urlsafe(32),
            "aad_object_id": str(uuid.uuid4()),
            "name": random.choice(pool),
            "conversation_id": "a:1" + secrets.token_urlsafe(45),
        }
    if aad_object_id:
        person["aad_object_id"] = aad_object_id
    if name:
        person["name"] = name
    people[role] = person
    _write_profile(path, {**data, "version": 1, "tenant_id": tenant_id, "people": people})
    return Identity(
        role=role,
        user_id=person["user_id"],
        aad_object_id=person["aad_object_id"],
        name=person["name"],
        tenant_id=tenant_id,
        conversation_id=person["conversation_id"],
        bot_id=f"28:{bot_app_id or LOCAL_BOT_APP_ID}",
        locale=locale,
    )


def remembered_port(path: Path, role: str) -> int | None:
    with contextlib.suppress(ProfileError):
        person = (_read_profile(path).get("people") or {}).get(role) or {}
        port = person.get("port")
        return port if isinstance(port, int) else None
    return None


def remember_port(path: Path, role: str, port: int) -> None:
    data = _read_profile(path)
    people = data.get("people") or {}
    if isinstance(people.get(role), dict):
        people[role]["port"] = port
        _write_profile(path, data)


# ---------------------------------------------------------------------------------------------------------
# The Bot Connector stand-in
# ---------------------------------------------------------------------------------------------------------


ConnectorCallback = Callable[[str, str, dict[str, Any], str], None]
"""(event, conversation id, activity, activity id); event is "send", "reply", "update" or "delete"."""


class ConnectorStub:
    """A local Bot Connector: the bot's `serviceUrl`. Answers like the real one ({"id": ...}, 200/201)."""

    def __init__(
        self,
        identity: Identity,
        on_activity: ConnectorCallback,
        *,
        downloads_dir: Path | None = None,
        on_file: Callable[[Path], None] | None = None,
    ) -> None:
        self.identity = identity
        self.on_activity = on_activity
        self.on_file = on_file
        self.downloads_dir = downloads_dir
        self.received: list[dict[str, Any]] = []
        self.service_url = ""
        self._uploads: dict[str, Path] = {}
        self._runner: web.AppRunner | None = None

    async def start(self, port: int | None = None) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        # One catch-all route: bots join serviceUrl and path with or without a slash between them.
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = _bind_local(port)
        site = web.SockSite(self._runner, sock)
        await site.start()
        self.service_url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        return self.service_url

    @property
    def port(self) -> int:
        return int(self.service_url.rstrip("/").rsplit(":", 1)[1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [part for part in request.match_info["tail"].split("/") if part]
        method = request.method
        if parts[:1] == ["uploads"] and len(parts) == 3 and method == "PUT":
            return await self._upload(request, parts[1], parts[2])
        if parts[:1] == ["files"] and len(parts) == 3 and method == "GET":
            path = self._uploads.get(parts[1])
            return web.FileResponse(path) if path and path.exists() else _not_found("no such file")
        if parts[:2] != ["v3", "conversations"]:
            return _not_found("unknown path")
        rest = parts[2:]
        if not rest and method == "POST":
            return await self._create_conversation(request)
        if len(rest) >= 2 and rest[1] == "activities":
            return await self._activities(request, rest[0], rest[2:])
        if len(rest) in (2, 3) and rest[1] in ("members", "pagedmembers") and method == "GET":
            return self._members(rest)
        return _not_found("unknown path")

    async def _activities(self, request: web.Request, conversation_id: str, rest: list[str]) -> web.Response:
        method = request.method
        if method == "DELETE" and len(rest) == 1:
            self.on_activity("delete", conversation_id, {}, rest[0])
            return web.json_response({})
        if method not in ("POST", "PUT") or len(rest) > 1:
            return _not_found("unknown path")
        try:
            activity = await request.json()
        except ValueError:
            return web.json_response({"error": {"code": "BadSyntax", "message": "invalid JSON"}}, status=400)
        if not isinstance(activity, dict):
            return web.json_response(
                {"error": {"code": "BadSyntax", "message": "not an activity"}}, status=400
            )
        self.received.append(activity)
        if method == "PUT":
            self.on_activity("update", conversation_id, activity, rest[0])
            return web.json_response({"id": rest[0]})
        activity_id = _IDS.next()
        self.on_activity("reply" if rest else "send", conversation_id, activity, activity_id)
        return web.json_response({"id": activity_id})

    async def _create_conversation(self, request: web.Request) -> web.Response:
        try:
            parameters = await request.json()
        except ValueError:
            return web.json_response({"error": {"code": "BadSyntax", "message": "invalid JSON"}}, status=400)
        members = parameters.get("members") or [] if isinstance(parameters, dict) else []
        ours = any(isinstance(m, dict) and m.get("id") == self.identity.user_id for m in members)
        # Teams has one personal chat per user and bot: creating it again returns the same id.
        conversation_id = self.identity.conversation_id if ours else "a:1" + secrets.token_urlsafe(45)
        answer: dict[str, Any] = {"id": conversation_id}
        activity = parameters.get("activity") if isinstance(parameters, dict) else None
        if isinstance(activity, dict):
            self.received.append(activity)
            activity_id = _IDS.next()
            answer["activityId"] = activity_id
            self.on_activity("send", conversation_id, activity, activity_id)
        return web.json_response(answer, status=201)

    def _members(self, rest: list[str]) -> web.Response:
        account = self.identity.account()
        if rest[1] == "pagedmembers":
            return web.json_response({"members": [account]})
        if len(rest) == 3:
            if rest[2] in (account["id"], account["aadObjectId"]):
                return web.json_response(account)
            return _not_found("member not found")
        return web.json_response([account])

    async def _upload(self, request: web.Request, unique_id: str, name: str) -> web.Response:
        if self.downloads_dir is None:
            return _not_found("uploads are disabled")
        body = await request.read()
        start, end, total = 0, len(body) - 1, len(body)
        content_range = re.match(r"bytes (\d+)-(\d+)/(\d+)", request.headers.get("Content-Range", ""))
        if content_range:
            start, end, total = (int(group) for group in content_range.groups())
        path = self._uploads.get(unique_id)
        if path is None:
            self.downloads_dir.mkdir(parents=True, exist_ok=True)
            path = _free_file_name(self.downloads_dir, Path(name).name or "download")
            self._uploads[unique_id] = path
        with path.open("r+b" if path.exists() else "wb") as handle:
            handle.seek(start)
            handle.write(body)
        if end + 1 < total:
            return web.json_response({"nextExpectedRanges": [f"{end + 1}-"]}, status=202)
        if self.on_file is not None:
            self.on_file(path)
        return web.json_response({"id": unique_id, "name": path.name, "size": total}, status=201)

    def upload_info(self, name: str) -> dict[str, Any]:
        """Where the bot uploads a file the user allowed (the OneDrive upload session Teams creates)."""
        unique_id = uuid.uuid4().hex
        safe = re.sub(r"[^\w.-]+", "_", Path(name).name) or "download"
        return {
            "contentUrl": f"{self.service_url}files/{unique_id}/{safe}",
            "name": name,
            "uploadUrl": f"{self.service_url}uploads/{unique_id}/{safe}",
            "uniqueId": unique_id,
            "fileType": Path(name).suffix.lstrip("."),
        }


def _not_found(message: str) -> web.Response:
    return web.json_response({"error": {"code": "NotFound", "message": message}}, status=404)


def _bind_local(port: int | None) -> socket.socket:
    """A listening socket on 127.0.0.1: the remembered port when free (reminders keep reaching the same
    client), else any free port."""
    for candidate in ([port] if port else []) + [0]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", candidate))
        except OSError:
            sock.close()
            continue
        sock.listen(128)
        sock.setblocking(False)
        return sock
    raise OSError("no free port on 127.0.0.1")


def _free_file_name(folder: Path, name: str) -> Path:
    candidate = folder / name
    counter = 1
    while candidate.exists():
        candidate = folder / f"{Path(name).stem} ({counter}){Path(name).suffix}"
        counter += 1
    return candidate


# ---------------------------------------------------------------------------------------------------------
# The conversation
# ---------------------------------------------------------------------------------------------------------


class ChatIO(Protocol):
    async def ask(self, prompt: str) -> str:
        """One line typed by the user; raises EOFError when input ends."""
        ...

    def show(self, text: str) -> None: ...


@dataclass
class CardView:
    """A card shown in the chat, with its local state (toggled parts, opened show cards)."""

    number: int
    kind: str  # "adaptive", "hero", "suggested", "file"
    content: dict[str, Any]
    activity_id: str | None
    name: str = ""
    visibility: dict[str, bool] = field(default_factory=dict)
    opened: set[str] = field(default_factory=set)
    refreshed_at: float = 0.0

    def render(self, *, color: bool, locale: str, timezone: str) -> RenderedCard:
        if self.kind == "adaptive":
            return render_card(
                self.content,
                color=color,
                visibility=self.visibility,
                opened=self.opened,
                locale=locale,
                timezone=timezone,
            )
        if self.kind == "hero":
            return render_hero_card(self.content, color=color)
        if self.kind == "suggested":
            return render_suggested_actions(self.content)
        return render_file_consent(self.name, self.content)


HELP = """\
Type a message and press Enter to send it to the bot.
A number chooses an action of the current card (the last card with actions, or the one /card picked).
  /card N   show card N again and make it current      /raw   print the raw JSON of every activity
  /say TEXT send TEXT even if it looks like a number   /help  this help      /quit  leave
While filling a card's fields: press Enter to keep the value in [brackets], /cancel to go back."""


class ChatSession:
    """One person chatting with the bot: sends Teams activities, renders what the connector receives."""

    def __init__(
        self,
        identity: Identity,
        bot_url: str,
        io: ChatIO,
        *,
        color: bool = False,
        downloads_dir: Path | None = None,
        announce_install: bool = True,
    ) -> None:
        self.identity = identity
        self.bot_url = bot_url
        self.io = io
        self.color = color
        self.announce_install = announce_install
        self.raw = False
        self.views: list[CardView] = []
        self.current: CardView | None = None
        self.connector = ConnectorStub(
            identity, self._received, downloads_dir=downloads_dir, on_file=self._file_saved
        )
        self.sent: list[dict[str, Any]] = []
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifetime ---------------------------------------------------------------------------------------

    async def start(self, port: int | None = None) -> bool:
        """Start the connector and, like Teams installing the app, announce the user to the bot."""
        await self.connector.start(port)
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))
        if not self.announce_install:
            return True
        for activity in (
            build_conversation_update(self.identity, self.connector.service_url),
            build_installation_update(self.identity, self.connector.service_url),
        ):
            status, _ = await self.post(activity)
            if status is None:
                return False
        return True

    async def settle(self) -> None:
        """Wait until background work started by received activities (card refreshes) is done."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None
        await self.connector.stop()

    async def run(self, port: int | None = None, *, on_listening: Callable[[int], None] | None = None) -> int:
        """Chat until /quit or end of input; the exit code. `on_listening` gets the connector's port."""
        try:
            started = await self.start(port)
            if on_listening is not None:
                on_listening(self.connector.port)
            if not started:
                return 2
            self.io.show(
                f"Chatting as {self.identity.name} ({self.identity.role}, {self.identity.locale}) "
                f"with {self.bot_url}. Type /help for help."
            )
            while True:
                try:
                    line = await self.io.ask("> ")
                except EOFError:
                    break
                if not await self.handle_line(line):
                    break
            return 0
        finally:
            await self.close()

    # -- user input ---------------------------------------------------------------------------------------

    async def handle_line(self, line: str) -> bool:
        """Act on one typed line; False when the user leaves."""
        text = line.strip()
        if not text:
            return True
        if text.startswith("/"):
            command, _, argument = text.partition(" ")
            return await self._command(command.lower(), argument.strip())
        if text.isdigit() and self.current is not None:
            rendered = self._render(self.current)
            number = int(text)
            if 1 <= number <= len(rendered.actions):
                await self.choose(self.current, rendered.actions[number - 1])
                return True
            if rendered.actions:
                self.io.show(
                    f"(card {self.current.number} has actions 1 to {len(rendered.actions)}; "
                    "use /say to send the number as text)"
                )
                return True
        await self.send_text(text)
        return True

    async def _command(self, command: str, argument: str) -> bool:
        if command in ("/quit", "/exit", "/q"):
            return False
        if command in ("/help", "/?"):
            self.io.show(HELP)
        elif command == "/raw":
            self.raw = not self.raw
            self.io.show(f"(raw JSON {'on' if self.raw else 'off'})")
        elif command == "/card":
            view = self._view(argument)
            if view is None:
                self.io.show(
                    f"(no card {argument or '?'}; cards 1 to {len(self.views)})"
                    if self.views
                    else "(no card yet)"
                )
            else:
                self.current = view
                self._show_view(view)
        elif command == "/say" and argument:
            await self.send_text(argument)
        else:
            self.io.show(f"(unknown command {command}; /help lists them)")
        return True

    def _view(self, argument: str) -> CardView | None:
        if argument.isdigit() and 1 <= int(argument) <= len(self.views):
            return self.views[int(argument) - 1]
        return None

    async def send_text(self, text: str) -> None:
        await self.post(build_message(self.identity, self.connector.service_url, text=text))

    async def choose(self, view: CardView, action: CardAction) -> None:
        """Do what Teams does when the user clicks `action` on `view`."""
        if not action.enabled:
            self.io.show("(this button is disabled)")
            return
        kind = action.type
        if kind == "Action.ToggleVisibility":
            view.visibility = apply_toggle(view.content, view.visibility, action)
            self._show_view(view)
        elif kind == "Action.ShowCard":
            view.opened ^= {action.key}
            self._show_view(view)
        elif kind in ("Action.OpenUrl", "openUrl", "signin"):
            self.io.show(f"(open in a browser: {action.url})")
        elif kind == "Action.Submit":
            inputs = await self.ask_inputs(action.inputs)
            if inputs is None:
                return
            text, value = submit_payload(action, inputs)
            self._echo(text, value)
            await self.post(
                build_message(
                    self.identity,
                    self.connector.service_url,
                    text=text,
                    value=value,
                    reply_to_id=view.activity_id,
                )
            )
        elif kind == "Action.Execute":
            inputs = await self.ask_inputs(action.inputs)
            if inputs is None:
                return
            self._echo(None, execute_value(action, inputs)["action"]["data"])
            await self.execute(view, execute_value(action, inputs))
        elif kind in ("imBack", "postBack"):
            self._echo(str(action.data or ""), None)
            await self.post(
                build_message(self.identity, self.connector.service_url, text=str(action.data or ""))
            )
        elif kind == "messageBack":
            self._echo(action.text, action.data)
            await self.post(
                build_message(
                    self.identity,
                    self.connector.service_url,
                    text=action.text,
                    value=action.data,
                    reply_to_id=view.activity_id,
                )
            )
        elif kind in ("fileConsent/accept", "fileConsent/decline"):
            await self._file_consent(view, action)
        else:
            self.io.show(f"({kind} is not supported by this client)")

    async def ask_inputs(self, specs: Sequence[InputSpec]) -> dict[str, str] | None:
        """Prompt for each visible input until valid; None when the user types /cancel."""
        values: dict[str, str] = {}
        for spec in specs:
            if not spec.id:
                continue
            if not spec.visible:
                with contextlib.suppress(ValueError):
                    hidden = parse_answer(spec, "")
                    if hidden is not None:
                        values[spec.id] = hidden
                continue
            before, prompt = input_prompt(spec)
            for line in before:
                self.io.show(line)
            while True:
                try:
                    raw = await self.io.ask(prompt)
                except EOFError:
                    return None
                if raw.strip().lower() == "/cancel":
                    self.io.show("(cancelled)")
                    return None
                try:
                    value = parse_answer(spec, raw)
                except ValueError as exc:
                    self.io.show(f"  ! {exc}")
                    continue
                break
            if value is not None:
                values[spec.id] = value
        return values

    async def execute(self, view: CardView, value: dict[str, Any], *, refresh: bool = False) -> None:
        activity = build_invoke(
            self.identity,
            self.connector.service_url,
            name="adaptiveCard/action",
            value=value,
            reply_to_id=view.activity_id,
        )
        status, body = await self.post(activity)
        if status is None:
            return
        outcome = interpret_invoke_response(status, body)
        if outcome.kind == "card" and outcome.card is not None:
            view.content = outcome.card
            view.visibility = {}
            view.opened = set()
            self.io.show("(card refreshed)" if refresh else "(card updated)")
            self._show_view(view)
        elif outcome.kind == "message":
            self.io.show(f"{self._bot_label()} {message_text(outcome.text, color=self.color)}")
        elif outcome.kind != "http_error" and not (refresh and outcome.kind == "empty"):
            # HTTP errors were reported by post(); a refresh without a new card changes nothing in Teams.
            self.io.show(f"(card action answer: {outcome.text})")

    async def _file_consent(self, view: CardView, action: CardAction) -> None:
        accepted = action.type == "fileConsent/accept"
        value: dict[str, Any] = {"type": "fileUpload", "action": "accept" if accepted else "decline"}
        if action.data is not None:
            value["context"] = action.data
        if accepted:
            value["uploadInfo"] = self.connector.upload_info(view.name)
        status, _ = await self.post(
            build_invoke(
                self.identity,
                self.connector.service_url,
                name="fileConsent/invoke",
                value=value,
                reply_to_id=view.activity_id,
            )
        )
        if status is not None and status >= 300:
            self.io.show(f"(the bot answered the file consent with HTTP {status})")

    def _echo(self, text: str | None, value: Any) -> None:
        parts = []
        if text:
            parts.append(text)
        if value is not None:
            parts.append(json.dumps(value, ensure_ascii=False))
        self.io.show(self._dim(f"(sent {' '.join(parts) or 'an empty submit'})"))

    # -- HTTP to the bot --------------------------------------------------------------------------------

    async def post(self, activity: dict[str, Any]) -> tuple[int | None, Any]:
        """POST an activity to the bot; (HTTP status, JSON body) or (None, None) when unreachable."""
        assert self._http is not None, "start() the session first"
        self.sent.append(activity)
        if self.raw:
            self.io.show(">> " + json.dumps(activity, ensure_ascii=False, indent=2))
        started = time.monotonic()
        try:
            async with self._http.post(self.bot_url, json=activity) as response:
                status = response.status
                raw_body = await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.io.show(
                f"(cannot reach the bot at {self.bot_url}: {exc or type(exc).__name__}; "
                "is `guichet serve` running?)"
            )
            return None, None
        elapsed = time.monotonic() - started
        body: Any = None
        if raw_body.strip():
            try:
                body = json.loads(raw_body)
            except ValueError:
                body = raw_body
        if self.raw:
            self.io.show(
                f"<< HTTP {status} " + (json.dumps(body, ensure_ascii=False, indent=2) if body else "")
            )
        if elapsed > TEAMS_TIMEOUT_SECONDS:
            self.io.show(
                f"(the bot took {elapsed:.1f} s to answer; Teams gives up after "
                f"{TEAMS_TIMEOUT_SECONDS:.0f} s)"
            )
        if status in (401, 403):
            self.io.show(
                f"(the bot refused the request: HTTP {status}. It checks Bot Framework tokens; "
                "run it without MicrosoftAppId for local chat)"
            )
        elif status >= 300:
            self.io.show(f"(the bot answered HTTP {status})")
        return status, body

    # -- what the connector receives -------------------------------------------------------------------

    def _received(self, event: str, conversation_id: str, activity: dict[str, Any], activity_id: str) -> None:
        if self.raw and activity:
            self.io.show(
                f"<< connector {event} {activity_id} " + json.dumps(activity, ensure_ascii=False, indent=2)
            )
        if conversation_id != self.identity.conversation_id:
            self.io.show(self._dim(f"(in another conversation: {conversation_id})"))
        if event == "delete":
            for view in self.views:
                if view.activity_id == activity_id:
                    view.content = {
                        "type": "AdaptiveCard",
                        "body": [{"type": "TextBlock", "text": "(deleted)"}],
                    }
            self.io.show(self._dim("(the bot deleted a message)"))
            return
        kind = activity.get("type")
        if kind == "typing":
            return
        if kind == "endOfConversation":
            self.io.show(self._dim("(the bot ended the conversation)"))
            return
        if kind != "message":
            self.io.show(self._dim(f"(activity of type {kind})"))
            return
        if event == "update":
            self._update(activity, activity_id)
            return
        if activity.get("text"):
            text = message_text(str(activity["text"]), color=self.color, locale=self.identity.locale)
            self._show_lines(self._bot_label(activity), text.split("\n"))
        for attachment in activity.get("attachments") or []:
            if isinstance(attachment, dict):
                self._attachment(attachment, activity_id)
        suggested = activity.get("suggestedActions")
        if isinstance(suggested, dict) and suggested.get("actions"):
            self._new_view("suggested", suggested, activity_id)

    def _attachment(self, attachment: dict[str, Any], activity_id: str) -> None:
        content_type = attachment.get("contentType")
        content = attachment.get("content")
        if content_type == ADAPTIVE_CARD and isinstance(content, dict):
            view = self._new_view("adaptive", content, activity_id)
            self._maybe_refresh(view)
        elif content_type in (HERO_CARD, THUMBNAIL_CARD) and isinstance(content, dict):
            self._new_view("hero", content, activity_id)
        elif content_type == FILE_CONSENT_CARD and isinstance(content, dict):
            self._new_view("file", content, activity_id, name=str(attachment.get("name") or "file"))
        elif content_type == FILE_INFO_CARD:
            name, url = attachment.get("name", "file"), attachment.get("contentUrl", "")
            self.io.show(f"{self._bot_label()} [file] {name} <{url}>")
        else:
            where = attachment.get("contentUrl") or ""
            self.io.show(
                f"{self._bot_label()} [file] {attachment.get('name') or '(unnamed)'} ({content_type})"
                + (f" <{where}>" if where and not str(where).startswith("data:") else "")
            )

    def _new_view(self, kind: str, content: dict[str, Any], activity_id: str, *, name: str = "") -> CardView:
        view = CardView(len(self.views) + 1, kind, content, activity_id, name=name)
        self.views.append(view)
        if self._render(view).actions:
            self.current = view
        self._show_view(view)
        return view

    def _update(self, activity: dict[str, Any], activity_id: str) -> None:
        cards: list[dict[str, Any]] = [
            a["content"]
            for a in activity.get("attachments") or []
            if isinstance(a, dict)
            and a.get("contentType") == ADAPTIVE_CARD
            and isinstance(a.get("content"), dict)
        ]
        existing = [
            view for view in self.views if view.activity_id == activity_id and view.kind == "adaptive"
        ]
        if activity.get("text"):
            text = message_text(str(activity["text"]), color=self.color, locale=self.identity.locale)
            self._show_lines("(message updated)", text.split("\n"))
        for index, card in enumerate(cards):
            if index < len(existing):
                view = existing[index]
                view.content, view.visibility, view.opened = card, {}, set()
                self.io.show("(card updated)")
                self._show_view(view)
            else:
                self._new_view("adaptive", card, activity_id)

    def _maybe_refresh(self, view: CardView) -> None:
        """Teams runs a card's refresh action when it shows it to a listed user, at most once a minute."""
        refresh = view.content.get("refresh")
        action = refresh.get("action") if isinstance(refresh, dict) else None
        if not isinstance(action, dict) or action.get("type") != "Action.Execute":
            return
        user_ids = refresh.get("userIds") if isinstance(refresh, dict) else None
        if user_ids and not {self.identity.user_id, f"8:orgid:{self.identity.aad_object_id}"} & set(user_ids):
            return
        if time.monotonic() - view.refreshed_at < 60:
            return
        view.refreshed_at = time.monotonic()
        value = execute_value(_card_action(action, 0, "refresh", ()), {}, trigger="automatic")
        # After the connector has answered: the bot is still waiting for that answer.
        task = asyncio.get_running_loop().create_task(self.execute(view, value, refresh=True))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _file_saved(self, path: Path) -> None:
        self.io.show(f"(file saved to {path})")

    # -- output -----------------------------------------------------------------------------------------

    def _render(self, view: CardView) -> RenderedCard:
        return view.render(color=self.color, locale=self.identity.locale, timezone=self.identity.timezone)

    def _show_view(self, view: CardView) -> None:
        rendered = self._render(view)
        label = {"adaptive": "card", "hero": "card", "suggested": "suggestions", "file": "file"}[view.kind]
        self.io.show(f"  ┌ {label} {view.number}")
        for line in rendered.lines:
            self.io.show(f"  │ {line}")
        self.io.show("  └")

    def _show_lines(self, label: str, lines: list[str]) -> None:
        pad = " " * len(_strip_ansi(label))
        for index, line in enumerate(lines):
            self.io.show(f"{label if index == 0 else pad} {line}")

    def _bot_label(self, activity: Mapping[str, Any] | None = None) -> str:
        sender = (activity or {}).get("from") or {}
        name = sender.get("name") if isinstance(sender, Mapping) else None
        label = f"{name or self.identity.bot_name} ›"
        return f"{_BOLD_ON}{label}{_BOLD_OFF}" if self.color else label

    def _dim(self, text: str) -> str:
        return f"{_DIM_ON}{text}{_DIM_OFF}" if self.color else text


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


# ---------------------------------------------------------------------------------------------------------
# Terminal
# ---------------------------------------------------------------------------------------------------------


class TerminalIO:
    """Reads lines without blocking the event loop; prints bot messages above a pending prompt."""

    def __init__(self) -> None:
        self.tty = sys.stdin.isatty() and sys.stdout.isatty()
        self._prompt: str | None = None
        self._readline: Any = None
        if self.tty:
            with contextlib.suppress(ImportError):
                import readline  # line editing and history, where the platform has them

                self._readline = readline

    async def ask(self, prompt: str) -> str:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()

        def read() -> None:
            try:
                line = input(prompt)
            except BaseException as exc:  # EOFError, or KeyboardInterrupt on some platforms
                loop.call_soon_threadsafe(_settle, future, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, future, line, None)

        # A daemon thread rather than the default executor: a pending input() must not keep the
        # process alive after Ctrl-C (asyncio.run waits for the default executor's threads).
        self._prompt = prompt
        threading.Thread(target=read, name="guichet-chat-input", daemon=True).start()
        try:
            return await future
        finally:
            self._prompt = None

    def show(self, text: str) -> None:
        if self._prompt is not None and self.tty:
            typed = self._readline.get_line_buffer() if self._readline is not None else ""
            sys.stdout.write(f"\r\x1b[K{text}\n{self._prompt}{typed}")
        else:
            sys.stdout.write(text + "\n")
        sys.stdout.flush()


def _settle(future: asyncio.Future[str], line: str | None, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(EOFError() if isinstance(error, EOFError | KeyboardInterrupt) else error)
    else:
        future.set_result(line or "")


def _use_color(color: bool | None) -> bool:
    if color is not None:
        return color
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


async def chat(
    *,
    url: str = DEFAULT_BOT_URL,
    role: str = "citizen",
    locale: str = "fr-BE",
    profile: Path | None = None,
    new: bool = False,
    aad_object_id: str | None = None,
    name: str | None = None,
    bot_app_id: str = "",
    color: bool | None = None,
    downloads_dir: Path | None = None,
    io: ChatIO | None = None,
) -> int:
    """Chat with the bot at `url` until /quit or end of input; the process exit code."""
    terminal: ChatIO = io or TerminalIO()
    profile_path = profile or default_profile_path()
    try:
        identity = load_identity(
            profile_path,
            role,
            new=new,
            locale=locale,
            bot_app_id=bot_app_id,
            aad_object_id=aad_object_id,
            name=name,
        )
    except ProfileError as exc:
        terminal.show(f"guichet chat: {exc}")
        return 2
    session = ChatSession(
        identity,
        url,
        terminal,
        color=_use_color(color) if io is None else bool(color),
        downloads_dir=downloads_dir or profile_path.parent / "guichet-chat-files",
    )

    def remember(port: int) -> None:
        with contextlib.suppress(ProfileError):
            remember_port(profile_path, role, port)

    return await session.run(remembered_port(profile_path, role), on_listening=remember)


def run_chat(
    *,
    url: str = DEFAULT_BOT_URL,
    role: str = "citizen",
    locale: str = "fr-BE",
    profile: Path | None = None,
    new: bool = False,
    aad_object_id: str | None = None,
    name: str | None = None,
    bot_app_id: str = "",
    color: bool | None = None,
    downloads_dir: Path | None = None,
) -> int:
    """Blocking entry point for `guichet chat`: the process exit code (0, 2 when the bot is unreachable or
    the profile unusable, 130 on Ctrl-C). `color=None` colours when stdout is a terminal."""
    try:
        return asyncio.run(
            chat(
                url=url,
                role=role,
                locale=locale,
                profile=profile,
                new=new,
                aad_object_id=aad_object_id,
                name=name,
                bot_app_id=bot_app_id,
                color=color,
                downloads_dir=downloads_dir,
            )
        )
    except KeyboardInterrupt:
        sys.stdout.write("\n")
        return 130


def add_chat_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `guichet chat`; pass the parsed namespace to `run_chat_from_args`."""
    parser.add_argument("--as", dest="role", choices=ROLES, default="citizen", help="who you play")
    parser.add_argument("--url", default=DEFAULT_BOT_URL, help="the bot's messaging endpoint")
    parser.add_argument(
        "--locale", default="fr-BE", help="Teams client locale, e.g. fr-BE, nl-BE, de-BE, en-GB"
    )
    parser.add_argument(
        "--profile", type=Path, default=None, help=f"identity file (default ~/{PROFILE_FILE_NAME})"
    )
    parser.add_argument("--new", action="store_true", help="play a new person in this role")
    parser.add_argument("--aad-object-id", default=None, help="Entra object id to use (and remember)")
    parser.add_argument("--name", default=None, help="display name to use (and remember)")
    parser.add_argument("--bot-app-id", default="", help="the bot's Microsoft App Id, if it has one")
    parser.add_argument("--no-color", action="store_true", help="plain text output")


def run_chat_from_args(args: argparse.Namespace) -> int:
    return run_chat(
        url=args.url,
        role=args.role,
        locale=args.locale,
        profile=args.profile,
        new=args.new,
        aad_object_id=args.aad_object_id,
        name=args.name,
        bot_app_id=args.bot_app_id,
        color=False if args.no_color else None,
    )


__all__ = [
    "CardAction",
    "CardView",
    "ChatIO",
    "ChatSession",
    "ConnectorStub",
    "Identity",
    "InputError",
    "InputSpec",
    "InvokeOutcome",
    "RenderedCard",
    "TerminalIO",
    "add_chat_arguments",
    "apply_toggle",
    "build_conversation_update",
    "build_installation_update",
    "build_invoke",
    "build_message",
    "chat",
    "collect_inputs",
    "execute_value",
    "input_prompt",
    "interpret_invoke_response",
    "load_identity",
    "parse_answer",
    "render_card",
    "run_chat",
    "run_chat_from_args",
    "submit_payload",
]
