"""The reader's channel: one card builder, Teams' buttons in Teams and Submit-only buttons on the website."""

from __future__ import annotations

from bot.domain.channels import CHOSEN_KEY, reader_on_web, set_reader_channel, web_reader
from cards.verbs import Verb, execute_action


def test_a_button_read_in_teams_is_an_execute_with_a_submit_fallback() -> None:
    action = execute_action("Book", Verb.MENU_BOOK, {"x": 1}, style="positive")
    assert action["type"] == "Action.Execute" and action["verb"] == "menu_book"
    assert action["fallback"] == {"type": "Action.Submit", "title": "Book", "style": "positive",
                                  "data": {"verb": "menu_book", "x": 1}}


def test_the_same_button_read_on_the_website_is_that_submit_alone() -> None:
    with web_reader():
        assert reader_on_web()
        action = execute_action("Book", Verb.MENU_BOOK, {"x": 1}, style="positive")
    assert not reader_on_web()
    # The title travels too, to be said back when pressed (nothing replaces a pressed card on the web).
    assert action == {"type": "Action.Submit", "title": "Book", "style": "positive",
                      "data": {"verb": "menu_book", "x": 1, CHOSEN_KEY: "Book"}}
    with web_reader():
        form_button = execute_action("Continue", Verb.BOOK_PERSONAL_DATA, echo=False)
    assert form_button["data"] == {"verb": "book_personal_data"}
    assert execute_action("Book", Verb.MENU_BOOK)["type"] == "Action.Execute"


def test_a_turn_sets_its_reader_from_its_channel() -> None:
    set_reader_channel("directline")
    assert reader_on_web()
    set_reader_channel("msteams")
    assert not reader_on_web()
