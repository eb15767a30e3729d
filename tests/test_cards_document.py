"""Agency documents: parsing the source, rendering safe card Markdown, collapsible sections."""

from __future__ import annotations

import re
from typing import Any

import pytest

from cards.document import (
    DocumentTexts,
    document_elements,
    escape_markdown,
    inline_markdown,
    parse_document,
)
from cards.validation import validate_card

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
