"""The person `guichet chat` plays in each role, kept in a profile file so that they stay the same person.

Teams identifies a user by ids that never change (user id, Entra object id) and has one personal chat per
user and bot. The bot remembers both (consent, appointments, where to send reminders), so the client keeps
them in `~/.guichet-chat.json` (mode 0600) together with the connector port, so that a reminder sent later
reaches the next session at the same `serviceUrl`.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.devtools.activities import Identity

PROFILE_FILE_NAME = ".guichet-chat.json"
ROLES = ("citizen", "counselor")
# Local bots run without a Microsoft App Id; Teams still addresses the bot as "28:<app id>".
LOCAL_BOT_APP_ID = "00000000-0000-0000-0000-000000000000"

_CITIZEN_NAMES = ("Camille Dubois", "Lotte Peeters", "Jonas Schmitz", "Amira El Idrissi", "Lucas Lambert")
_COUNSELOR_NAMES = ("Sophie Martin", "Pieter Janssens", "Anna Weber", "Nadia Benali")


class ProfileError(ValueError):
    """The profile file cannot be read or written."""


def default_profile_path() -> Path:
    return Path.home() / PROFILE_FILE_NAME


def _read_profile(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProfileError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ProfileError(f"{path} is not a JSON object")
    return data


def _write_profile(path: Path, data: Mapping[str, Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    try:
        temporary.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.chmod(temporary, 0o600)
        temporary.replace(path)
    except OSError as exc:
        raise ProfileError(f"cannot write {path}: {exc}") from exc


def load_identity(
    path: Path,
    role: str,
    *,
    new: bool = False,
    locale: str = "fr-BE",
    bot_app_id: str = "",
    aad_object_id: str | None = None,
    name: str | None = None,
) -> Identity:
    """The person playing `role`, created on first use (or with `new`) and kept in the profile file.

    `aad_object_id` and `name` replace the stored ones and are remembered: a counselor must carry the
    Entra object id listed for them in the agency file.
    """
    if role not in ROLES:
        raise ProfileError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    data = _read_profile(path)
    tenant_id = data.get("tenant_id") or str(uuid.uuid4())
    stored = data.get("people")
    people: dict[str, Any] = stored if isinstance(stored, dict) else {}
    person: dict[str, Any] | None = (
        people.get(role) if isinstance(people.get(role), dict) and not new else None
    )
    if person is None:
        pool = _CITIZEN_NAMES if role == "citizen" else _COUNSELOR_NAMES
        person = {
            "user_id": "29:1" + secrets.token_urlsafe(32),
            "aad_object_id": str(uuid.uuid4()),
            "name": random.choice(pool),
            "conversation_id": "a:1" + secrets.token_urlsafe(45),
        }
    if aad_object_id:
        person["aad_object_id"] = aad_object_id
    if name:
        person["name"] = name
    people[role] = person
    _write_profile(path, {**data, "version": 1, "tenant_id": tenant_id, "people": people})
    return Identity(
        role=role,
        user_id=person["user_id"],
        aad_object_id=person["aad_object_id"],
        name=person["name"],
        tenant_id=tenant_id,
        conversation_id=person["conversation_id"],
        bot_id=f"28:{bot_app_id or LOCAL_BOT_APP_ID}",
        locale=locale,
    )


def remembered_port(path: Path, role: str) -> int | None:
    with contextlib.suppress(ProfileError):
        person = (_read_profile(path).get("people") or {}).get(role) or {}
        port = person.get("port")
        return port if isinstance(port, int) else None
    return None


def remember_port(path: Path, role: str, port: int) -> None:
    data = _read_profile(path)
    people = data.get("people") or {}
    if isinstance(people.get(role), dict):
        people[role]["port"] = port
        _write_profile(path, data)

