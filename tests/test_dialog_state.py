"""The booking flows' typed state: stored as plain JSON, so the dialog stack keeps the fast path.

storage/state_documents.py writes and reads plain JSON dialog stacks itself and hands anything else
to jsonpickle (much slower, every turn). A flow's dataclass must therefore become plain values when
stored, and come back from them exactly.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from botbuilder.dialogs import DialogInstance, DialogState
from hypothesis import given
from hypothesis import strategies as st

import storage.state_documents
from bot.domain.agency import PersonalField
from bot.services.booking import SlotOffer
from dialogs.booking.state import BookingState, CancelState, RescheduleState
from storage.state_documents import from_document, to_document

_text = st.text(max_size=12)
_ids = st.none() | _text
_zones = st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5, minutes=-30))])
_times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=_zones)
_slots = st.builds(SlotOffer, start=_times, end=_times, office_id=_ids)
_personal_values = st.dictionaries(
    st.sampled_from([f for f in PersonalField if f is not PersonalField.BIRTH_DATE]), _text, max_size=4
)


@st.composite
def _offered(draw: st.DrawFn) -> dict[str, SlotOffer]:
    # Keyed by the start the card sends back, as the time steps (time_choice.py) keep them.
    return {slot.start.isoformat(): slot for slot in draw(st.lists(_slots, max_size=4))}


def _time_choice(**more: Any) -> dict[str, Any]:
    return dict(
        mode=st.sampled_from(["", "video", "office"]), subject=_text, office=_ids, search_language=_ids,
        exclude=_ids, pages=st.lists(st.none() | st.dates(), max_size=3), days=st.lists(st.dates(), max_size=5),
        day=st.none() | st.dates(), offered=_offered(), chosen=st.none() | _slots, interview_language=_ids, **more,
    )


@st.composite
def _personal(draw: st.DrawFn) -> dict[PersonalField, str | date] | None:
    if draw(st.booleans()):
        return None
    values: dict[PersonalField, str | date] = dict(draw(_personal_values))
    if draw(st.booleans()):
        values[PersonalField.BIRTH_DATE] = draw(st.dates())
    return values


_booking_states = st.builds(BookingState, **_time_choice(
    personal=_personal(), typed=st.none() | st.dictionaries(_text, _text, max_size=3),
    language_choices=st.lists(_text, max_size=3),
))
_reschedule_states = st.builds(RescheduleState, **_time_choice(appointment_id=_text, previous_start=_times))
_cancel_states = st.builds(CancelState, appointment_id=_text)
_states = _booking_states | _reschedule_states | _cancel_states


def _plain(value: Any) -> bool:
    """Only what storage/state_documents.py writes itself: exact JSON types, string keys."""
    if value is None or type(value) in (str, int, float, bool):
        return True
    if type(value) is list:
        return all(_plain(item) for item in value)
    if type(value) is dict:
        return all(type(key) is str and _plain(item) for key, item in value.items())
    return False


@given(_states)
def test_a_state_survives_being_stored_exactly(state: BookingState | RescheduleState | CancelState) -> None:
    stored = state.to_dict()
    assert _plain(stored)
    read = type(state).from_dict(json.loads(json.dumps(stored)))
    assert read == state
    # Equal datetimes may still differ in offset: the stored text (offset, microseconds) is kept too.
    assert read.to_dict() == stored


@given(_booking_states)
def test_dates_and_times_are_stored_as_iso_strings(state: BookingState) -> None:
    stored = state.to_dict()
    assert stored["days"] == [day.isoformat() for day in state.days]
    if state.chosen is not None:
        assert (stored["start"], stored["end"]) == (state.chosen.start.isoformat(), state.chosen.end.isoformat())
    if state.personal and PersonalField.BIRTH_DATE in state.personal:
        birth = state.personal[PersonalField.BIRTH_DATE]
        assert isinstance(birth, date) and stored["personal"]["birth_date"] == birth.isoformat()


def test_a_state_stored_before_the_types_existed_is_read() -> None:
    # The keys and shapes the booking dialog wrote into its dict before it had a dataclass.
    stored = {
        "search_language": "fr", "mode": "office", "office": "liege", "subject": "payments",
        "pages": [None, "2026-11-30"], "days": ["2026-11-30", "2026-12-01"], "day": "2026-12-01",
        "offered": {"2026-12-01T08:00:00+00:00": ["2026-12-01T08:30:00+00:00", "liege"]},
        "start": "2026-12-01T08:00:00+00:00", "end": "2026-12-01T08:30:00+00:00", "slot_office": "liege",
        "personal": {"first_name": "Marie", "birth_date": "1985-07-30"}, "interview_language": "fr",
    }
    state = BookingState.from_dict(stored)
    start = datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert state.pages == [None, date(2026, 11, 30)] and state.day == date(2026, 12, 1)
    assert state.chosen == SlotOffer(start, start + timedelta(minutes=30), "liege")
    assert state.offered == {"2026-12-01T08:00:00+00:00": state.chosen}
    assert state.personal == {PersonalField.FIRST_NAME: "Marie", PersonalField.BIRTH_DATE: date(1985, 7, 30)}
    assert (state.typed, state.language_choices, state.exclude) == (None, [], None)


class _NotJsonpickle:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("the dialog state left the fast path for jsonpickle")


@given(_states)
def test_a_stack_holding_a_flow_state_takes_the_fast_path(state: BookingState | RescheduleState | CancelState
                                                          ) -> None:
    stack = [
        DialogInstance(id="await_card", state={"card_id": "abc", "verbs": ["book_day"], "text_ok": False}),
        DialogInstance(id="booking.book", state={**state.to_dict(), "awaiting": "day"}),
        DialogInstance(id="main", state={"dialogs": DialogState([DialogInstance(id="main.route", state={})])}),
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(storage.state_documents, "Pickler", _NotJsonpickle)
        patch.setattr(storage.state_documents, "Unpickler", _NotJsonpickle)
        document = json.loads(json.dumps(to_document({"DialogState": DialogState(stack)})))
        read = from_document(document, "etag")
    [_, booking, _] = read["DialogState"].dialog_stack
    assert booking.state.pop("awaiting") == "day"
    assert type(state).from_dict(booking.state) == state
