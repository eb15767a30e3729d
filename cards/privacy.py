"""Privacy cards: "my data" (what, why, how long, and the rights as buttons), correcting, erasing,
restriction and reminders, the export file's offer and its "about" section.

Values the citizen gave are shown masked where they identify (national register number, phone,
e-mail, client number) and always escaped: card Markdown must not interpret them. The cards never
show the citizen's internal id: Teams keeps cards in the chat history, and after erasure nothing
may link that chat to the pseudonym the proofs keep.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from bot.domain.agency import Agency, PersonalField
from bot.domain.personal_data import mask
from bot.i18n import t
from bot.services.privacy import ConsentView, Overview
from cards.document import escape_markdown
from cards.elements import adaptive_card, heading, text_block
from cards.formatting import format_date, months_text, to_local
from cards.verbs import Verb, execute_action

FILE_CONSENT_CARD = "application/vnd.microsoft.teams.card.file.consent"
FILE_INFO_CARD = "application/vnd.microsoft.teams.card.file.info"


def shown_value(agency: Agency, language: str, personal_field: PersonalField, value: str | date) -> str:
    """A stored value as a card may show it: masked where it identifies, escaped, dates with the
    month's name (no locale reads "30 juillet 1985" the wrong way round)."""
    if isinstance(value, date):
        return format_date(value, language, country=agency.country, weekday=False)
    return escape_markdown(mask(personal_field, value))


