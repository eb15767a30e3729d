"""Bot state ⇄ the JSON document stored for it, in jsonpickle's format, quickly for the usual shapes.

The SDK's storages flatten state with jsonpickle, which walks every value through its generic
machinery: ~0.2 ms to flatten a booking conversation and ~0.4 ms to restore it, every turn. A
conversation's state is almost always plain JSON values inside the dialog stack's two classes
(DialogState, DialogInstance), and for those this module writes and reads the very documents
jsonpickle would, directly. Anything else (tuples, datetimes, other objects, an object referenced
twice, dict keys jsonpickle would rewrite, documents holding other `py/` tags) goes to jsonpickle
itself, so a document is always one jsonpickle reads and writes the same way.
"""

from __future__ import annotations

from typing import Any

from botbuilder.dialogs import DialogInstance, DialogState
from jsonpickle.pickler import Pickler
from jsonpickle.unpickler import Unpickler

from storage import speedups

ETAG = "e_tag"
_OBJECT = "py/object"
_CLASSES: dict[str, type[object]] = {
    f"{cls.__module__}.{cls.__qualname__}": cls for cls in (DialogState, DialogInstance)
}
_TAGS = {cls: name for name, cls in _CLASSES.items()}
_SCALARS = (str, int, float, bool)


class _Unusual(Exception):
    """A value outside the shapes handled here: jsonpickle handles the whole document."""


def to_document(item: object) -> Any:
    """The JSON document stored for an item (jsonpickle's flattening), without the e-tag."""
    try:
        if not speedups.ACTIVE.fast_state_documents:
            raise _Unusual
        document = _flatten(item, set())
    except _Unusual:
        document = Pickler().flatten(item)
    if isinstance(document, dict):
        document.pop(ETAG, None)
    return document


def from_document(document: Any, etag: str) -> Any:
    """The item for a stored document, with its e-tag put back where the SDK expects it."""
    if isinstance(document, dict):
        document = {**document, ETAG: etag}
    try:
        if not speedups.ACTIVE.fast_state_documents:
            raise _Unusual
        return _restore(document)
    except _Unusual:
        # safe=True: never eval() a py/repr entry, whatever the table holds.
        return Unpickler(safe=True).restore(document)


def _flatten(value: Any, seen: set[int]) -> Any:
    kind = type(value)
    if value is None or kind in _SCALARS:
        return value
    # jsonpickle writes a second reference to a container as {"py/id": n}: left to it.
    if id(value) in seen:
        raise _Unusual
    seen.add(id(value))
    if kind is dict:
        return {_key(key): _flatten(item, seen) for key, item in value.items()}
    if kind is list:
        return [_flatten(item, seen) for item in value]
    tag = _TAGS.get(kind)
    if tag is None:
        raise _Unusual
    flat = {_OBJECT: tag}
    for key, item in vars(value).items():
        flat[_key(key)] = _flatten(item, seen)
    return flat


def _key(key: Any) -> str:
    if type(key) is not str or key.startswith("py/"):
        raise _Unusual  # jsonpickle turns such keys into strings or drops them
    return key


def _restore(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        tag = value.get(_OBJECT)
        if tag is None:
            return {_key(key): _restore(item) for key, item in value.items()}
        cls = _CLASSES.get(tag)
        if cls is None:
            raise _Unusual
        restored = cls.__new__(cls)
        for key, item in value.items():
            if key != _OBJECT:
                setattr(restored, _key(key), _restore(item))
        return restored
    if kind is list:
        return [_restore(item) for item in value]
    return value
