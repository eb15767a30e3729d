"""Booking cards: each step of booking, the summary and confirmation, the appointment list, cancelling.

Pure builders: they take the agency, the chat language and plain values (or objects shaped like the
booking service's views) and return Adaptive Card dicts. Every button is `execute_action`; choices
whose labels are long (subjects, offices) or many (times of a busy day) are an `Input.ChoiceSet`
with one button, which stays readable on a phone. Text the citizen typed is escaped before it is
shown; agency texts are escaped too, since card Markdown would interpret them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime, time
from functools import cache
from typing import Any, Protocol

from babel.dates import get_day_names

from bot.domain.agency import Agency, Mode, Office, PersonalField, RecordingPolicy
from bot.domain.appointment import AppointmentView
from bot.domain.channels import reader_on_web
from bot.domain.interview_language import LanguageReason
from bot.domain.personal_data import ERROR_REQUIRED, booking_fields, mask, phone_example
from bot.i18n import t, tn
from cards.document import escape_markdown
from cards.elements import adaptive_card, contact_facts, heading, text_block
from cards.formatting import (
    babel_locale,
    duration_text,
    format_date,
    format_date_numeric,
    format_datetime,
    format_day_short,
    format_time,
    name_zone,
    shows_other_time,
    to_local,
    zone_city,
)
from cards.verbs import SOURCE, SOURCE_ID, CardSource, Verb, execute_action, stamp_actions

# Up to this many times a day are buttons; beyond, a drop-down list (a wall of buttons is unusable
# on a phone, and Teams shows only a handful of buttons per row).
MAX_TIME_BUTTONS = 9
BUTTONS_PER_ROW = 3
DAYS_PER_PAGE = 6
# The booking service keeps at most this much of a cancellation note.
CANCEL_NOTE_MAX_LENGTH = 500
# The longest value each personal-data field accepts (the domain checks the exact rules).
_FIELD_MAX_LENGTH = {
    PersonalField.FIRST_NAME: 100,
    PersonalField.LAST_NAME: 100,
    PersonalField.BIRTH_DATE: 12,
    PersonalField.EMAIL: 254,
    PersonalField.PHONE: 30,
    PersonalField.POSTAL_CODE: 12,
    PersonalField.NATIONAL_REGISTER_NUMBER: 20,
    PersonalField.CLIENT_NUMBER: 30,
}
_FIELD_STYLE = {PersonalField.EMAIL: "email", PersonalField.PHONE: "tel"}
# Where the input is NOT a free text we show back, a raw value longer than this is cut when redisplayed.
_REDISPLAY_MAX = 300
# The phone hint's sample number: the same for every citizen of a country, and slow to build.
_phone_example = cache(phone_example)


class SlotLike(Protocol):
    """A time offered (the booking service's SlotOffer)."""

    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime: ...
    @property
    def office_id(self) -> str | None: ...


# --- Small shared pieces -----------------------------------------------------------------------------


def localized(agency: Agency, texts: Mapping[str, str], language: str) -> str:
    """An agency text in the chat language, else in the agency's first language."""
    return texts.get(language) or texts[agency.default_language]


def subject_name(agency: Agency, subject_id: str, language: str) -> str:
    subject = agency.subject(subject_id)
    return localized(agency, subject.name, language) if subject else subject_id


def office_name(agency: Agency, office_id: str | None, language: str) -> str:
    office = agency.office(office_id) if office_id else None
    return localized(agency, office.name, language) if office else ""


def office_address(office: Office) -> str:
    return f"{office.street}, {office.postal_code} {office.city}"


def mode_name(language: str, mode: Mode | str) -> str:
    return t(language, f"booking.mode.name_{Mode(mode).value}")


def interview_language_name(language: str, code: str) -> str:
    return t(language, f"personal_data.language_name.{code}")


def when_text(agency: Agency, language: str, start: datetime) -> str:
    """ "lundi 23 novembre 2026 à 14:05", in the agency's zone (named when the reader's clock differs)."""
    return name_zone(format_datetime(start, agency.zone, language, country=agency.country), start, agency.zone,
                     language)


def time_range(agency: Agency, language: str, start: datetime, end: datetime) -> str:
    return name_zone(t(language, "booking.summary.time_range",
                       start=format_time(to_local(start, agency.zone), language, country=agency.country),
                       end=format_time(to_local(end, agency.zone), language, country=agency.country)),
                     start, agency.zone, language)


def _button_rows(actions: list[dict[str, Any]], per_row: int = BUTTONS_PER_ROW) -> list[dict[str, Any]]:
    """Actions as several ActionSets of `per_row`: rows that fit a phone screen."""
    return [{"type": "ActionSet", "actions": actions[i:i + per_row]} for i in range(0, len(actions), per_row)]


def _facts(rows: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {"type": "FactSet", "facts": [{"title": title, "value": value} for title, value in rows]}


def subtle(text: str, **style: Any) -> dict[str, Any]:
    return text_block(text, isSubtle=True, spacing="small", **style)


def change_until_text(agency: Agency, language: str, key: str) -> str:
    """"…until 2 hours before the start", or "…until the start" when the agency allows changes until
    then (`key`, and `key` + "_start" for the cut-off at the start)."""
    cutoff = agency.booking.cancellation_cutoff_minutes
    if cutoff == 0:
        return t(language, f"{key}_start")
    return t(language, key, duration=duration_text(language, cutoff))


def build_pressed_note_card(language: str) -> dict[str, Any]:
    """In place of a used card whose answer came as new messages: where to look."""
    return adaptive_card(language, [subtle(t(language, "conversation.answer_below"))])


def build_step_done_card(language: str, text: str, *, done: bool = True) -> dict[str, Any]:
    """What a used step card becomes: the choice made (or, `done` False, what went wrong), and no
    button left to press twice."""
    if done:
        return adaptive_card(language, [text_block(f"✓ {text}", weight="bolder", color="good")])
    return adaptive_card(language, [text_block(text, weight="bolder", color="attention")])


def _place_text(agency: Agency, language: str, mode: Mode | str, office_id: str | None) -> str:
    if Mode(mode) is Mode.OFFICE and office_id:
        return f"{mode_name(language, mode)} – {escape_markdown(office_name(agency, office_id, language))}"
    return mode_name(language, mode)


def _context_line(agency: Agency, language: str, mode: Mode | str, subject_id: str, office_id: str | None) -> str:
    """ "Chômage temporaire · Au bureau – Liège": what the citizen is choosing a time for."""
    subject = escape_markdown(subject_name(agency, subject_id, language))
    return f"{subject} · {_place_text(agency, language, mode, office_id)}"


# --- The booking steps -----------------------------------------------------------------------------


def build_mode_card(agency: Agency, language: str) -> dict[str, Any]:
    """Video or office, among the modes the agency offers."""
    body: list[dict[str, Any]] = [heading(t(language, "booking.mode.title"))]
    for mode in agency.modes:
        body.append(text_block(f"**{mode_name(language, mode)}** – {t(language, f'booking.mode.hint_{mode.value}')}",
                               spacing="small"))
    actions = [execute_action(t(language, f"booking.mode.choose_{mode.value}"), Verb.BOOK_MODE, {"mode": mode.value})
               for mode in agency.modes]
    return adaptive_card(language, body, actions)


def build_office_card(agency: Agency, language: str, *, selected: str | None = None) -> dict[str, Any]:
    """The agency's offices with their address, as a list to choose from."""
    choices = [
        {"title": f"{localized(agency, office.name, language)} – {office_address(office)}", "value": office.id}
        for office in agency.offices
    ]
    choice_set: dict[str, Any] = {
        "type": "Input.ChoiceSet", "id": "office", "style": "expanded", "wrap": True, "isRequired": True,
        "label": t(language, "booking.office.label"), "errorMessage": t(language, "booking.office.required"),
        "choices": choices,
    }
    if selected in {office.id for office in agency.offices}:
        choice_set["value"] = selected
    body = [heading(t(language, "booking.office.title")), choice_set]
    actions = [execute_action(t(language, "booking.common.continue"), Verb.BOOK_OFFICE, style="positive", echo=False)]
    return adaptive_card(language, body, actions)


def build_subject_card(
    agency: Agency, language: str, mode: Mode | str, *, selected: str | None = None
) -> dict[str, Any]:
    """The subjects that allow the chosen mode, each with its length."""
    subjects = [agency.subject(subject_id) for subject_id in agency.subjects_for(mode)]
    choices = [
        {"title": t(language, "booking.subject.option", name=localized(agency, subject.name, language),
                    minutes=subject.duration_minutes), "value": subject.id}
        for subject in subjects if subject is not None
    ]
    choice_set: dict[str, Any] = {
        "type": "Input.ChoiceSet", "id": "subject", "style": "expanded", "wrap": True, "isRequired": True,
        "label": t(language, "booking.subject.label"), "errorMessage": t(language, "booking.subject.required"),
        "choices": choices,
    }
    if selected in {choice["value"] for choice in choices}:
        choice_set["value"] = selected
    body = [heading(t(language, "booking.subject.title")), choice_set]
    actions = [execute_action(t(language, "booking.common.continue"), Verb.BOOK_SUBJECT, style="positive", echo=False)]
    return adaptive_card(language, body, actions)


def build_day_card(
    agency: Agency,
    language: str,
    *,
    mode: Mode | str,
    subject_id: str,
    office_id: str | None,
    days: Sequence[date],
    has_earlier: bool,
    has_more: bool,
) -> dict[str, Any]:
    """One page of the next days with free times, with "more days" and, past the first page, "earlier days"."""
    body: list[dict[str, Any]] = [
        heading(t(language, "booking.day.title")),
        subtle(_context_line(agency, language, mode, subject_id, office_id)),
    ]
    day_buttons = [
        execute_action(format_day_short(day, language, country=agency.country), Verb.BOOK_DAY,
                       {"day": day.isoformat()})
        for day in days
    ]
    body += _button_rows(day_buttons)
    paging: list[dict[str, Any]] = []
    if has_earlier:
        paging.append(execute_action(t(language, "booking.day.earlier"), Verb.BOOK_MORE_DAYS, {"page": "previous"}))
    if has_more:
        paging.append(execute_action(t(language, "booking.day.more"), Verb.BOOK_MORE_DAYS, {"page": "next"}))
    return adaptive_card(language, body, paging or None)


def build_no_days_card(agency: Agency, language: str) -> dict[str, Any]:
    """No free time within the booking horizon: say so and give the other ways to reach the agency."""
    body = [
        heading(t(language, "booking.day.none_title")),
        text_block(tn(language, "booking.day.none", agency.booking.max_horizon_days)),
        contact_facts(agency, language),
    ]
    return adaptive_card(language, body)


def build_slot_card(
    agency: Agency,
    language: str,
    *,
    day: date,
    slots: Sequence[SlotLike],
    duration_minutes: int,
) -> dict[str, Any]:
    """The free start times of one day: buttons when few, else a drop-down list and one button."""
    body: list[dict[str, Any]] = [
        heading(t(language, "booking.slot.title", day=format_date(day, language, country=agency.country))),
        subtle(t(language, "booking.slot.intro", minutes=duration_text(language, duration_minutes))),
    ]
    if slots and shows_other_time(slots[0].start, agency.zone):
        # The buttons hold bare times: say once whose clock they are on.
        body.append(subtle(t(language, "common.zone.times_note", city=zone_city(agency.zone.key, language))))
    times = [(format_time(to_local(slot.start, agency.zone), language, country=agency.country),
              slot.start.isoformat()) for slot in slots]
    other_day = execute_action(t(language, "booking.slot.other_day"), Verb.BOOK_CHANGE, {"to": "day"})
    if len(times) <= MAX_TIME_BUTTONS:
        body += _button_rows([execute_action(label, Verb.BOOK_SLOT, {"start": value}) for label, value in times])
        return adaptive_card(language, body, [other_day])
    body.append({
        "type": "Input.ChoiceSet", "id": "start", "style": "compact", "isRequired": True,
        "label": t(language, "booking.slot.label"), "errorMessage": t(language, "booking.slot.required"),
        "value": times[0][1], "choices": [{"title": label, "value": value} for label, value in times],
    })
    actions = [execute_action(t(language, "booking.slot.choose"), Verb.BOOK_SLOT, style="positive", echo=False),
               other_day]
    return adaptive_card(language, body, actions)


def personal_display_value(agency: Agency, language: str, value: str | date) -> str:
    """A saved value as it is prefilled in the form (dates written day first, as people type them)."""
    if isinstance(value, date):
        return format_date_numeric(value, language, country=agency.country)
    return value


def build_personal_data_card(
    agency: Agency,
    language: str,
    *,
    values: Mapping[str, str],
    errors: Mapping[str, str] | None = None,
    prefilled_from_saved: bool = False,
) -> dict[str, Any]:
    """The agency's personal-data fields, prefilled, with the error of each field under it.

    `values` are strings keyed by field name (what was saved, or what the citizen typed last time);
    `errors` are catalog keys from `validate_personal_data`, keyed by field name.
    """
    errors = errors or {}
    body: list[dict[str, Any]] = [
        heading(t(language, "booking.details.title")),
        text_block(t(language, "booking.details.intro")),
    ]
    on_web = reader_on_web()
    if on_web:
        # On the website the e-mail address is always asked (booking_fields): say why.
        body.append(text_block(t(language, "booking.details.email_why")))
    if errors:
        body.append(text_block(t(language, "booking.details.errors"), color="attention", weight="bolder"))
    elif prefilled_from_saved:
        body.append(subtle(t(language, "booking.details.saved_note")))
    for field in booking_fields(agency.personal_data_fields, on_web=on_web):
        hint_params = {"example": _phone_example(agency.country)} if field is PersonalField.PHONE else {}
        element: dict[str, Any] = {
            "type": "Input.Text",
            "id": field.value,
            "label": t(language, f"personal_data.label.{field.value}"),
            "placeholder": t(language, f"personal_data.hint.{field.value}", **hint_params),
            "isRequired": True,
            "errorMessage": t(language, ERROR_REQUIRED),
            "maxLength": _FIELD_MAX_LENGTH[field],
        }
        if field in _FIELD_STYLE:
            element["style"] = _FIELD_STYLE[field]
        value = values.get(field.value)
        if isinstance(value, str) and value:
            # Input values are plain text, not Markdown: nothing to escape, only to bound.
            element["value"] = value[:_FIELD_MAX_LENGTH[field]]
        body.append(element)
        error = errors.get(field.value)
        if error:
            body.append(text_block(t(language, error), color="attention", size="small", spacing="none"))
    body.append(subtle(t(language, "booking.details.privacy"), size="small"))
    actions = [execute_action(t(language, "booking.common.continue"), Verb.BOOK_PERSONAL_DATA, style="positive",
                              echo=False)]
    return adaptive_card(language, body, actions)


def build_language_card(agency: Agency, language: str, choices: Sequence[str], *, brussels: bool) -> dict[str, Any]:
    """Which language the interview is held in, when the agency's rule leaves the choice."""
    body: list[dict[str, Any]] = [heading(t(language, "booking.language.title"))]
    if brussels:
        body.append(text_block(t(language, "personal_data.interview_language.brussels")))
    body.append(text_block(t(language, "personal_data.interview_language.prompt"), weight="bolder"))
    # Each language is named in itself: it is read by someone who speaks it.
    actions = [execute_action(t(code, "common.language_name"), Verb.BOOK_LANGUAGE, {"language": code})
               for code in choices]
    return adaptive_card(language, body, actions)


def _personal_facts(agency: Agency, language: str, personal: Mapping[PersonalField, str | date]) -> dict[str, Any]:
    rows = []
    for field in booking_fields(agency.personal_data_fields, on_web=reader_on_web()):
        value = personal.get(field)
        if value is None:
            continue
        # A date shown to read is written with its month's name: 07/12/2026 is 12 July to some readers.
        shown = format_date(value, language, country=agency.country, weekday=False) if isinstance(value, date) \
            else mask(field, value)
        rows.append((t(language, f"personal_data.label.{field.value}"), escape_markdown(shown)))
    return _facts(rows)


def appointment_facts(
    agency: Agency,
    language: str,
    *,
    mode: Mode | str,
    subject_id: str,
    office_id: str | None,
    start: datetime,
    end: datetime,
    interview_language: str | None,
) -> dict[str, Any]:
    rows = [
        (t(language, "booking.summary.date"),
         format_date(to_local(start, agency.zone), language, country=agency.country)),
        (t(language, "booking.summary.time"), time_range(agency, language, start, end)),
        (t(language, "booking.summary.subject"), escape_markdown(subject_name(agency, subject_id, language))),
        (t(language, "booking.summary.type"), mode_name(language, mode)),
    ]
    office = agency.office(office_id) if office_id and Mode(mode) is Mode.OFFICE else None
    if office is not None:
        rows.append((t(language, "booking.summary.office"),
                     escape_markdown(f"{localized(agency, office.name, language)}, {office_address(office)}")))
    if interview_language:
        rows.append((t(language, "booking.summary.language"), interview_language_name(language, interview_language)))
    return _facts(rows)


def build_summary_card(
    agency: Agency,
    language: str,
    *,
    mode: Mode | str,
    subject_id: str,
    office_id: str | None,
    start: datetime,
    end: datetime,
    interview_language: str | None,
    personal: Mapping[PersonalField, str | date] | None = None,
    previous_start: datetime | None = None,
    language_reason: LanguageReason | None = None,
) -> dict[str, Any]:
    """Everything about to be booked (or the move about to be made), with Confirm and Change.
    `language_reason`: why the interview is in its language, said when that is not the chat's language."""
    moving = previous_start is not None
    body: list[dict[str, Any]] = [heading(t(language, "booking.summary.title_reschedule" if moving
                                             else "booking.summary.title"))]
    if previous_start is not None:
        body.append(text_block(t(language, "booking.summary.previous",
                                 when=when_text(agency, language, previous_start)), isSubtle=True))
    body.append(appointment_facts(agency, language, mode=mode, subject_id=subject_id, office_id=office_id,
                                   start=start, end=end, interview_language=interview_language))
    # A citizen chatting in English sees "Interview language: French": the rule says why (a choice they
    # made themselves needs no explaining).
    if interview_language and interview_language != language and language_reason in (
            LanguageReason.RESIDENCE, LanguageReason.AGENCY):
        body.append(subtle(t(language, f"booking.summary.language_why_{language_reason}",
                             language=interview_language_name(language, interview_language))))
    if personal:
        body.append(text_block(t(language, "booking.summary.details"), weight="bolder", spacing="medium"))
        body.append(_personal_facts(agency, language, personal))
    actions = [
        execute_action(t(language, "booking.summary.confirm_reschedule" if moving else "booking.summary.confirm"),
                       Verb.BOOK_CONFIRM, style="positive"),
        execute_action(t(language, "booking.summary.change"), Verb.BOOK_CHANGE, {"to": "day"}),
    ]
    if personal:
        actions.append(execute_action(t(language, "booking.summary.correct"), Verb.BOOK_CHANGE, {"to": "details"}))
    return adaptive_card(language, body, actions)


# --- After booking -----------------------------------------------------------------------------------


def _day_names(agency: Agency, language: str) -> list[str]:
    names = get_day_names("wide", locale=babel_locale(language, agency.country))
    return [names[index] for index in range(7)]


def office_hours_lines(agency: Agency, office_id: str, language: str) -> list[str]:
    """Office opening hours, days with the same hours grouped: "lundi – vendredi : 08:30–12:00"."""
    own = [h for h in agency.opening_hours if h.mode is Mode.OFFICE and h.office == office_id]
    # An office with hours of its own follows only those; the others follow the general office hours.
    hours = own or [h for h in agency.opening_hours if h.mode is Mode.OFFICE and h.office is None]
    windows: list[tuple[tuple[time, time], ...]] = [
        tuple(sorted((h.start, h.end) for h in hours if any(d.number == index for d in h.days))) for index in range(7)
    ]
    names = _day_names(agency, language)

    def clock(value: time) -> str:
        return format_time(value, language, country=agency.country)

    lines: list[str] = []
    index = 0
    while index < 7:
        last = index
        while last + 1 < 7 and windows[last + 1] == windows[index]:
            last += 1
        if windows[index]:
            days = names[index] if last == index else f"{names[index]} – {names[last]}"
            spans = ", ".join(f"{clock(start)}–{clock(end)}" for start, end in windows[index])
            lines.append(t(language, "booking.confirmation.hours_line", days=days, hours=spans))
        index = last + 1
    return lines


def appointment_actions(language: str, appointment_id: str, *, changeable: bool) -> list[dict[str, Any]]:
    actions = [execute_action(t(language, "booking.list.reschedule"), Verb.APPT_RESCHEDULE,
                              {"appointment_id": appointment_id}),
               execute_action(t(language, "booking.list.cancel"), Verb.APPT_CANCEL,
                              {"appointment_id": appointment_id}, style="destructive")]
    return actions if changeable else []


def video_guide(agency: Agency, language: str, appointment: AppointmentView, *, meetings: bool) -> list[dict[str, Any]]:
    """The join link (or when it comes), how to join from a computer or a phone, what to prepare, the rules.

    `meetings`: whether this installation creates Teams meetings (Microsoft Graph configured)."""
    body: list[dict[str, Any]] = []
    if appointment.join_url:
        body.append(text_block(t(language, "booking.confirmation.link_ready"), spacing="medium"))
        body.append({"type": "ActionSet", "actions": [{
            "type": "Action.OpenUrl", "title": t(language, "booking.confirmation.join"), "url": appointment.join_url,
        }]})
    elif meetings:
        body.append(text_block(t(language, "booking.confirmation.link_pending"), spacing="medium"))
    else:
        # Said plainly: in local mode (no Microsoft Graph) no meeting exists, so no link will come, and
        # the joining block says what happens instead of how to open a link.
        body += [
            text_block(t(language, "booking.confirmation.link_local_mode"), spacing="medium"),
            text_block(t(language, "booking.confirmation.access_heading_local_mode"), weight="bolder",
                       spacing="medium"),
            text_block(t(language, "booking.confirmation.access_local_mode", phone=agency.contact.phone),
                       spacing="small"),
        ]
    if appointment.join_url or meetings:
        body += [
            text_block(t(language, "booking.confirmation.access_heading"), weight="bolder", spacing="medium"),
            text_block(f"- {t(language, 'booking.confirmation.access_computer')}\n"
                       f"- {t(language, 'booking.confirmation.access_mobile')}", spacing="small"),
        ]
    checklist = [
        t(language, "booking.confirmation.check_devices"),
        t(language, "booking.confirmation.check_place"),
    ]
    subject = agency.subject(appointment.subject_id)
    if subject is not None and subject.documents_to_prepare:
        checklist.append(t(language, "booking.confirmation.check_documents",
                           documents=escape_markdown(localized(agency, subject.documents_to_prepare, language))))
    checklist.append(t(language, "booking.confirmation.check_on_time"))
    body += [
        text_block(t(language, "booking.confirmation.checklist_heading"), weight="bolder", spacing="medium"),
        text_block("\n".join(f"- {item}" for item in checklist), spacing="small"),
        text_block(t(language, "booking.confirmation.rules_heading"), weight="bolder", spacing="medium"),
        text_block("\n".join(f"- {rule}" for rule in (
            t(language, "booking.confirmation.camera_rule"),
            t(language, "booking.confirmation.no_show_rule", minutes=duration_text(language, agency.no_show_minutes)),
            t(language, "booking.confirmation.wait_commitment",
              minutes=duration_text(language, agency.agency_wait_commitment_minutes))
            if agency.agency_wait_commitment_minutes else t(language, "booking.confirmation.wait_commitment_at_start"),
            t(language, f"booking.confirmation.recording_{RecordingPolicy(agency.recording).value}"),
        )), spacing="small"),
    ]
    return body


def office_guide(agency: Agency, language: str, appointment: AppointmentView) -> list[dict[str, Any]]:
    """The office's opening hours and what to bring."""
    office = agency.office(appointment.office_id) if appointment.office_id else None
    body: list[dict[str, Any]] = []
    if office is not None:
        # The address is in the facts above; the hours say when the office can be reached.
        lines = office_hours_lines(agency, office.id, language)
        if lines:
            body += [
                text_block(t(language, "booking.confirmation.office_hours"), weight="bolder", spacing="medium"),
                text_block("\n".join(f"- {line}" for line in lines), spacing="small"),
            ]
    checklist = [t(language, "booking.confirmation.office_on_time")]
    subject = agency.subject(appointment.subject_id)
    if subject is not None and subject.documents_to_prepare:
        checklist.append(t(language, "booking.confirmation.bring_documents",
                           documents=escape_markdown(localized(agency, subject.documents_to_prepare, language))))
    body += [
        text_block(t(language, "booking.confirmation.checklist_heading"), weight="bolder", spacing="medium"),
        text_block("\n".join(f"- {item}" for item in checklist), spacing="small"),
    ]
    return body


def booked_facts(agency: Agency, language: str, appointment: AppointmentView, *,
                 counselor: bool = True) -> list[dict[str, Any]]:
    """A booked appointment's facts, then (`counselor`) who the citizen will meet when that is known."""
    body = [appointment_facts(agency, language, mode=appointment.mode, subject_id=appointment.subject_id,
                              office_id=appointment.office_id, start=appointment.starts_at, end=appointment.ends_at,
                              interview_language=appointment.interview_language)]
    name = counselor_name(agency, appointment)
    if counselor and name:
        body.append(subtle(t(language, "booking.confirmation.counselor", name=escape_markdown(name))))
    return body


def counselor_name(agency: Agency, appointment: AppointmentView) -> str | None:
    """The name of the counselor the citizen will meet, as the agency's file gives it."""
    counselor = agency.counselor(appointment.counselor_id)
    return counselor.display_name if counselor is not None and counselor.display_name else None


def build_confirmation_card(
    agency: Agency,
    language: str,
    appointment: AppointmentView,
    *,
    title_key: str = "booking.confirmation.title",
    changeable: bool = True,
    calendar_file: bool = False,
    reminders: Sequence[datetime] = (),
    meetings: bool = False,
) -> dict[str, Any]:
    """The booked appointment and what happens next: the link, how to join, what to prepare, the rules.

    `title_key`: booked, moved, or plain details. `calendar_file`: a calendar file follows this card.
    `reminders`: when reminders will come in this chat (as planned). `meetings`: see `video_guide`.
    """
    body: list[dict[str, Any]] = [
        {"type": "Container", "style": "good", "items": [heading(f"✓ {t(language, title_key)}")]}
        if title_key != "booking.confirmation.title_details" else heading(t(language, title_key)),
        *booked_facts(agency, language, appointment),
    ]
    if reminders:
        body.append(text_block(t(language, "booking.confirmation.reminders_planned",
                                 times=reminder_times_text(agency, language, reminders)), spacing="medium"))
    if Mode(appointment.mode) is Mode.VIDEO:
        body += video_guide(agency, language, appointment, meetings=meetings)
    else:
        body += office_guide(agency, language, appointment)
    if calendar_file:
        body.append(subtle(t(language, "booking.confirmation.calendar_note")))
    if changeable:
        body.append(subtle(change_until_text(agency, language, "booking.confirmation.change_until")))
    actions = [execute_action(t(language, "booking.list.title_button"), Verb.MENU_MY_APPOINTMENTS)]
    actions += appointment_actions(language, appointment.id, changeable=changeable)
    return stamp_actions(adaptive_card(language, body, actions),
                         {SOURCE: CardSource.APPOINTMENT, SOURCE_ID: appointment.id})


def reminder_times_text(agency: Agency, language: str, moments: Sequence[datetime]) -> str:
    """"Tuesday 3 December at 10:00 and Wednesday 4 December at 09:00", in the agency's time zone."""
    texts = [when_text(agency, language, moment) for moment in moments]
    if len(texts) == 1:
        return texts[0]
    return t(language, "booking.confirmation.and_list", first=", ".join(texts[:-1]), last=texts[-1])


# --- Existing appointments ---------------------------------------------------------------------------


def _appointment_summary(agency: Agency, language: str, appointment: AppointmentView) -> list[dict[str, Any]]:
    return [
        text_block(when_text(agency, language, appointment.starts_at), weight="bolder"),
        subtle(_context_line(agency, language, appointment.mode, appointment.subject_id, appointment.office_id)),
    ]


def build_appointments_card(
    agency: Agency,
    language: str,
    appointments: Sequence[AppointmentView],
    *,
    changeable: Collection[str],
) -> dict[str, Any]:
    """The citizen's upcoming appointments, each with Details, Reschedule and Cancel; or how to book one."""
    if not appointments:
        body = [heading(t(language, "booking.list.title")), text_block(t(language, "booking.list.empty"))]
        return stamp_actions(adaptive_card(language, body, [
            execute_action(t(language, "booking.list.book"), Verb.MENU_BOOK, style="positive"),
        ]), {SOURCE: CardSource.APPOINTMENTS})
    body = [heading(t(language, "booking.list.title"))]
    for appointment in appointments:
        items = _appointment_summary(agency, language, appointment)
        actions = [execute_action(t(language, "booking.list.details"), Verb.APPT_DETAILS,
                                  {"appointment_id": appointment.id})]
        actions += appointment_actions(language, appointment.id, changeable=appointment.id in changeable)
        if appointment.id not in changeable:
            items.append(subtle(t(language, "booking.list.too_late"), size="small"))
        items.append({"type": "ActionSet", "actions": actions})
        body.append({"type": "Container", "separator": True, "spacing": "medium", "items": items})
    limit = agency.booking.max_upcoming_per_citizen
    footer: list[dict[str, Any]] = []
    if len(appointments) < limit:
        footer.append(execute_action(t(language, "booking.list.book"), Verb.MENU_BOOK))
    return stamp_actions(adaptive_card(language, body, footer or None), {SOURCE: CardSource.APPOINTMENTS})


def build_pick_appointment_card(
    agency: Agency, language: str, appointments: Sequence[AppointmentView], *, purpose: str
) -> dict[str, Any]:
    """Which appointment to move or cancel ("reschedule" or "cancel"), when there are several."""
    verb = Verb.APPT_RESCHEDULE if purpose == "reschedule" else Verb.APPT_CANCEL
    body: list[dict[str, Any]] = [heading(t(language, f"booking.pick.{purpose}_title"))]
    for appointment in appointments:
        items = _appointment_summary(agency, language, appointment)
        items.append({"type": "ActionSet", "actions": [
            execute_action(t(language, f"booking.pick.{purpose}_button"), verb, {"appointment_id": appointment.id}),
        ]})
        body.append({"type": "Container", "separator": True, "spacing": "medium", "items": items})
    return adaptive_card(language, body)


def build_no_upcoming_card(language: str) -> dict[str, Any]:
    body = [text_block(t(language, "booking.list.empty"))]
    return adaptive_card(language, body, [
        execute_action(t(language, "booking.list.book"), Verb.MENU_BOOK, style="positive"),
    ])


def build_cancel_confirm_card(agency: Agency, language: str, appointment: AppointmentView) -> dict[str, Any]:
    """Cancel this appointment? With an optional reason and Confirm / Keep."""
    body: list[dict[str, Any]] = [heading(t(language, "booking.cancel.title"))]
    body += _appointment_summary(agency, language, appointment)
    body.append({
        "type": "Input.Text", "id": "reason", "isMultiline": True, "maxLength": CANCEL_NOTE_MAX_LENGTH,
        "label": t(language, "booking.cancel.reason_label"),
        "placeholder": t(language, "booking.cancel.reason_placeholder"),
    })
    actions = [
        execute_action(t(language, "booking.cancel.confirm"), Verb.APPT_CANCEL_CONFIRM,
                       {"appointment_id": appointment.id}, style="destructive"),
        execute_action(t(language, "booking.cancel.keep"), Verb.APPT_KEEP, {"appointment_id": appointment.id}),
    ]
    return adaptive_card(language, body, actions)


def build_cancelled_card(agency: Agency, language: str, appointment: AppointmentView) -> dict[str, Any]:
    body = [
        heading(t(language, "booking.cancel.done_title")),
        text_block(t(language, "booking.cancel.done_text", when=when_text(agency, language, appointment.starts_at),
                     subject=escape_markdown(subject_name(agency, appointment.subject_id, language)))),
    ]
    return adaptive_card(language, body, [
        execute_action(t(language, "booking.cancel.book_again"), Verb.MENU_BOOK),
    ])


def build_cutoff_card(agency: Agency, language: str, appointment: AppointmentView) -> dict[str, Any]:
    """Too close to the start to change in the chat: how to reach the agency instead."""
    body = [
        heading(t(language, "booking.cutoff.title")),
        *_appointment_summary(agency, language, appointment),
        text_block(change_until_text(agency, language, "booking.cutoff.text"), spacing="medium"),
        contact_facts(agency, language),
    ]
    return adaptive_card(language, body)


def build_slot_taken_card(agency: Agency, language: str, alternatives: Sequence[SlotLike]) -> dict[str, Any]:
    """The chosen time went to someone else a moment ago: the nearest free times, one tap to book."""
    body: list[dict[str, Any]] = [heading(t(language, "booking.taken.title"))]
    if alternatives:
        body.append(text_block(t(language, "booking.taken.text")))
        buttons = [
            execute_action(when_text(agency, language, offer.start), Verb.BOOK_SLOT,
                           {"start": offer.start.isoformat(), "office": offer.office_id or ""})
            for offer in alternatives
        ]
        # One per row: each is a full date and time.
        body += _button_rows(buttons, per_row=1)
    else:
        body.append(text_block(t(language, "booking.taken.none")))
    return adaptive_card(language, body, [
        execute_action(t(language, "booking.slot.other_day"), Verb.BOOK_CHANGE, {"to": "day"}),
    ])


# --- The calendar file -------------------------------------------------------------------------------


FILE_CONSENT_CARD = "application/vnd.microsoft.teams.card.file.consent"
FILE_INFO_CARD = "application/vnd.microsoft.teams.card.file.info"


def calendar_file_name(language: str) -> str:
    return t(language, "booking.calendar.file_name")


def build_calendar_file_offer(language: str, *, appointment_id: str, size_in_bytes: int) -> dict[str, Any]:
    """The content of a Teams file consent card offering the appointment as a calendar (.ics) file.

    Teams bots cannot attach arbitrary files to a message (only images and cards); in a personal
    chat a file is sent by asking first, then uploading it to where Teams says (see dialogs.booking).
    The answer comes back with this context, routed by its verb like a card action; it names the
    appointment (checked to be the citizen's own then) and holds no personal data.
    """
    context = {"verb": str(Verb.APPT_CALENDAR_FILE), "appointment_id": appointment_id, "language": language}
    return {
        "description": t(language, "booking.calendar.description"),
        "sizeInBytes": size_in_bytes,
        "acceptContext": context,
        "declineContext": context,
    }