def _facts(rows: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {"type": "FactSet", "facts": [{"title": title, "value": value} for title, value in rows]}


def _section(title: str) -> dict[str, Any]:
    return text_block(title, weight="bolder", size="medium", spacing="large", separator=True)


def _language_name(language: str, code: str) -> str:
    return t(language, f"personal_data.language_name.{code}")


def _consent_line(agency: Agency, language: str, consent: ConsentView) -> str:
    when = format_date(to_local(consent.occurred_at, agency.zone), language, country=agency.country, weekday=False)
    document = t(language, f"privacy.document.{consent.kind}") if consent.kind in ("terms", "privacy") else consent.kind
    key = "privacy.my_data.consent_accepted" if consent.action == "accepted" else "privacy.my_data.consent_withdrawn"
    return t(language, key, document=document, version=escape_markdown(consent.version), date=when)


def build_my_data_card(agency: Agency, language: str, overview: Overview) -> dict[str, Any]:
    """What the agency holds, why, how long; Export / Correct / Erase / Restrict / Reminders."""
    retention = agency.retention
    body: list[dict[str, Any]] = [
        heading(t(language, "privacy.my_data.title")),
        text_block(t(language, "privacy.my_data.intro", agency=escape_markdown(agency.display_name(language)))),
        _section(t(language, "privacy.my_data.held_heading")),
    ]
    rows: list[tuple[str, str]] = [
        (t(language, f"personal_data.label.{personal_field.value}"),
         shown_value(agency, language, personal_field, value))
        for personal_field, value in overview.personal.items()
    ]
    if overview.interview_language:
        rows.append((t(language, "privacy.my_data.interview_language"),
                     _language_name(language, overview.interview_language)))
    if overview.has_teams_identity:
        rows.append((t(language, "privacy.my_data.teams_identity"),
                     t(language, "privacy.my_data.teams_identity_value")))
    rows.append((t(language, "privacy.my_data.appointments"),
                 t(language, "privacy.my_data.appointments_value", upcoming=len(overview.upcoming),
                   past=overview.past_count)))
    rows.append((t(language, "privacy.my_data.reminders"),
                 t(language, "privacy.my_data.off" if overview.reminders_opt_out else "privacy.my_data.on")))
    rows.append((t(language, "privacy.my_data.restriction"),
                 t(language, "privacy.my_data.restriction_on" if overview.processing_restricted
                   else "privacy.my_data.restriction_off")))
    if not overview.personal:
        body.append(text_block(t(language, "privacy.my_data.nothing_personal"), isSubtle=True))
    body.append(_facts(rows))
    if overview.consents:
        body.append(text_block(t(language, "privacy.my_data.consents"), weight="bolder", spacing="medium"))
        body += [text_block(f"- {_consent_line(agency, language, consent)}", spacing="none")
                 for consent in overview.consents]

    body.append(_section(t(language, "privacy.my_data.why_heading")))
    body += [text_block(f"- {t(language, f'privacy.purpose.{name}')}", spacing="small")
             for name in ("appointments", "proof", "reminders", "statistics")]

    body.append(_section(t(language, "privacy.my_data.how_long_heading")))
    body += [
        text_block(f"- {t(language, f'privacy.retention.{key}', months=months_text(language, months))}",
                   spacing="small")
        for key, months in (("appointments", retention.appointments_months),
                            ("citizen", retention.citizen_inactive_months),
                            ("consent", retention.consent_proof_months),
                            ("audit", retention.audit_months))
    ]
    if retention.keep_anonymised_statistics:
        body.append(text_block(f"- {t(language, 'privacy.retention.statistics')}", spacing="small"))

    body.append(_section(t(language, "privacy.my_data.rights_heading")))
    body.append(text_block(t(language, "privacy.my_data.rights")))
    authority = agency.supervisory_authority.get(language) or agency.supervisory_authority[agency.default_language]
    body.append(text_block(t(language, "privacy.my_data.contact", dpo=escape_markdown(agency.dpo_contact),
                             authority=escape_markdown(authority)), isSubtle=True, size="small"))
    body.append({
        "type": "ActionSet",
        "actions": [
            execute_action(t(language, "privacy.my_data.reminders_turn_on" if overview.reminders_opt_out
                             else "privacy.my_data.reminders_turn_off"),
                           Verb.PRIVACY_REMINDERS, {"enabled": overview.reminders_opt_out}),
            execute_action(t(language, "privacy.my_data.unrestrict" if overview.processing_restricted
                             else "privacy.my_data.restrict"),
                           Verb.PRIVACY_RESTRICT, {"restricted": not overview.processing_restricted}),
        ],
    })
    actions = [execute_action(t(language, "privacy.my_data.export"), Verb.PRIVACY_EXPORT)]
    if overview.personal:
        actions.append(execute_action(t(language, "privacy.my_data.rectify"), Verb.PRIVACY_RECTIFY))
    actions.append(execute_action(t(language, "privacy.my_data.erase"), Verb.PRIVACY_ERASE, style="destructive"))
    return adaptive_card(language, body, actions)


def form_inputs(form_card: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The inputs of the booking's personal-data form, each with the error shown under it.

    Correcting one's data uses exactly the booking form's fields (same limits, hints, prefill and
    error display); only the surrounding texts and buttons differ.
    """
    kept: list[dict[str, Any]] = []
    after_input = False
    for element in form_card.get("body", []):
        if element.get("type", "").startswith("Input."):
            kept.append(element)
            after_input = True
        elif after_input and element.get("type") == "TextBlock" and element.get("color") == "attention":
            kept.append(element)
        else:
            after_input = False
    return kept


def build_rectify_card(language: str, inputs: Sequence[dict[str, Any]], *, has_errors: bool) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        heading(t(language, "privacy.rectify.title")),
        text_block(t(language, "privacy.rectify.intro")),
    ]
    if has_errors:
        body.append(text_block(t(language, "privacy.rectify.errors"), color="attention", weight="bolder"))
    body += list(inputs)
    actions = [
        execute_action(t(language, "privacy.rectify.submit"), Verb.PRIVACY_RECTIFY_SUBMIT, style="positive",
                       echo=False),
        execute_action(t(language, "privacy.rectify.back"), Verb.MENU_MY_DATA),
    ]
    return adaptive_card(language, body, actions)


def build_rectified_card(
    agency: Agency, language: str, changed: Mapping[PersonalField, str | date], *, upcoming: int,
    language_changed: bool,
) -> dict[str, Any]:
    """The outcome: which fields changed, shown as a card may show them."""
    rows = [(t(language, f"personal_data.label.{f.value}"), shown_value(agency, language, f, value))
            for f, value in changed.items()]
    body: list[dict[str, Any]] = [
        {"type": "Container", "style": "good",
         "items": [text_block(f"✓ {t(language, 'privacy.rectify.done_title')}", weight="bolder")]},
        text_block(t(language, "privacy.rectify.done")),
        _facts(rows),
    ]
    if upcoming:
        body.append(text_block(t(language, "privacy.rectify.appointments_note")))
    if language_changed:
        body.append(text_block(t(language, "privacy.rectify.language_note")))
    return adaptive_card(language, body)


def build_erase_confirm_card(agency: Agency, language: str, upcoming: int) -> dict[str, Any]:
    """What erasure does for this citizen, what the law keeps, and Erase / Keep.

    The confirm button carries the number of upcoming appointments announced: the bot compares it
    with its own record of what the card said, and asks again if the citizen booked since.
    """
    retention = agency.retention
    if upcoming <= 0:
        cancel = t(language, "privacy.erase.will_cancel_none")
    elif upcoming == 1:
        cancel = t(language, "privacy.erase.will_cancel_one")
    else:
        cancel = t(language, "privacy.erase.will_cancel_many", count=upcoming)
    body: list[dict[str, Any]] = [
        heading(t(language, "privacy.erase.title")),
        text_block(t(language, "privacy.erase.intro")),
        text_block(f"- {t(language, 'privacy.erase.will_delete')}", spacing="small"),
        text_block(f"- {cancel}", spacing="small", weight="bolder" if upcoming > 0 else "default",
                   color="attention" if upcoming > 0 else "default"),
        text_block(f"- {t(language, 'privacy.erase.will_withdraw')}", spacing="small"),
        text_block(f"- {t(language, 'privacy.erase.will_forget_chat')}", spacing="small"),
        text_block(t(language, "privacy.erase.kept",
                     consent_months=months_text(language, retention.consent_proof_months),
                     audit_months=months_text(language, retention.audit_months)), spacing="medium"),
    ]
    if retention.keep_anonymised_statistics:
        body.append(text_block(t(language, "privacy.erase.kept_statistics"), spacing="small"))
    body += [
        text_block(t(language, "privacy.erase.file_note", agency=escape_markdown(agency.display_name(language)))),
        text_block(t(language, "privacy.erase.irreversible"), weight="bolder"),
    ]
    actions = [
        execute_action(t(language, "privacy.erase.confirm"), Verb.PRIVACY_ERASE_CONFIRM, {"upcoming": upcoming},
                       style="destructive"),
        execute_action(t(language, "privacy.erase.keep"), Verb.PRIVACY_ERASE_CANCEL),
    ]
    return adaptive_card(language, body, actions)


def build_erased_card(language: str, *, cancelled: int) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {"type": "Container", "style": "good",
         "items": [text_block(f"✓ {t(language, 'privacy.erase.done_title')}", weight="bolder")]},
        text_block(t(language, "privacy.erase.done")),
    ]
    if cancelled == 1:
        body.append(text_block(t(language, "privacy.erase.done_cancelled_one")))
    elif cancelled > 1:
        body.append(text_block(t(language, "privacy.erase.done_cancelled_many", count=cancelled)))
    body.append(text_block(t(language, "privacy.erase.done_again"), isSubtle=True))
    return adaptive_card(language, body)


def build_notice_card(language: str, title: str, text: str, *, good: bool = True) -> dict[str, Any]:
    """A short outcome (restriction, reminders, export): a title and a paragraph, both from catalogs."""
    return adaptive_card(language, [
        {"type": "Container", "style": "good" if good else "emphasis",
         "items": [text_block(title, weight="bolder")]},
        text_block(text),
    ], [execute_action(t(language, "privacy.my_data.back_to_my_data"), Verb.MENU_MY_DATA)])


def export_file_name(agency: Agency, generated_at: datetime) -> str:
    return f"{agency.id}-my-data-{generated_at.astimezone(agency.zone):%Y%m%d-%H%M}.json"


def build_file_consent(language: str, *, size_bytes: int, context: Mapping[str, Any]) -> dict[str, Any]:
    """The content of a Teams FileConsentCard: Teams asks the person before the bot writes the file to
    their OneDrive; `context` comes back with their answer."""
    return {
        "description": t(language, "privacy.export.offer_description"),
        "sizeInBytes": size_bytes,
        "acceptContext": dict(context),
        "declineContext": dict(context),
    }
