"""Bad input over HTTP: whatever arrives at /api/messages or in a card action, the bot answers 4xx or a
friendly message, never 500, no turn crashes, and nothing booked changes hands.

Hypothesis drives a bot running in a thread of its own (tests.resilience_support.ThreadedBot), once per
database backend; example counts stay moderate so the suite stays fast.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.app import UOW
from bot.domain.agency import load_agency
from bot.domain.appointment import Appointment
from bot.domain.audit import AuditEvent
from bot.domain.consent import ConsentRecord
from bot.i18n import t
from cards.verbs import Verb
from storage.mapping import SlotClaim
from tests.conftest import AGENCIES
from tests.fixtures.database import _create_database, _drop_database, _postgres_url
from tests.harness import TeamsUser, action_with_verb, card_nodes, card_text
from tests.resilience_support import Step, ThreadedBot, be_details, book_through_cards, settings_for, verbs_of

EXAMPLE_BE = AGENCIES / "example-be" / "agency.toml"
FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
INTRUDER_NAME = "Zéphyrine"  # the other citizen's first name: must never reach our citizen
_TRACE = re.compile(r"Traceback|File \"|Exception|Error:", re.IGNORECASE)


class World:
    """A bot with two citizens, each with one booked appointment."""

    def __init__(self, bot: ThreadedBot) -> None:
        self.bot = bot
        self.citizen = bot.user()
        self.intruder = bot.user()
        self.own_id = ""
        self.intruders_id = ""

    def setup(self) -> None:
        self.bot.run(book_through_cards(self.citizen, be_details()))
        self.bot.run(book_through_cards(self.intruder, be_details(first_name=INTRUDER_NAME, last_name="Quist")))
        rows = self.bot.run(self._appointments())
        assert len(rows) == 2, rows
        self.own_id, self.intruders_id = rows[0].id, rows[1].id

    async def _appointments(self) -> list[Appointment]:
        assert self.bot.app is not None
        async with self.bot.app[UOW]() as uow:
            return list((await uow.session.execute(select(Appointment).order_by(Appointment.created_at))).scalars())

    async def _snapshot(self) -> dict[str, Any]:
        """What a bad action must not change: appointments, slots held, consents, audit entries."""
        assert self.bot.app is not None
        async with self.bot.app[UOW]() as uow:
            session = uow.session
            appointments = [(a.id, a.citizen_id, a.status, a.starts_at, a.counselor_id)
                            for a in (await session.execute(select(Appointment).order_by(Appointment.id))).scalars()]
            claims = await session.scalar(select(func.count()).select_from(SlotClaim))
            consents = await session.scalar(select(func.count()).select_from(ConsentRecord))
            audit = await session.scalar(select(func.count()).select_from(AuditEvent))
        return {"appointments": appointments, "claims": claims, "consents": consents, "audit": audit}

    def snapshot(self) -> dict[str, Any]:
        return self.bot.run(self._snapshot())


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    agency = load_agency(EXAMPLE_BE)
    database: str | None = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('fuzz')}/fuzz.db"
    else:
        database = asyncio.run(_create_database())
        url = _postgres_url(database)
    bot = ThreadedBot(settings_for(url, Path(EXAMPLE_BE)), agency)
    bot.start()
    try:
        world = World(bot)
        world.setup()
        yield world
    finally:
        bot.stop()
        if database is not None:
            asyncio.run(_drop_database(database))


@pytest.fixture
def fresh(world: World) -> Iterator[World]:
    """Each test starts with no failed turn recorded and checks that none happened."""
    world.bot.failed_turns.clear()
    yield world
    crashed = [record.getMessage() for record in world.bot.failed_turns]
    assert not crashed, f"turns crashed on bad input: {crashed[:3]}"


def _post_raw(world: World, body: bytes, content_type: str = "application/json") -> tuple[int, str]:
    async def post() -> tuple[int, str]:
        assert world.bot.http is not None
        async with world.bot.http.post(f"{world.bot.url}/api/messages", data=body,
                                       headers={"Content-Type": content_type}) as response:
            return response.status, await response.text()
    return world.bot.run(post())


def _turn(world: World, user: TeamsUser, activity: dict[str, Any]) -> tuple[int, Any, list[str]]:
    async def turn() -> tuple[int, Any, list[str]]:
        before = len(user.replies())
        status, body = await user.post(activity)
        shown = [reply.text or "" for reply in user.replies()[before:]]
        shown += [card_text(card) for reply in user.replies()[before:] for card in reply.cards]
        return status, body, shown
    return world.bot.run(turn())


# --- raw bodies --------------------------------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(body=st.binary(max_size=3000) | _json_values.map(lambda v: json.dumps(v).encode()))
def test_any_body_gets_an_answer_below_500(fresh: World, body: bytes) -> None:
    status, text = _post_raw(fresh, body)
    assert status in (200, 201, 400, 413), (status, body[:200])
    assert not _TRACE.search(text)


def test_wrong_content_types_and_oversized_bodies_are_refused(fresh: World) -> None:
    activity = json.dumps(fresh.citizen.activity(text="aide")).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        assert _post_raw(fresh, activity, content_type)[0] == 415
    huge = json.dumps(fresh.citizen.activity(text="a" * 400_000)).encode()
    assert _post_raw(fresh, huge)[0] == 413


def test_nul_characters_and_absurd_nesting_get_400(fresh: World) -> None:
    before = fresh.snapshot()
    for activity in (fresh.citizen.activity(text="a\x00b"),
                     {**fresh.citizen.activity(text="x"), "conversation": {"id": "a:\x00"}},
                     fresh.citizen.activity(value={"verb": "book_day", "day\x00": "2026-01-01"})):
        assert _post_raw(fresh, json.dumps(activity).encode())[0] == 400
    deep: Any = "x"
    for _ in range(5000):
        deep = [deep]
    body = json.dumps({**fresh.citizen.activity(text="x"), "value": "PLACEHOLDER"}).encode()
    body = body.replace(b'"PLACEHOLDER"', b"[" * 5000 + b"1" + b"]" * 5000)
    assert _post_raw(fresh, body)[0] == 400
    nested = fresh.citizen.activity(text="x", value={"a": json.loads("[" * 900 + "]" * 900)})
    assert _post_raw(fresh, json.dumps(nested).encode())[0] in (200, 201, 400)
    assert fresh.snapshot()["appointments"] == before["appointments"]


# --- activities with fields of every shape -----------------------------------------------------------

_FIELDS = ["type", "text", "value", "from", "conversation", "recipient", "channelData", "entities", "locale",
           "name", "attachments", "replyToId", "channelId", "timestamp", "textFormat", "membersAdded", "action"]
_weird = (_json_values | st.text(min_size=1000, max_size=20_000) | st.sampled_from(
    ["message", "invoke", "conversationUpdate", "installationUpdate", "messageReaction", "event", "typing", ""]))


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(_FIELDS), _weird, min_size=1, max_size=4),
       dropped=st.lists(st.sampled_from(["from", "conversation", "recipient", "channelData", "id", "locale"]),
                        max_size=2))
def test_activities_with_odd_fields_never_crash_a_turn(fresh: World, changes: dict[str, Any],
                                                       dropped: list[str]) -> None:
    user = fresh.bot.user()
    activity = user.activity(text="bonjour")
    activity.update(changes)
    for key in dropped:
        activity.pop(key, None)
    before = fresh.snapshot()
    status, body, shown = _turn(fresh, user, activity)

    assert status < 500 or (status == 501 and activity.get("type") == "invoke"), (status, body, changes)
    assert not any(_TRACE.search(text) for text in shown)
    assert fresh.snapshot()["appointments"] == before["appointments"]


# --- card actions: forged, replayed, someone else's ------------------------------------------------

_ids = st.sampled_from(["own", "intruder", "random"])
_dates = st.dates(min_value=datetime(1900, 1, 1).date(), max_value=datetime(2999, 12, 31).date())
_data = st.fixed_dictionaries({}, optional={
    "appointment_id": _ids,
    "card_id": st.text(max_size=20),
    "day": _dates.map(lambda d: d.isoformat()) | st.text(max_size=12),
    "start": st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2999, 1, 1),
                          timezones=st.just(UTC)).map(lambda d: d.isoformat()) | _json_values,
    "mode": st.sampled_from(["video", "office", "phone", ""]) | _json_values,
    "subject": st.text(max_size=30) | _json_values,
    "language": st.sampled_from(["fr", "nl", "de", "en", "xx"]),
    "first_name": st.text(max_size=200),
    "reason": st.text(max_size=2000),
    "extra": _json_values,
})
_verbs = st.sampled_from([verb.value for verb in Verb]) | st.text(max_size=30)


def _resolve(world: World, data: dict[str, Any]) -> dict[str, Any]:
    resolved = dict(data)
    which = resolved.get("appointment_id")
    if which == "own":
        resolved["appointment_id"] = world.own_id
    elif which == "intruder":
        resolved["appointment_id"] = world.intruders_id
    elif which == "random":
        resolved["appointment_id"] = str(uuid.uuid4())
    return resolved


@FUZZ
@given(verb=_verbs, data=_data, as_submit=st.booleans())
def test_forged_card_actions_change_nothing_and_reveal_nothing(fresh: World, verb: str, data: dict[str, Any],
                                                               as_submit: bool) -> None:
    payload = _resolve(fresh, data)
    user = fresh.citizen
    if as_submit:
        activity = user.activity(value={**payload, "verb": verb})
    else:
        activity = user.activity(type="invoke", name="adaptiveCard/action", replyToId="card-1",
                                 value={"action": {"type": "Action.Execute", "verb": verb, "data": payload}})
    before = fresh.snapshot()
    status, body, shown = _turn(fresh, user, activity)

    has_nul = "\\u0000" in json.dumps(activity)
    assert status in (200, 201) or (status == 400 and has_nul), (status, body)
    invoke_text = json.dumps(body) if isinstance(body, dict) else ""
    assert INTRUDER_NAME not in invoke_text and not any(INTRUDER_NAME in text for text in shown)
    after = fresh.snapshot()
    assert after["appointments"] == before["appointments"], "a forged action changed an appointment"
    assert after["claims"] == before["claims"] and after["consents"] == before["consents"]


def test_someone_elses_appointment_cannot_be_cancelled_even_through_the_real_cards(fresh: World) -> None:
    user = fresh.citizen
    before = fresh.snapshot()
    for verb in (Verb.APPT_CANCEL, Verb.APPT_RESCHEDULE, Verb.APPT_DETAILS):
        status, body, shown = _turn(fresh, user, user.activity(
            type="invoke", name="adaptiveCard/action",
            value={"action": {"type": "Action.Execute", "verb": verb.value,
                              "data": {"verb": verb.value, "appointment_id": fresh.intruders_id}}}))
        assert status == 200
        assert not any(INTRUDER_NAME in text for text in shown)
        # No card about that appointment, hence no confirm button to press.
        assert all("appt_cancel_confirm" not in verbs_of(card) for reply in user.replies()[-3:] for card in reply.cards)
    assert fresh.snapshot() == before


# --- replays and injection ------------------------------------------------------------------------


def test_a_replayed_step_is_refused_and_the_flow_goes_on(fresh: World) -> None:
    user = fresh.bot.user()
    stale = t("fr", "conversation.stale_card")
    replayed: list[tuple[str, list[str]]] = []

    async def replay_each_step(step: Step) -> None:
        if step.verb in ("book_day", "book_slot", "book_personal_data"):
            before = len(user.replies())
            await user.execute(step.verb, step.payload)
            replayed.append((step.verb, [reply.text or "" for reply in user.replies()[before:]]))

    before = fresh.snapshot()
    confirmation = fresh.bot.run(book_through_cards(user, be_details(first_name="Rejoué"),
                                                    on_step=replay_each_step))
    assert "appt_cancel" in verbs_of(confirmation), "the flow went on after each replay"
    assert [verb for verb, _ in replayed] == ["book_day", "book_slot", "book_personal_data"]
    for verb, texts in replayed:
        assert texts == [stale], (verb, texts)
    after = fresh.snapshot()
    assert len(after["appointments"]) == len(before["appointments"]) + 1, "exactly one booking, replays or not"

    # Confirm pressed again, as a bare payload: nothing more is booked.
    status, _body, _shown = _turn(fresh, user, user.activity(
        type="invoke", name="adaptiveCard/action",
        value={"action": {"type": "Action.Execute", "verb": "book_confirm", "data": {"verb": "book_confirm"}}}))
    assert status == 200
    assert len(fresh.snapshot()["appointments"]) == len(after["appointments"])


MARKUP = "[clic](javascript:alert(1)) **gras** _x_ ![i](https://evil.example/p.png) <script>alert(1)</script>"


def shown_markdown(card: Any) -> list[str]:
    """The texts a card renders as Markdown (text blocks, facts, action titles), not its inputs' values."""
    def is_input(node: dict[str, Any]) -> bool:
        return str(node.get("type", "")).startswith("Input.")

    return [node[key] for node in card_nodes(card, prune=is_input) if not is_input(node)
            for key in ("text", "title") + (("value",) if "title" in node and "type" not in node else ())
            if isinstance(node.get(key), str)]


