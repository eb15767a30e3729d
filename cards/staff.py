"""Cards for the agency's staff: welcome and help, the prompt before an interview, the no-show question,
the answer that replaces a pressed card, the day and the statistics.

A prompt shows what the counselor needs and nothing more: the citizen's name, the subject, the mode,
the interview language, the identity details the agency checks (numbers masked), the join link or the
office. Its buttons send `Verb.STAFF_OUTCOME` with the appointment's id and the outcome; the bot checks
on each press that the presser is that counselor (or a supervisor).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from bot.domain.agency import Agency, Mode, PersonalField
from bot.domain.appointment import AppointmentStatus, AppointmentView, NotVerifiedReason, Outcome
from bot.i18n import t
from cards.booking import (
    interview_language_name,
    mode_name,
    office_name,
    subject_name,
    subtle,
)
from cards.document import escape_markdown
from cards.elements import adaptive_card, heading, text_block
from cards.formatting import duration_text, format_date, format_day_short, format_time, to_local
from cards.verbs import SOURCE, CardSource, Verb, execute_action, stamp_actions


def _clock(agency: Agency, language: str, moment: datetime) -> str:
    return format_time(to_local(moment, agency.zone), language, country=agency.country)


def _facts(rows: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {"type": "FactSet", "facts": [{"title": title, "value": value} for title, value in rows]}


def _outcome_action(language: str, label_key: str, appointment_id: str, outcome: Outcome, *,
                    style: str | None = None, **data: Any) -> dict[str, Any]:
    return execute_action(t(language, label_key), Verb.STAFF_OUTCOME,
                          {"appointment_id": appointment_id, "outcome": outcome.value, **data},
                          style=style)  # type: ignore[arg-type]


def _appointment_rows(agency: Agency, language: str, appointment: AppointmentView) -> list[tuple[str, str]]:
    rows = [
        (t(language, "staff.prompt.subject"), escape_markdown(subject_name(agency, appointment.subject_id, language))),
        (t(language, "staff.prompt.mode"), mode_name(language, appointment.mode)),
        (t(language, "staff.prompt.language"), interview_language_name(language, appointment.interview_language)),
    ]
    if Mode(appointment.mode) is Mode.OFFICE and appointment.office_id:
        rows.append((t(language, "staff.prompt.office"),
                     escape_markdown(office_name(agency, appointment.office_id, language))))
    return rows


def _identity_text(agency: Agency, language: str, value: str | date) -> str:
    if isinstance(value, date):
        return format_date(value, language, country=agency.country, weekday=False)
    return escape_markdown(value)


def build_prompt_card(
    agency: Agency,
    language: str,
    appointment: AppointmentView,
    *,
    citizen_name: str,
    identity: Sequence[tuple[PersonalField, str | date]],
    counselor_name: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """The prompt before an interview. `counselor_name`: shown when the card goes to the agency's channel
    instead of the counselor's chat. `note`: what was noted already (an early "absent")."""
    start = _clock(agency, language, appointment.starts_at)
    body: list[dict[str, Any]] = [heading(t(language, "staff.prompt.title", time=start))]
    if counselor_name:
        body.append(subtle(t(language, "staff.prompt.for_counselor", name=escape_markdown(counselor_name))))
    if note:
        body.append({"type": "Container", "style": "warning", "items": [text_block(note)]})
    body.append(text_block(escape_markdown(citizen_name) or t(language, "staff.prompt.no_name"), weight="bolder",
                           size="medium"))
    body.append(_facts(_appointment_rows(agency, language, appointment)))
    video = Mode(appointment.mode) is Mode.VIDEO
    if identity:
        body.append(text_block(t(language, "staff.prompt.identity_heading"), weight="bolder", spacing="medium"))
        body.append(_facts([(t(language, f"personal_data.label.{field.value}"),
                             _identity_text(agency, language, value)) for field, value in identity]))
        if video:
            body.append(subtle(t(language, "staff.prompt.identity_how")))
    if video and appointment.join_url:
        body.append({"type": "ActionSet", "actions": [{
            "type": "Action.OpenUrl", "title": t(language, "staff.prompt.join"), "url": appointment.join_url}]})
    elif video:
        body.append(subtle(t(language, "staff.prompt.no_link")))
    reasons = {"type": "Input.ChoiceSet", "id": "reason", "style": "expanded", "isRequired": True,
               "label": t(language, "staff.prompt.reason_label"),
               "errorMessage": t(language, "staff.prompt.reason_label"),
               "value": NotVerifiedReason.CAMERA_OFF.value,
               "choices": [{"title": t(language, f"staff.reason.{reason.value}"), "value": reason.value}
                           for reason in NotVerifiedReason]}
    not_verified = {
        "type": "Action.ShowCard", "title": t(language, "staff.prompt.not_verified"),
        "card": adaptive_card(None, [reasons], [
            _outcome_action(language, "staff.prompt.end_interview", appointment.id, Outcome.IDENTITY_NOT_VERIFIED,
                            style="destructive"),
        ]),
    }
    actions = [
        _outcome_action(language, "staff.prompt.verified", appointment.id, Outcome.IDENTITY_VERIFIED,
                        style="positive"),
        not_verified,
        _outcome_action(language, "staff.prompt.absent", appointment.id, Outcome.ABSENT_REPORTED),
        _outcome_action(language, "staff.prompt.technical", appointment.id, Outcome.TECHNICAL_PROBLEM),
    ]
    return adaptive_card(language, body, actions)


