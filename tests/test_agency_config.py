"""The shipped example agencies: they validate, their documents are complete and well formed in every
language, what the documents promise matches the configuration, and every offer can be staffed."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import holidays
import pytest

from bot.domain.agency import (
    Agency,
    AgencyConfigError,
    DocumentKind,
    InterviewLanguageRule,
    Mode,
    load_agency,
)
from bot.domain.consent import content_hash
from bot.domain.interview_language import belgian_region_language
from cards.consent import fill_delays

AGENCIES_DIR = Path(__file__).resolve().parent.parent / "deployment" / "agencies"
EXAMPLES = ["example-be", "example-fr"]

# The unit words that follow a number in each language ("2 heures", "24 months").
HOURS_WORD = {"fr": "heures", "nl": "uur", "de": "Stunden", "en": "hours"}
MONTHS_WORD = {"fr": "mois", "nl": "maanden", "de": "Monate", "en": "months"}

LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def agency_path(agency_id: str) -> Path:
    return AGENCIES_DIR / agency_id / "agency.toml"


def load(agency_id: str) -> Agency:
    return load_agency(agency_path(agency_id))


def document_texts(agency_id: str) -> list[tuple[str, str, str]]:
    """(label, language, text) for every language version of every document."""
    agency = load(agency_id)
    return [
        (f"{agency_id}/{name}", language, (agency.base_dir / name).read_text(encoding="utf-8"))
        for document in agency.documents
        for language, name in sorted(document.files.items())
    ]


def blocks(text: str) -> list[list[str]]:
    """Blocks of consecutive non-blank lines, as the card builder reads them."""
    result: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.strip():
            current.append(line)
        elif current:
            result.append(current)
            current = []
    if current:
        result.append(current)
    return result


def sections(text: str) -> list[tuple[str, list[list[str]]]]:
    """`##` sections: (heading, blocks under it)."""
    found: list[tuple[str, list[list[str]]]] = []
    for block in blocks(text):
        if block[0].startswith("## "):
            found.append((block[0][3:], []))
        elif found:
            found[-1][1].append(block)
    return found


def interview_languages(agency: Agency) -> set[str]:
    """Every language an interview may have to be held in under the agency's rule."""
    if agency.interview_language_rule == InterviewLanguageRule.AGENCY_LANGUAGE:
        return {agency.default_language}
    return set(agency.languages)


def copy_agency(agency_id: str, tmp_path: Path) -> Path:
    target = tmp_path / agency_id
    shutil.copytree(AGENCIES_DIR / agency_id, target)
    return target / "agency.toml"


def test_the_examples_are_the_agencies_shipped():
    shipped = sorted(path.parent.name for path in AGENCIES_DIR.glob("*/agency.toml"))
    assert shipped == EXAMPLES


@pytest.mark.parametrize("agency_id", EXAMPLES)
def test_example_agency_validates(agency_id):
    agency = load(agency_id)

    assert agency.id == agency_id
    assert agency.base_dir == AGENCIES_DIR / agency_id


def test_example_agencies_have_the_intended_rules():
    be, fr = load("example-be"), load("example-fr")

    assert (be.country, be.timezone, be.languages) == ("BE", "Europe/Brussels", ["fr", "nl", "de"])
    assert be.interview_language_rule == InterviewLanguageRule.BELGIAN_RESIDENCE
    assert be.recording == "forbidden"
    assert "national_register_number" in be.personal_data_fields
    assert (fr.country, fr.timezone, fr.languages) == ("FR", "Europe/Paris", ["fr"])
    assert fr.interview_language_rule == InterviewLanguageRule.AGENCY_LANGUAGE
    assert fr.recording == "allowed_with_notice"
    assert "client_number" in fr.personal_data_fields


@pytest.mark.parametrize("agency_id", EXAMPLES)
def test_every_document_exists_in_every_language_it_declares_and_in_english(agency_id):
    agency = load(agency_id)

    for kind in DocumentKind:
        document = agency.current_document(kind)
        assert set(agency.languages) | {"en"} <= set(document.files)
        for language, name in document.files.items():
            assert name == f"{kind.value}-{document.version}.{language}.md"
            assert agency.document_text(document, language).startswith("# ")