def _assert_inert(texts: list[str]) -> None:
    for text in texts:
        assert "[clic](javascript" not in text, "a link the citizen typed must not become a live link"
        assert "![i](https" not in text, "an image the citizen typed must not be fetched"
        assert "**gras**" not in text, "the citizen's asterisks are not emphasis"


def test_markup_typed_in_the_form_is_refused_and_never_rendered(fresh: World) -> None:
    user = fresh.bot.user()
    seen: list[dict[str, Any]] = []

    async def type_markup(step: Step) -> None:
        seen.extend(card for reply in step.replies for card in reply.cards)
        if step.verb != "book_slot":
            return
        form = next(card for reply in step.replies for card in reply.cards if "book_personal_data" in verbs_of(card))
        action = action_with_verb(form, "book_personal_data")
        count = len(user.replies())
        await user.execute("book_personal_data", {**action["data"], **be_details(first_name=MARKUP,
                                                                                 last_name=MARKUP)})
        again = [card for reply in user.replies()[count:] for card in reply.cards]
        assert again and "book_personal_data" in verbs_of(again[-1]), "the form comes back with its errors"
        seen.extend(again)

    before = fresh.snapshot()
    fresh.bot.run(book_through_cards(user, be_details(first_name="Léa"), on_step=type_markup))
    assert len(fresh.snapshot()["appointments"]) == len(before["appointments"]) + 1
    _assert_inert([text for card in seen for text in shown_markdown(card)])


