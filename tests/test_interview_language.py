"""The interview language follows the agency's rule (Belgium: official language of residence)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.domain.agency import Agency
from bot.domain.interview_language import (
    GERMAN_SPEAKING_POSTAL_CODES,
    LanguageDecision,
    LanguageReason,
    belgian_region_language,
    decide_interview_language,
    language_reason,
    lives_in_bilingual_brussels,
)


def make_agency(tmp_path: Path, languages: list[str], rule: str = "belgian_residence") -> Agency:
    for kind in ("terms", "privacy"):
        for language in languages:
            (tmp_path / f"{kind}.{language}.md").write_text(f"# {kind} {language}\n", encoding="utf-8")
    localized = {language: f"Text {language}" for language in languages}
    return Agency.model_validate({
        "id": "test-agency",
        "name": localized,
        "country": "BE",
        "timezone": "Europe/Brussels",
        "languages": languages,
        "interview_language_rule": rule,
        "recording": "forbidden",
        "modes": ["video"],
        "contact": {"phone": "+32 2 000 00 00", "email": "info@example.org",
                    "website": "https://example.org", "postal_address": "Rue 1, 1000 Bruxelles"},
        "dpo_contact": "dpo@example.org",
        "supervisory_authority": localized,
        "offices": [],
        "opening_hours": [{"mode": "video", "days": ["mon"], "start": "09:00", "end": "12:00"}],
        "subjects": [{"id": "s", "name": localized, "duration_minutes": 30, "modes": ["video"]}],
        "counselors": [{"id": "c", "display_name": "C", "languages": languages, "offices": [],
                        "modes": ["video"]}],
        "personal_data_fields": ["postal_code"],
        "documents": [
            {"kind": kind, "version": "1", "published": "2025-01-01",
             "files": {language: f"{kind}.{language}.md" for language in languages}}
            for kind in ("terms", "privacy")
        ],
        "base_dir": tmp_path,
    })


@pytest.fixture
def belgian(tmp_path: Path) -> Agency:
    return make_agency(tmp_path, ["fr", "nl", "de"])


def decided(language: str, reason: LanguageReason = LanguageReason.RESIDENCE) -> LanguageDecision:
    return LanguageDecision(language=language, choices=(), reason=reason)


def choice(*languages: str) -> LanguageDecision:
    return LanguageDecision(language=None, choices=languages)


@pytest.mark.parametrize("postal_code, expected", [
    ("4000", "fr"),   # Liège
    ("4700", "de"),   # Eupen
    ("4780", "de"),   # Sankt Vith
    ("4791", "de"),   # Thommen (Burg-Reuland)
    ("4960", "fr"),   # Malmedy: French, with facilities for German speakers
    ("4837", "fr"),   # Baelen: between Eupen and Welkenraedt, Walloon
    ("9000", "nl"),   # Gent
    ("2000", "nl"),   # Antwerpen
    ("3500", "nl"),   # Hasselt
    ("8000", "nl"),   # Brugge
    ("1500", "nl"),   # Halle
    ("1640", "nl"),   # Sint-Genesius-Rode: facilities for French speakers, still Dutch
    ("1780", "nl"),   # Wemmel: facilities, still Dutch
    ("3000", "nl"),   # Leuven
    ("1300", "fr"),   # Wavre
    ("1348", "fr"),   # Louvain-la-Neuve
    ("5000", "fr"),   # Namur
    ("6000", "fr"),   # Charleroi
    ("6700", "fr"),   # Arlon
    ("7000", "fr"),   # Mons
    ("7780", "fr"),   # Comines-Warneton: facilities for Dutch speakers, still French
])
def test_monolingual_regions_decide_without_asking(belgian: Agency, postal_code: str, expected: str) -> None:
    assert decide_interview_language(belgian, postal_code=postal_code, preferred=None) == decided(expected)


@pytest.mark.parametrize("preferred", [None, "de", "en"])
def test_citizen_preference_does_not_override_the_region(belgian: Agency, preferred: str | None) -> None:
    assert decide_interview_language(belgian, postal_code="9000", preferred=preferred) == decided("nl")


@pytest.mark.parametrize("postal_code", ["1000", "1030", "1200", "1299"])
def test_brussels_offers_french_and_dutch(belgian: Agency, postal_code: str) -> None:
    assert decide_interview_language(belgian, postal_code=postal_code, preferred=None) == choice("fr", "nl")


def test_brussels_with_a_preference_decides_it(belgian: Agency) -> None:
    chosen = LanguageReason.CHOSEN
    assert decide_interview_language(belgian, postal_code="1000", preferred="nl") == decided("nl", chosen)
    assert decide_interview_language(belgian, postal_code="1000", preferred="fr") == decided("fr", chosen)
    # German is not an official language of Brussels: still a choice.
    assert decide_interview_language(belgian, postal_code="1000", preferred="de") == choice("fr", "nl")


def test_brussels_with_a_french_only_agency_is_french(tmp_path: Path) -> None:
    agency = make_agency(tmp_path, ["fr"])
    assert decide_interview_language(agency, postal_code="1000", preferred=None) == decided("fr")


def test_region_language_the_agency_lacks_falls_back_to_a_choice(tmp_path: Path) -> None:
    agency = make_agency(tmp_path, ["fr", "nl"])
    assert decide_interview_language(agency, postal_code="4700", preferred=None) == choice("fr", "nl")
    assert decide_interview_language(agency, postal_code="4700", preferred="nl") == decided("nl", LanguageReason.CHOSEN)


@pytest.mark.parametrize("postal_code", [None, "", "0999", "75001", "abcd", "47OO", "٤٧٠٠", "4700 1"])
def test_unknown_postal_code_lets_the_citizen_choose(belgian: Agency, postal_code: str | None) -> None:
    decision = decide_interview_language(belgian, postal_code=postal_code, preferred=None)
    assert decision == choice("fr", "nl", "de")


def test_agency_language_rule_ignores_residence_and_preference(tmp_path: Path) -> None:
    agency = make_agency(tmp_path, ["nl", "fr"], rule="agency_language")
    assert decide_interview_language(agency, postal_code="4000", preferred="fr") == decided("nl", LanguageReason.AGENCY)


def test_citizen_choice_rule(tmp_path: Path) -> None:
    agency = make_agency(tmp_path, ["fr", "nl", "en"], rule="citizen_choice")
    assert decide_interview_language(agency, postal_code="9000", preferred="en") == decided("en", LanguageReason.CHOSEN)
    assert decide_interview_language(agency, postal_code="9000", preferred="de") == choice("fr", "nl", "en")
    assert decide_interview_language(agency, postal_code=None, preferred=None) == choice("fr", "nl", "en")


def test_german_is_decided_exactly_in_the_nine_german_speaking_municipalities() -> None:
    # Eupen, Lontzen, Kelmis, Raeren, Bütgenbach, Büllingen, Amel, Sankt Vith, Burg-Reuland.
    expected = {4700, 4701, 4710, 4711, 4720, 4721, 4728, 4730, 4731, 4750, 4760, 4761, 4770, 4771,
                4780, 4782, 4783, 4784, 4790, 4791}
    german = {code for code in range(1000, 10000) if belgian_region_language(str(code)) == ("de",)}
    assert german == expected == GERMAN_SPEAKING_POSTAL_CODES


def test_every_belgian_postal_code_has_an_official_language() -> None:
    for code in range(1000, 10000):
        assert belgian_region_language(str(code)) in {("fr",), ("nl",), ("de",), ("fr", "nl")}
    assert belgian_region_language(" 4700 ") == ("de",)


def test_the_reason_of_a_language_already_settled(belgian: Agency) -> None:
    assert language_reason(belgian, postal_code="4000", interview_language="fr") is LanguageReason.RESIDENCE
    assert language_reason(belgian, postal_code="1000", interview_language="nl") is LanguageReason.CHOSEN
    assert language_reason(belgian, postal_code="9000", interview_language="fr") is None  # moved since booking


@pytest.mark.parametrize("postal_code, expected", [("1000", True), ("1299", True), ("1300", False), ("4700", False),
                                                   (None, False), ("75001", False)])
def test_only_a_brussels_address_is_told_it_chooses_for_that_reason(belgian: Agency, postal_code: str | None,
                                                                     expected: bool) -> None:
    assert lives_in_bilingual_brussels(belgian, postal_code) is expected
