"""E-mails to citizens, built with the standard library: a plain-text part, an HTML part, attachments.

Only what the citizen's own card would show: their appointment, the agency's contact, their manage link (no
counselor's name, no personal data). A reminder or a join link carries the same content as the chat's card:
the same card pieces (cards.booking) are laid out as paragraphs, their buttons dropped (an e-mail has none:
the manage link opens the chat instead). Build them under bot.domain.channels.web_reader(), so the wording
that fits a reader away from Teams (`_web` catalog keys) applies.
"""

from __future__ import annotations

import email.policy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid
from html import escape
from typing import Any

from bot.domain.agency import Agency, Mode
from bot.domain.appointment import AppointmentView, NotVerifiedReason
from bot.domain.jobs import EmailKind
from bot.i18n import LANGUAGES, t
from cards.booking import booked_facts, localized, office_guide, subject_name, video_guide, when_text
from cards.formatting import duration_text
from cards.reminders import reminder_title


@dataclass(frozen=True)
class Link:
    """A line that is a link: its own line (the address) in plain text, an anchor named `title` in HTML."""

    title: str
    url: str


@dataclass(frozen=True)
class Bold:
    """A line that heads its paragraph."""

    text: str


Line = str | Link | Bold
Paragraph = list[Line]

# Headers are not folded (a line may hold 998 characters): Python 3.11 folds a long subject before a word it
# must encode leaving two spaces, and the subject then reads "de  chômage". Text parts go as 8-bit UTF-8.
_POLICY = email.policy.default.clone(max_line_length=998)
# Card Markdown's escapes (cards.document.escape_markdown): an e-mail shows the characters themselves.
_ESCAPED = re.compile(r"\\([\[\]*_\\])")


def _plain_markdown(text: str) -> str:
    return _ESCAPED.sub(r"\1", text)


def card_paragraphs(elements: Iterable[Mapping[str, Any]], replace: Mapping[str, str] | None = None) -> list[Paragraph]:
    """Adaptive Card elements as e-mail paragraphs: text blocks, facts, and the links of Action.OpenUrl; a
    bold text block heads the paragraph the next one fills. Other actions (buttons that act in the chat) are
    left out. `replace`: texts said differently in an e-mail (a "button" is a link there)."""
    paragraphs: list[Paragraph] = []
    heading_open = False
    for element in elements:
        kind = element.get("type")
        if kind == "Container":
            paragraphs += card_paragraphs(element.get("items", ()), replace)
            heading_open = False
        elif kind == "TextBlock":
            text = _plain_markdown(str(element.get("text", "")))
            text = (replace or {}).get(text, text)
            if element.get("weight") == "bolder" and element.get("style") != "heading":
                paragraphs.append([Bold(text)])
                heading_open = True
            elif heading_open:
                paragraphs[-1].extend(text.splitlines())
                heading_open = False
            else:
                paragraphs.append([*text.splitlines()])
        elif kind == "FactSet":
            paragraphs.append([f"{fact['title']}: {_plain_markdown(str(fact['value']))}"
                               for fact in element.get("facts", ())])
            heading_open = False
        elif kind == "ActionSet":
            links: Paragraph = [Link(str(action.get("title", "")), str(action["url"]))
                                for action in element.get("actions", ()) if action.get("type") == "Action.OpenUrl"]
            if links and heading_open:
                paragraphs[-1].extend(links)
            elif links and paragraphs:
                paragraphs[-1].extend(links)  # the link belongs to the sentence that announces it
            elif links:
                paragraphs.append(links)
            heading_open = False
    return [paragraph for paragraph in paragraphs if paragraph]


def _lang(agency: Agency, language: str) -> str:
    return language if language in LANGUAGES else agency.default_language


