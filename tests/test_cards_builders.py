"""Every card the bot sends: valid against the official schema, small enough for Teams, in every
language, for a generated agency with realistic documents and for the shipped example agencies."""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.commands import Intent, recognize
from bot.domain.agency import Agency, Document, DocumentKind, Mode, load_agency
from bot.domain.consent import content_hash
from bot.i18n import t
from cards.consent import (
    HASH_PREFIX_LENGTH,
    action_data,
    build_consent_card,
    build_consent_declined_card,
    build_consent_recorded_card,
    build_info_card,
    build_withdraw_confirm_card,
    document_texts,
    fill_delays,
)
from cards.document import document_elements, escape_markdown, inline_markdown, parse_document
from cards.elements import adaptive_card, text_block
from cards.formatting import format_date, format_time
from cards.validation import MAX_CARD_BYTES, card_size_bytes, validate_card
from cards.verbs import Verb, execute_action
from cards.welcome import HELP_COMMANDS, build_help_card, build_welcome_card
from dialogs.await_card import stamp_card
from tests.oracles import fit_card

LANGUAGES = ("fr", "nl", "de", "en")
AGENCIES_DIR = Path(__file__).resolve().parent.parent / "deployment" / "agencies"
EXAMPLE_AGENCIES = sorted(p.parent.name for p in AGENCIES_DIR.glob("*/agency.toml"))
CITIZEN_REF = "c-7f3a9e"

# Words to build documents from: real words of each language, accents included, so sizes are real.
WORDS = {
    "fr": ("rendez-vous conseiller données personnelles dossier allocations démarches entretien vidéo "
           "bureau identité caméra connexion délai règles conservation sécurité réclamation téléphone "
           "courrier vérification préalable durée traitement finalité responsable destinataires "
           "hébergement européenne accès rectification effacement opposition limitation portabilité "
           "autorité contrôle plainte consentement retrait annulation ponctualité enregistrement "
           "interdit respect mutuel langue résidence néerlandais allemand français chômage paiement"),
    "nl": ("afspraak consulent persoonsgegevens dossier uitkering stappen gesprek video kantoor "
           "identiteit camera verbinding termijn regels bewaring beveiliging klacht telefoon brief "
           "controle voorafgaand duur verwerking doel verantwoordelijke ontvangers hosting europese "
           "inzage verbetering wissing bezwaar beperking overdraagbaarheid toezichthouder toestemming "
           "intrekking annulering stiptheid opname verboden respect wederzijds taal woonplaats betaling"),
    "de": ("Termin Beraterin Berater personenbezogene Daten Akte Leistungen Schritte Gespräch Video "
           "Geschäftsstelle Identität Kamera Verbindung Frist Regeln Aufbewahrung Sicherheit Beschwerde "
           "Telefon Schreiben Prüfung vorherige Dauer Verarbeitung Zweck Verantwortlicher Empfänger "
           "Hosting europäische Auskunft Berichtigung Löschung Widerspruch Einschränkung Übertragbarkeit "
           "Aufsichtsbehörde Einwilligung Widerruf Stornierung Pünktlichkeit Aufzeichnung verboten"),
    "en": ("appointment counselor personal data file benefits steps interview video office identity "
           "camera connection deadline rules retention security complaint telephone letter check prior "
           "duration processing purpose controller recipients hosting european access rectification "
           "erasure objection restriction portability authority consent withdrawal cancellation "
           "punctuality recording forbidden respect mutual language residence payment"),
}


# Short words make up about half of real prose; without them the text is far denser than a real one.
SHORT_WORDS = {
    "fr": "de la le les des et à en un une vous nous pour par dans sur au est sont qui que ne pas",
    "nl": "de het een en van in op met voor u we dat die is zijn te aan bij om niet ook als of",
    "de": "der die das und in zu den mit Sie wir für auf ist sind ein eine von im bei nicht auch",
    "en": "the a an and of to in for on with you we is are by at as or not our your this that",
}


def _sentence(rng: random.Random, language: str, words: int) -> str:
    short, long = SHORT_WORDS[language].split(), WORDS[language].split()
    chosen = [rng.choice(short) if rng.random() < 0.5 else rng.choice(long) for _ in range(words)]
    if words >= 8 and rng.random() < 0.25:
        chosen[2] = f"**{chosen[2]} {chosen[3]}**"
        del chosen[3]
    text = " ".join(chosen)
    return text[0].upper() + text[1:] + "."


