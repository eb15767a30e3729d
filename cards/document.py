"""Terms-of-use and privacy documents: parse their Markdown-like source and render card elements.

Source format (one file per language, see `deployment/agencies/<id>/`):

    # Title
    ## Key points            <- the first `##` section: the summary, shown in full
    - point
    ## Section heading       <- every further section: collapsed under a tappable heading
    Paragraph with **bold** and [a link](https://example.org).
    - bullet

Only `**bold**` and links with an http(s), mailto or tel address are kept as formatting; every other
character that card Markdown would interpret is escaped, so a document cannot inject links, emphasis
or lists. A card must stay small: `fit_document` drops trailing sections when needed and the caller
offers the full text on the agency's website. `RenderedDocument` and `fit_document` give the same
cards from a document rendered once, for builders that run on every citizen's turn.
"""

from __future__ import annotations

import json
import pickle
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from cards.validation import MAX_CARD_BYTES, card_size_bytes

# Leaves room for the activity envelope around the card.
DOCUMENT_CARD_BUDGET = MAX_CARD_BYTES - 2 * 1024

BlockKind = Literal["paragraph", "bullet", "subheading"]


@dataclass(frozen=True)
class Block:
    kind: BlockKind
    text: str


@dataclass(frozen=True)
class Section:
    heading: str
    blocks: tuple[Block, ...] = ()


@dataclass(frozen=True)
class ParsedDocument:
    title: str
    # Text between the title and the first `##` heading, rare but kept.
    preamble: tuple[Block, ...] = ()
    summary: Section | None = None
    sections: tuple[Section, ...] = field(default_factory=tuple)


