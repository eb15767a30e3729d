"""Activity → JSON for the connector, without msrest's generic walk of every card element.

msrest's `Serializer.body` first rebuilds the model with its deserializer, then visits every value of
every Adaptive Card (free-form `object` fields) through its type dispatch: about 1 ms for a card
reply. Our replies are botbuilder models whose free-form parts are already JSON (card dicts built by
cards/), so `activity_json` walks the models' attribute maps directly and copies JSON values as they
are. Anything it does not recognise (a dict where a model is expected, an unknown type) raises
`NotPlain`, and the caller falls back to msrest, so the output is always what msrest would send.
"""

from __future__ import annotations

import datetime
from enum import Enum
from typing import Any

from msrest.serialization import Model, Serializer

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
    if isinstance(value, Model):
        return _model(value)
    raise NotPlain(kind.__name__)


def _key(key: Any) -> str:
    if type(key) is not str:
        raise NotPlain("dict key")
    return key


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