def generate_document(language: str, *, sections: int, seed: int) -> str:
    """A document in the agencies' format: title, a key-points summary, then sections (~95 words each)."""
    rng = random.Random(f"{language}-{seed}")
    lines = [f"# {_sentence(rng, language, 5)[:-1]}", "", f"## {_sentence(rng, language, 2)[:-1]}", ""]
    lines += [f"- {_sentence(rng, language, 12)}" for _ in range(8)]
    for number in range(sections):
        lines += ["", f"## {_sentence(rng, language, 4)[:-1]}", ""]
        for _ in range(2):
            lines.append(" ".join(_sentence(rng, language, 13) for _ in range(3)))
            lines.append("")
        if number % 2 == 0:
            lines += [f"- {_sentence(rng, language, 7)}" for _ in range(3)]
        if number == sections - 1:
            lines += ["", "Contact : [www.agency.example](https://www.agency.example/contact)."]
    return "\n".join(lines) + "\n"


def word_count(text: str) -> int:
    return len(re.findall(r"\w+", text))


def make_agency(
    base_dir: Path, *, sections: int = 12, modes: tuple[str, ...] = ("video", "office"),
    change_note: bool = False, keep_statistics: bool = True,
) -> Agency:
    """A complete agency in all four languages, its documents written to `base_dir`."""
    documents = []
    for index, kind in enumerate(DocumentKind):
        files = {}
        for language in LANGUAGES:
            name = f"{kind.value}-2026-02.{language}.md"
            (base_dir / name).write_text(
                generate_document(language, sections=sections + index, seed=index), encoding="utf-8"
            )
            files[language] = name
        document: dict[str, Any] = {
            "kind": kind.value, "version": "2026-02", "published": date(2026, 2, 1), "files": files,
        }
        if change_note:
            document["change_note"] = {lang: f"Section 3 ({lang}) was rewritten." for lang in LANGUAGES}
        documents.append(document)
    localized = {lang: f"Test agency ({lang})" for lang in LANGUAGES}
    office_mode = "office" in modes
    return Agency.model_validate({
        "id": "test-agency",
        "name": {"fr": "Caisse d'essai", "nl": "Testkas", "de": "Testkasse", "en": "Test Fund"},
        "country": "BE",
        "timezone": "Europe/Brussels",
        "languages": list(LANGUAGES),
        "interview_language_rule": "citizen_choice",
        "recording": "forbidden",
        "modes": list(modes),
        "contact": {
            "phone": "+32 2 555 02 00",
            "email": "info_desk@agency.example",
            "website": "https://www.agency.example",
            "postal_address": "Rue de l'Essai 1, 1000 Bruxelles",
        },
        "dpo_contact": "dpo@agency.example",
        "supervisory_authority": localized,
        "offices": [{"id": "main", "name": localized, "street": "Rue de l'Essai 1", "postal_code": "1000",
                     "city": "Bruxelles"}] if office_mode else [],
        "opening_hours": [{"mode": mode, "days": ["mon", "tue"], "start": "09:00", "end": "12:00"}
                          for mode in modes],
        "subjects": [{"id": "s", "name": localized, "duration_minutes": 30, "modes": list(modes)}],
        "counselors": [{"id": "c1", "display_name": "A. Counselor", "languages": list(LANGUAGES),
                        "offices": ["main"] if office_mode else [], "modes": list(modes)}],
        "personal_data_fields": ["first_name", "last_name", "email"],
        "retention": {"appointments_months": 18, "citizen_inactive_months": 30, "consent_proof_months": 72,
                      "keep_anonymised_statistics": keep_statistics},
        "documents": documents,
        "base_dir": base_dir,
    })


@pytest.fixture
def agency(tmp_path: Path) -> Agency:
    return make_agency(tmp_path)


def _agencies() -> list[Any]:
    return ["generated", *EXAMPLE_AGENCIES]


def _load(name: str, tmp_path: Path) -> Agency:
    if name == "generated":
        return make_agency(tmp_path, change_note=True)
    return load_agency(AGENCIES_DIR / name / "agency.toml")