@pytest.mark.parametrize("agency_id", EXAMPLES)
def test_document_opens_with_a_title_then_a_bullet_summary(agency_id):
    for label, _language, text in document_texts(agency_id):
        all_blocks = blocks(text)
        assert all_blocks[0] == [all_blocks[0][0]] and all_blocks[0][0].startswith("# "), label
        assert all_blocks[1][0].startswith("## "), f"{label}: first section must follow the title"
        summary = sections(text)[0][1]
        assert len(summary) == 1, f"{label}: the summary is a single bullet list"
        assert all(line.startswith("- ") for line in summary[0]), label
        assert 8 <= len(summary[0]) <= 12, f"{label}: {len(summary[0])} summary bullets"


@pytest.mark.parametrize("agency_id", EXAMPLES)
def test_documents_use_only_the_supported_markup(agency_id):
    for label, _language, text in document_texts(agency_id):
        assert sum(line.startswith("# ") for line in text.splitlines()) == 1, label
        for block in blocks(text):
            where = f"{label}: {block[0][:40]!r}"
            if block[0].startswith("#"):
                assert len(block) == 1, f"{where}: a heading stands alone, blank line after it"
                assert re.match(r"^#{1,2} \S", block[0]), f"{where}: only # and ## headings"
            elif block[0].startswith("- "):
                assert all(line.startswith("- ") for line in block), f"{where}: mixed list"
            else:
                assert len(block) == 1, f"{where}: one line per paragraph"
                assert not re.match(r"^(\d+[.)] |[*+] |[>|<])", block[0]), f"{where}: unsupported markup"
            for line in block:
                assert line.count("**") % 2 == 0, f"{where}: unbalanced bold"
                assert "__" not in line and "`" not in line, where
                for _text, target in LINK.findall(line):
                    assert target.startswith("https://"), f"{where}: link {target}"


@pytest.mark.parametrize("agency_id", EXAMPLES)
def test_translations_have_the_same_structure(agency_id):
    agency = load(agency_id)
    for document in agency.documents:
        shapes = {}
        for language, name in document.files.items():
            text = (agency.base_dir / name).read_text(encoding="utf-8")
            shapes[language] = [
                (len(body), [len(b) for b in body if b[0].startswith("- ")]) for _, body in sections(text)
            ]
        reference = shapes[agency.default_language]
        for language, shape in shapes.items():
            assert shape == reference, f"{document.kind.value} {language} differs from the original"


@pytest.mark.parametrize("agency_id", EXAMPLES)
def test_documents_read_in_a_few_minutes(agency_id):
    for label, _language, text in document_texts(agency_id):
        words = len(re.findall(r"\w+", text))
        assert 600 <= words <= 1400, f"{label}: {words} words"


@pytest.mark.parametrize("agency_id", EXAMPLES)
def test_privacy_policy_states_the_configured_retention(agency_id):
    agency = load(agency_id)
    document = agency.current_document(DocumentKind.PRIVACY)
    retention = agency.retention
    periods = {
        retention.appointments_months,
        retention.citizen_inactive_months,
        retention.consent_proof_months,
        retention.audit_months,
    }
    for language in document.files:
        text = agency.document_text(document, language)
        for months in periods:
            stated = f"{months} {MONTHS_WORD[language]}"
            assert stated in text, f"{language}: {stated!r} not stated"
        assert agency.dpo_contact in text, language


@pytest.mark.parametrize("agency_id", EXAMPLES)
def test_terms_state_the_configured_delays(agency_id):
    agency = load(agency_id)
    document = agency.current_document(DocumentKind.TERMS)
    cutoff_hours, cutoff_rest = divmod(agency.booking.cancellation_cutoff_minutes, 60)
    lead_hours, lead_rest = divmod(agency.booking.min_lead_minutes, 60)
    assert cutoff_rest == lead_rest == 0, "the terms express these delays in whole hours"
    for language in document.files:
        text = fill_delays(agency, agency.document_text(document, language), language)
        hours = HOURS_WORD[language]
        assert f"{cutoff_hours} {hours}" in text, f"{language}: cancellation cut-off"
        assert f"{lead_hours} {hours}" in text, f"{language}: minimum notice"
        assert re.search(rf"\b{agency.no_show_minutes}\b", text), f"{language}: no-show delay"
        assert re.search(rf"\b{agency.agency_wait_commitment_minutes}\b", text), language
        assert re.search(rf"\b{agency.booking.max_upcoming_per_citizen}\b", text), language


