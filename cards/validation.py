"""Checks a card against the official Adaptive Cards 1.5 schema and against our own rules.

Our rules: `"version": "1.5"`; every `Action.Execute` carries its verb in `data` and has an
`Action.Submit` fallback with the same verb (older clients); element ids are unique and every
`Action.ToggleVisibility` target exists; the card stays under `MAX_CARD_BYTES`.

Used by the tests, not on the hot path. The schema is the copy vendored in `bot/schemas/` (see its
SOURCES.md), or the one in the folder named by the environment variable `GUICHET_SCHEMAS_DIR`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft6Validator
from jsonschema.exceptions import ValidationError, best_match

SCHEMAS_ENV = "GUICHET_SCHEMAS_DIR"
SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "bot" / "schemas"
SCHEMA_RELATIVE_PATH = Path("adaptive-cards") / "1.5.0" / "adaptive-card.json"
CARD_VERSION = "1.5"
# Teams refuses larger cards; measured as compact UTF-8 JSON (`card_size_bytes`).
MAX_CARD_BYTES = 28 * 1024
_MAX_SCHEMA_ERRORS = 5


class CardInvalid(ValueError):
    """The card breaks the schema or one of our rules; `problems` lists each one, readable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid Adaptive Card:\n- " + "\n- ".join(problems))


def schema_path() -> Path:
    base = os.environ.get(SCHEMAS_ENV)
    return (Path(base) if base else SCHEMAS_DIR) / SCHEMA_RELATIVE_PATH


@cache
def _validator(path: Path) -> Draft6Validator:
    try:
        # The published file starts with a byte-order mark in some copies.
        schema = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"Adaptive Card schema not found at {path}; set {SCHEMAS_ENV}") from exc
    # The schema's root is an anyOf over every type, whose errors say nothing useful; pointing at the
    # AdaptiveCard definition directly gives errors that name the offending element.
    root = {"$ref": "#/definitions/AdaptiveCard", "definitions": schema["definitions"]}
    Draft6Validator.check_schema(root)
    return Draft6Validator(root)


def card_size_bytes(card: dict[str, Any]) -> int:
    """The size of the card as sent: compact JSON, UTF-8."""
    return len(json.dumps(card, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def validate_card(card: dict[str, Any]) -> None:
    """Raise `CardInvalid` naming every problem found; return None for a valid card."""
    problems = _schema_problems(card) + _rule_problems(card)
    if problems:
        raise CardInvalid(problems)


def _location(error: ValidationError) -> str:
    return "/".join(str(part) for part in error.absolute_path) or "(card)"


def _schema_problems(card: dict[str, Any]) -> list[str]:
    validator = _validator(schema_path())
    problems: list[str] = []
    for error in sorted(validator.iter_errors(card), key=lambda e: list(map(str, e.absolute_path))):
        for where, message in _explain(error):
            problem = f"{where}: {message}"
            if problem not in problems:
                problems.append(problem)
    if len(problems) > _MAX_SCHEMA_ERRORS:
        problems[_MAX_SCHEMA_ERRORS:] = [f"(and {len(problems) - _MAX_SCHEMA_ERRORS} more schema errors)"]
    return problems


def _explain(error: ValidationError) -> list[tuple[str, str]]:
    """The errors a person can act on, behind the schema's anyOf over every element type."""
    if error.validator not in ("anyOf", "oneOf") or not error.context:
        return [(_location(error), error.message)]
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    instance = error.instance
    if isinstance(instance, dict) and "type" in instance:
        # The branch whose `type` matched is the one the author meant.
        meant = [errors for errors in branches.values() if not any(_wrong_type(sub) for sub in errors)]
        if not meant:
            return [(_location(error), f"unknown or misplaced type {instance['type']!r}")]
        return [found for sub in meant[0] for found in _explain(sub)]
    allowed = [value for sub in _leaves(error) if sub.validator == "enum" for value in sub.validator_value]
    if allowed:
        return [(_location(error), f"{instance!r} is not one of {sorted(set(map(str, allowed)))}")]
    closest = best_match(error.context)
    return _explain(closest) if closest is not None else [(_location(error), error.message)]


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    if not error.context:
        yield error
    for sub in error.context or []:
        yield from _leaves(sub)


def _wrong_type(error: ValidationError) -> bool:
    return error.validator == "enum" and list(error.relative_path) == ["type"]


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object in the card with its JSON path, parents first."""
    if isinstance(node, dict):
        yield path or "(card)", node
        for key, value in node.items():
            yield from _walk(value, f"{path}/{key}" if path else key)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}/{index}")


def _rule_problems(card: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    if card.get("version") != CARD_VERSION:
        problems.append(f"version: must be {CARD_VERSION!r}, not {card.get('version')!r}")
    ids: dict[str, str] = {}
    targets: list[tuple[str, str]] = []
    for where, node in _walk(card):
        kind = node.get("type")
        if kind == "Action.Execute":
            problems += _execute_problems(where, node)
        if kind == "Action.ToggleVisibility":
            for target in node.get("targetElements", []):
                target_id = target if isinstance(target, str) else target.get("elementId")
                targets.append((where, str(target_id)))
        # Actions have ids too, but only elements can be toggled; both must be unique.
        if isinstance(node.get("id"), str) and kind is not None:
            if node["id"] in ids:
                problems.append(f"{where}: id {node['id']!r} already used at {ids[node['id']]}")
            ids.setdefault(node["id"], where)
    for where, target_id in targets:
        if target_id not in ids:
            problems.append(f"{where}: toggles {target_id!r}, which is not in the card")
    size = card_size_bytes(card)
    if size >= MAX_CARD_BYTES:
        problems.append(f"size: {size} bytes, must stay under {MAX_CARD_BYTES}")
    return problems


def _execute_problems(where: str, action: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    verb = action.get("verb")
    data = action.get("data")
    if not isinstance(data, dict) or data.get("verb") != verb:
        problems.append(f"{where}: Action.Execute data must carry its verb {verb!r}")
    fallback = action.get("fallback")
    if not isinstance(fallback, dict) or fallback.get("type") != "Action.Submit":
        problems.append(f"{where}: Action.Execute needs an Action.Submit fallback")
    elif not isinstance(fallback.get("data"), dict) or fallback["data"].get("verb") != verb:
        problems.append(f"{where}: the Action.Submit fallback must carry the verb {verb!r} in data")
    elif fallback["data"] != data:
        problems.append(f"{where}: the Action.Submit fallback must send the same data")
    return problems
