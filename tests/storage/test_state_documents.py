"""Bot state documents are jsonpickle's, whichever path wrote or read them."""

from __future__ import annotations

import json
from typing import Any

from botbuilder.dialogs import DialogInstance, DialogState
from botbuilder.dialogs.prompts import PromptOptions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonpickle.pickler import Pickler
from jsonpickle.unpickler import Unpickler

from storage.state_documents import from_document, to_document

_keys = st.text(max_size=8) | st.sampled_from(["py/object", "py/id", "py/tuple", "e_tag", "state"])
_scalars = (st.none() | st.booleans() | st.integers() | st.text(max_size=12)
            | st.floats(allow_nan=False, allow_infinity=False))
# Mostly plain JSON, sometimes what only jsonpickle knows (tuples, datetimes, other objects, int keys).
_odd = (st.tuples(st.integers()) | st.datetimes()  # jsonpickle itself cannot restore datetime.UTC
        | st.builds(PromptOptions, prompt=st.none()) | st.dictionaries(st.integers(), st.integers(), max_size=1))


def _values(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(_keys, inner, max_size=3), max_leaves=12)


@st.composite
def _states(draw: st.DrawFn) -> dict[str, Any]:
    leaves = _scalars | _odd if draw(st.booleans()) else _scalars
    stack = draw(st.lists(st.builds(DialogInstance, id=st.text(max_size=8),
                                    state=st.dictionaries(_keys, _values(leaves), max_size=4)), max_size=3))
    state: dict[str, Any] = {"DialogState": DialogState(stack)}
    if stack and draw(st.booleans()):
        nested = draw(st.dictionaries(st.text(max_size=4), _values(_scalars), max_size=2))
        stack[0].state["dialogs"] = DialogState([DialogInstance(id="inner", state=nested)])
        if draw(st.booleans()):
            stack[-1].state["again"] = nested  # the same object twice: jsonpickle writes a py/id
    state.update(draw(st.dictionaries(_keys, _values(leaves), max_size=2)))
    if draw(st.booleans()):
        state["e_tag"] = "abc"
    return state


def _jsonpickle(item: Any) -> Any:
    document = Pickler().flatten(item)
    document.pop("e_tag", None)
    return document


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_states())
def test_the_document_written_is_the_one_jsonpickle_writes(state: dict[str, Any]) -> None:
    expected = json.dumps(_jsonpickle(state))
    assert json.dumps(to_document(state)) == expected  # same keys, same order, same tags


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_states())
def test_the_state_read_is_the_one_jsonpickle_reads(state: dict[str, Any]) -> None:
    document = json.loads(json.dumps(_jsonpickle(state)))  # as stored: plain JSON
    read = from_document(document, "etag-1")
    expected = Unpickler(safe=True).restore({**document, "e_tag": "etag-1"})
    assert _jsonpickle(read) == _jsonpickle(expected)
    assert read["e_tag"] == "etag-1"
    assert type(read.get("DialogState")) is type(expected.get("DialogState"))


def test_a_dialog_stack_comes_back_as_dialog_objects() -> None:
    stack = [DialogInstance(id="book", state={"day": "2026-11-27", "offered": {"a": ["b", None]}})]
    read = from_document(to_document({"DialogState": DialogState(stack), "e_tag": "old"}), "new")
    [instance] = read["DialogState"].dialog_stack
    assert isinstance(instance, DialogInstance)
    assert (instance.id, instance.state) == ("book", {"day": "2026-11-27", "offered": {"a": ["b", None]}})
    assert read["e_tag"] == "new"