@pytest.mark.parametrize("agency_id", EXAMPLES)
def test_every_offer_in_every_interview_language_has_a_counselor(agency_id):
    agency = load(agency_id)
    office_hours = {h.office for h in agency.opening_hours if h.mode == Mode.OFFICE}
    offices_open = {o.id for o in agency.offices} if None in office_hours else office_hours

    for subject in agency.subjects:
        for mode in subject.modes:
            assert any(h.mode == mode for h in agency.opening_hours), f"{subject.id}: {mode} never open"
            for language in interview_languages(agency):
                staff = [c for c in agency.counselors if mode in c.modes and language in c.languages]
                if mode == Mode.OFFICE:
                    staff = [c for c in staff if offices_open & set(c.offices)]
                assert staff, f"{subject.id}: no {mode.value} counselor speaking {language}"


def test_belgian_video_counselors_cover_french_dutch_and_german():
    agency = load("example-be")

    video_languages = {lang for c in agency.counselors if Mode.VIDEO in c.modes for lang in c.languages}

    assert {"fr", "nl", "de"} <= video_languages


def test_belgian_offices_are_staffed_in_their_region_languages():
    agency = load("example-be")

    for office in agency.offices:
        languages = belgian_region_language(office.postal_code)
        assert languages, f"{office.id}: not a Belgian postal code"
        for language in languages:
            assert any(
                office.id in c.offices and Mode.OFFICE in c.modes and language in c.languages
                for c in agency.counselors
            ), f"{office.id}: no office counselor speaking {language}"


@pytest.mark.parametrize("agency_id", EXAMPLES)
def test_every_office_has_office_hours(agency_id):
    agency = load(agency_id)
    for office in agency.offices:
        assert any(h.mode == Mode.OFFICE and h.office in (None, office.id) for h in agency.opening_hours)


@pytest.mark.parametrize("agency_id", EXAMPLES)
def test_public_holidays_on_weekdays_are_closure_days(agency_id):
    agency = load(agency_id)
    years = sorted({day.year for day in agency.closure_days})
    assert years, "closure days are listed"

    public = holidays.country_holidays(agency.country, years=years)
    missing = [day for day in public if day.weekday() < 5 and day not in agency.closure_days]

    assert not missing, f"open on public holidays: {sorted(missing)}"


@pytest.mark.parametrize("agency_id", EXAMPLES)
def test_consent_hash_changes_when_any_translation_is_edited(agency_id, tmp_path):
    original = load_agency(copy_agency(agency_id, tmp_path / "original"))
    edited_path = copy_agency(agency_id, tmp_path / "edited")
    document = original.current_document(DocumentKind.PRIVACY)
    english = edited_path.parent / document.files["en"]
    english.write_text(english.read_text(encoding="utf-8") + "\nOne more sentence.\n", encoding="utf-8")
    edited = load_agency(edited_path)

    assert content_hash(edited, document) != content_hash(original, document)



def test_the_consent_hash_changes_with_a_delay_the_terms_state_but_not_the_privacy_policy(tmp_path):
    original = load_agency(copy_agency("example-be", tmp_path / "original"))
    later_path = copy_agency("example-be", tmp_path / "later")
    text = later_path.read_text(encoding="utf-8")
    later_path.write_text(text.replace("no_show_minutes = 10", "no_show_minutes = 15"), encoding="utf-8")
    later = load_agency(later_path)
    terms, privacy = (original.current_document(kind) for kind in (DocumentKind.TERMS, DocumentKind.PRIVACY))

    # The terms now say 15 minutes: citizens accept them again. The privacy policy says no delay.
    assert content_hash(later, terms) != content_hash(original, terms)
    assert content_hash(later, privacy) == content_hash(original, privacy)
    assert "15 minutes" in fill_delays(later, later.document_text(terms, "fr"), "fr")


