"""Typed access to JSON that came from outside (a posted activity, a stored conversation reference).

botbuilder types `Activity.value` and `channel_data` as `object`, and a pressed card may carry anything:
these helpers give a part as a dict (empty when it is missing or of another type), so callers read it
with `.get` and a type checker sees what they may do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def json_object(value: object) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def object_at(container: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """The mapping under `key`, else an empty one (missing, or not a mapping)."""
    value = container.get(key)
    return value if isinstance(value, Mapping) else {}
