"""The Microsoft Teams app package: manifest (v1.24), localization files and icons, zipped for upload.

Everything a citizen reads in Teams' app store and command menu comes from the message catalogs
(`bot/i18n/locales/<lang>/teams_app.toml`; command titles are the help card's, the first phrase of each
command in `commands.toml`), so a command picked from the menu is a message the bot already
understands. The icons are drawn here, without an imaging library, so the package builds anywhere.
"""

from __future__ import annotations

import io
import json
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from bot.commands import Intent
from bot.domain.agency import Agency, Mode
from bot.i18n import t
from bot.manifest_schema import schema_problems

MANIFEST_VERSION = "1.24"
SCHEMA_URL = f"https://developer.microsoft.com/json-schemas/teams/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json"
LOCALIZATION_SCHEMA_URL = (
    f"https://developer.microsoft.com/json-schemas/teams/v{MANIFEST_VERSION}/MicrosoftTeams.Localization.schema.json"
)
ACCENT_COLOR = "#1F5AA6"
COLOR_ICON = "color.png"
OUTLINE_ICON = "outline.png"
COLOR_ICON_SIZE = 192
OUTLINE_ICON_SIZE = 32
# The language every Teams client can fall back to, whatever the agency's own languages.
EXTRA_LANGUAGE = "en"

# The command menu, in menu order (Teams shows at most 10 commands per list).
COMMANDS: tuple[Intent, ...] = (
    Intent.BOOK,
    Intent.MY_APPOINTMENTS,
    Intent.RESCHEDULE,
    Intent.CANCEL_APPOINTMENT,
    # Teams shows 10 commands at most: the terms of use stay a typed command (and a welcome card button).
    Intent.PRIVACY,
    Intent.MY_DATA,
    Intent.EXPORT,
    Intent.ERASE,
    Intent.HELP,
    # For the agency's counselors (Teams shows one menu to everyone; a citizen gets a kind "staff only").
    Intent.MY_DAY,
)

# Limits of the manifest schema (some are not enforced by the draft-04 schema itself).
NAME_SHORT_MAX = 30
NAME_FULL_MAX = 100
DESCRIPTION_SHORT_MAX = 80
DESCRIPTION_FULL_MAX = 4000
DEVELOPER_NAME_MAX = 32
# The schema allows 128, but Teams clients cut command titles after 32 characters.
COMMAND_TITLE_MAX = 32
COMMAND_DESCRIPTION_MAX = 128

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")


# --- Texts ----------------------------------------------------------------------------------------


def _fit(text: str, limit: int) -> str:
    """`text` if it fits, else cut at a word boundary with an ellipsis (Teams rejects longer strings)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:–-") + "…"


def command_title(language: str, intent: Intent) -> str:
    """The menu title of `intent`: the first phrase the bot recognises for it (`commands.toml`), as
    the help card writes it (`help.command`: same words, nouns capitalised as the language wants)."""
    return t(language, f"help.command.{intent.value}")


def _app_name(agency: Agency, language: str) -> tuple[str, str]:
    short = _fit(t(language, "teams_app.name_short"), NAME_SHORT_MAX)
    full = t(language, "teams_app.name_full", agency=agency.display_name(language))
    if len(full) > NAME_FULL_MAX:
        full = agency.display_name(language)
    return short, _fit(full, NAME_FULL_MAX)


def _modes_sentence(agency: Agency, language: str) -> str:
    modes = set(agency.modes)
    if modes == {Mode.VIDEO}:
        return t(language, "teams_app.modes_video")
    if modes == {Mode.OFFICE}:
        return t(language, "teams_app.modes_office")
    return t(language, "teams_app.modes_both")


def _description(agency: Agency, language: str) -> tuple[str, str]:
    short = _fit(t(language, "teams_app.description_short"), DESCRIPTION_SHORT_MAX)
    first = " ".join(
        (
            t(language, "teams_app.description_intro", agency=agency.display_name(language)),
            _modes_sentence(agency, language),
            t(language, "teams_app.description_steps"),
        )
    )
    full = "\n\n".join(
        (
            first,
            t(language, "teams_app.description_privacy"),
            t(language, "teams_app.description_contact", website=agency.contact.website),
        )
    )
    return short, full[:DESCRIPTION_FULL_MAX]


def _commands(language: str) -> list[dict[str, str]]:
    return [
        {
            "title": _fit(command_title(language, intent), COMMAND_TITLE_MAX),
            "description": _fit(t(language, f"teams_app.command.{intent.value}"), COMMAND_DESCRIPTION_MAX),
        }
        for intent in COMMANDS
    ]


# --- Languages ------------------------------------------------------------------------------------


def default_language_tag(agency: Agency) -> str:
    """The tag of the manifest's own strings: the agency's first language in its country ('fr-be')."""
    return f"{agency.default_language}-{agency.country.lower()}"


def additional_languages(agency: Agency) -> list[str]:
    """The agency's other languages, then English, each shipped as `<lang>.json`."""
    languages = list(agency.languages[1:])
    if EXTRA_LANGUAGE not in agency.languages:
        languages.append(EXTRA_LANGUAGE)
    return languages


