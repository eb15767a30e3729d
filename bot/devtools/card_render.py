"""Adaptive Cards, hero cards, suggested actions and file consent cards as numbered terminal lines.

`render_card` walks a card as the Adaptive Card renderers do (containers, columns, tables, fact sets,
inputs, action sets, show cards, toggled visibility) and returns its lines and its actions, numbered in
reading order so that the user can choose one by number. Choosing is not done here: the session sends
what Teams would send (see `activities`), or changes the card's local state (`apply_toggle`, opened show
cards) and renders it again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from bot.devtools.activities import CLIENT_TIMEZONE
from bot.devtools.card_inputs import InputSpec, card_inputs, element_children, input_spec, is_visible
from bot.devtools.markdown import bold_text, dim_text, format_markdown, message_text, plain, shorten


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
    """A card as terminal lines, its actions (numbered from 1) and the inputs of its body."""

    lines: list[str]
    actions: list[CardAction]
    inputs: list[InputSpec]


def default_visibility(card: Mapping[str, Any]) -> dict[str, bool]:
    """The declared visibility of every element with an id, show cards included."""
    result: dict[str, bool] = {}

    def walk(elements: Iterable[Any]) -> None:
        for element in elements:
            if not isinstance(element, Mapping):
                continue
            if isinstance(element.get("id"), str):
                result[element["id"]] = element.get("isVisible", True) is not False
            walk(element_children(element))
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
            return shorten(plain(str(current["text"])))
        if kind == "RichTextBlock":
            text = "".join(_inline_text(inline) for inline in current.get("inlines") or [])
            if text.strip():
                return shorten(text)
        if kind == "FactSet" and current.get("facts"):
            return shorten(plain(str(current["facts"][0].get("title", ""))))
        if str(kind).startswith("Input.") and (current.get("label") or current.get("title")):
            return shorten(plain(str(current.get("label") or current.get("title"))))
        stack.extend(element_children(current))
    return str(element.get("id") or "more")


def _inline_text(inline: Any) -> str:
    if isinstance(inline, str):
        return inline
    if isinstance(inline, Mapping):
        return str(inline.get("text", ""))
    return ""


@dataclass(frozen=True)
class _Sections:
    """A card's collapsible sections: elements shown and hidden by a heading, rather than by a button.

    cards/document.py writes each section of a consent document as a heading container whose
    `selectAction` is an Action.ToggleVisibility, and a hidden body it shows. Teams draws the heading
    only; the terminal prints it as one numbered line with ▸ (folded) or ▾ (open), and nothing for the
    folded body, instead of the heading, its two arrow variants, a button and a preview.
    """

    declared: Mapping[str, bool]  # each element id's own isVisible
    by_heading: frozenset[str]  # ids only a heading toggles

    @classmethod
    def of(cls, card: Mapping[str, Any]) -> _Sections:
        by_heading: set[str] = set()
        by_button: set[str] = set()
        stack: list[Any] = [card]
        while stack:
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(node)
            elif isinstance(node, Mapping):
                select = node.get("selectAction")
                if _is_toggle(select):
                    by_heading.update(target for target, _ in _targets(select))
                for action in node.get("actions") or [] if isinstance(node.get("actions"), list) else []:
                    if _is_toggle(action):
                        by_button.update(target for target, _ in _targets(action))
                stack.extend(value for key, value in node.items() if key != "selectAction")
        return cls(default_visibility(card), frozenset(by_heading - by_button))


def _is_toggle(action: Any) -> TypeGuard[Mapping[str, Any]]:
    return isinstance(action, Mapping) and action.get("type") == "Action.ToggleVisibility"


def _ids_within(element: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    stack: list[Any] = [element]
    while stack:
        current = stack.pop()
        if isinstance(current, Mapping):
            if isinstance(current.get("id"), str):
                found.add(current["id"])
            stack.extend(element_children(current))
    return found


class _CardRenderer:
    def __init__(
        self,
        *,
        color: bool,
        visibility: Mapping[str, bool],
        opened: set[str] | frozenset[str],
        locale: str,
        timezone: str,
        sections: _Sections,
    ) -> None:
        self.color = color
        self.visibility = visibility
        self.opened = opened
        self.locale = locale
        self.timezone = timezone
        self.sections = sections
        self.lines: list[str] = []
        self.actions: list[CardAction] = []
        self.collapsed: list[tuple[int, str]] = []
        self.after_heading = -1  # len(lines) right after the last section heading

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
        element_id = element.get("id")
        in_section = isinstance(element_id, str) and element_id in self.sections.by_heading
        if not is_visible(element, self.visibility):
            if in_section:
                return  # its heading's line says it can be opened
            if isinstance(element_id, str):
                self.collapsed.append((len(self.lines), element_id))
            self.lines.append(f"{indent}[+] {_heading(element)}")
            return
        select = element.get("selectAction")
        heading = _is_toggle(select) and element.get("type") != "ActionSet"
        if (
            not first
            and self.lines
            and (element.get("separator") or element.get("spacing") in ("large", "extraLarge", "padding"))
            # Folded sections one under the other read as a list: no blank line between them.
            and not (heading and self.after_heading == len(self.lines))
        ):
            self.lines.append("")
        if heading and isinstance(select, Mapping):
            self.section_heading(element, select, indent, scope, path)
            return
        if in_section:
            indent += "  "  # an open section's text, under its heading
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
            self.input_line(input_spec(element, True), indent)
        else:
            self.emit(indent, f"[{kind}]")
        if isinstance(select, Mapping) and kind != "ActionSet":
            titled = dict(select)
            titled.setdefault("title", _heading(element))
            self.action_row([titled], indent, scope, f"{path}/selectAction")

    def section_heading(
        self, element: Mapping[str, Any], select: Mapping[str, Any], indent: str, scope: tuple[InputSpec, ...],
        path: str,
    ) -> None:
        """One line for a collapsible section's heading: its number, title, and ▸ or ▾ for its body."""
        titled = dict(select)
        titled.setdefault("title", _heading(element))
        action = card_action(titled, len(self.actions) + 1, f"{path}/selectAction", scope)
        self.actions.append(action)
        # The heading's own items (the arrow variants the card swaps) are its label, not its body.
        body = [target for target, _ in action.targets if target not in _ids_within(element)]
        shown = [self.visibility.get(target, self.sections.declared.get(target, True)) for target in body]
        marker = (" ▾" if any(shown) else " ▸") if body else ""
        label = self.action_label(action) + marker
        self.emit(indent, bold_text(label) if self.color else label)
        self.after_heading = len(self.lines)

    def text_block(self, element: Mapping[str, Any], indent: str) -> None:
        text = self.md(str(element.get("text", "")))
        strong = (
            element.get("weight") == "bolder"
            or element.get("style") == "heading"
            or element.get("size") in ("large", "extraLarge")
        )
        if self.color and strong:
            text = bold_text(text)
        elif self.color and element.get("isSubtle"):
            text = dim_text(text)
        self.emit(indent, text)

    def rich_text(self, element: Mapping[str, Any], indent: str) -> None:
        parts = []
        for inline in element.get("inlines") or []:
            text = _inline_text(inline)
            if self.color and isinstance(inline, Mapping) and inline.get("weight") == "bolder":
                text = bold_text(text)
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
                    sections=self.sections,
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
            action = card_action(raw, len(self.actions) + 1, f"{path}/{index}", scope)
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


