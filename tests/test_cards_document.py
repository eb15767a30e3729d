"""Agency documents: parsing the source, rendering safe card Markdown, collapsible sections."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cards.document import (
    DocumentTexts,
    RenderedDocument,
    document_elements,
    escape_markdown,
    fit_document,
    inline_markdown,
    parse_document,
)
from cards.validation import card_size_bytes, validate_card
from tests.oracles import fit_card

TEXTS = DocumentTexts(
    expand_hint="Tap a heading.",
    full_text_notice="Too long for the chat.",
    full_text_button="Read the full text",
    website="https://www.agency.example",
)

SOURCE = """\
# Conditions d'utilisation

## L'essentiel

- Le service est **gratuit**.
- Vous pouvez annuler jusqu'à 2 heures avant.

## Comment prendre rendez-vous

Vous choisissez le sujet,
puis le jour et l'heure.

- une caméra ;
- une connexion stable,
  de préférence par câble.

### Détail

Voir [notre site](https://www.agency.example/aide).

## Contact

Écrivez à contact@agency.example.
"""

# An unescaped link opener: `[` not preceded by a backslash, later followed by an unescaped `](`.
_LIVE_LINK = re.compile(r"(?<!\\)\[[^\]]*(?<!\\)\]\((?P<url>[^)]*)\)")


def _card(elements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "AdaptiveCard", "version": "1.5", "body": elements}


def _texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["text"]] if node.get("type") == "TextBlock" else []
        return found + [text for value in node.values() for text in _texts(value)]
    if isinstance(node, list):
        return [text for value in node for text in _texts(value)]
    return []


def test_parse_splits_title_summary_and_sections() -> None:
    doc = parse_document(SOURCE)
    assert doc.title == "Conditions d'utilisation"
    assert doc.summary is not None and doc.summary.heading == "L'essentiel"
    assert [b.text for b in doc.summary.blocks] == [
        "Le service est **gratuit**.",
        "Vous pouvez annuler jusqu'à 2 heures avant.",
    ]
    assert [s.heading for s in doc.sections] == ["Comment prendre rendez-vous", "Contact"]
    how = doc.sections[0].blocks
    assert how[0].kind == "paragraph" and how[0].text == "Vous choisissez le sujet, puis le jour et l'heure."
    assert how[2].text == "une connexion stable, de préférence par câble."
    assert how[3].kind == "subheading"


def test_parse_accepts_windows_line_endings() -> None:
    assert parse_document(SOURCE.replace("\n", "\r\n")) == parse_document(SOURCE)


def test_summary_is_shown_and_sections_start_collapsed() -> None:
    elements = document_elements(parse_document(SOURCE), TEXTS, id_prefix="t")
    validate_card(_card(elements))
    shown = [e["text"] for e in elements if e["type"] == "TextBlock"]
    assert "• Le service est **gratuit**." in shown
    bodies = [e for e in elements if e["type"] == "Container" and e.get("id")]
    assert len(bodies) == 2 and all(body["isVisible"] is False for body in bodies)
    assert any("Écrivez à contact@agency.example." in text for text in _texts(bodies[1]))


def test_each_heading_toggles_its_own_section() -> None:
    elements = document_elements(parse_document(SOURCE), TEXTS, id_prefix="t")
    headers = [e for e in elements if e["type"] == "Container" and "selectAction" in e]
    bodies = [e for e in elements if e["type"] == "Container" and e.get("id")]
    for header, body in zip(headers, bodies, strict=True):
        toggle = header["selectAction"]
        assert toggle["type"] == "Action.ToggleVisibility"
        assert body["id"] in toggle["targetElements"]
        # The arrow flips: the closed and open headings are toggled together with the body.
        arrows = {item["id"]: item for item in header["items"]}
        assert set(toggle["targetElements"]) == {body["id"], *arrows}
        assert sorted(item.get("isVisible", True) for item in arrows.values()) == [False, True]


def test_trimmed_document_offers_the_full_text_online() -> None:
    elements = document_elements(parse_document(SOURCE), TEXTS, id_prefix="t", sections_shown=1)
    validate_card(_card(elements))
    assert "Écrivez à contact@agency.example." not in " ".join(_texts(elements))
    open_url = [a for e in elements if e["type"] == "ActionSet" for a in e["actions"]]
    assert open_url == [{"type": "Action.OpenUrl", "title": "Read the full text", "url": TEXTS.website}]


def test_bold_and_web_links_are_kept() -> None:
    assert inline_markdown("Le service est **gratuit**.") == "Le service est **gratuit**."
    text = "Voir [notre site](https://www.agency.example/a_b) ou [écrire](mailto:contact@agency.example)."
    assert inline_markdown(text) == text
    # Parentheses inside an address are encoded, so no renderer ends the link early.
    assert inline_markdown("[wiki](https://wiki.example/A_(b))") == "[wiki](https://wiki.example/A_%28b%29)"


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "javascript:void0", "data:text/html;base64,PHNjcmlwdD4=", "file:///etc/passwd"]
)
def test_links_to_anything_but_web_mail_or_phone_lose_their_address(url: str) -> None:
    rendered = inline_markdown(f"Cliquez [ici]({url}) maintenant.")
    assert _LIVE_LINK.search(rendered) is None
    assert rendered == "Cliquez ici maintenant."


@pytest.mark.parametrize(
    "line",
    [
        "<script>alert('x')</script>",
        "Texte ![image](https://evil.example/pixel.png) caché",
        "[faux bouton](https://evil.example) ](https://evil.example)",
        "Ceci est *important et __souligné",
        "**gras non fermé et [crochet",
        "\\[échappé\\](https://evil.example)",
    ],
)
def test_document_lines_cannot_inject_markup(line: str) -> None:
    source = f"# Titre\n\n## L'essentiel\n\n- {line}\n\n## Section\n\n{line}\n"
    elements = document_elements(parse_document(source), TEXTS, id_prefix="t")
    validate_card(_card(elements))
    for text in _texts(elements):
        for match in _LIVE_LINK.finditer(text):
            # The only live link is one the author wrote as a whole, well-formed, to the web.
            assert match.group("url").startswith("https://")
            assert "[faux bouton](https://evil.example)" in line
        assert not re.search(r"(?<![\\*])\*(?![\s*])[^*]*(?<![\s\\])\*(?!\*)", text), text
    # A script tag stays visible text in a TextBlock: no new element, nothing dropped.
    if "<script>" in line:
        assert any("<script>alert('x')</script>" in text for text in _texts(elements))
        assert {e["type"] for e in elements} <= {"TextBlock", "Container", "ActionSet"}


def test_escaping_leaves_ordinary_text_alone() -> None:
    ordinary = ["jean_dupont@agency.example", "5 * 3 = 15", "Rue de l'Exemple 10 – 1000 Bruxelles", "50 %"]
    for text in ordinary:
        assert escape_markdown(text) == text


def test_escaping_neutralises_emphasis_and_brackets() -> None:
    assert escape_markdown("*important*") == "\\*important\\*"
    assert escape_markdown("_souligné_") == "\\_souligné\\_"
    assert escape_markdown("[1]") == "\\[1\\]"


# --- Fast escaping and rendered-once documents ----------------------------------------------------

_ASCII_PUNCTUATION = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def _escape_one_by_one(text: str) -> str:
    """The character-by-character escaping `escape_markdown` must keep giving, byte for byte."""
    out: list[str] = []
    for i, ch in enumerate(text):
        before = text[i - 1] if i > 0 else " "
        after = text[i + 1] if i + 1 < len(text) else " "
        if ch in "[]":
            out.append("\\" + ch)
        elif ch == "*" and not (before.isspace() and after.isspace()):
            out.append("\\*")
        elif ch == "_" and not (before.isalnum() and after.isalnum()) and not (
            before.isspace() and after.isspace()
        ):
            out.append("\\_")
        elif ch == "\\" and (after in _ASCII_PUNCTUATION or i == len(text) - 1):
            out.append("\\\\")
        else:
            out.append(ch)
    return "".join(out)


# Markup characters packed close together, beside letters, digits and spaces of every kind
# (non-breaking, ideographic, Arabic-Indic digits...), where the context rules decide.
_MARKUP_HEAVY = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("[]*_\\!.(`#-a1é\u00a0\u3000\u0663\t\n ")),
        st.characters(),
    ),
    max_size=40,
)


@given(_MARKUP_HEAVY)
@settings(max_examples=3000, deadline=None)
def test_escape_markdown_gives_what_the_character_loop_gave(text: str) -> None:
    assert escape_markdown(text) == _escape_one_by_one(text)


def test_escape_markdown_edge_cases_match_the_character_loop() -> None:
    for text in ["", "\\", "_", "*", " * ", "a_b", "a_", "_a", "\\[", "a\\", "x\\y", "é_ü", "1_2", "\u00a0*\u00a0",
                 "[**]", "__init__", "\\\\", "\u0663_\u0664", "a\u3000_\u3000b"]:
        assert escape_markdown(text) == _escape_one_by_one(text), repr(text)


def _long_source(sections: int) -> str:
    parts = ["# Titre _long_\n\nUn préambule [lien](https://x.example).\n\n## L'essentiel\n\n- **gratuit**\n"]
    for number in range(sections):
        parts.append(f"\n## Section {number} *étoile*\n\n" + "Du texte [ici] et là, encore. " * 12 + "\n\n- point\n")
    return "".join(parts)


def test_rendered_document_gives_document_elements_for_every_section_count() -> None:
    parsed = parse_document(_long_source(6))
    rendered = RenderedDocument(parsed, TEXTS, id_prefix="p", subtitle="Version 2 · 1er mars")
    for shown in (None, 0, 1, 3, 5, 6, 9):
        expected = document_elements(parsed, TEXTS, id_prefix="p", subtitle="Version 2 · 1er mars",
                                     sections_shown=shown)
        assert rendered.elements(shown) == expected, shown


def test_rendered_elements_are_fresh_copies_each_time() -> None:
    parsed = parse_document(_long_source(3))
    rendered = RenderedDocument(parsed, TEXTS, id_prefix="t")
    first = rendered.elements()
    # What a caller may do to its card afterwards: change texts, ids, targets, data, the list itself.
    first[0]["text"] = "changed"
    toggle = next(e for e in first if "selectAction" in e)["selectAction"]
    toggle["targetElements"].append("x")
    toggle["data"] = {"card_id": "abc"}
    first[-1]["items"] = []
    first.append({"type": "TextBlock", "text": "extra"})
    assert rendered.elements() == document_elements(parsed, TEXTS, id_prefix="t")
    assert rendered.elements() is not rendered.elements()


def _skeleton(body: list[dict[str, Any]]) -> dict[str, Any]:
    accept = {"type": "Action.Execute", "title": "Accepter", "verb": "v", "data": {"verb": "v", "ref": "é" * 9}}
    return {"type": "AdaptiveCard", "version": "1.5", "lang": "fr", "body": body, "actions": [accept]}


@pytest.mark.parametrize("around", ["both", "before", "after", "none"])
@pytest.mark.parametrize("subtitle", [None, "Version 2"])
def test_fit_document_trims_exactly_like_fit_card(around: str, subtitle: str | None) -> None:
    # Every budget from "not even the summary" to "everything": the same sections kept, the same bytes.
    parsed = parse_document(_long_source(8))
    rendered = RenderedDocument(parsed, TEXTS, id_prefix="t", subtitle=subtitle)
    before = [{"type": "TextBlock", "text": "Intro – à lire", "wrap": True}] if around in ("both", "before") else []
    after = [{"type": "TextBlock", "text": "Acceptez-vous ?", "wrap": True}] if around in ("both", "after") else []

    def build(shown: int | None) -> dict[str, Any]:
        elements = document_elements(parsed, TEXTS, id_prefix="t", subtitle=subtitle, sections_shown=shown)
        return _skeleton([*copy.deepcopy(before), *elements, *copy.deepcopy(after)])

    full = card_size_bytes(build(None))
    for budget in [*range(100, full + 400, 97), full, full + 1]:
        expected = fit_card(build, len(parsed.sections), budget=budget)
        card = fit_document(_skeleton([*copy.deepcopy(before), *copy.deepcopy(after)]), len(before), rendered,
                            budget=budget)
        assert json.dumps(card, ensure_ascii=False) == json.dumps(expected, ensure_ascii=False), budget


def test_fit_document_with_an_empty_document() -> None:
    rendered = RenderedDocument(parse_document(""), TEXTS, id_prefix="t")
    card = fit_document(_skeleton([]), 0, rendered)
    assert card["body"] == []
