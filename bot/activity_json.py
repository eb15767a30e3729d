"""Activity ⇄ JSON at the bot's edge, without msrest's generic walk of every value.

msrest's `Serializer.body` first rebuilds the model with its deserializer, then visits every value of
every Adaptive Card (free-form `object` fields) through its type dispatch: about 1 ms for a card
reply. Our replies are botbuilder models whose free-form parts are already JSON (card dicts built by
cards/), so `activity_json` walks the models' attribute maps directly and copies JSON values as they
are. Anything it does not recognise (a dict where a model is expected, an unknown type) raises
`NotPlain`, and the caller falls back to msrest, so the output is always what msrest would send.

`activity_from_json` is the way in: an incoming activity (~0.6 ms through msrest's deserializer,
which copies every free-form value and dispatches on each attribute's type) built from the JSON the
channel posted, equal to what `Activity.deserialize` returns, or `NotPlain` when the JSON holds a
value of an unexpected type (msrest coerces or rejects those; the caller lets it).
"""

from __future__ import annotations

import datetime
from enum import Enum
from functools import cache
from typing import Any

from botbuilder.schema import Activity
from msrest.serialization import Deserializer, Model, Serializer

_BASIC = {"str", "bool", "int", "long", "float"}
_JSON_SCALARS = (str, bool, int, float)


class NotPlain(Exception):
    """The activity holds something only msrest knows how to serialise."""


def activity_json(activity: Model) -> dict[str, Any]:
    """The JSON body msrest would send for this model (keys as on the wire, None fields left out)."""
    return _model(activity)


def serialize(model: Model) -> dict[str, Any]:
    """`model.serialize()`, by the quick path when it can be taken."""
    try:
        return _model(model)
    except NotPlain:
        return model.serialize()  # type: ignore[no-any-return]


def _model(model: Any) -> dict[str, Any]:
    if not isinstance(model, Model) or getattr(model, "_validation", None):
        raise NotPlain(type(model).__name__)
    out: dict[str, Any] = {}
    for attr, desc in model._attribute_map.items():
        key = desc["key"]
        if attr == "additional_properties" or not key or "." in key:
            raise NotPlain(f"{type(model).__name__}.{attr}")
        value = getattr(model, attr, None)
        if value is not None:
            out[key] = _typed(value, desc["type"])
    # Like msrest, properties read from JSON but absent from the model (additional_properties) are
    # not sent back.
    return out


def _typed(value: Any, kind: str) -> Any:
    if kind in _BASIC:
        return _basic(value, kind)
    if kind == "object":
        return _free(value)
    if kind == "iso-8601":
        if not isinstance(value, datetime.datetime):
            raise NotPlain("iso-8601")
        return Serializer.serialize_iso(value)
    if kind.startswith("[") and kind.endswith("]"):
        if not isinstance(value, list):
            raise NotPlain(kind)
        inner = kind[1:-1]
        return [None if item is None else _typed(item, inner) for item in value]
    if kind.startswith("{") and kind.endswith("}"):
        if type(value) is not dict:
            raise NotPlain(kind)
        inner = kind[1:-1]
        return {str(k): (None if v is None else _typed(v, inner)) for k, v in value.items()}
    return _model(value)


def _basic(value: Any, kind: str) -> Any:
    if kind == "str":
        if isinstance(value, Enum):
            return value.value
        if type(value) is str:
            return value
        raise NotPlain("str")
    if kind == "bool" and type(value) is bool:
        return value
    if kind in ("int", "long") and type(value) is int:
        return value
    if kind == "float" and type(value) in (int, float):
        return float(value)
    raise NotPlain(kind)