def card_action(raw: Mapping[str, Any], number: int, key: str, scope: tuple[InputSpec, ...]) -> CardAction:
    """One action of a card's JSON as a CardAction; Submit and Execute gather the inputs in `scope`."""
    kind = str(raw.get("type", ""))
    title = str(raw.get("title") or raw.get("verb") or kind.removeprefix("Action."))
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
        targets=_targets(raw),
        inputs=scope if gathers else (),
        enabled=raw.get("isEnabled", True) is not False,
    )


def _targets(raw: Mapping[str, Any]) -> tuple[tuple[str, bool | None], ...]:
    """(element id, visibility it sets, None to flip it) of each target of an Action.ToggleVisibility."""
    targets: list[tuple[str, bool | None]] = []
    for target in raw.get("targetElements") or []:
        if isinstance(target, str):
            targets.append((target, None))
        elif isinstance(target, Mapping) and isinstance(target.get("elementId"), str):
            wanted = target.get("isVisible")
            targets.append((target["elementId"], wanted if isinstance(wanted, bool) else None))
    return tuple(targets)


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
        color=color,
        visibility=visibility or {},
        opened=opened,
        locale=locale,
        timezone=timezone,
        sections=_Sections.of(card),
    )
    renderer.card(card, "", (), "card")
    renderer.annotate_collapsed()
    return RenderedCard(renderer.lines, renderer.actions, card_inputs(card, visibility))


def render_hero_card(content: Mapping[str, Any], *, color: bool = False) -> RenderedCard:
    """A hero or thumbnail card (botbuilder's ChoicePrompt sends these to Teams) with its buttons."""
    lines: list[str] = []
    if content.get("title"):
        title = message_text(str(content["title"]), color=color)
        lines.append(bold_text(title) if color else title)
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
    """A message's suggested actions: the buttons Teams shows under it until the user answers."""
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