def all_cards(agency: Agency, language: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for kind in DocumentKind:
        document = agency.current_document(kind)
        note = document.change_note.get(language) if document.change_note else None
        yield f"consent-{kind.value}", build_consent_card(
            agency, kind=kind, document=document, language=language, citizen_ref=CITIZEN_REF,
            change_note=note or "Une section a changé.", other_languages=list(agency.languages),
        )
        yield f"recorded-{kind.value}", build_consent_recorded_card(
            agency, kind=kind, document=document, language=language,
            accepted_at_local=datetime(2026, 11, 23, 14, 5),
        )
    yield "declined", build_consent_declined_card(agency, language)
    for count in (0, 1, 3):
        yield f"withdraw-{count}", build_withdraw_confirm_card(agency, language, count)
    yield "welcome", build_welcome_card(agency, language)
    yield "help", build_help_card(agency, language)
    yield "info", build_info_card(t(language, "help.title"), t(language, "help.intro"), language=language)


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def of_type(card: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [node for node in walk(card) if node.get("type") == kind]


def all_text(card: dict[str, Any]) -> str:
    parts = [n["text"] for n in of_type(card, "TextBlock")]
    parts += [f"{f['title']} {f['value']}" for n in of_type(card, "FactSet") for f in n["facts"]]
    return "\n".join(parts)


def consent_card(
    agency: Agency, kind: DocumentKind, language: str = "fr", **overrides: Any
) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "kind": kind, "document": agency.current_document(kind), "language": language,
        "citizen_ref": CITIZEN_REF, "change_note": None, "other_languages": list(agency.languages),
    }
    return build_consent_card(agency, **{**arguments, **overrides})


# --- Every card, every language, every agency ------------------------------------------------------


@pytest.mark.parametrize("agency_name", _agencies())
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_card_is_valid_and_fits(agency_name: str, language: str, tmp_path: Path) -> None:
    agency = _load(agency_name, tmp_path)
    names = []
    for name, card in all_cards(agency, language):
        validate_card(card)
        assert card_size_bytes(card) < MAX_CARD_BYTES, name
        assert card["lang"] == language
        names.append(name)
    assert len(names) == 11


def test_generated_documents_are_realistic(agency: Agency) -> None:
    for document in agency.documents:
        for language in LANGUAGES:
            assert 1100 <= word_count(agency.document_text(document, language)) <= 1600


@pytest.mark.parametrize("agency_name", _agencies())
def test_real_sized_documents_are_shown_whole(agency_name: str, tmp_path: Path) -> None:
    agency = _load(agency_name, tmp_path)
    for kind in DocumentKind:
        for language in agency.languages:
            card = consent_card(agency, kind, language)
            assert not of_type(card, "Action.OpenUrl"), f"{kind} {language} was trimmed"
            source = agency.document_text(agency.current_document(kind), language)
            last_heading = [line for line in source.splitlines() if line.startswith("## ")][-1][3:]
            assert f"▸ {escape_markdown(last_heading.strip())}" in all_text(card)


# --- Consent card ------------------------------------------------------------------------------------


def test_consent_actions_carry_what_the_citizen_was_shown(agency: Agency) -> None:
    for kind in DocumentKind:
        card = consent_card(agency, kind, "nl")
        document = agency.current_document(kind)
        expected = {
            "kind": kind.value,
            "version": document.version,
            "doc_hash": content_hash(agency, document)[:HASH_PREFIX_LENGTH],
            "language": "nl",
            "citizen_ref": CITIZEN_REF,
        }
        accept, decline = card["actions"]
        assert accept["verb"] == Verb.CONSENT_ACCEPT and decline["verb"] == Verb.CONSENT_DECLINE
        for action in (accept, decline):
            assert action["data"] == {"verb": action["verb"], **expected}
            assert action["fallback"]["data"] == action["data"]
    terms_hash = consent_card(agency, DocumentKind.TERMS)["actions"][0]["data"]["doc_hash"]
    privacy_hash = consent_card(agency, DocumentKind.PRIVACY)["actions"][0]["data"]["doc_hash"]
    assert terms_hash != privacy_hash


def test_every_execute_action_has_a_submit_fallback_with_the_same_data(agency: Agency) -> None:
    for language in LANGUAGES:
        for _name, card in all_cards(agency, language):
            for action in of_type(card, "Action.Execute"):
                fallback = action["fallback"]
                assert fallback["type"] == "Action.Submit"
                assert fallback["title"] == action["title"]
                assert fallback["data"] == action["data"] and fallback["data"]["verb"] == action["verb"]


def test_language_switches_are_in_their_own_language(agency: Agency) -> None:
    card = consent_card(agency, DocumentKind.TERMS, "fr", other_languages=["fr", "nl", "de", "en", "nl"])
    switches = [a for a in of_type(card, "Action.Execute") if a["verb"] == Verb.CONSENT_LANGUAGE]
    assert [(a["title"], a["data"]["language"]) for a in switches] == [
        ("Lezen in het Nederlands", "nl"), ("Auf Deutsch lesen", "de"), ("Read in English", "en"),
    ]
    assert all(a["data"]["citizen_ref"] == CITIZEN_REF and a["data"]["kind"] == "terms" for a in switches)


def test_no_language_switch_to_a_language_the_document_lacks(agency: Agency) -> None:
    card = consent_card(agency, DocumentKind.TERMS, "fr", other_languages=["fr", "it", "nl"])
    switches = [a for a in of_type(card, "Action.Execute") if a["verb"] == Verb.CONSENT_LANGUAGE]
    offered = [a["data"]["language"] for a in switches]
    assert offered == ["nl"]
    alone = consent_card(agency, DocumentKind.TERMS, "fr", other_languages=["fr"])
    assert t("fr", "consent.other_languages") not in all_text(alone)


def test_document_text_is_in_the_citizen_language(agency: Agency) -> None:
    for language in LANGUAGES:
        card = consent_card(agency, DocumentKind.PRIVACY, language)
        source = agency.document_text(agency.current_document(DocumentKind.PRIVACY), language)
        title = source.splitlines()[0][2:]
        assert title in all_text(card)
        assert t(language, "consent.privacy.question") in all_text(card)


def test_consent_card_names_the_version_and_publication_date(agency: Agency) -> None:
    terms = consent_card(agency, DocumentKind.TERMS)
    assert "Version 2026-02, publiée le 1er février 2026" in all_text(terms)
    assert "Version 2026-02, veröffentlicht am 1. Februar 2026" in all_text(
        consent_card(agency, DocumentKind.PRIVACY, "de")
    )


def test_change_note_comes_first_and_only_when_given(agency: Agency) -> None:
    note = "La section **Annulation** précise désormais le délai."
    card = consent_card(agency, DocumentKind.TERMS, "fr", change_note=note)
    top = card["body"][0]
    assert top["type"] == "Container" and top["style"] == "accent"
    texts = [item["text"] for item in top["items"]]
    assert texts[0] == t("fr", "consent.change_heading")
    assert note in texts
    without = consent_card(agency, DocumentKind.TERMS, "fr", change_note=None)
    assert note not in all_text(without)
    assert t("fr", "consent.change_heading") not in all_text(without)


def test_sections_start_collapsed_and_summary_is_visible(agency: Agency) -> None:
    card = consent_card(agency, DocumentKind.TERMS, "de")
    hidden = [c for c in of_type(card, "Container") if c.get("isVisible") is False]
    toggles = of_type(card, "Action.ToggleVisibility")
    assert len(hidden) == len(toggles) == 12
    source = agency.document_text(agency.current_document(DocumentKind.TERMS), "de")
    first_point = next(line for line in source.splitlines() if line.startswith("- "))[2:]
    visible_text = "\n".join(b["text"] for b in card["body"] if b["type"] == "TextBlock")
    assert first_point.split("**")[0] in visible_text


def test_too_long_document_is_trimmed_and_points_to_the_website(tmp_path: Path) -> None:
    agency = make_agency(tmp_path, sections=45)
    document = agency.current_document(DocumentKind.PRIVACY)
    assert word_count(agency.document_text(document, "fr")) > 4000
    card = consent_card(agency, DocumentKind.PRIVACY, "fr")
    validate_card(card)
    assert card_size_bytes(card) < MAX_CARD_BYTES
    (link,) = of_type(card, "Action.OpenUrl")
    assert link["url"] == agency.contact.website
    assert t("fr", "common.full_text_notice") in all_text(card)
    # Trimmed at the end: some sections remain, the summary and the buttons are all there.
    assert 0 < len(of_type(card, "Action.ToggleVisibility")) < 46
    assert [a["verb"] for a in card["actions"]] == [Verb.CONSENT_ACCEPT, Verb.CONSENT_DECLINE]


def test_document_markup_from_the_agency_file_cannot_inject(tmp_path: Path) -> None:
    agency = make_agency(tmp_path)
    document = agency.current_document(DocumentKind.TERMS)
    hostile = (
        "# Titre\n\n## L'essentiel\n\n- <script>alert('x')</script>\n"
        "- [Accepter ici](javascript:alert(1)) et ![pixel](https://evil.example/p.png)\n\n"
        "## Section\n\n*texte _mal formé [lien](data:text/html,x)\n"
    )
    (tmp_path / document.files["fr"]).write_text(hostile, encoding="utf-8")
    card = consent_card(agency, DocumentKind.TERMS, "fr")
    validate_card(card)
    text = all_text(card)
    assert "<script>alert('x')</script>" in text  # shown as text, not dropped, not run
    assert "javascript:" not in text and "data:text" not in text
    assert "evil.example" not in text
    assert "\\*texte \\_mal formé lien" in text


# --- Recorded, declined, withdrawal ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "date_text"),
    [("fr", "23 novembre 2026"), ("nl", "23 november 2026"), ("de", "23. November 2026"), ("en", "23 November 2026")],
)
def test_recorded_card_states_when_and_which_version(agency: Agency, language: str, date_text: str) -> None:
    for kind in DocumentKind:
        document = agency.current_document(kind)
        card = build_consent_recorded_card(
            agency, kind=kind, document=document, language=language,
            accepted_at_local=datetime(2026, 11, 23, 14, 5),
        )
        status = card["body"][0]["items"][0]["text"]
        assert date_text in status and "14:05" in status and document.version in status
        assert not of_type(card, "Action.Execute") and not of_type(card, "Action.Submit")
        assert "actions" not in card