def test_markup_in_a_cancellation_note_and_a_teams_name_is_never_rendered(fresh: World) -> None:
    user = fresh.bot.user()
    confirmation = fresh.bot.run(book_through_cards(user, be_details(first_name="Noé")))
    seen: list[dict[str, Any]] = [confirmation]

    async def cancel_with_note() -> None:
        count = len(user.replies())
        body, _ = await user.execute("appt_cancel", action_with_verb(confirmation, "appt_cancel")["data"])
        cards = [card for reply in user.replies()[count:] for card in reply.cards]
        if isinstance(body, dict) and isinstance(body.get("value"), dict):
            cards.append(body["value"])
        confirm_card = next(card for card in cards if "appt_cancel_confirm" in verbs_of(card))
        action = action_with_verb(confirm_card, "appt_cancel_confirm")
        count = len(user.replies())
        body, _ = await user.execute("appt_cancel_confirm", {**action["data"], "reason": MARKUP})
        seen.extend(card for reply in user.replies()[count:] for card in reply.cards)
        if isinstance(body, dict) and isinstance(body.get("value"), dict):
            seen.append(body["value"])
        # Teams shows the person's display name: it comes from their account, so it is input too.
        count = len(user.replies())
        await user.post(user.activity(text="mes rendez-vous", **{"from": {
            "id": user.user_id, "aadObjectId": user.aad_object_id, "name": MARKUP}}))
        seen.extend(card for reply in user.replies()[count:] for card in reply.cards)

    fresh.bot.run(cancel_with_note())
    _assert_inert([text for card in seen for text in shown_markdown(card)])