_BULLET = re.compile(r"^\s{0,3}[-*+]\s+(.*)$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


@lru_cache(maxsize=64)
def parse_document(source: str) -> ParsedDocument:
    """Split a document into title, summary and sections; tolerant of blank lines and CRLF."""
    title = ""
    preamble: list[Block] = []
    sections: list[tuple[str, list[Block]]] = []
    paragraph: list[str] = []
    # The block list lines are appended to: the preamble until the first `##` heading.
    current: list[Block] = preamble

    def flush() -> None:
        if paragraph:
            current.append(Block("paragraph", " ".join(paragraph)))
            paragraph.clear()

    for raw in source.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.strip()
        heading = _HEADING.match(line)
        bullet = _BULLET.match(raw)
        if not line:
            flush()
        elif heading:
            flush()
            level, text = len(heading.group(1)), heading.group(2)
            if level == 1 and not title:
                title = text
            elif level <= 2:
                current = []
                sections.append((text, current))
            else:
                current.append(Block("subheading", text))
        elif bullet:
            flush()
            current.append(Block("bullet", bullet.group(1).strip()))
        elif raw[:1].isspace() and current and current[-1].kind == "bullet" and not paragraph:
            # An indented line continues the bullet above it.
            current[-1] = Block("bullet", f"{current[-1].text} {line}")
        else:
            paragraph.append(line)
    flush()
    parsed = [Section(heading, tuple(blocks)) for heading, blocks in sections]
    return ParsedDocument(
        title=title,
        preamble=tuple(preamble),
        summary=parsed[0] if parsed else None,
        sections=tuple(parsed[1:]),
    )


# --- Inline Markdown ------------------------------------------------------------------------------

# A link's address may hold balanced parentheses (`javascript:alert(1)` must be seen as one address).
_INLINE = re.compile(
    r"\*\*(?P<bold>[^*\n]+?)\*\*|\[(?P<label>[^\[\]\n]+)\]\((?P<url>(?:[^()\s]|\([^()\s]*\))+)\)"
)
_SAFE_URL = re.compile(
    r"^(?:https?://[^\s<>\"'\[\]\\]+"
    r"|mailto:[^\s<>\"'\[\]\\/]+@[^\s<>\"'\[\]\\/]+"
    r"|tel:\+?[0-9().-]+)$",
    re.IGNORECASE,
)
_ASCII_PUNCTUATION = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def inline_markdown(text: str) -> str:
    """Card Markdown for one line of document text: bold and safe links kept, the rest literal."""
    out: list[str] = []
    position = 0
    for match in _INLINE.finditer(text):
        out.append(escape_markdown(text[position:match.start()]))
        if match.group("bold") is not None:
            inner = match.group("bold").strip()
            out.append(f"**{escape_markdown(inner)}**" if inner else escape_markdown(match.group(0)))
        else:
            label, url = match.group("label"), match.group("url")
            # A link to anything but the web, mail or phone keeps only its label; so does `![…](…)`,
            # which some renderers would show as an image fetched from anywhere.
            image = match.start() > 0 and text[match.start() - 1] == "!"
            live = _SAFE_URL.match(url) and not image
            # Encoded parentheses: not every renderer balances them inside a link's address.
            address = url.replace("(", "%28").replace(")", "%29")
            out.append(f"[{escape_markdown(label)}]({address})" if live else escape_markdown(label))
        position = match.end()
    out.append(escape_markdown(text[position:]))
    return "".join(out)


# The only characters `escape_markdown` may change; text without any of them is returned as it is.
_MARKDOWN_SPECIAL = re.compile(r"[\[\]*_\\]")


def escape_markdown(text: str) -> str:
    """Text that card Markdown shows literally.

    Renderers differ in which backslash escapes they honour, so only characters that would change
    the rendering are escaped: brackets always, `*` and `_` only where they could open or close
    emphasis (an e-mail address like `jean_dupont@` or "5 * 3" stays untouched).
    """
    # Most texts hold none of the special characters: one scan in C, no per-character loop.
    if _MARKDOWN_SPECIAL.search(text) is None:
        return text
    last = len(text) - 1

    def escape(match: re.Match[str]) -> str:
        ch = match.group()
        i = match.start()
        if ch in "[]":
            return "\\" + ch
        before = text[i - 1] if i > 0 else " "
        after = text[i + 1] if i < last else " "
        if ch == "*":
            return ch if before.isspace() and after.isspace() else "\\*"
        if ch == "_":
            keep = (before.isalnum() and after.isalnum()) or (before.isspace() and after.isspace())
            return ch if keep else "\\_"
        # A backslash: at the end it could escape whatever markup follows this piece of text.
        return "\\\\" if after in _ASCII_PUNCTUATION or i == last else ch

    return _MARKDOWN_SPECIAL.sub(escape, text)


# --- Card elements --------------------------------------------------------------------------------

@dataclass(frozen=True)
class DocumentTexts:
    """The few words around a document, in the reader's language (from the message catalogs)."""

    expand_hint: str
    full_text_notice: str
    full_text_button: str
    website: str


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _block_element(block: Block) -> dict[str, Any]:
    if block.kind == "bullet":
        return _text(f"• {inline_markdown(block.text)}")
    if block.kind == "subheading":
        return _text(escape_markdown(block.text), weight="bolder")
    return _text(inline_markdown(block.text))


def _section_elements(section: Section, section_id: str) -> list[dict[str, Any]]:
    # Short ids: each appears twice per section, and the card's size is tight.
    body_id, closed_id, open_id = f"{section_id}b", f"{section_id}c", f"{section_id}o"
    heading = escape_markdown(section.heading)
    toggle = {
        "type": "Action.ToggleVisibility",
        "title": section.heading,
        "targetElements": [body_id, closed_id, open_id],
    }
    # The whole heading row is the toggle: a wide target on a phone, and the heading wraps, which a
    # button title would not. The arrow shows whether the section is open.
    header = {
        "type": "Container",
        "selectAction": toggle,
        "separator": True,
        "items": [
            _text(f"▸ {heading}", id=closed_id, weight="bolder", color="accent"),
            _text(f"▾ {heading}", id=open_id, weight="bolder", color="accent", isVisible=False,
                  spacing="none"),
        ],
    }
    body = {
        "type": "Container",
        "id": body_id,
        "isVisible": False,
        "spacing": "small",
        "items": [_block_element(block) for block in section.blocks] or [_text("—", isSubtle=True)],
    }
    return [header, body]


def document_elements(
    document: ParsedDocument,
    texts: DocumentTexts,
    *,
    id_prefix: str,
    subtitle: str | None = None,
    sections_shown: int | None = None,
) -> list[dict[str, Any]]:
    """Title, summary in full, then each section collapsed; `sections_shown` trims trailing ones.

    `subtitle` (ours, not escaped) goes under the title, e.g. the version and publication date.
    """
    elements: list[dict[str, Any]] = []
    if document.title:
        title = escape_markdown(document.title)
        elements.append(_text(title, size="large", weight="bolder", style="heading"))
    if subtitle:
        elements.append(_text(subtitle, isSubtle=True, size="small", spacing="none"))
    elements += [_block_element(block) for block in document.preamble]
    if document.summary is not None:
        elements.append(_text(escape_markdown(document.summary.heading), weight="bolder", spacing="medium"))
        elements += [_block_element(block) for block in document.summary.blocks]
    shown = document.sections if sections_shown is None else document.sections[:sections_shown]
    if shown:
        elements.append(_text(texts.expand_hint, isSubtle=True, size="small", spacing="medium"))
    for index, section in enumerate(shown, start=1):
        elements += _section_elements(section, f"{id_prefix}{index}")
    if len(shown) < len(document.sections):
        elements.append(_text(texts.full_text_notice, spacing="medium", isSubtle=True))
        elements.append({
            "type": "ActionSet",
            "actions": [{"type": "Action.OpenUrl", "title": texts.full_text_button, "url": texts.website}],
        })
    return elements


# --- Rendered once, handed out many times --------------------------------------------------------

class RenderedDocument:
    """`document_elements` of one document for every number of sections shown, rendered once.

    Parsing and escaping a document costs milliseconds, and every citizen reads the same text: the
    elements are kept serialised and each call gets a fresh copy, so whatever a caller does to its
    card later (stamping card ids into actions, for one) never reaches the cache or another card.
    """

    def __init__(
        self, document: ParsedDocument, texts: DocumentTexts, *, id_prefix: str, subtitle: str | None = None
    ) -> None:
        self._document = document
        self._texts = texts
        self._id_prefix = id_prefix
        self._subtitle = subtitle
        self.section_count = len(document.sections)
        # sections shown -> (pickled element list, count, bytes the elements add to a card's body)
        self._variants: dict[int, tuple[bytes, int, int]] = {}

    def _variant(self, shown: int) -> tuple[bytes, int, int]:
        variant = self._variants.get(shown)
        if variant is None:
            elements = document_elements(
                self._document, self._texts, id_prefix=self._id_prefix, subtitle=self._subtitle,
                sections_shown=shown,
            )
            # Compact JSON of a list is "[" + ",".join(items) + "]": its items' size without brackets.
            size = len(json.dumps(elements, ensure_ascii=False, separators=(",", ":")).encode("utf-8")) - 2
            variant = (pickle.dumps(elements, pickle.HIGHEST_PROTOCOL), len(elements), size)
            self._variants[shown] = variant
        return variant

    def elements(self, sections_shown: int | None = None) -> list[dict[str, Any]]:
        """A fresh copy of `document_elements(..., sections_shown=sections_shown)`."""
        shown = self.section_count if sections_shown is None else min(sections_shown, self.section_count)
        return pickle.loads(self._variant(shown)[0])  # type: ignore[no-any-return]

    def added_bytes(self, sections_shown: int, *, body_empty: bool) -> int:
        """How many bytes the elements add to a card's compact JSON when put into its body."""
        _, count, size = self._variant(sections_shown)
        # One comma joins them to elements already in the body.
        return size + 1 if count and not body_empty else max(size, 0)


def fit_document(
    card: dict[str, Any], index: int, document: RenderedDocument, *, budget: int = DOCUMENT_CARD_BUDGET
) -> dict[str, Any]:
    """`card` with the document's elements put into its body at `index`, as many sections as fit.

    The card a builder would get by adding sections one at a time while it stays under `budget`
    (tests/oracles.fit_card), but measured once without the document, the document's sizes cached.
    """
    body = card["body"]
    base = card_size_bytes(card)
    shown = document.section_count
    while base + document.added_bytes(shown, body_empty=not body) >= budget and shown > 0:
        shown -= 1
    body[index:index] = document.elements(shown)
    return card
