"""Consent cards: a terms or privacy document to accept, its recorded outcome, a refusal, withdrawal.

Every consent action carries what the citizen was shown — document kind, version, language, a prefix
of the document's content hash — and `citizen_ref`, so the bot can refuse an action forged by hand,
replayed from an older card, or sent from another citizen's card:

    {"verb": "consent_accept", "kind": "terms", "version": "2026-01", "doc_hash": "3f9a…",
     "language": "fr", "citizen_ref": "…"}
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import Any

from bot.domain.agency import DOCUMENT_PLACEHOLDER, Agency, Document, DocumentKind, RecordingPolicy
from bot.domain.consent import content_hash
from bot.i18n import t
from cards.document import DocumentTexts, RenderedDocument, fit_document, inline_markdown, parse_document
from cards.elements import adaptive_card, contact_facts, heading, text_block
from cards.formatting import duration_text, format_date, format_time, months_text
from cards.verbs import Verb, execute_action

# 16 hex digits (64 bits): enough to tell versions apart, short enough for every button's data.
HASH_PREFIX_LENGTH = 16


def document_texts(agency: Agency, language: str) -> DocumentTexts:
    return DocumentTexts(
        expand_hint=t(language, "common.expand_hint"),
        full_text_notice=t(language, "common.full_text_notice"),
        full_text_button=t(language, "common.full_text_button"),
        website=agency.contact.website,
    )


def shown_language(agency: Agency, document: Document, language: str) -> str:
    """The language of the text actually shown: the agency's first language when `language` is missing."""
    return language if language in document.files else agency.default_language


def action_data(
    agency: Agency, kind: DocumentKind, document: Document, language: str, citizen_ref: str
) -> dict[str, str]:
    """What a consent button sends back, beside its verb (see the module docstring)."""
    return {
        "kind": kind.value,
        "version": document.version,
        "doc_hash": content_hash(agency, document)[:HASH_PREFIX_LENGTH],
        "language": shown_language(agency, document, language),
        "citizen_ref": citizen_ref,
    }


def _version_line(agency: Agency, document: Document, language: str) -> str:
    return _version_line_text(document.version, document.published, language, agency.country)


@lru_cache(maxsize=256)
def _version_line_text(version: str, published: date, language: str, country: str) -> str:
    date_text = format_date(published, language, country=country, weekday=False)
    return t(language, "consent.version_line", version=version, date=date_text)


def fill_delays(agency: Agency, text: str, language: str) -> str:
    """The document's `{no_show_delay}`-style placeholders filled from the agency file: "10 minutes"."""
    delays = agency.document_delays()
    return DOCUMENT_PLACEHOLDER.sub(lambda match: duration_text(language, delays[match.group(1)]), text)


# Rendered documents by what determines them; a handful per agency (kinds × languages × versions).
_RENDERED: dict[tuple[Any, ...], RenderedDocument] = {}
_RENDERED_MAX = 128


def rendered_document(agency: Agency, kind: DocumentKind, document: Document, language: str) -> RenderedDocument:
    """The document's card elements in `language`, parsed and rendered once per text.

    Keyed by the content hash (which covers every language's text) and the language shown: the
    same key always means the same text. Like the hash, it assumes documents do not change on disk
    while the bot runs; a new or corrected text is a new hash.
    """
    texts = document_texts(agency, language)
    subtitle = _version_line(agency, document, language)
    key = (content_hash(agency, document), shown_language(agency, document, language), kind.value, texts, subtitle)
    rendered = _RENDERED.get(key)
    if rendered is None:
        if len(_RENDERED) >= _RENDERED_MAX:
            _RENDERED.clear()
        parsed = parse_document(fill_delays(agency, agency.document_text(document, language), language))
        rendered = _RENDERED[key] = RenderedDocument(parsed, texts, id_prefix=kind.value[0], subtitle=subtitle)
    return rendered