def build_no_show_question_card(agency: Agency, language: str, appointment: AppointmentView, *,
                                citizen_name: str, counselor_name: str | None = None) -> dict[str, Any]:
    """Asked once, when the no-show delay has run out with nobody reported present."""
    body: list[dict[str, Any]] = [
        heading(t(language, "staff.no_show.title")),
        text_block(t(language, "staff.no_show.question", name=escape_markdown(citizen_name) or "—",
                     time=_clock(agency, language, appointment.starts_at),
                     minutes=duration_text(language, agency.no_show_minutes))),
    ]
    if counselor_name:
        body.append(subtle(t(language, "staff.prompt.for_counselor", name=escape_markdown(counselor_name))))
    body.append(subtle(t(language, "staff.no_show.consequence")))
    return adaptive_card(language, body, [
        _outcome_action(language, "staff.no_show.absent", appointment.id, Outcome.NO_SHOW, style="destructive"),
        _outcome_action(language, "staff.no_show.joined", appointment.id, Outcome.CLIENT_JOINED),
    ])


def build_recorded_card(agency: Agency, language: str, appointment: AppointmentView, *, outcome: Outcome | None,
                        by: str | None, at: datetime | None, reason: str | None = None,
                        status: AppointmentStatus | None = None) -> dict[str, Any]:
    """What a pressed prompt becomes: the outcome recorded, by whom and when, and no button left."""
    if outcome is not None:
        what = t(language, f"staff.outcome.{outcome.value}")
        if reason:
            what = f"{what} ({t(language, f'staff.reason.{reason}')})"
    else:
        what = t(language, f"staff.status.{status or AppointmentStatus.BOOKED}")
    body: list[dict[str, Any]] = [
        {"type": "Container", "style": "emphasis", "items": [heading(what)]},
        text_block(t(language, "staff.recorded.about", time=_clock(agency, language, appointment.starts_at),
                     subject=escape_markdown(subject_name(agency, appointment.subject_id, language)))),
    ]
    if at is not None:
        body.append(subtle(t(language, "staff.recorded.by", name=escape_markdown(by or "—"),
                             time=_clock(agency, language, at))))
    follow = {Outcome.NO_SHOW: "staff.recorded.citizen_told_no_show",
              Outcome.IDENTITY_NOT_VERIFIED: "staff.recorded.citizen_told_not_verified",
              Outcome.TECHNICAL_PROBLEM: "staff.recorded.citizen_offered_times"}.get(outcome) if outcome else None
    if follow:
        body.append(subtle(t(language, follow)))
    return adaptive_card(language, body)


def build_staff_notice_card(language: str, text: str) -> dict[str, Any]:
    """A short answer in place of a pressed card (too early, not yours, not found)."""
    return adaptive_card(language, [text_block(text)])


def build_staff_welcome_card(language: str, *, name: str, supervisor: bool) -> dict[str, Any]:
    body = [heading(t(language, "staff.welcome.title", name=escape_markdown(name))),
            text_block(t(language, "staff.welcome.intro")),
            text_block(t(language, "staff.welcome.supervisor" if supervisor else "staff.welcome.counselor"))]
    return stamp_actions(adaptive_card(language, body, _menu(language, supervisor=supervisor)),
                         {SOURCE: CardSource.WELCOME})


