"""The card checker itself: it must catch what Teams would reject or render wrongly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cards.validation import MAX_CARD_BYTES, CardInvalid, card_size_bytes, schema_path, validate_card
from cards.verbs import Verb, execute_action


def _card(*body: dict[str, Any], actions: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    card: dict[str, Any] = {"type": "AdaptiveCard", "version": "1.5", "body": list(body), **extra}
    if actions is not None:
        card["actions"] = actions
    return card


def _problems(card: dict[str, Any]) -> list[str]:
    with pytest.raises(CardInvalid) as caught:
        validate_card(card)
    return caught.value.problems


def test_a_simple_valid_card_passes() -> None:
    validate_card(_card({"type": "TextBlock", "text": "Bonjour", "wrap": True},
                        actions=[execute_action("Aide", Verb.MENU_HELP)]))


def test_execute_action_carries_its_verb_and_a_submit_fallback() -> None:
    action = execute_action("J'accepte", Verb.CONSENT_ACCEPT, {"kind": "terms"}, style="positive")
    assert action["type"] == "Action.Execute"
    assert action["verb"] == "consent_accept"
    assert action["data"] == {"verb": "consent_accept", "kind": "terms"}
    assert action["fallback"] == {
        "type": "Action.Submit", "title": "J'accepte", "style": "positive",
        "data": {"verb": "consent_accept", "kind": "terms"},
    }
    # The fallback's data is a copy: changing one button later cannot change the other.
    assert action["fallback"]["data"] is not action["data"]


def test_execute_action_refuses_data_that_overrides_the_verb() -> None:
    with pytest.raises(ValueError, match="verb"):
        execute_action("X", Verb.MENU_BOOK, {"verb": "consent_accept"})


def test_execute_without_submit_fallback_is_rejected() -> None:
    bare = {"type": "Action.Execute", "title": "Go", "verb": "menu_book", "data": {"verb": "menu_book"}}
    problems = _problems(_card({"type": "TextBlock", "text": "x"}, actions=[bare]))
    assert problems == ["actions/0: Action.Execute needs an Action.Submit fallback"]


def test_fallback_with_another_verb_is_rejected() -> None:
    action = execute_action("Go", Verb.MENU_BOOK)
    action["fallback"]["data"]["verb"] = "menu_help"
    problems = _problems(_card({"type": "TextBlock", "text": "x"}, actions=[action]))
    assert problems == ["actions/0: the Action.Submit fallback must carry the verb 'menu_book' in data"]


def test_nested_execute_actions_are_checked_too() -> None:
    bare = {"type": "Action.Execute", "title": "Go", "verb": "menu_book"}
    card = _card({"type": "Container", "items": [{"type": "ActionSet", "actions": [bare]}]})
    assert any(p.startswith("body/0/items/0/actions/0: Action.Execute needs") for p in _problems(card))


def test_schema_errors_name_the_element_and_the_allowed_values() -> None:
    problems = _problems(_card({"type": "TextBlock", "text": "x", "size": "huge"}))
    assert problems == [
        "body/0/size: 'huge' is not one of ['default', 'extraLarge', 'large', 'medium', 'small']"
    ]
    unknown = _card({"type": "TextBlok", "text": "x"})
    assert _problems(unknown) == ["body/0: unknown or misplaced type 'TextBlok'"]
    assert _problems(_card({"type": "TextBlock"})) == ["body/0: 'text' is a required property"]


def test_version_must_be_1_5() -> None:
    card = _card({"type": "TextBlock", "text": "x"})
    card["version"] = "1.6"
    assert _problems(card) == ["version: must be '1.5', not '1.6'"]


def test_toggle_targets_must_exist_and_ids_be_unique() -> None:
    card = _card(
        {"type": "TextBlock", "text": "a", "id": "a"},
        {"type": "TextBlock", "text": "b", "id": "a"},
        actions=[{"type": "Action.ToggleVisibility", "title": "t", "targetElements": ["missing"]}],
    )
    assert _problems(card) == [
        "body/1: id 'a' already used at body/0",
        "actions/0: toggles 'missing', which is not in the card",
    ]


def test_oversized_card_is_rejected() -> None:
    words = "données " * 4000
    card = _card({"type": "TextBlock", "text": words, "wrap": True})
    assert card_size_bytes(card) > MAX_CARD_BYTES
    (problem,) = _problems(card)
    assert problem.startswith("size: ") and str(MAX_CARD_BYTES) in problem


def test_size_counts_utf8_bytes_of_compact_json() -> None:
    small = _card({"type": "TextBlock", "text": "e"})
    accented = _card({"type": "TextBlock", "text": "é"})
    assert card_size_bytes(accented) == card_size_bytes(small) + 1


def test_schema_folder_can_be_overridden(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GUICHET_SCHEMAS_DIR", str(tmp_path))
    assert schema_path() == tmp_path / "adaptive-cards" / "1.5.0" / "adaptive-card.json"
    with pytest.raises(FileNotFoundError, match="GUICHET_SCHEMAS_DIR"):
        validate_card(_card({"type": "TextBlock", "text": "x"}))