def test_declined_card_gives_every_way_to_reach_the_agency(agency: Agency) -> None:
    for language in LANGUAGES:
        card = build_consent_declined_card(agency, language)
        text = all_text(card)
        contact = agency.contact
        # The e-mail address has an underscore: it stays as typed, not escaped nor read as emphasis.
        for value in (contact.phone, contact.email, contact.website, contact.postal_address):
            assert value in text
        assert t(language, "consent.declined.text") in text
        assert [a["verb"] for a in card["actions"]] == [Verb.SHOW_TERMS]


def test_withdraw_card_explains_what_happens_to_appointments_and_data(tmp_path: Path) -> None:
    agency = make_agency(tmp_path)
    none_card = build_withdraw_confirm_card(agency, "en", 0)
    one_card = build_withdraw_confirm_card(agency, "en", 1)
    three_card = build_withdraw_confirm_card(agency, "en", 3)
    assert "no upcoming appointments" in all_text(none_card)
    assert "Your upcoming appointment will be cancelled" in all_text(one_card)
    assert "Your 3 upcoming appointments will be cancelled" in all_text(three_card)
    text = all_text(three_card)
    assert "72 months" in text and "18 months" in text and "30 months" in text
    assert "anonymous statistics" in text
    assert '"Erase"' in text
    confirm, keep = three_card["actions"]
    assert confirm["verb"] == Verb.CONSENT_WITHDRAW_CONFIRM and confirm["style"] == "destructive"
    assert confirm["data"]["upcoming"] == 3
    assert keep["verb"] == Verb.CONSENT_WITHDRAW_CANCEL
    (tmp_path / "other").mkdir()
    no_stats = make_agency(tmp_path / "other", keep_statistics=False)
    assert "anonymous statistics" not in all_text(build_withdraw_confirm_card(no_stats, "en", 0))


