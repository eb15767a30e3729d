"""The welcome card (what the assistant does, main menu) and the help card (commands, contact)."""

from __future__ import annotations

from typing import Any

from bot.domain.agency import Agency, Mode
from bot.i18n import t
from cards.document import escape_markdown
from cards.elements import adaptive_card, contact_facts, heading, text_block
from cards.verbs import SOURCE, CardSource, Verb, execute_action, stamp_actions

# The commands the help card lists, in the order a citizen meets them; keys of `help.command.*`,
# `help.describe.*` and `commands.*` alike.
HELP_COMMANDS = (
    "book",
    "my_appointments",
    "reschedule",
    "cancel_appointment",
    "terms",
    "privacy",
    "my_data",
    "export",
    "rectify",
    "erase",
    "withdraw_consent",
    "start_over",
    "stop",
)


def _what_i_do(agency: Agency, language: str) -> str:
    modes = set(agency.modes)
    if modes >= {Mode.VIDEO, Mode.OFFICE}:
        return t(language, "welcome.does_video_office")
    return t(language, "welcome.does_video" if Mode.VIDEO in modes else "welcome.does_office")


def menu_actions(language: str) -> list[dict[str, Any]]:
    """Book, My appointments, My data, Help: the main menu, also offered after a task ends."""
    return [
        execute_action(t(language, "welcome.book"), Verb.MENU_BOOK, style="positive"),
        execute_action(t(language, "welcome.my_appointments"), Verb.MENU_MY_APPOINTMENTS),
        execute_action(t(language, "welcome.my_data"), Verb.MENU_MY_DATA),
        execute_action(t(language, "welcome.help"), Verb.MENU_HELP),
    ]


def build_welcome_card(agency: Agency, language: str) -> dict[str, Any]:
    body = [
        heading(escape_markdown(agency.display_name(language))),
        text_block(t(language, "welcome.greeting"), weight="bolder", spacing="medium"),
        text_block(t(language, "welcome.intro"), spacing="small"),
        text_block(_what_i_do(agency, language)),
        text_block(t(language, "welcome.privacy")),
        text_block(
            t(language, "welcome.typing", book=t(language, "help.command.book"),
              help=t(language, "help.command.help")),
            isSubtle=True,
            size="small",
            spacing="medium",
        ),
    ]
    return stamp_actions(adaptive_card(language, body, menu_actions(language)), {SOURCE: CardSource.WELCOME})


def build_help_card(agency: Agency, language: str) -> dict[str, Any]:
    body = [
        heading(t(language, "help.title")),
        text_block(t(language, "help.intro")),
    ]
    for key in HELP_COMMANDS:
        command = escape_markdown(t(language, f"help.command.{key}"))
        body.append(text_block(f"**{command}** – {t(language, f'help.describe.{key}')}", spacing="small"))
    body += [
        text_block(t(language, "help.contact_heading"), weight="bolder", size="medium", spacing="large"),
        text_block(t(language, "help.contact_intro"), spacing="small"),
        contact_facts(agency, language),
    ]
    actions = [
        execute_action(t(language, "help.terms_button"), Verb.SHOW_TERMS),
        execute_action(t(language, "help.privacy_button"), Verb.SHOW_PRIVACY),
    ]
    return stamp_actions(adaptive_card(language, body, actions), {SOURCE: CardSource.HELP})