def build_staff_help_card(language: str, *, supervisor: bool) -> dict[str, Any]:
    lines = [t(language, "staff.help.my_day"), t(language, "staff.help.prompt"), t(language, "staff.help.outcomes")]
    if supervisor:
        lines.append(t(language, "staff.help.statistics"))
    body = [heading(t(language, "staff.help.title")), text_block("\n".join(f"- {line}" for line in lines))]
    return stamp_actions(adaptive_card(language, body, _menu(language, supervisor=supervisor)),
                         {SOURCE: CardSource.HELP})


def _menu(language: str, *, supervisor: bool) -> list[dict[str, Any]]:
    actions = [execute_action(t(language, "staff.menu.my_day"), Verb.STAFF_MY_DAY)]
    if supervisor:
        actions.append(execute_action(t(language, "staff.menu.statistics"), Verb.STAFF_STATISTICS))
    return actions


def build_staff_day_card(agency: Agency, language: str, entries: Sequence[Any], *, first_day: date, days: int,
                         supervisor: bool) -> dict[str, Any]:
    """Today's and tomorrow's appointments: time, client, subject, mode, interview language, status, join link."""
    body: list[dict[str, Any]] = [heading(t(language, "staff.day.title_team" if supervisor else "staff.day.title"))]
    for offset in range(days):
        day = date.fromordinal(first_day.toordinal() + offset)
        of_day = [e for e in entries if to_local(e.appointment.starts_at, agency.zone).date() == day]
        body.append(text_block(format_day_short(day, language, country=agency.country), weight="bolder",
                               spacing="large"))
        if not of_day:
            body.append(subtle(t(language, "staff.day.none")))
        for entry in of_day:
            appointment = entry.appointment
            # The client's name first: it is what the counselor prepares the interview with.
            title = (f"**{_clock(agency, language, appointment.starts_at)}** · "
                     f"{escape_markdown(entry.citizen_name) or t(language, 'staff.prompt.no_name')}")
            details = [escape_markdown(subject_name(agency, appointment.subject_id, language)),
                       mode_name(language, appointment.mode),
                       interview_language_name(language, appointment.interview_language),
                       t(language, f"staff.status.{appointment.status}")]
            if supervisor:
                details.insert(0, escape_markdown(entry.counselor_name))
            items: list[dict[str, Any]] = [text_block(title), subtle(" · ".join(details))]
            if Mode(appointment.mode) is Mode.VIDEO and appointment.join_url \
                    and appointment.status == AppointmentStatus.BOOKED:
                items.append({"type": "ActionSet", "actions": [{
                    "type": "Action.OpenUrl", "title": t(language, "staff.prompt.join"), "url": appointment.join_url}]})
            body.append({"type": "Container", "separator": True, "items": items})
    return adaptive_card(language, body, _menu(language, supervisor=supervisor))


_STATISTICS_COLUMNS = (Outcome.NO_SHOW, Outcome.TECHNICAL_PROBLEM, Outcome.IDENTITY_NOT_VERIFIED,
                       Outcome.AGENCY_LATE, Outcome.NO_OUTCOME)


def build_statistics_card(agency: Agency, language: str, weeks: Sequence[Any]) -> dict[str, Any]:
    """Per week: appointments, then the outcomes that need attention (no-shows, technical problems…)."""
    columns = [t(language, "staff.statistics.week"), t(language, "staff.statistics.appointments"),
               *(t(language, f"staff.statistics.{outcome.value}") for outcome in _STATISTICS_COLUMNS)]
    rows = [{"type": "TableRow", "cells": [_cell(name, bold=True) for name in columns]}]
    for week in weeks:
        values = [format_date(week.week_start, language, country=agency.country, weekday=False), str(week.booked),
                  *(str(week.counts.get(outcome, 0)) for outcome in _STATISTICS_COLUMNS)]
        rows.append({"type": "TableRow", "cells": [_cell(value) for value in values]})
    table = {"type": "Table", "gridStyle": "accent", "firstRowAsHeader": True,
             "columns": [{"width": 2}, *({"width": 1} for _ in columns[1:])], "rows": rows}
    return adaptive_card(language, [heading(t(language, "staff.statistics.title")), table,
                                    subtle(t(language, "staff.statistics.note"))], _menu(language, supervisor=True))


def _cell(text: str, *, bold: bool = False) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "TextBlock", "text": text, "wrap": True, "size": "small"}
    if bold:
        block["weight"] = "bolder"
    return {"type": "TableCell", "items": [block]}