# --- Welcome and help --------------------------------------------------------------------------------


def test_welcome_card_offers_the_main_menu(agency: Agency) -> None:
    for language in LANGUAGES:
        card = build_welcome_card(agency, language)
        assert [a["verb"] for a in card["actions"]] == [
            Verb.MENU_BOOK, Verb.MENU_MY_APPOINTMENTS, Verb.MENU_MY_DATA, Verb.MENU_HELP,
        ]
        assert card["body"][0]["text"] == agency.display_name(language)
        assert t(language, "welcome.does_video_office") in all_text(card)


@pytest.mark.parametrize(("modes", "key"), [(("video",), "does_video"), (("office",), "does_office")])
def test_welcome_card_mentions_only_the_modes_offered(
    tmp_path: Path, modes: tuple[str, ...], key: str
) -> None:
    agency = make_agency(tmp_path, modes=modes)
    assert agency.modes == [Mode(m) for m in modes]
    text = all_text(build_welcome_card(agency, "fr"))
    assert t("fr", f"welcome.{key}") in text
    assert t("fr", "welcome.does_video_office") not in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_command_the_help_card_shows_is_understood(agency: Agency, language: str) -> None:
    card = build_help_card(agency, language)
    shown = re.findall(r"^\*\*(.+?)\*\* – ", all_text(card), flags=re.MULTILINE)
    assert len(shown) == len(HELP_COMMANDS)
    for key, command in zip(HELP_COMMANDS, shown, strict=True):
        assert recognize(command, exact=True) == Intent(key), f"{language}: {command!r}"
    for key in ("book", "help"):
        assert recognize(t(language, f"help.command.{key}"), exact=True) == Intent(key)


