"""A citizen booking an appointment from start to end, driven by the bot's real cards.

The walker asks for an appointment in words, then presses buttons found by verb in the cards the bot
sends (as tests/harness.py does), filling the personal-data form with valid answers: consent →
mode → office → subject → day → time → form → interview language → summary → confirm. Days and
times are picked at random among those offered, so concurrent citizens spread over the calendar;
a time taken meanwhile (or not served in the interview language the form decides) brings the
alternatives card, and the walker picks one of those.

A website visitor (`BenchCitizen(channel=WEBCHAT)`) starts as Web Chat does: the page's join event brings
the welcome card, whose Book button they press; every button after that is an Action.Submit, and each
answer begins with the pressed button's title said back (the walker reads only the cards).
"""

from __future__ import annotations

import asyncio
import random
from datetime import date
from typing import Any

from bench.driver import BenchCitizen, cards_of

# The verbs pressed, in the order of the flow; the first one a card offers is pressed.
START_VERB = "menu_book"  # the welcome card's Book button, where a website visitor starts
FLOW_VERBS = ["consent_accept", "book_mode", "book_office", "book_subject", "book_day", "book_slot",
              "book_personal_data", "book_language", "book_confirm"]
CONFIRM = "book_confirm"
MAX_TURNS = 30


class FlowStuck(AssertionError):
    """The bot's answer had no button the walker knows how to go on with."""


def national_register_number(birth: date, serial: int) -> str:
    """A valid Belgian national register number for someone born in the 1900s."""
    base = f"{birth:%y%m%d}{serial:03d}"
    return f"{base}{97 - int(base) % 97:02d}"


def form_answers(rng: random.Random) -> dict[str, str]:
    """Valid answers to the example agencies' personal-data forms, as the card's inputs send them."""
    birth = date(1950 + rng.randrange(50), 1 + rng.randrange(12), 1 + rng.randrange(28))
    return {
        "first_name": rng.choice(["Camille", "Lotte", "Jonas", "Élise", "Noah"]),
        "last_name": rng.choice(["Dupont", "Peeters", "Maes", "Schmitz", "Lambert"]),
        "birth_date": f"{birth:%d/%m/%Y}",
        "national_register_number": national_register_number(birth, 1 + rng.randrange(997)),
        "email": f"citizen{rng.randrange(10**6)}@example.org",
        "phone": f"+32 470 {rng.randrange(10, 99)} {rng.randrange(10, 99)} {rng.randrange(10, 99)}",
        "postal_code": rng.choice(["1000", "4000", "9000", "2000", "4700"]),
    }


def _actions(node: Any, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("type") in ("Action.Execute", "Action.Submit") and "title" in node:
            found.append(node)
            return found  # the fallback is the same action for older clients
        for value in node.values():
            _actions(value, found)
    elif isinstance(node, list):
        for item in node:
            _actions(item, found)
    return found


def _verb(action: dict[str, Any]) -> str | None:
    return action.get("verb") or (action.get("data") or {}).get("verb")


def _inputs(node: Any, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        if str(node.get("type", "")).startswith("Input."):
            found.append(node)
        for key, value in node.items():
            if key != "actions":
                _inputs(value, found)
    elif isinstance(node, list):
        for item in node:
            _inputs(item, found)
    return found


def fill_inputs(card: dict[str, Any], answers: dict[str, str], rng: random.Random) -> dict[str, Any]:
    """What the card's inputs send with a button: our answer, else a random choice, else the prefill."""
    values: dict[str, Any] = {}
    for element in _inputs(card.get("body") or [], []):
        name = element.get("id")
        if not isinstance(name, str):
            continue
        if name in answers:
            values[name] = answers[name]
        elif element["type"] == "Input.ChoiceSet" and element.get("choices"):
            values[name] = rng.choice(element["choices"])["value"]
        elif isinstance(element.get("value"), str):
            values[name] = element["value"]
    return values


def next_action(cards: list[dict[str, Any]], rng: random.Random
                ) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
    """The button to press next (verb, action, its card): the newest card's first verb of the flow."""
    for card in reversed(cards):
        by_verb: dict[str, list[dict[str, Any]]] = {}
        for action in _actions(card, []):
            verb = _verb(action)
            if verb in FLOW_VERBS:
                by_verb.setdefault(verb, []).append(action)
        for verb in FLOW_VERBS:
            if verb in by_verb:
                choices = by_verb[verb]
                if verb == "book_mode":
                    video = [a for a in choices if (a.get("data") or {}).get("mode") == "video"]
                    choices = video or choices
                return verb, rng.choice(choices), card
    return None


async def book_appointment(citizen: BenchCitizen, rng: random.Random,
                           think: tuple[float, float] | None = None) -> int:
    """Run one whole booking; the number of turns it took. Raises FlowStuck if the bot stops offering a way on.

    `think`: (least, most) seconds the citizen takes before each turn, reading the card; None for none.
    """
    answers = form_answers(rng)
    if think is not None:
        await asyncio.sleep(rng.uniform(0, think[1]))  # people do not all arrive at the same instant
    if citizen.on_web:
        welcome = await citizen.join()
        book = next((action for card in cards_of(welcome) for action in _actions(card, [])
                     if _verb(action) == START_VERB), None)
        if book is None:
            raise FlowStuck("the welcome card has no Book button")
        replies = await citizen.press(book)
    else:
        replies = await citizen.say("prendre rendez-vous")
    for turns in range(2, MAX_TURNS + 1):
        if think is not None:
            await asyncio.sleep(rng.uniform(*think))
        choice = next_action(cards_of(replies), rng)
        if choice is None:
            texts = [reply.text for reply in replies]
            raise FlowStuck(f"no way on after {turns - 1} turns; the bot said {texts!r}")
        verb, action, card = choice
        replies = await citizen.press(action, fill_inputs(card, answers, rng))
        if verb in (CONFIRM, "book_slot") and any(_is_confirmation(card) for card in cards_of(replies)):
            return turns
    raise FlowStuck(f"no confirmation after {MAX_TURNS} turns")


def _is_confirmation(card: dict[str, Any]) -> bool:
    # The confirmation card offers to move or cancel the appointment just booked. (Choosing one of
    # the alternatives after "this time was just taken" books at once, so it can follow book_slot.)
    verbs = {_verb(action) for action in _actions(card, [])}
    return "appt_cancel" in verbs and not verbs & set(FLOW_VERBS)
