"""The Teams app package: schema-valid manifest and translations, commands the bot understands, icons
Teams accepts, the zip and the `guichet package-app` command."""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.commands import Intent, normalize, recognize
from bot.domain.agency import Agency, load_agency
from bot.i18n import LANGUAGES, catalog
from bot.manifest_schema import schema_patterns, schema_problems, validator_for
from bot.settings import PROJECT_ROOT
from bot.teams_app import (
    COMMANDS,
    build_icons,
    build_localization,
    build_manifest,
    build_package,
    command_title,
)

AGENCIES = PROJECT_ROOT / "deployment" / "agencies"
AGENCY_IDS = ["example-be", "example-fr"]
APP_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"


# --- Helpers --------------------------------------------------------------------------------------


@cache
def _agency(agency_id: str) -> Agency:
    return load_agency(AGENCIES / agency_id / "agency.toml")


def _manifest(agency_id: str, base_url: str | None = "https://guichet.example/api") -> dict[str, Any]:
    return build_manifest(_agency(agency_id), app_id=APP_ID, version="1.2.3", base_url=base_url)


def _package_files(agency_id: str) -> dict[str, bytes]:
    data = build_package(_agency(agency_id), app_id=APP_ID, version="1.2.3", base_url=None)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def _localizations(agency_id: str) -> dict[str, dict[str, Any]]:
    files = _package_files(agency_id)
    entries = _manifest(agency_id)["localizationInfo"]["additionalLanguages"]
    return {entry["languageTag"]: json.loads(files[entry["file"]]) for entry in entries}


