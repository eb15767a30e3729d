"""Privacy cards in every language, for both example agencies: valid Adaptive Cards, complete catalogs,
identifiers masked, the erase card honest about what is kept."""

from __future__ import annotations

import re
import string
import tomllib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.domain.agency import Agency, Mode, PersonalField, load_agency
from bot.domain.appointment import AppointmentStatus, AppointmentView
from bot.i18n import LANGUAGES, LOCALES_DIR, t
from bot.services.export_schema import export_about
from bot.services.privacy import ConsentView, Overview
from cards.booking import build_personal_data_card
from cards.privacy import (
    build_erase_confirm_card,
    build_erased_card,
    build_file_consent,
    build_my_data_card,
    build_notice_card,
    build_rectified_card,
    build_rectify_card,
    form_inputs,
)
from cards.validation import MAX_CARD_BYTES, card_size_bytes, validate_card
from cards.verbs import Verb
from tests.conftest import AGENCIES
from tests.harness import action_with_verb, card_text

WHEN = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def agencies() -> list[Agency]:
    return [load_agency(AGENCIES / name / "agency.toml") for name in ("example-be", "example-fr")]


def overview(agency: Agency, *, restricted: bool = False) -> Overview:
    personal: dict[PersonalField, str | date] = {
        PersonalField.FIRST_NAME: "Zoë [admin]", PersonalField.LAST_NAME: "O'Brien_Smith",
        PersonalField.BIRTH_DATE: date(1985, 7, 30), PersonalField.EMAIL: "zoe.obrien@example.org",
        PersonalField.PHONE: "+32470123456", PersonalField.POSTAL_CODE: "1000",
        PersonalField.NATIONAL_REGISTER_NUMBER: "85073003328", PersonalField.CLIENT_NUMBER: "AB123456",
    }
    return Overview(
        personal={f: v for f, v in personal.items() if f in agency.personal_data_fields},
        interview_language=agency.default_language, has_teams_identity=True,
        consents=[ConsentView("terms", "2026-01", "accepted", WHEN),
                  ConsentView("privacy", "2026-01", "withdrawn", WHEN)],
        upcoming=[AppointmentView(
            "a1", Mode.VIDEO, agency.subjects[0].id, None, WHEN, WHEN + timedelta(minutes=30), AppointmentStatus.BOOKED,
            agency.default_language, None, agency.counselors[0].id, None)], past_count=2,
        processing_restricted=restricted, reminders_opt_out=restricted, created_at=WHEN,
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_privacy_card_is_valid_and_small_in_every_language(language: str) -> None:
    for agency in agencies():
        form = build_personal_data_card(agency, language, values={"email": "x"},
                                        errors={"email": "personal_data.error.email_invalid"})
        cards = [
            build_my_data_card(agency, language, overview(agency)),
            build_my_data_card(agency, language, overview(agency, restricted=True)),
            build_rectify_card(language, form_inputs(form), has_errors=True),
            build_rectified_card(agency, language, {PersonalField.EMAIL: "zoe@example.org"}, upcoming=1,
                                 language_changed=True),
            build_erase_confirm_card(agency, language, 0),
            build_erase_confirm_card(agency, language, 3),
            build_erased_card(language, cancelled=2),
            build_notice_card(language, t(language, "privacy.restrict.on_title"), t(language, "privacy.restrict.on")),
        ]
        for card in cards:
            validate_card(card)
            assert card_size_bytes(card) < MAX_CARD_BYTES
            assert card["lang"] == language


def test_my_data_masks_identifiers_and_escapes_what_people_typed() -> None:
    be, fr = agencies()
    text = card_text(build_my_data_card(be, "en", overview(be)))
    assert "85073003328" not in text and "+32470123456" not in text and "zoe.obrien@" not in text
    assert "Zoë \\[admin\\]" in text, "a typed value cannot inject card Markdown"
    assert "30 July 1985" in text and "30/07/1985" not in text
    text_fr = card_text(build_my_data_card(fr, "fr", overview(fr)))
    assert "AB123456" not in text_fr and "3456" in text_fr
    assert t("fr", "privacy.retention.appointments", months="36 mois") in text_fr


def test_the_buttons_say_what_they_will_set() -> None:
    be, _ = agencies()
    open_card = build_my_data_card(be, "fr", overview(be))
    assert action_with_verb(open_card, Verb.PRIVACY_RESTRICT)["data"]["restricted"] is True
    assert action_with_verb(open_card, Verb.PRIVACY_REMINDERS)["data"]["enabled"] is False
    restricted_card = build_my_data_card(be, "fr", overview(be, restricted=True))
    assert action_with_verb(restricted_card, Verb.PRIVACY_RESTRICT)["data"]["restricted"] is False
    assert action_with_verb(restricted_card, Verb.PRIVACY_REMINDERS)["data"]["enabled"] is True
    assert action_with_verb(build_erase_confirm_card(be, "fr", 2), Verb.PRIVACY_ERASE_CONFIRM)["data"]["upcoming"] == 2


def test_the_erase_card_says_what_is_kept_and_for_how_long() -> None:
    be, _ = agencies()
    text = card_text(build_erase_confirm_card(be, "nl", 1))
    assert t("nl", "privacy.erase.will_cancel_one") in text
    assert t("nl", "privacy.erase.kept", consent_months="60 maanden", audit_months="60 maanden") in text
    assert t("nl", "privacy.erase.kept_statistics") in text
    no_statistics = be.model_copy(update={"retention": be.retention.model_copy(
        update={"keep_anonymised_statistics": False})})
    assert t("nl", "privacy.erase.kept_statistics") not in card_text(build_erase_confirm_card(no_statistics, "nl", 1))


def test_the_rectify_form_is_the_booking_form_with_its_own_buttons() -> None:
    be, _ = agencies()
    form = build_personal_data_card(be, "de", values={"first_name": "Jan"}, errors={})
    card = build_rectify_card("de", form_inputs(form), has_errors=False)
    ids = [element["id"] for element in card["body"] if element.get("type") == "Input.Text"]
    assert ids == [field.value for field in be.personal_data_fields]
    assert [a["data"]["verb"] for a in card["actions"]] == [Verb.PRIVACY_RECTIFY_SUBMIT, Verb.MENU_MY_DATA]


def test_file_consent_and_export_about_come_from_the_catalogs() -> None:
    be, _ = agencies()
    offer = build_file_consent("nl", size_bytes=1234, context={"verb": "privacy_export_file"})
    assert offer["description"] == t("nl", "privacy.export.offer_description")
    assert offer["acceptContext"] == offer["declineContext"] == {"verb": "privacy_export_file"}
    about = export_about(be, "de")
    assert be.display_name("de") in about["summary"]
    assert about["sections"]["audit_events"] == t("de", "privacy.export.about.audit_events")


def _keys_and_fields(path: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}

    def walk(prefix: str, table: dict[str, Any]) -> None:
        for key, value in table.items():
            if isinstance(value, dict):
                walk(f"{prefix}{key}.", value)
            else:
                found[prefix + key] = {name for _, name, _, _ in string.Formatter().parse(value) if name}

    walk("", tomllib.loads(path.read_text(encoding="utf-8")))
    return found


def test_the_privacy_catalog_is_complete_in_every_language_with_the_same_placeholders() -> None:
    english = _keys_and_fields(LOCALES_DIR / "en" / "privacy.toml")
    for language in LANGUAGES:
        assert _keys_and_fields(LOCALES_DIR / language / "privacy.toml") == english, language


def test_formal_register_in_french_and_german() -> None:
    french = (LOCALES_DIR / "fr" / "privacy.toml").read_text(encoding="utf-8")
    german = (LOCALES_DIR / "de" / "privacy.toml").read_text(encoding="utf-8")
    assert not re.search(r"\btu\b|\bton\b|\bta\b|\btes\b", french)
    assert not re.search(r"\bdu\b|\bdein", german)
