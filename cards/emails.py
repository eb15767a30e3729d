"""E-mails to citizens, built with the standard library: a plain-text part, an HTML part, attachments.

Only what the citizen's own card would show: their appointment, the agency's contact, their manage link.
"""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid
from html import escape

from bot.domain.agency import Agency, Mode
from bot.i18n import LANGUAGES, t
from bot.services.booking import AppointmentView
from cards.booking import localized, when_text


def build_confirmation_email(agency: Agency, language: str, appointment: AppointmentView, *, sender: str,
                             recipient: str, ics: bytes, manage_url: str | None) -> EmailMessage:
    """The confirmation of a booking, with the .ics attached and, when given, the manage link."""
    lang = language if language in LANGUAGES else agency.default_language
    agency_name = agency.display_name(lang)
    subject = agency.subject(appointment.subject_id)
    office = agency.office(appointment.office_id) if appointment.office_id else None
    lines = [t(lang, "email.greeting"), "",
             t(lang, "email.confirmation_intro", subject=localized(agency, subject.name, lang) if subject else "",
               agency=agency_name),
             t(lang, "email.when", when=when_text(agency, lang, appointment.starts_at))]
    if appointment.mode == Mode.OFFICE and office is not None:
        lines.append(t(lang, "email.where_office", office=f"{localized(agency, office.name, lang)}, "
                                                          f"{office.street}, {office.postal_code} {office.city}"))
    else:
        lines.append(t(lang, "email.where_video"))
    lines.append(t(lang, "email.calendar_note"))
    paragraphs = [lines]
    if manage_url:
        paragraphs.append([t(lang, "email.manage_intro"), manage_url,
                           t(lang, "email.manage_expiry", days=agency.manage_link_days)])
    paragraphs.append([t(lang, "email.closing", phone=agency.contact.phone), t(lang, "email.signature",
                                                                               agency=agency_name)])
    paragraphs.append([t(lang, "email.not_you")])

    message = EmailMessage()
    message["Subject"] = t(lang, "email.confirmation_subject", agency=agency_name)
    message["From"] = Address(display_name=agency_name, addr_spec=sender)
    message["To"] = recipient
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content("\n\n".join("\n".join(paragraph) for paragraph in paragraphs))
    message.add_alternative(_html(lang, paragraphs, manage_url), subtype="html")
    message.add_attachment(ics, maintype="text", subtype="calendar",
                           filename=t(lang, "email.calendar_file_name"), params={"method": "PUBLISH"})
    message["Content-Language"] = lang  # after the parts: setting content drops Content-* headers
    return message


def _html(language: str, paragraphs: list[list[str]], manage_url: str | None) -> str:
    blocks = []
    for paragraph in paragraphs:
        if manage_url and manage_url in paragraph:
            link = f'<a href="{escape(manage_url)}">{escape(t(language, "email.manage_button"))}</a>'
            paragraph = [link if line == manage_url else escape(line) for line in paragraph]
        else:
            paragraph = [escape(line) for line in paragraph]
        blocks.append("<p>" + "<br>\n".join(paragraph) + "</p>")
    return (f'<!DOCTYPE html>\n<html lang="{language}"><head><meta charset="utf-8"></head>\n<body>\n'
            + "\n".join(blocks) + "\n</body></html>\n")