def localization_file_name(language: str) -> str:
    return f"{language}.json"


def build_localization(agency: Agency, language: str) -> dict[str, Any]:
    """One `MicrosoftTeams.Localization.schema.json` file: the manifest's texts in `language`."""
    name_short, name_full = _app_name(agency, language)
    description_short, description_full = _description(agency, language)
    strings: dict[str, Any] = {
        "$schema": LOCALIZATION_SCHEMA_URL,
        "name.short": name_short,
        "name.full": name_full,
        "description.short": description_short,
        "description.full": description_full,
    }
    for index, command in enumerate(_commands(language)):
        strings[f"bots[0].commandLists[0].commands[{index}].title"] = command["title"]
        strings[f"bots[0].commandLists[0].commands[{index}].description"] = command["description"]
    return strings


# --- Manifest -------------------------------------------------------------------------------------


def _https(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"{what} must be an https:// URL, not {url!r}")
    return url


def _site_page(website: str, page: str) -> str:
    return f"{website.rstrip('/')}/{page}"


def build_manifest(
    agency: Agency,
    *,
    app_id: str,
    version: str,
    base_url: str | None,
    privacy_url: str | None = None,
    terms_url: str | None = None,
) -> dict[str, Any]:
    """The Teams app manifest (v1.24) for the agency's bot; raise ValueError on a bad argument.

    The privacy and terms pages default to `<website>/privacy` and `<website>/terms` on the
    agency's site: Teams links to them from the app's details page.
    """
    if not _GUID.match(app_id):
        raise ValueError(f"app id must be the bot's Microsoft App ID (a GUID), not {app_id!r}")
    if not _SEMVER.match(version):
        raise ValueError(f"version must look like 1.0.0, not {version!r}")
    website = _https(agency.contact.website, "the agency's contact.website")
    language = agency.default_language
    name_short, name_full = _app_name(agency, language)
    description_short, description_full = _description(agency, language)
    extra = additional_languages(agency)
    return {
        "$schema": SCHEMA_URL,
        "manifestVersion": MANIFEST_VERSION,
        "version": version,
        "id": app_id,
        "localizationInfo": {
            "defaultLanguageTag": default_language_tag(agency),
            # Bare language tags: Teams falls back from 'nl-nl' or 'nl-be' to 'nl', so one file serves
            # every country's client.
            "additionalLanguages": [
                {"languageTag": lang, "file": localization_file_name(lang)} for lang in extra
            ],
        },
        "developer": {
            "name": _fit(agency.display_name(language), DEVELOPER_NAME_MAX),
            "websiteUrl": website,
            "privacyUrl": _https(privacy_url or _site_page(website, "privacy"), "the privacy URL"),
            "termsOfUseUrl": _https(terms_url or _site_page(website, "terms"), "the terms-of-use URL"),
        },
        "name": {"short": name_short, "full": name_full},
        "description": {"short": description_short, "full": description_full},
        "icons": {"color": COLOR_ICON, "outline": OUTLINE_ICON},
        "accentColor": ACCENT_COLOR,
        "bots": [
            {
                "botId": app_id,
                "scopes": ["personal"],
                # The personal-data export is sent as a file.
                "supportsFiles": True,
                "isNotificationOnly": False,
                "commandLists": [{"scopes": ["personal"], "commands": _commands(language)}],
            }
        ],
        "permissions": ["identity", "messageTeamMembers"],
        "validDomains": [urlsplit(_https(base_url, "the base URL")).hostname] if base_url else [],
        "defaultInstallScope": "personal",
    }


