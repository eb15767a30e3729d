"""The message catalogs as a whole: every key of every feature in all four languages, with the same
placeholders, and every key the code asks for by name present. `t()` falls back to English, so a missing
translation would otherwise only show as an English sentence in a Dutch chat."""

from __future__ import annotations

import ast
import string

import pytest

from bot.domain.channels import web_reader
from bot.i18n import FALLBACK, LANGUAGES, LOCALES_DIR, WEB_SUFFIX, catalog, t
from bot.settings import PROJECT_ROOT

FEATURES = sorted({path.stem for language in LANGUAGES for path in (LOCALES_DIR / language).glob("*.toml")})


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_every_language_has_every_feature_file() -> None:
    for language in LANGUAGES:
        assert sorted(path.stem for path in (LOCALES_DIR / language).glob("*.toml")) == FEATURES, language


@pytest.mark.parametrize("language", [language for language in LANGUAGES if language != FALLBACK])
def test_every_key_is_in_every_language_with_the_same_placeholders(language: str) -> None:
    english, other = catalog(FALLBACK), catalog(language)
    assert sorted(set(english) - set(other)) == [], f"missing in {language}"
    assert sorted(set(other) - set(english)) == [], f"missing in {FALLBACK}"
    differing = [key for key, text in english.items() if placeholders(other[key]) != placeholders(text)]
    assert differing == [], f"placeholders differ in {language}"


def _keys_named_in_code() -> list[tuple[str, str]]:
    """The literal keys passed to `t(language, "<key>", ...)` in the application's code."""
    found = []
    for folder in ("bot", "cards", "dialogs", "storage"):
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "t"
                        and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
                        and isinstance(node.args[1].value, str)):
                    found.append((f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}", node.args[1].value))
    return found


def test_every_key_the_code_names_exists() -> None:
    named = _keys_named_in_code()
    assert len(named) > 300  # the scan finds the calls
    assert [(where, key) for where, key in named if key not in catalog(FALLBACK)] == []


def _web_variants(language: str) -> dict[str, str]:
    """Each `_web` key of the language (`a.b_web`, or `a.b_web.one` in a plural), with its base key."""
    return {name: ".".join(part.removesuffix(WEB_SUFFIX) for part in name.split("."))
            for name in catalog(language) if any(part.endswith(WEB_SUFFIX) for part in name.split("."))}


def _children(messages: dict[str, str], table: str) -> set[str]:
    return {name.removeprefix(f"{table}.") for name in messages if name.startswith(f"{table}.")}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_web_variant_has_its_base_key_with_the_same_placeholders(language: str) -> None:
    messages = catalog(language)
    variants = _web_variants(language)
    assert len(variants) >= 20  # the scan finds the website's wording
    assert sorted(web for web, base in variants.items() if base not in messages) == [], "no base key"
    assert sorted(web for web, base in variants.items()
                  if placeholders(messages[web]) != placeholders(messages[base])) == [], "placeholders differ"
    # A plural read on the website has the same categories as its base: `tn` picks one category of
    # the web table and must not fall back to the base's text for a category only the base has.
    tables = {web.rsplit(".", 1)[0]: base.rsplit(".", 1)[0] for web, base in variants.items()
              if not web.rsplit(".", 1)[-1].endswith(WEB_SUFFIX)}
    assert {web: base for web, base in tables.items()
            if _children(messages, web) != _children(messages, base)} == {}, "plural categories differ"


def test_the_web_variants_are_the_same_in_every_language() -> None:
    assert all(sorted(_web_variants(language)) == sorted(_web_variants(FALLBACK)) for language in LANGUAGES)


def test_the_website_reads_its_variant_and_teams_its_base() -> None:
    teams = t("fr", "booking.confirmation.reminders_planned", times="lundi")
    with web_reader():
        web = t("fr", "booking.confirmation.reminders_planned", times="lundi")
    assert web == catalog("fr")["booking.confirmation.reminders_planned_web"].format(times="lundi") != teams
