"""The reminder a citizen gets in their chat before an appointment.

The appointment (when, what, where or how), the join link when it exists, the access guide and the
checklist, then what they can do: reschedule or cancel while the chat still may, and for a video
interview, say they have a technical problem or that nobody from the agency has joined.
"""

from __future__ import annotations

from typing import Any

from bot.domain.agency import Agency, Mode
from bot.domain.appointment import AppointmentView
from bot.i18n import t
from cards.booking import (
    appointment_actions,
    booked_facts,
    office_guide,
    subtle,
    video_guide,
)
from cards.elements import adaptive_card, heading
from cards.formatting import duration_text
from cards.verbs import SOURCE, SOURCE_ID, SOURCE_OFFSET, CardSource, Verb, execute_action, stamp_actions


def reminder_title(language: str, offset_minutes: int | None) -> str:
    """How soon, as a reminder's title: "tomorrow" for a day or more ahead, "in 1 hour" otherwise."""
    if offset_minutes is not None and offset_minutes >= 1440:
        return t(language, "reminders.title_day")
    if offset_minutes is not None:
        return t(language, "reminders.title_soon", duration=duration_text(language, offset_minutes))
    return t(language, "reminders.title")


def build_reminder_card(
    agency: Agency,
    language: str,
    appointment: AppointmentView,
    *,
    offset_minutes: int | None,
    changeable: bool,
    meetings: bool,
) -> dict[str, Any]:
    """`offset_minutes`: how long before the start this reminder was planned (the title says "tomorrow"
    for a day or more, "in 1 hour" otherwise). `changeable`: before the agency's change cut-off."""
    title = reminder_title(language, offset_minutes)
    body: list[dict[str, Any]] = [
        {"type": "Container", "style": "accent", "items": [heading(f"🔔 {title}")]},
        *booked_facts(agency, language, appointment),
    ]
    video = Mode(appointment.mode) is Mode.VIDEO
    body += video_guide(agency, language, appointment, meetings=meetings) if video \
        else office_guide(agency, language, appointment)
    if not changeable:
        body.append(subtle(t(language, "reminders.too_late_to_change", phone=agency.contact.phone)))
    body.append(subtle(t(language, "reminders.stop_hint"), size="small"))
    actions = appointment_actions(language, appointment.id, changeable=changeable)
    if video:
        actions.append(execute_action(t(language, "reminders.technical_problem"), Verb.APPT_TECHNICAL_PROBLEM,
                                      {"appointment_id": appointment.id}))
        # Pressed before the agency's commitment has run out, it says how long that is.
        actions.append(execute_action(t(language, "reminders.nobody_joined"), Verb.APPT_NOBODY_JOINED,
                                      {"appointment_id": appointment.id}))
    return stamp_actions(adaptive_card(language, body, actions or None),
                         {SOURCE: CardSource.REMINDER, SOURCE_ID: appointment.id, SOURCE_OFFSET: offset_minutes})


def build_link_card(agency: Agency, language: str, appointment: AppointmentView, *, changed: bool) -> dict[str, Any]:
    """The message that brings the join link as soon as the Teams meeting exists (or says it changed)."""
    title = t(language, "reminders.link_changed_title" if changed else "reminders.link_title")
    body: list[dict[str, Any]] = [
        {"type": "Container", "style": "good", "items": [heading(title)]},
        *booked_facts(agency, language, appointment, counselor=False),
    ]
    body += video_guide(agency, language, appointment, meetings=True)
    return adaptive_card(language, body)