def _envelope(agency: Agency, lang: str, *, subject: str, sender: str, recipient: str, body: list[Paragraph],
              manage_url: str | None, manage_lines: Sequence[str] = (),
              manage_after: Sequence[str] = ()) -> EmailMessage:
    """The message: greeting, `body`, the manage link (announced by `manage_lines`, else the standard words;
    followed by `manage_after`), the agency's contact and signature, why the reader gets it; plain text and
    HTML."""
    agency_name = agency.display_name(lang)
    paragraphs: list[Paragraph] = [[t(lang, "email.greeting")], *body]
    if manage_url:
        paragraphs.append([*(manage_lines or [t(lang, "email.manage_intro")]),
                           Link(t(lang, "email.manage_button"), manage_url),
                           t(lang, "email.manage_expiry", days=agency.manage_link_days), *manage_after])
    paragraphs.append([t(lang, "email.closing", phone=agency.contact.phone),
                       t(lang, "email.signature", agency=agency_name)])
    paragraphs.append([t(lang, "email.not_you")])
    message = EmailMessage(policy=_POLICY)
    message["Subject"] = subject
    message["From"] = Address(display_name=agency_name, addr_spec=sender)
    message["To"] = recipient
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(_text(paragraphs))
    message.add_alternative(_html(lang, paragraphs), subtype="html")
    return message


def _finish(message: EmailMessage, lang: str) -> EmailMessage:
    message["Content-Language"] = lang  # after the parts: setting content drops Content-* headers
    return message


def _attach_ics(message: EmailMessage, lang: str, ics: bytes) -> None:
    message.add_attachment(ics, maintype="text", subtype="calendar",
                           filename=t(lang, "email.calendar_file_name"), params={"method": "PUBLISH"})


def build_confirmation_email(agency: Agency, language: str, appointment: AppointmentView, *, sender: str,
                             recipient: str, ics: bytes, manage_url: str | None) -> EmailMessage:
    """The confirmation of a booking, with the .ics attached and, when given, the manage link."""
    lang = _lang(agency, language)
    agency_name = agency.display_name(lang)
    subject = agency.subject(appointment.subject_id)
    office = agency.office(appointment.office_id) if appointment.office_id else None
    lines: Paragraph = [t(lang, "email.confirmation_intro",
                          subject=localized(agency, subject.name, lang) if subject else "", agency=agency_name),
                        t(lang, "email.when", when=when_text(agency, lang, appointment.starts_at))]
    if appointment.mode == Mode.OFFICE and office is not None:
        lines.append(t(lang, "email.where_office", office=f"{localized(agency, office.name, lang)}, "
                                                          f"{office.street}, {office.postal_code} {office.city}"))
    else:
        lines.append(t(lang, "email.where_video"))
    lines.append(t(lang, "email.calendar_note"))
    message = _envelope(agency, lang, subject=t(lang, "email.confirmation_subject", agency=agency_name),
                        sender=sender, recipient=recipient, body=[lines], manage_url=manage_url)
    _attach_ics(message, lang, ics)
    return _finish(message, lang)


def _guide(agency: Agency, lang: str, appointment: AppointmentView, *, meetings: bool) -> list[Paragraph]:
    """The appointment's facts and the access guide and checklist of the chat's cards, the join link a link."""
    elements = [*booked_facts(agency, lang, appointment, counselor=False)]
    elements += video_guide(agency, lang, appointment, meetings=meetings) if Mode(appointment.mode) is Mode.VIDEO \
        else office_guide(agency, lang, appointment)
    return card_paragraphs(elements, {t(lang, "booking.confirmation.link_ready"): t(lang, "email.join_intro")})


def build_reminder_email(agency: Agency, language: str, appointment: AppointmentView, *, sender: str,
                         recipient: str, offset_minutes: int | None, changeable: bool, meetings: bool,
                         manage_url: str | None) -> EmailMessage:
    """A reminder (the chat's reminder card as an e-mail): when, what, the join link, the access guide and
    the checklist; how to move, cancel or stop reminders through the manage link."""
    lang = _lang(agency, language)
    title = reminder_title(lang, offset_minutes)
    # The facts below say when; the title says how soon.
    body: list[Paragraph] = [[Bold(title)], *_guide(agency, lang, appointment, meetings=meetings)]
    if not changeable:
        body.append([t(lang, "reminders.too_late_to_change", phone=agency.contact.phone)])
    subject = t(lang, "email.reminder_subject", agency=agency.display_name(lang),
                when=when_text(agency, lang, appointment.starts_at))
    return _finish(_envelope(agency, lang, subject=subject, sender=sender, recipient=recipient, body=body,
                             manage_url=manage_url, manage_after=[t(lang, "email.reminders_off")]), lang)