def build_consent_card(
    agency: Agency,
    *,
    kind: DocumentKind,
    document: Document,
    language: str,
    citizen_ref: str,
    change_note: str | None,
    other_languages: list[str],
) -> dict[str, Any]:
    """The document to read, with Accept / Decline and a switch to each other language it exists in."""
    rendered = rendered_document(agency, kind, document, language)
    data = action_data(agency, kind, document, language, citizen_ref)
    switches = [
        other for other in dict.fromkeys(other_languages)
        if other != data["language"] and other in document.files
    ]
    body: list[dict[str, Any]] = []
    if change_note:
        body.append({
            "type": "Container",
            "style": "accent",
            "items": [
                text_block(t(language, "consent.change_heading"), weight="bolder"),
                text_block(t(language, "consent.change_intro"), spacing="small"),
                text_block(inline_markdown(change_note), spacing="small"),
            ],
        })
    body.append(text_block(t(language, f"consent.{kind.value}.intro"), isSubtle=True))
    if kind is DocumentKind.TERMS and RecordingPolicy(agency.recording) is RecordingPolicy.ALLOWED_WITH_NOTICE:
        # Said before anything is accepted, whatever the document's own wording.
        body.append({"type": "Container", "style": "warning", "items": [
            text_block(t(language, "booking.confirmation.recording_allowed_with_notice"))]})
    # The document goes here, once the rest of the card is known (see fit_document).
    document_at = len(body)
    if switches:
        body.append(text_block(t(language, "consent.other_languages"), spacing="large", size="small"))
        body.append({
            "type": "ActionSet",
            "actions": [
                # Each title is in its own language: it is read by someone who reads that one.
                execute_action(t(other, "common.read_in_this_language"), Verb.CONSENT_LANGUAGE,
                               {**data, "language": other})
                for other in switches
            ],
        })
    question = t(language, f"consent.{kind.value}.question")
    body.append(text_block(question, weight="bolder", spacing="large"))
    actions = [
        execute_action(t(language, "consent.accept"), Verb.CONSENT_ACCEPT, data, style="positive"),
        execute_action(t(language, "consent.decline"), Verb.CONSENT_DECLINE, data),
    ]
    return fit_document(adaptive_card(language, body, actions), document_at, rendered)


def build_consent_recorded_card(
    agency: Agency,
    *,
    kind: DocumentKind,
    document: Document,
    language: str,
    accepted_at_local: datetime,
) -> dict[str, Any]:
    """The card as it stands once accepted: when and which version, the document still readable."""
    rendered = rendered_document(agency, kind, document, language)
    accepted = t(
        language,
        f"consent.{kind.value}.accepted",
        date=format_date(accepted_at_local, language, country=agency.country, weekday=False),
        time=format_time(accepted_at_local, language, country=agency.country),
        version=document.version,
    )
    body: list[dict[str, Any]] = [{
        "type": "Container",
        "style": "good",
        "items": [text_block(f"✓ {accepted}", weight="bolder")],
    }]
    return fit_document(adaptive_card(language, body), len(body), rendered)


def build_consent_declined_card(agency: Agency, language: str) -> dict[str, Any]:
    """Booking in the chat needs the citizen's agreement; here is how to reach the agency otherwise."""
    body = [
        heading(t(language, "consent.declined.title")),
        text_block(t(language, "consent.declined.text")),
        text_block(t(language, "consent.declined.other_ways"), spacing="medium"),
        contact_facts(agency, language),
    ]
    actions = [execute_action(t(language, "consent.declined.review"), Verb.SHOW_TERMS)]
    return adaptive_card(language, body, actions)


def build_withdraw_confirm_card(agency: Agency, language: str, upcoming_count: int) -> dict[str, Any]:
    """What withdrawing consent means for this citizen, with Confirm and Keep.

    The confirm button carries `upcoming_count`: if the citizen booked since, the bot can ask again
    rather than cancel appointments the card did not mention.
    """
    if upcoming_count <= 0:
        upcoming = t(language, "consent.withdraw.upcoming_none")
    elif upcoming_count == 1:
        upcoming = t(language, "consent.withdraw.upcoming_one")
    else:
        upcoming = t(language, "consent.withdraw.upcoming_many", count=upcoming_count)
    retention = agency.retention
    body = [
        heading(t(language, "consent.withdraw.title")),
        text_block(t(language, "consent.withdraw.intro")),
        text_block(upcoming, weight="bolder", color="attention" if upcoming_count > 0 else "default"),
        text_block(t(
            language,
            "consent.withdraw.retention",
            consent_months=months_text(language, retention.consent_proof_months),
            appointments_months=months_text(language, retention.appointments_months),
            inactive_months=months_text(language, retention.citizen_inactive_months),
        )),
    ]
    if retention.keep_anonymised_statistics:
        body.append(text_block(t(language, "consent.withdraw.statistics"), spacing="small"))
    erase_command = t(language, "help.command.erase")
    body.append(text_block(t(language, "consent.withdraw.erase_hint", erase=erase_command)))
    body.append(text_block(t(language, "consent.withdraw.again"), isSubtle=True))
    actions = [
        execute_action(t(language, "consent.withdraw.confirm"), Verb.CONSENT_WITHDRAW_CONFIRM,
                       {"upcoming": upcoming_count}, style="destructive"),
        execute_action(t(language, "consent.withdraw.keep"), Verb.CONSENT_WITHDRAW_CANCEL),
    ]
    return adaptive_card(language, body, actions)


def build_info_card(title: str, text: str, *, language: str | None = None) -> dict[str, Any]:
    """A small card for a short notice; `title` and `text` come from the catalogs (card Markdown)."""
    return adaptive_card(language, [text_block(title, weight="bolder", size="medium"), text_block(text)])
