"""The Teams app manifest and localization files checked against Microsoft's published schemas.

The schemas are vendored in `bot/schemas/teams/` (see SOURCES.md). They are draft-04 and, from v1.23
on, use ECMAScript `\\p{L}` in their patterns, which Python's `re` rejects: patterns, pattern
properties and the metaschema's "regex" format are evaluated with the `regex` module instead.
`guichet package-app` refuses to write a package whose files break them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import regex
from jsonschema import Draft4Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError

SCHEMAS_DIR = Path(__file__).resolve().parent / "schemas"
SCHEMA_HOST = "https://developer.microsoft.com/"


def _pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not regex.search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if regex.search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Any, allowed: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    extras = [
        key
        for key in instance
        if key not in schema.get("properties", {})
        and not any(regex.search(pattern, key) for pattern in schema.get("patternProperties", {}))
    ]
    if validator.is_type(allowed, "object"):
        for key in extras:
            yield from validator.descend(instance[key], allowed, path=key)
    elif allowed is False and extras:
        yield ValidationError(f"additional properties not allowed: {sorted(extras)}")


EcmaDraft4Validator = validators.extend(
    Draft4Validator,
    {"pattern": _pattern, "patternProperties": _pattern_properties, "additionalProperties": _additional_properties},
)


def format_checker() -> FormatChecker:
    checker = FormatChecker()
    checker.checks("regex", raises=regex.error)(regex.compile)
    return checker


def schema_file(url: str) -> Path:
    """The vendored copy of a published Teams schema, by the URL a document's `$schema` names."""
    if not url.startswith(SCHEMA_HOST):
        raise ValueError(f"not a Teams schema address: {url!r}")
    relative = url.removeprefix(SCHEMA_HOST).removeprefix("en-us/")
    if not relative.startswith("json-schemas/"):
        raise ValueError(f"not a Teams schema address: {url!r}")
    return SCHEMAS_DIR / relative.removeprefix("json-schemas/")


def schema_patterns(node: Any) -> Iterator[str]:
    """Every regular expression a schema holds (patterns and pattern-property names)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            elif key == "patternProperties" and isinstance(value, dict):
                yield from value
            yield from schema_patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from schema_patterns(value)


@cache
def validator_for(url: str) -> Any:
    """A validator for the schema at `url`, itself checked against the draft-04 metaschema first."""
    path = schema_file(url)
    if not path.is_file():
        raise FileNotFoundError(f"Teams schema {url} is not vendored in {SCHEMAS_DIR}")
    schema = json.loads(path.read_text(encoding="utf-8-sig"))
    EcmaDraft4Validator.check_schema(schema, format_checker=format_checker())
    for pattern in schema_patterns(schema):
        regex.compile(pattern)
    return EcmaDraft4Validator(schema, format_checker=format_checker())


def schema_problems(document: dict[str, Any]) -> list[str]:
    """What in `document` breaks the schema its `$schema` names: one readable line each."""
    validator = validator_for(document["$schema"])
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(document)]
