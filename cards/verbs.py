"""Card actions: the verbs an Adaptive Card sends back to the bot, and the one helper that builds them.

In Teams every button is an `Action.Execute` (Universal Actions: Teams sends an `adaptiveCard/action` invoke
and the bot answers with the refreshed card). Clients too old for `Action.Execute` fall back to an
`Action.Submit`, which has no `verb` field, so the verb also travels inside `data`. Bot Framework Web Chat
(the agency's website) renders no `Action.Execute` at all and never takes the fallback: read there
(bot.domain.channels.reader_on_web), the same builders make that `Action.Submit` alone, which also
carries its own title (`CHOSEN_KEY`): nothing replaces a pressed card on the web, so the bot says back what was
chosen (bot.turn.chosen_title).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, Literal

from bot.domain.channels import CHOSEN_KEY, CHOSEN_MAX_LENGTH, reader_on_web

ActionStyle = Literal["default", "positive", "destructive"]


class Verb(StrEnum):
    # Consent to the terms of use and the privacy policy.
    CONSENT_ACCEPT = "consent_accept"
    CONSENT_DECLINE = "consent_decline"
    CONSENT_LANGUAGE = "consent_language"
    CONSENT_WITHDRAW_CONFIRM = "consent_withdraw_confirm"
    CONSENT_WITHDRAW_CANCEL = "consent_withdraw_cancel"
    SHOW_TERMS = "show_terms"
    SHOW_PRIVACY = "show_privacy"
    # Main menu.
    MENU_BOOK = "menu_book"
    MENU_MY_APPOINTMENTS = "menu_my_appointments"
    MENU_MY_DATA = "menu_my_data"
    MENU_HELP = "menu_help"
    # Booking: one step of the booking dialog each.
    BOOK_MODE = "book_mode"
    BOOK_OFFICE = "book_office"
    BOOK_SUBJECT = "book_subject"
    BOOK_DAY = "book_day"
    BOOK_MORE_DAYS = "book_more_days"
    BOOK_SLOT = "book_slot"
    BOOK_PERSONAL_DATA = "book_personal_data"
    BOOK_LANGUAGE = "book_language"
    BOOK_CONFIRM = "book_confirm"
    BOOK_CHANGE = "book_change"
    # An existing appointment (the data carries its id; the bot checks it is the citizen's own).
    APPT_DETAILS = "appt_details"
    APPT_RESCHEDULE = "appt_reschedule"
    APPT_CANCEL = "appt_cancel"
    APPT_CANCEL_CONFIRM = "appt_cancel_confirm"
    APPT_KEEP = "appt_keep"
    # "I have a technical problem" on a video appointment's reminder (the citizen's side).
    APPT_TECHNICAL_PROBLEM = "appt_technical_problem"
    # The answer to the calendar file's Teams file consent card, routed like a card action.
    APPT_CALENDAR_FILE = "appt_calendar_file"
    # Privacy rights.
    PRIVACY_EXPORT = "privacy_export"
    PRIVACY_RECTIFY = "privacy_rectify"
    PRIVACY_RECTIFY_SUBMIT = "privacy_rectify_submit"
    PRIVACY_ERASE = "privacy_erase"
    PRIVACY_ERASE_CONFIRM = "privacy_erase_confirm"
    PRIVACY_ERASE_CANCEL = "privacy_erase_cancel"
    PRIVACY_RESTRICT = "privacy_restrict"
    PRIVACY_REMINDERS = "privacy_reminders"
    # The answer to the export's Teams file consent card (accept or decline), routed like a card action.
    PRIVACY_EXPORT_FILE = "privacy_export_file"
    # A new time after a technical problem or an absent agency (the data names the appointment and the time).
    APPT_REBOOK = "appt_rebook"
    # "Nobody has joined yet" on a video appointment's reminder.
    APPT_NOBODY_JOINED = "appt_nobody_joined"
    # The agency's staff: an outcome from a prompt or the no-show question, their day, the statistics.
    STAFF_OUTCOME = "staff_outcome"
    STAFF_MY_DAY = "staff_my_day"
    STAFF_STATISTICS = "staff_statistics"
    STAFF_HELP = "staff_help"
    # Verbs added later go in the block of their feature, so one enum routes every card action.


class CardSource(StrEnum):
    """Which long-lived card a button is on, carried in its data (`SOURCE`, with `SOURCE_ID`: the
    appointment it shows): a press whose answer comes as new messages gets that card back rebuilt as
    it stands now (dialogs/press_answer.py), since Teams puts the invoke's answer in its place."""

    WELCOME = "welcome"  # the citizen's or the staff's
    HELP = "help"
    APPOINTMENTS = "appointments"  # the list of upcoming appointments
    APPOINTMENT = "appointment"  # a confirmation or an appointment's details
    REMINDER = "reminder"


SOURCE = "source"
SOURCE_ID = "source_id"
SOURCE_OFFSET = "source_offset"  # a reminder's: how long before the start it was planned

# A tuple, not a set: a malformed card may hold an unhashable "type".
_STAMPED_ACTIONS = ("Action.Submit", "Action.Execute")


def stamp_actions(card: dict[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Write `values` into every Submit/Execute action's data (fallbacks and nested cards included)."""

    # Every node is visited (an action may sit anywhere); strings, most of a card, are skipped first.
    def visit(nodes: Iterable[Any]) -> None:
        for node in nodes:
            if type(node) is str:
                continue
            if isinstance(node, dict):
                if node.get("type") in _STAMPED_ACTIONS:
                    data = node.get("data")
                    node["data"] = {**(data if isinstance(data, dict) else {}), **values}
                visit(node.values())
            elif isinstance(node, list):
                visit(node)

    visit([card])
    return card


def execute_action(
    title: str,
    verb: Verb | str,
    data: dict[str, Any] | None = None,
    *,
    style: ActionStyle | None = None,
    echo: bool = True,
) -> dict[str, Any]:
    """An `Action.Execute` button with an `Action.Submit` fallback carrying the same verb and data; on the
    web, that `Action.Submit` alone, with its title in the data (`CHOSEN_KEY`) unless `echo` is False (a form's
    button, whose title says nothing of what was chosen)."""
    verb = str(verb)
    payload = {"verb": verb, **(data or {})}
    if payload["verb"] != verb:
        raise ValueError("data must not override the verb")
    if CHOSEN_KEY in payload:
        raise ValueError(f"{CHOSEN_KEY!r} is reserved for the button's title")
    fallback: dict[str, Any] = {"type": "Action.Submit", "title": title, "data": dict(payload)}
    action: dict[str, Any] = {"type": "Action.Execute", "title": title, "verb": verb, "data": payload}
    if style is not None and style != "default":
        action["style"] = style
        fallback["style"] = style
    if reader_on_web():
        if echo:
            fallback["data"][CHOSEN_KEY] = title[:CHOSEN_MAX_LENGTH]
        return fallback
    action["fallback"] = fallback
    return action