def build_link_email(agency: Agency, language: str, appointment: AppointmentView, *, sender: str, recipient: str,
                     changed: bool, ics: bytes, manage_url: str | None) -> EmailMessage:
    """The join link as soon as the Teams meeting exists (or that it changed), with the updated .ics."""
    lang = _lang(agency, language)
    title = t(lang, "reminders.link_changed_title" if changed else "reminders.link_title")
    body: list[Paragraph] = [[Bold(title)], *_guide(agency, lang, appointment, meetings=True)]
    subject = t(lang, "email.link_changed_subject" if changed else "email.link_subject",
                agency=agency.display_name(lang))
    message = _envelope(agency, lang, subject=subject, sender=sender, recipient=recipient, body=body,
                        manage_url=manage_url)
    _attach_ics(message, lang, ics)
    return _finish(message, lang)


def build_notice_email(agency: Agency, language: str, appointment: AppointmentView, *, what: EmailKind, sender: str,
                       recipient: str, manage_url: str | None, reason: str | None = None) -> EmailMessage:
    """What the citizen is told after an outcome (`what`: a no-show, an identity not verified, a technical
    problem, or nobody of the agency joined), and how to go on: the manage link opens the chat, where they
    book again or pick a new time."""
    assert what in (EmailKind.NO_SHOW, EmailKind.NOT_VERIFIED, EmailKind.TECHNICAL, EmailKind.AGENCY_LATE), what
    lang = _lang(agency, language)
    about = t(lang, "outcomes.about", when=when_text(agency, lang, appointment.starts_at),
              subject=subject_name(agency, appointment.subject_id, lang))
    lines: Paragraph
    if what is EmailKind.NO_SHOW:
        title = t(lang, "outcomes.no_show.title")
        lines = [t(lang, "outcomes.no_show.text", minutes=duration_text(lang, agency.no_show_minutes))]
        manage = "email.book_again_link"
    elif what is EmailKind.NOT_VERIFIED:
        title = t(lang, "outcomes.not_verified.title")
        lines = [t(lang, "outcomes.not_verified.rule")]
        if reason in set(NotVerifiedReason):
            lines.append(t(lang, f"outcomes.not_verified.{NotVerifiedReason(reason).value}"))
        manage = "email.book_again_link"
    elif what is EmailKind.AGENCY_LATE:
        title = t(lang, "outcomes.new_times.title_agency_late")
        lines = [t(lang, "email.agency_late_text")]
        manage = "email.technical_link"
    else:
        title = t(lang, "outcomes.new_times.title_technical")
        lines = [t(lang, "email.technical_text")]
        manage = "email.technical_link"
    body: list[Paragraph] = [[Bold(title), about], lines]
    if not manage_url:
        body.append([t(lang, "email.book_again_phone", phone=agency.contact.phone)])
    subject = t(lang, f"email.{what}_subject", agency=agency.display_name(lang))
    return _finish(_envelope(agency, lang, subject=subject, sender=sender, recipient=recipient, body=body,
                             manage_url=manage_url, manage_lines=[t(lang, manage)]), lang)


def _text(paragraphs: list[Paragraph]) -> str:
    def line(item: Line) -> str:
        if isinstance(item, Link):
            return item.url  # alone on its line: mail programs make it clickable
        return item.text if isinstance(item, Bold) else item
    return "\n\n".join("\n".join(line(item) for item in paragraph) for paragraph in paragraphs) + "\n"


def _html(language: str, paragraphs: list[Paragraph]) -> str:
    def line(item: Line) -> str:
        if isinstance(item, Link):
            return f'<a href="{escape(item.url)}">{escape(item.title)}</a>'
        return f"<strong>{escape(item.text)}</strong>" if isinstance(item, Bold) else escape(item)
    blocks = ["<p>" + "<br>\n".join(line(item) for item in paragraph) + "</p>" for paragraph in paragraphs]
    return (f'<!DOCTYPE html>\n<html lang="{language}"><head><meta charset="utf-8"></head>\n<body>\n'
            + "\n".join(blocks) + "\n</body></html>\n")