@pytest.mark.parametrize(
    ("edit", "refusal"),
    [(("{no_show_delay}", "{no_show_minutes}"), r"terms 2026-01 fr: unknown placeholder \{no_show_minutes\}"),
     (("cancellation_cutoff_minutes = 120", "cancellation_cutoff_minutes = 0"),
      r"terms 2026-01 \w\w: \{change_cutoff\} is 0 minutes")],
)
def test_a_document_placeholder_the_agency_file_cannot_fill_is_refused(edit, refusal, tmp_path):
    path = copy_agency("example-be", tmp_path)
    target = path.parent / "terms-2026-01.fr.md" if edit[0].startswith("{") else path
    target.write_text(target.read_text(encoding="utf-8").replace(*edit), encoding="utf-8")

    with pytest.raises(AgencyConfigError, match=refusal):
        load_agency(path)


BROKEN = [
    pytest.param(
        "example-be", 'timezone = "Europe/Brussels"', 'timezone = "Europe/Bruxelles"', r"timezone",
        id="unknown-timezone",
    ),
    pytest.param(
        "example-fr", 'modes = ["video", "office"]\n\nreminder', 'modes = ["video"]\n\nreminder',
        r"subjects\[0\]\.modes", id="subject-mode-not-offered",
    ),
    pytest.param(
        "example-be", 'offices = ["gent"]\nmodes = ["office"]', 'offices = ["antwerpen"]\nmodes = ["office"]',
        r"counselors\[4\]\.offices", id="counselor-in-unknown-office",
    ),
    pytest.param(
        "example-be", 'de = "Antrag auf Arbeitslosengeld"\n', "", r"subjects\[0\]\.name.*'de'",
        id="subject-name-missing-a-language",
    ),
    pytest.param(
        "example-be",
        'de = "Ihren Personalausweis und das Dokument',
        'xx = "Ihren Personalausweis und das Dokument',
        r"subjects\[3\]\.documents_to_prepare.*'de'", id="checklist-missing-a-language",
    ),
    pytest.param(
        "example-fr", 'id = "housing-aid"', 'id = "family-benefits"', r"subjects: duplicate ids",
        id="duplicate-subject-id",
    ),
    pytest.param(
        "example-be", "duration_minutes = 45", "duration_minutes = 0", r"subjects\.0\.duration_minutes",
        id="zero-duration",
    ),
    pytest.param(
        "example-fr", 'languages = ["fr"]\n# Every', 'languages = ["fr", "es"]\n# Every', r"languages",
        id="unsupported-language",
    ),
    pytest.param(
        "example-be", 'privacy-2026-01.nl.md"', 'privacy-2026-01.nl.txt"',
        r"documents.*privacy-2026-01\.nl\.txt",
        id="document-file-missing",
    ),
    pytest.param(
        "example-fr", "[contact]", "[contact", r"invalid TOML", id="invalid-toml",
    ),
    # The number citizens are told to call when the chat cannot help them.
    pytest.param(
        "example-be", 'phone = "+32 2 555 01 00"', 'phone = "call the front desk"', r"contact\.phone",
        id="phone-not-a-number",
    ),
    pytest.param(
        "example-fr", 'phone = "+33 1 99 00 12 34"', 'phone = "01 99 00"', r"contact\.phone",
        id="phone-too-short",
    ),
]


@pytest.mark.parametrize(("agency_id", "original", "broken", "names"), BROKEN)
def test_a_broken_agency_file_is_refused_with_the_field_named(agency_id, original, broken, names, tmp_path):
    path = copy_agency(agency_id, tmp_path)
    text = path.read_text(encoding="utf-8")
    assert text.count(original) == 1
    path.write_text(text.replace(original, broken), encoding="utf-8")

    with pytest.raises(AgencyConfigError, match=names) as raised:
        load_agency(path)

    assert str(path) in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_missing_translation_file_is_refused(tmp_path):
    path = copy_agency("example-be", tmp_path)
    (path.parent / "terms-2026-01.de.md").unlink()

    with pytest.raises(AgencyConfigError, match=r"terms 2026-01 de: file 'terms-2026-01\.de\.md' not found"):
        load_agency(path)


def test_a_missing_agency_file_is_refused(tmp_path):
    with pytest.raises(AgencyConfigError, match="agency file not found"):
        load_agency(tmp_path / "nowhere" / "agency.toml")
