"""The calendar file (.ics) of an appointment: one event, in the citizen's language.

Holds only what the citizen's card shows. Times are UTC; a moved appointment keeps its UID and gets
a higher SEQUENCE, so calendars replace the entry instead of adding a second one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from icalendar import Calendar, Event

from bot.domain.agency import Agency, Mode
from bot.domain.appointment import AppointmentStatus, AppointmentView
from bot.i18n import LANGUAGES, t
from cards.booking import counselor_name, localized

_SEQUENCE_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def build_ics(agency: Agency, appointment: AppointmentView, language: str, *, now: datetime,
              meetings: bool = True) -> bytes:
    """An iCalendar file with one event; `now` is its DTSTAMP. `meetings`: whether this installation
    creates Teams meetings (Microsoft Graph configured); without, no link will come."""
    lang = language if language in LANGUAGES else agency.default_language
    subject = agency.subject(appointment.subject_id)
    subject_name = localized(agency, subject.name, lang) if subject else ""
    agency_name = agency.display_name(lang)
    summary = t(lang, "ics.summary", subject=subject_name, agency=agency_name)
    lines: list[str] = []
    office = agency.office(appointment.office_id) if appointment.office_id else None
    if appointment.mode == Mode.OFFICE and office is not None:
        address = f"{office.street}, {office.postal_code} {office.city}"
        location = f"{localized(agency, office.name, lang)}, {address}"
        lines.append(t(lang, "ics.office_intro", office=location))
    else:
        location = t(lang, "ics.location_video")
        lines.append(t(lang, "ics.video_intro", agency=agency_name))
        if appointment.join_url:
            lines.append(t(lang, "ics.join", url=appointment.join_url))
        elif meetings:
            lines.append(t(lang, "ics.join_later"))
        else:
            lines.append(t(lang, "ics.join_local_mode", phone=agency.contact.phone))
    if name := counselor_name(agency, appointment):
        lines.append(t(lang, "ics.counselor", name=name))
    if subject is not None and subject.documents_to_prepare:
        lines.append(t(lang, "ics.documents",
                       documents=localized(agency, subject.documents_to_prepare, lang)))
    lines.append(t(lang, "ics.change", agency=agency_name, phone=agency.contact.phone))

    event = Event()
    event.add("uid", f"{appointment.id}@{agency.id}.guichet")
    event.add("dtstamp", now.astimezone(UTC))
    event.add("dtstart", appointment.starts_at.astimezone(UTC))
    event.add("dtend", appointment.ends_at.astimezone(UTC))
    cancelled = appointment.status != AppointmentStatus.BOOKED
    event.add("summary", t(lang, "ics.cancelled", summary=summary) if cancelled else summary)
    event.add("location", location)
    event.add("description", "\n\n".join(lines))
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    # Calendars replace an event with the same UID only for a higher SEQUENCE.
    event.add("sequence", _sequence(appointment.updated_at))
    if appointment.mode == Mode.VIDEO and appointment.join_url:
        event.add("url", appointment.join_url)
    calendar = Calendar()
    calendar.add("prodid", "-//Guichet//Appointment booking//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    calendar.add_component(event)
    return calendar.to_ical()


def _sequence(updated_at: datetime | None) -> int:
    """Seconds since 2024 of the last change: grows with every move, fits iCalendar's integer."""
    if updated_at is None:
        return 0
    return max(0, int((updated_at - _SEQUENCE_EPOCH).total_seconds()))