def test_days_and_times_outside_the_offer_are_refused(fresh: World) -> None:
    user = fresh.bot.user()
    before = fresh.snapshot()
    far = (datetime.now(UTC) + timedelta(days=3650)).isoformat()
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    refused: list[list[str]] = []

    async def forge_times(step: Step) -> None:
        if step.verb != "book_day":
            return
        # The time card's own button (current card id), with a time it never offered.
        slot_card = next(card for reply in step.replies for card in reply.cards if "book_slot" in verbs_of(card))
        action = action_with_verb(slot_card, "book_slot")
        for start in (far, past, "2024-02-30T10:00:00+00:00", "demain"):
            count = len(user.replies())
            await user.execute("book_slot", {**action["data"], "start": start})
            refused.append([reply.text or "" for reply in user.replies()[count:]])
            # The time card comes again; the next forgery uses its new id.
            slot_card = next(card for reply in user.replies()[count:] for card in reply.cards
                             if "book_slot" in verbs_of(card))
            action = action_with_verb(slot_card, "book_slot")

    fresh.bot.run(book_through_cards(user, be_details(first_name="Temps"), on_step=forge_times))
    assert len(refused) == 4 and all(texts and texts[0] for texts in refused), refused
    after = fresh.snapshot()
    booked = [a for a in after["appointments"] if a not in before["appointments"]]
    assert len(booked) == 1
    starts_at = booked[0][3]
    assert datetime.now(UTC) < starts_at < datetime.now(UTC) + timedelta(days=366)