def _free(value: Any) -> Any:
    """A free-form value: JSON types are copied as they are (msrest would turn others into strings)."""
    kind = type(value)
    if kind is dict:
        return {_key(k): (None if v is None else _free(v)) for k, v in value.items()}
    if kind is list:
        return [None if v is None else _free(v) for v in value]
    if kind in _JSON_SCALARS:
        return value
    if isinstance(value, Enum) and isinstance(value, str):
        # Our cards carry StrEnum verbs and kinds: msrest sends their value, and so do we.
        return value.value
    if isinstance(value, Model):
        return _model(value)
    raise NotPlain(kind.__name__)


def _key(key: Any) -> str:
    if type(key) is str:
        return key
    if isinstance(key, Enum) and isinstance(key, str):
        return str(key.value)
    raise NotPlain("dict key")


class ActivitySerializer:
    """Stands in for an operations group's msrest Serializer: Activity bodies take the quick path."""

    def __init__(self, inner: Serializer) -> None:
        self._inner = inner

    def body(self, data: Any, data_type: str, **kwargs: Any) -> Any:
        if data_type == "Activity" and not kwargs:
            try:
                return activity_json(data)
            except NotPlain:
                pass
        return self._inner.body(data, data_type, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


# --- the way in -------------------------------------------------------------------------------------

_MODELS: dict[str, type] = Activity._infer_class_models()


def activity_from_json(body: Any) -> Activity:
    """The Activity `Activity.deserialize(body)` would return; NotPlain if msrest must decide.

    Free-form values (value, channelData, entities' extra keys...) are the body's own objects, not
    copies: the body comes from json.loads and belongs to this request alone.
    """
    activity = _model_in(Activity, body)
    assert isinstance(activity, Activity)
    return activity


def _model_in(cls: type, data: Any) -> Model:
    if type(data) is not dict:
        raise NotPlain(cls.__name__)
    fields, known = _fields_in(cls)
    model = cls(**{attr: None if (value := data.get(key)) is None else _typed_in(value, kind)
                   for attr, key, kind in fields})
    # As msrest does: keys the model does not know are kept aside (Teams' clientInfo entity...).
    if len(data) > len(known) or not known.issuperset(data):
        model.additional_properties = {key: value for key, value in data.items() if key not in known}
    return model  # type: ignore[no-any-return]


@cache
def _fields_in(cls: type) -> tuple[tuple[tuple[str, str, str], ...], frozenset[str]]:
    """(attribute, JSON key, type) of each field of a model msrest reads plainly, and the keys."""
    if getattr(cls, "_validation", None) or getattr(cls, "_subtype_map", None):
        raise NotPlain(cls.__name__)
    fields = []
    for attr, desc in cls._attribute_map.items():  # type: ignore[attr-defined]
        key = desc["key"]
        if attr == "additional_properties" or not key or "." in key:
            raise NotPlain(f"{cls.__name__}.{attr}")
        fields.append((attr, key, desc["type"]))
    return tuple(fields), frozenset(key for _attr, key, _kind in fields)


def _typed_in(value: Any, kind: str) -> Any:
    if kind == "str":
        if type(value) is not str:
            raise NotPlain(kind)
        return value
    if kind == "object":
        return value
    if kind == "bool":
        if type(value) is not bool:
            raise NotPlain(kind)
        return value
    if kind in ("int", "long"):
        if type(value) is not int:
            raise NotPlain(kind)
        return value
    if kind == "float":
        if type(value) not in (int, float):
            raise NotPlain(kind)
        return float(value)
    if kind == "iso-8601":
        if type(value) is not str:
            raise NotPlain(kind)
        return Deserializer.deserialize_iso(value)
    if kind.startswith("[") and kind.endswith("]"):
        if type(value) is not list:
            raise NotPlain(kind)
        inner = kind[1:-1]
        return [None if item is None else _typed_in(item, inner) for item in value]
    if kind.startswith("{") and kind.endswith("}"):
        if type(value) is not dict:
            raise NotPlain(kind)
        inner = kind[1:-1]
        return {key: (None if item is None else _typed_in(item, inner)) for key, item in value.items()}
    model = _MODELS.get(kind)
    if model is None:
        raise NotPlain(kind)
    return _model_in(model, value)