def test_help_card_lists_the_agency_contact(agency: Agency) -> None:
    card = build_help_card(agency, "de")
    facts = {f["title"]: f["value"] for f in of_type(card, "FactSet")[0]["facts"]}
    assert facts["Telefon"] == agency.contact.phone
    assert facts["Postanschrift"] == agency.contact.postal_address
    assert [a["verb"] for a in card["actions"]] == [Verb.SHOW_TERMS, Verb.SHOW_PRIVACY]


def test_building_twice_gives_the_same_card(agency: Agency) -> None:
    assert consent_card(agency, DocumentKind.TERMS, "fr") == consent_card(agency, DocumentKind.TERMS, "fr")


# --- Documents rendered once, cards assembled per citizen -------------------------------------------


def _consent_card_rendered_each_time(
    agency: Agency, *, kind: DocumentKind, document: Document, language: str, citizen_ref: str,
    change_note: str | None, other_languages: list[str],
) -> dict[str, Any]:
    """The consent card as built before documents were cached: parsed, rendered and fitted every time."""
    parsed = parse_document(fill_delays(agency, agency.document_text(document, language), language))
    data = action_data(agency, kind, document, language, citizen_ref)
    switches = [o for o in dict.fromkeys(other_languages) if o != data["language"] and o in document.files]
    texts = document_texts(agency, language)
    published = format_date(document.published, language, country=agency.country, weekday=False)
    subtitle = t(language, "consent.version_line", version=document.version, date=published)

    def build(sections_shown: int | None) -> dict[str, Any]:
        body: list[dict[str, Any]] = []
        if change_note:
            body.append({"type": "Container", "style": "accent", "items": [
                text_block(t(language, "consent.change_heading"), weight="bolder"),
                text_block(t(language, "consent.change_intro"), spacing="small"),
                text_block(inline_markdown(change_note), spacing="small"),
            ]})
        body.append(text_block(t(language, f"consent.{kind.value}.intro"), isSubtle=True))
        if kind is DocumentKind.TERMS and agency.recording == "allowed_with_notice":
            body.append({"type": "Container", "style": "warning", "items": [
                text_block(t(language, "booking.confirmation.recording_allowed_with_notice"))]})
        body += document_elements(parsed, texts, id_prefix=kind.value[0], subtitle=subtitle,
                                  sections_shown=sections_shown)
        if switches:
            body.append(text_block(t(language, "consent.other_languages"), spacing="large", size="small"))
            body.append({"type": "ActionSet", "actions": [
                execute_action(t(other, "common.read_in_this_language"), Verb.CONSENT_LANGUAGE,
                               {**data, "language": other})
                for other in switches
            ]})
        body.append(text_block(t(language, f"consent.{kind.value}.question"), weight="bolder", spacing="large"))
        actions = [
            execute_action(t(language, "consent.accept"), Verb.CONSENT_ACCEPT, data, style="positive"),
            execute_action(t(language, "consent.decline"), Verb.CONSENT_DECLINE, data),
        ]
        return adaptive_card(language, body, actions)

    return fit_card(build, len(parsed.sections))