def build_package(
    agency: Agency,
    *,
    app_id: str,
    version: str,
    base_url: str | None,
    privacy_url: str | None = None,
    terms_url: str | None = None,
) -> bytes:
    """The zip to upload to Teams: manifest.json, the two icons and one localization file per language."""
    manifest = build_manifest(
        agency, app_id=app_id, version=version, base_url=base_url, privacy_url=privacy_url, terms_url=terms_url
    )
    documents = {"manifest.json": manifest}
    for entry in manifest["localizationInfo"]["additionalLanguages"]:
        documents[entry["file"]] = build_localization(agency, entry["languageTag"])
    # Teams' upload names the first problem only, after the upload: say them all, before.
    problems = [f"{name}: {problem}" for name, document in documents.items() for problem in schema_problems(document)]
    if problems:
        raise ValueError("the package would break the Teams schema:\n  " + "\n  ".join(problems))
    files = {"manifest.json": _json_bytes(manifest), **build_icons()}
    files.update((name, _json_bytes(document)) for name, document in documents.items())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            # A fixed timestamp: the same inputs give the same bytes, so a rebuilt package diffs clean.
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def _json_bytes(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


# --- Icons ----------------------------------------------------------------------------------------

Rgba = tuple[float, float, float, float]
_TRANSPARENT: Rgba = (1.0, 1.0, 1.0, 0.0)
_WHITE: Rgba = (1.0, 1.0, 1.0, 1.0)


def _accent() -> Rgba:
    value = int(ACCENT_COLOR[1:], 16)
    return ((value >> 16) / 255, ((value >> 8) & 0xFF) / 255, (value & 0xFF) / 255, 1.0)


def _in_rounded_rect(x: float, y: float, box: tuple[float, float, float, float], radius: float) -> bool:
    x0, y0, x1, y1 = box
    if not (x0 <= x <= x1 and y0 <= y <= y1):
        return False
    cx = min(max(x, x0 + radius), x1 - radius)
    cy = min(max(y, y0 + radius), y1 - radius)
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius**2


def _near_polyline(x: float, y: float, points: tuple[tuple[float, float], ...], half_width: float) -> bool:
    for (ax, ay), (bx, by) in zip(points, points[1:], strict=False):
        dx, dy = bx - ax, by - ay
        along = min(max(((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy), 0.0), 1.0)
        if (x - ax - along * dx) ** 2 + (y - ay - along * dy) ** 2 <= half_width**2:
            return True
    return False


# The glyph: a calendar page with two binder rings and a check mark. Coordinates are fractions of the
# icon's side, so both icons share one drawing.
_CHECK = ((0.355, 0.615), (0.46, 0.72), (0.66, 0.52))


def _color_pixel(x: float, y: float) -> Rgba:
    if not _in_rounded_rect(x, y, (0.0, 0.0, 1.0, 1.0), 0.2):
        return _TRANSPARENT
    accent = _accent()
    if _near_polyline(x, y, _CHECK, 0.04):
        return accent
    if _in_rounded_rect(x, y, (0.33, 0.18, 0.40, 0.34), 0.035) or _in_rounded_rect(
        x, y, (0.60, 0.18, 0.67, 0.34), 0.035
    ):
        return _WHITE
    if _in_rounded_rect(x, y, (0.22, 0.27, 0.78, 0.80), 0.07):
        # A band of the accent colour under the page's header.
        return accent if 0.40 <= y <= 0.435 else _WHITE
    return accent


def _outline_pixel(x: float, y: float) -> Rgba:
    # Measured in pixels of the 32×32 icon so that 2-pixel strokes land on the pixel grid.
    px, py = x * OUTLINE_ICON_SIZE, y * OUTLINE_ICON_SIZE
    stroke = 2.0
    page = (4.0, 7.0, 28.0, 28.0)
    inner = (page[0] + stroke, page[1] + stroke, page[2] - stroke, page[3] - stroke)
    on_page_edge = _in_rounded_rect(px, py, page, 3.0) and not _in_rounded_rect(px, py, inner, 1.0)
    on_header = page[0] <= px <= page[2] and 12.0 <= py <= 14.0
    on_ring = _in_rounded_rect(px, py, (9.0, 4.0, 11.0, 10.0), 1.0) or _in_rounded_rect(
        px, py, (21.0, 4.0, 23.0, 10.0), 1.0
    )
    check = tuple((cx * OUTLINE_ICON_SIZE, cy * OUTLINE_ICON_SIZE) for cx, cy in _CHECK)
    on_check = _near_polyline(px, py, check, stroke / 2)
    return _WHITE if on_page_edge or on_header or on_ring or on_check else _TRANSPARENT


def _render(size: int, pixel: Callable[[float, float], Rgba], samples: int) -> bytes:
    """RGBA rows, each pixel the average of `samples`² points (premultiplied, so edges stay clean)."""
    out = bytearray()
    offsets = [(i + 0.5) / samples for i in range(samples)]
    count = samples * samples
    for row in range(size):
        for column in range(size):
            red = green = blue = alpha = 0.0
            for oy in offsets:
                for ox in offsets:
                    r, g, b, a = pixel((column + ox) / size, (row + oy) / size)
                    red += r * a
                    green += g * a
                    blue += b * a
                    alpha += a
            if alpha == 0:
                # Fully transparent pixels stay white: validators that ignore alpha still see white.
                out += b"\xff\xff\xff\x00"
                continue
            out += bytes(round(channel / alpha * 255) for channel in (red, green, blue))
            out.append(round(alpha / count * 255))
    return bytes(out)


def encode_png(width: int, height: int, rgba: bytes) -> bytes:
    """A PNG file of 8-bit RGBA rows (no filtering: the icons are tiny)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    stride = width * 4
    raw = b"".join(b"\x00" + rgba[row * stride : (row + 1) * stride] for row in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


@cache
def _icons() -> tuple[tuple[str, bytes], ...]:
    color = _render(COLOR_ICON_SIZE, _color_pixel, 3)
    outline = _render(OUTLINE_ICON_SIZE, _outline_pixel, 4)
    return (
        (COLOR_ICON, encode_png(COLOR_ICON_SIZE, COLOR_ICON_SIZE, color)),
        (OUTLINE_ICON, encode_png(OUTLINE_ICON_SIZE, OUTLINE_ICON_SIZE, outline)),
    )


def build_icons() -> dict[str, bytes]:
    """`color.png` (192×192, the glyph in white on the accent colour) and `outline.png` (32×32, white
    on transparent, as Teams requires)."""
    return dict(_icons())