def _decode_png(data: bytes) -> tuple[int, int, list[list[tuple[int, int, int, int]]]]:
    """Width, height and RGBA pixels of an unfiltered 8-bit RGBA PNG, checking every chunk's CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, idat, kinds = 8, b"", []
    width = height = 0
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC in {kind!r}"
        kinds.append(kind)
        if kind == b"IHDR":
            width, height, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert (depth, color_type, interlace) == (8, 6, 0), "expected 8-bit RGBA, not interlaced"
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"
    raw = zlib.decompress(idat)
    stride = width * 4 + 1
    assert len(raw) == stride * height
    rows = []
    for y in range(height):
        line = raw[y * stride : (y + 1) * stride]
        assert line[0] == 0, "only filter type 0 is decoded here"
        rows.append([tuple(line[1 + 4 * x : 5 + 4 * x]) for x in range(width)])
    return width, height, rows  # type: ignore[return-value]


# --- Schemas --------------------------------------------------------------------------------------


def test_the_teams_schemas_are_valid_once_patterns_follow_ecmascript() -> None:
    manifest_validator = validator_for(_manifest("example-be")["$schema"])
    localization_validator = validator_for(_localizations("example-be")["en"]["$schema"])
    # The ECMAScript-only pattern is understood, not skipped.
    assert any("\\p{L}" in pattern for pattern in schema_patterns(manifest_validator.schema))
    assert localization_validator.schema["properties"]["name.short"]["maxLength"] == 30


@pytest.mark.parametrize("agency_id", AGENCY_IDS)
def test_the_manifest_matches_the_v1_24_schema(agency_id: str) -> None:
    manifest = _manifest(agency_id)
    assert schema_problems(manifest) == []
    assert manifest["manifestVersion"] == "1.24"
    assert "/v1.24/" in manifest["$schema"]


def test_the_validator_catches_a_broken_manifest() -> None:
    manifest = _manifest("example-be")
    manifest["accentColor"] = "blue"
    manifest["name"]["short"] = "x" * 31
    manifest["bots"][0]["unknown"] = True
    errors = schema_problems(manifest)
    assert any(error.startswith("accentColor") for error in errors)
    assert any(error.startswith("name/short") for error in errors)
    assert any(error.startswith("bots/0") for error in errors)


def test_a_package_that_would_break_the_schema_is_not_written(monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.teams_app as teams_app

    real = teams_app.build_manifest

    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return {**real(*args, **kwargs), "accentColor": "blue"}

    monkeypatch.setattr(teams_app, "build_manifest", broken)
    with pytest.raises(ValueError, match="manifest.json: accentColor"):
        build_package(_agency("example-be"), app_id=APP_ID, version="1.2.3", base_url=None)


@pytest.mark.parametrize("agency_id", AGENCY_IDS)
def test_every_localization_file_matches_its_schema_and_teams_limits(agency_id: str) -> None:
    localizations = _localizations(agency_id)
    assert localizations
    for tag, strings in localizations.items():
        assert schema_problems(strings) == [], tag
        # Draft-04 ignores `maxLength` next to `$ref`, so the limits are checked here.
        assert 0 < len(strings["name.short"]) <= 30
        assert 0 < len(strings["name.full"]) <= 100
        assert 0 < len(strings["description.short"]) <= 80
        assert 0 < len(strings["description.full"]) <= 4000


# --- Content --------------------------------------------------------------------------------------


@pytest.mark.parametrize("agency_id", AGENCY_IDS)
def test_the_bot_entry_is_a_personal_conversational_bot_that_can_send_files(agency_id: str) -> None:
    manifest = _manifest(agency_id)
    (bot,) = manifest["bots"]
    assert manifest["id"] == bot["botId"] == APP_ID
    assert bot["scopes"] == ["personal"]
    assert bot["supportsFiles"] is True and bot["isNotificationOnly"] is False
    (commands,) = bot["commandLists"]
    assert commands["scopes"] == ["personal"]
    assert len(commands["commands"]) == 10
    assert manifest["permissions"] == ["identity", "messageTeamMembers"]


def test_languages_follow_the_agency_with_english_added() -> None:
    be, fr = _manifest("example-be")["localizationInfo"], _manifest("example-fr")["localizationInfo"]
    assert be["defaultLanguageTag"] == "fr-be"
    assert [entry["languageTag"] for entry in be["additionalLanguages"]] == ["nl", "de", "en"]
    assert fr["defaultLanguageTag"] == "fr-fr"
    assert [entry["languageTag"] for entry in fr["additionalLanguages"]] == ["en"]


@pytest.mark.parametrize("agency_id", AGENCY_IDS)
def test_store_texts_name_the_agency_in_each_language(agency_id: str) -> None:
    agency = _agency(agency_id)
    manifest = _manifest(agency_id)
    assert agency.display_name(agency.default_language) in manifest["name"]["full"]
    assert agency.contact.website in manifest["description"]["full"]
    for tag, strings in _localizations(agency_id).items():
        assert agency.display_name(tag) in strings["description.full"]
        # A translation that only repeats the default language would be no translation.
        assert strings["description.short"] != manifest["description"]["short"], tag


def test_a_too_long_agency_name_is_shortened_for_the_developer_field() -> None:
    agency = _agency("example-be")
    name = _manifest("example-be")["developer"]["name"]
    assert len(agency.display_name("fr")) > 32
    assert len(name) <= 32 and name.endswith("…")
    assert agency.display_name("fr").startswith(name.removesuffix("…"))


@pytest.mark.parametrize("agency_id", AGENCY_IDS)
def test_developer_links_point_to_the_agency_site(agency_id: str) -> None:
    developer = _manifest(agency_id)["developer"]
    website = _agency(agency_id).contact.website
    assert developer["websiteUrl"] == website
    assert developer["privacyUrl"].startswith(website + "/") and developer["termsOfUseUrl"].startswith(website + "/")
    assert developer["privacyUrl"] != developer["termsOfUseUrl"]


def test_valid_domains_hold_the_bot_host_only_when_given() -> None:
    assert _manifest("example-be", "https://guichet.example:8443/api/messages")["validDomains"] == ["guichet.example"]
    assert _manifest("example-be", None)["validDomains"] == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"app_id": "not-a-guid"}, "GUID"),
        ({"version": "1.0"}, "version"),
        ({"base_url": "http://guichet.example"}, "https://"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_message(change: dict[str, str], message: str) -> None:
    arguments = {"app_id": APP_ID, "version": "1.0.0", "base_url": "https://guichet.example"} | change
    with pytest.raises(ValueError, match=message):
        build_manifest(_agency("example-be"), **arguments)  # type: ignore[arg-type]


# --- Commands -------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_menu_command_is_understood_by_the_bot_in_every_language(language: str) -> None:
    for intent in COMMANDS:
        title = command_title(language, intent)
        assert recognize(title, exact=True) == intent, (language, title)
        # The title is the first phrase of the catalog, the one the help card teaches.
        first_phrase = catalog(language)[f"commands.{intent.value}"].split("|")[0]
        assert normalize(title) == normalize(first_phrase), (language, title)
        assert len(title) <= 32


@pytest.mark.parametrize("agency_id", AGENCY_IDS)
def test_translated_commands_line_up_with_the_manifest_commands(agency_id: str) -> None:
    commands = _manifest(agency_id)["bots"][0]["commandLists"][0]["commands"]
    intents = [recognize(command["title"], exact=True) for command in commands]
    assert intents == list(COMMANDS)
    assert Intent.EXPORT in intents and Intent.ERASE in intents
    for tag, strings in _localizations(agency_id).items():
        for index, intent in enumerate(intents):
            title = strings[f"bots[0].commandLists[0].commands[{index}].title"]
            assert recognize(title, exact=True) == intent, (tag, title)
            assert strings[f"bots[0].commandLists[0].commands[{index}].description"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_command_descriptions_are_distinct_and_translated(language: str) -> None:
    strings = build_localization(_agency("example-be"), language)
    descriptions = [strings[f"bots[0].commandLists[0].commands[{i}].description"] for i in range(len(COMMANDS))]
    assert len(set(descriptions)) == len(descriptions)
    if language != "en":
        english = build_localization(_agency("example-be"), "en")
        assert descriptions[0] != english["bots[0].commandLists[0].commands[0].description"]


# --- Icons ----------------------------------------------------------------------------------------


def test_the_color_icon_is_192_pixels_in_the_accent_colour_with_a_white_glyph() -> None:
    width, height, rows = _decode_png(build_icons()["color.png"])
    assert (width, height) == (192, 192)
    opaque = Counter(pixel[:3] for row in rows for pixel in row if pixel[3] == 255)
    (first, _), (second, _) = opaque.most_common(2)
    accent = _manifest("example-be")["accentColor"]
    assert "#" + bytes(first).hex().upper() == accent.upper()
    assert second == (255, 255, 255)
    # Rounded corners: the very corner is transparent, the middle of each edge is not.
    assert rows[0][0][3] == 0 and rows[0][96][3] == 255


def test_the_outline_icon_is_32_pixels_white_on_transparent() -> None:
    width, height, rows = _decode_png(build_icons()["outline.png"])
    assert (width, height) == (32, 32)
    pixels = [pixel for row in rows for pixel in row]
    assert {pixel[:3] for pixel in pixels} == {(255, 255, 255)}
    transparent = sum(1 for pixel in pixels if pixel[3] == 0)
    solid = sum(1 for pixel in pixels if pixel[3] == 255)
    assert transparent > len(pixels) / 2, "the background must be transparent"
    assert solid > len(pixels) / 10, "the glyph must be visible"
    assert rows[0][0][3] == 0 and rows[16][16][3] == 0


# --- Package and CLI ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agency_id", "expected"),
    [
        ("example-be", {"manifest.json", "color.png", "outline.png", "nl.json", "de.json", "en.json"}),
        ("example-fr", {"manifest.json", "color.png", "outline.png", "en.json"}),
    ],
)
def test_the_package_holds_exactly_the_manifest_icons_and_translations(agency_id: str, expected: set[str]) -> None:
    files = _package_files(agency_id)
    assert set(files) == expected
    manifest = json.loads(files["manifest.json"].decode("utf-8"))
    assert schema_problems(manifest) == []
    assert {manifest["icons"]["color"], manifest["icons"]["outline"]} <= set(files)
    assert files["color.png"] == build_icons()["color.png"]


def test_the_same_inputs_build_the_same_package() -> None:
    agency = _agency("example-fr")
    first = build_package(agency, app_id=APP_ID, version="1.0.0", base_url=None)
    assert build_package(agency, app_id=APP_ID, version="1.0.0", base_url=None) == first


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("MicrosoftAppId", "GUICHET_APP_ID", "GUICHET_AGENCY"):
        monkeypatch.delenv(name, raising=False)
    # No stray .env file, and the default output lands in a scratch folder.
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_cli_writes_the_package(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = clean_env / "app.zip"
    code = main(["package-app", "--app-id", APP_ID, "--version", "2.0.1", "--base-url", "https://guichet.example",
                 "--out", str(out)])
    assert code == 0
    assert str(out) in capsys.readouterr().out
    with zipfile.ZipFile(out) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["version"] == "2.0.1" and manifest["id"] == APP_ID
    assert manifest["validDomains"] == ["guichet.example"]


def test_cli_uses_the_bot_app_id_and_names_the_zip_after_the_agency(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MicrosoftAppId", APP_ID)
    monkeypatch.setenv("GUICHET_AGENCY", str(AGENCIES / "example-fr" / "agency.toml"))
    assert main(["package-app"]) == 0
    with zipfile.ZipFile(clean_env / "guichet-example-fr.zip") as archive:
        assert json.loads(archive.read("manifest.json"))["bots"][0]["botId"] == APP_ID


def test_cli_without_an_app_id_fails_in_one_line(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["package-app"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--app-id" in error and "MicrosoftAppId" in error
    assert list(clean_env.iterdir()) == []


def test_cli_refuses_a_bad_app_id_without_writing(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["package-app", "--app-id", "my-bot"]) == 2
    assert "GUID" in capsys.readouterr().err
    assert list(clean_env.iterdir()) == []