def _recorded_card_rendered_each_time(
    agency: Agency, *, kind: DocumentKind, document: Document, language: str, accepted_at_local: datetime,
) -> dict[str, Any]:
    parsed = parse_document(fill_delays(agency, agency.document_text(document, language), language))
    accepted = t(language, f"consent.{kind.value}.accepted",
                 date=format_date(accepted_at_local, language, country=agency.country, weekday=False),
                 time=format_time(accepted_at_local, language, country=agency.country), version=document.version)
    texts = document_texts(agency, language)
    published = format_date(document.published, language, country=agency.country, weekday=False)
    subtitle = t(language, "consent.version_line", version=document.version, date=published)

    def build(sections_shown: int | None) -> dict[str, Any]:
        body: list[dict[str, Any]] = [
            {"type": "Container", "style": "good", "items": [text_block(f"✓ {accepted}", weight="bolder")]},
        ]
        body += document_elements(parsed, texts, id_prefix=kind.value[0], subtitle=subtitle,
                                  sections_shown=sections_shown)
        return adaptive_card(language, body)

    return fit_card(build, len(parsed.sections))


def _json(card: dict[str, Any]) -> str:
    # Key order included: the bytes Teams receives.
    return json.dumps(card, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize("agency_name", [*_agencies(), "trimmed"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_consent_cards_are_the_bytes_rendering_every_time_gave(
    agency_name: str, language: str, tmp_path: Path
) -> None:
    agency = make_agency(tmp_path, sections=45) if agency_name == "trimmed" else _load(agency_name, tmp_path)
    for kind in DocumentKind:
        document = agency.current_document(kind)
        # The first build renders the document, the others come from the cache. A long note pushes
        # sections out of the card: the trimming must match too.
        for note in (None, "Une section a **changé**, voir [ici](https://x.example).", "note " * 700):
            for others in (list(agency.languages), ["de", "fr", "de"]):
                for ref in (CITIZEN_REF, "é" * 40):
                    arguments: dict[str, Any] = {
                        "kind": kind, "document": document, "language": language, "citizen_ref": ref,
                        "change_note": note, "other_languages": others,
                    }
                    assert _json(build_consent_card(agency, **arguments)) == _json(
                        _consent_card_rendered_each_time(agency, **arguments))
        for accepted in (datetime(2026, 11, 23, 14, 5), datetime(2026, 2, 1, 9, 0)):
            recorded: dict[str, Any] = {
                "kind": kind, "document": document, "language": language, "accepted_at_local": accepted,
            }
            assert _json(build_consent_recorded_card(agency, **recorded)) == _json(
                _recorded_card_rendered_each_time(agency, **recorded))


def test_a_card_changed_after_building_leaves_the_next_citizen_card_alone(agency: Agency) -> None:
    first = consent_card(agency, DocumentKind.TERMS, "fr", citizen_ref="citizen-one")
    stamp_card(first, "card-of-citizen-one")
    # Whatever happens to a card once built: ids stamped, texts and toggles changed, elements removed.
    for node in walk(first):
        if node.get("type") == "TextBlock":
            node["text"] = "changed"
        if node.get("type") == "Action.ToggleVisibility":
            node["targetElements"].clear()
            node["data"] = {"card_id": "card-of-citizen-one"}
    first["body"].pop()
    recorded = build_consent_recorded_card(agency, kind=DocumentKind.TERMS, document=agency.current_document(
        DocumentKind.TERMS), language="fr", accepted_at_local=datetime(2026, 11, 23, 14, 5))
    for node in list(walk(recorded)):
        node.clear()

    second = consent_card(agency, DocumentKind.TERMS, "fr", citizen_ref="citizen-two")
    expected = _consent_card_rendered_each_time(
        agency, kind=DocumentKind.TERMS, document=agency.current_document(DocumentKind.TERMS), language="fr",
        citizen_ref="citizen-two", change_note=None, other_languages=list(agency.languages))
    assert _json(second) == _json(expected)
    assert "citizen-one" not in _json(second) and "changed" not in _json(second)
    assert {a["data"]["citizen_ref"] for a in of_type(second, "Action.Execute")} == {"citizen-two"}
    recorded_arguments: dict[str, Any] = {"kind": DocumentKind.TERMS, "language": "fr",
                                          "document": agency.current_document(DocumentKind.TERMS),
                                          "accepted_at_local": datetime(2026, 11, 23, 14, 5)}
    assert _json(build_consent_recorded_card(agency, **recorded_arguments)) == _json(
        _recorded_card_rendered_each_time(agency, **recorded_arguments))


def test_the_cached_document_follows_version_date_website_and_text(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    agency = make_agency(tmp_path / "a", sections=45)
    document = agency.current_document(DocumentKind.TERMS)
    before = consent_card(agency, DocumentKind.TERMS)
    assert "Version 2026-02, publiée le 1er février 2026" in all_text(before)

    # The same text published again under a new version: the new version line, not the cached one.
    republished = document.model_copy(update={"version": "2026-09", "published": date(2026, 9, 1)})
    card = consent_card(agency, DocumentKind.TERMS, document=republished)
    assert "Version 2026-09, publiée le 1er septembre 2026" in all_text(card)
    assert "2026-02" not in all_text(card)

    # Another website: the "full text" button of the trimmed card points there.
    moved = agency.model_copy(update={"contact": agency.contact.model_copy(update={"website": "https://new.example"})})
    (link,) = of_type(consent_card(moved, DocumentKind.TERMS), "Action.OpenUrl")
    assert link["url"] == "https://new.example"

    # Another text (another agency, same file names and version): its own text.
    other = make_agency(tmp_path / "b", sections=3)
    other_card = consent_card(other, DocumentKind.TERMS)
    source = other.document_text(other.current_document(DocumentKind.TERMS), "fr")
    assert source.splitlines()[0][2:] in all_text(other_card)
    assert _json(other_card) != _json(before)
    assert len(of_type(other_card, "Action.ToggleVisibility")) == 3

    # And each language its own text, in either order.
    for language in ("de", "fr", "nl"):
        card = consent_card(other, DocumentKind.TERMS, language)
        title = other.document_text(other.current_document(DocumentKind.TERMS), language).splitlines()[0][2:]
        assert title in all_text(card)


# --- Stamping card ids ----------------------------------------------------------------------------


def _stamp_by_full_walk(card: Any, card_id: str) -> Any:
    """How cards were stamped before the walk skipped strings: every node visited the plain way."""

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("Action.Submit", "Action.Execute"):
                data = node.get("data")
                node["data"] = {**(data if isinstance(data, dict) else {}), "card_id": card_id}
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(card)
    return card


_JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=4),
                       st.sampled_from(["Action.Submit", "Action.Execute", "TextBlock"]))


def _json_node(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.sampled_from(["type", "data", "body", "actions", "fallback", "card", "items", "card_id", "x"])
    return st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=5),
        st.fixed_dictionaries({"type": st.sampled_from(["Action.Submit", "Action.Execute"])},
                              optional={"data": children, "fallback": children, "card": children}),
    )


@given(st.recursive(_JSON_LEAF, _json_node, max_leaves=40))
@settings(max_examples=500, deadline=None)
def test_stamp_card_stamps_exactly_the_actions_a_full_walk_stamps(tree: Any) -> None:
    assert stamp_card(copy.deepcopy(tree), "id-1") == _stamp_by_full_walk(copy.deepcopy(tree), "id-1")


@pytest.mark.parametrize("language", LANGUAGES)
def test_stamp_card_on_every_card(agency: Agency, language: str) -> None:
    for name, card in all_cards(agency, language):
        expected = _json(_stamp_by_full_walk(copy.deepcopy(card), "abc"))
        assert _json(stamp_card(card, "abc")) == expected, name
        if of_type(card, "Action.Execute"):
            assert all(a["data"]["card_id"] == "abc" for a in of_type(card, "Action.Submit"))


@pytest.mark.parametrize(("agency_name", "told"), [("example-fr", True), ("example-be", False)])
def test_the_terms_card_says_the_interview_may_be_recorded_where_the_agency_records_as_proof(
    agency_name: str, told: bool,
) -> None:
    agency = load_agency(AGENCIES_DIR / agency_name / "agency.toml")
    document = agency.current_document(DocumentKind.TERMS)
    card = build_consent_card(agency, kind=DocumentKind.TERMS, document=document, language="fr", citizen_ref="r" * 16,
                              change_note=None, other_languages=[])
    notice = t("fr", "booking.confirmation.recording_allowed_with_notice")
    assert (notice in json.dumps(card, ensure_ascii=False)) is told
    validate_card(card)
