"""What the citizen is told after an interview that did not take place as planned, and the new times
offered after a technical problem or an agency that did not come; and the alerts the agency's staff get.

Kind, and useful: why it happened (the agency's rule), what to do or bring next time, and a way on
(book again, or one of the new times, the same counselor first).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.domain.agency import Agency
from bot.domain.appointment import AppointmentView
from bot.i18n import t
from cards.booking import SlotLike, subject_name, subtle, when_text
from cards.document import escape_markdown
from cards.elements import adaptive_card, heading, text_block
from cards.formatting import duration_text, format_day_short, format_time, name_zone, to_local
from cards.verbs import Verb, execute_action


def _book_again(language: str) -> dict[str, Any]:
    return execute_action(t(language, "outcomes.book_again"), Verb.MENU_BOOK, style="positive")


def _about(agency: Agency, language: str, appointment: AppointmentView) -> dict[str, Any]:
    return subtle(t(language, "outcomes.about", when=when_text(agency, language, appointment.starts_at),
                    subject=escape_markdown(subject_name(agency, appointment.subject_id, language))))


def build_no_show_notice(agency: Agency, language: str, appointment: AppointmentView) -> dict[str, Any]:
    body = [heading(t(language, "outcomes.no_show.title")), _about(agency, language, appointment),
            text_block(t(language, "outcomes.no_show.text", minutes=duration_text(language, agency.no_show_minutes))),
            text_block(t(language, "outcomes.no_show.next", phone=agency.contact.phone))]
    return adaptive_card(language, body, [_book_again(language)])


def build_not_verified_notice(agency: Agency, language: str, appointment: AppointmentView,
                              reason: str | None) -> dict[str, Any]:
    body = [heading(t(language, "outcomes.not_verified.title")), _about(agency, language, appointment),
            text_block(t(language, "outcomes.not_verified.rule"))]
    if reason:
        body.append(text_block(t(language, f"outcomes.not_verified.{reason}")))
    body.append(text_block(t(language, "outcomes.not_verified.next")))
    return adaptive_card(language, body, [_book_again(language)])


def build_new_times_card(agency: Agency, language: str, appointment: AppointmentView, offers: Sequence[SlotLike],
                         *, why: str, same_counselor: int, team_alerted: bool = True) -> dict[str, Any]:
    """`why`: "technical" or "agency_late"; the first `same_counselor` offers are with the same counselor.
    `team_alerted` False: no alert can reach anyone, so the citizen is given the agency's phone number instead.

    Each button books that time in place of the appointment (`Verb.APPT_REBOOK`); the appointment is
    given up only once the new time is held.
    """
    # Only what is true: "our team has been alerted" when an alert can reach someone, else the number to call.
    unreached = why == "agency_late" and not team_alerted
    text_key = "outcomes.new_times.text_agency_late_unreached" if unreached else f"outcomes.new_times.text_{why}"
    body: list[dict[str, Any]] = [heading(t(language, f"outcomes.new_times.title_{why}")),
                                  _about(agency, language, appointment),
                                  text_block(t(language, text_key, phone=agency.contact.phone))]
    if not offers:
        body.append(text_block(t(language, "outcomes.new_times.none", phone=agency.contact.phone)))
        return adaptive_card(language, body, [_book_again(language)])
    groups = (("outcomes.new_times.same_counselor", offers[:same_counselor]),
              ("outcomes.new_times.others", offers[same_counselor:]))
    for title_key, group in groups:
        if not group:
            continue
        body.append(text_block(t(language, title_key), weight="bolder", spacing="medium"))
        actions = [execute_action(_offer_title(agency, language, offer), Verb.APPT_REBOOK,
                                  {"appointment_id": appointment.id, "start": offer.start.isoformat()})
                   for offer in group]
        body += [{"type": "ActionSet", "actions": actions[i:i + 3]} for i in range(0, len(actions), 3)]
    if not unreached:  # else the number was just given
        body.append(subtle(t(language, "outcomes.new_times.or_call", phone=agency.contact.phone)))
    return adaptive_card(language, body)


def _offer_title(agency: Agency, language: str, offer: SlotLike) -> str:
    local = to_local(offer.start, agency.zone)
    return f"{format_day_short(local, language, country=agency.country)} {format_time(local, language)}"


def build_wait_card(agency: Agency, language: str, appointment: AppointmentView, *, started: bool,
                    until: datetime) -> dict[str, Any]:
    """"Nobody has joined yet", pressed before the agency's commitment has run out."""
    key = "outcomes.wait.started" if started else "outcomes.wait.not_started"
    local_until = name_zone(format_time(to_local(until, agency.zone), language), until, agency.zone, language)
    start = format_time(to_local(appointment.starts_at, agency.zone), language)
    minutes = duration_text(language, agency.agency_wait_commitment_minutes)
    return adaptive_card(language, [text_block(t(language, key, minutes=minutes, time=local_until, start=start))])


def _alert_text_key(agency: Agency, alert: str) -> str:
    """The alert's text; "nobody joined within 0 minutes" reads wrong, so a zero commitment has its own."""
    if alert == "agency_late" and agency.agency_wait_commitment_minutes == 0:
        return "outcomes.alert.text_agency_late_start"
    return f"outcomes.alert.text_{alert}"


def build_staff_alert_card(agency: Agency, language: str, appointment: AppointmentView, *, alert: str,
                           counselor_name: str, citizen_name: str) -> dict[str, Any]:
    """For the counselor and the agency's channel: the citizen reports a technical problem, or is waiting."""
    start = format_time(to_local(appointment.starts_at, agency.zone), language)
    body = [{"type": "Container", "style": "attention",
             "items": [heading(t(language, f"outcomes.alert.title_{alert}"))]},
            text_block(t(language, _alert_text_key(agency, alert), time=start,
                         name=escape_markdown(citizen_name) or "—",
                         subject=escape_markdown(subject_name(agency, appointment.subject_id, language)),
                         minutes=duration_text(language, agency.agency_wait_commitment_minutes))),
            subtle(t(language, "staff.prompt.for_counselor", name=escape_markdown(counselor_name)))]
    if appointment.join_url:
        body.append({"type": "ActionSet", "actions": [{
            "type": "Action.OpenUrl", "title": t(language, "staff.prompt.join"), "url": appointment.join_url}]})
    return adaptive_card(language, body)
