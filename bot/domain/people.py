"""Who talks to the bot: a Teams identity, the citizen it stands for, and the counselors' Teams accounts.

Citizens are stored under a random internal id (their audit pseudonym); personal fields are None
until the citizen gives them, and again after erasure. Storage maps these classes onto its tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple


@dataclass(frozen=True)
class TeamsIdentity:
    """Who is talking, as Teams says it. The tenant comes from channelData (see README: pitfalls)."""

    tenant_id: str | None
    aad_object_id: str | None
    teams_user_id: str

    @property
    def key(self) -> str:
        return f"{self.tenant_id}/{self.aad_object_id or self.teams_user_id}"


@dataclass(eq=False)
class Citizen:
    """A person who talks to the bot in Teams (see bot.domain.agency.PersonalField for the personal fields)."""

    id: str
    agency_id: str
    created_at: datetime
    last_seen_at: datetime
    tenant_id: str | None = None
    aad_object_id: str | None = None
    teams_user_id: str | None = None
    # Where the bot can write to them later (reminders): the Bot Framework conversation reference.
    conversation_reference: dict[str, Any] | None = None
    locale: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    birth_date: date | None = None
    email: str | None = None
    phone: str | None = None
    postal_code: str | None = None
    national_register_number: str | None = None
    client_number: str | None = None
    interview_language: str | None = None
    # Restriction / objection (GDPR art. 18, 21): non-essential processing stops.
    processing_restricted: bool = False
    reminders_opt_out: bool = False
    erased_at: datetime | None = None
    # Teams refused a message: the person blocked or removed the bot (cleared when they write again).
    unreachable_since: datetime | None = None

    @property
    def wants_reminders(self) -> bool:
        """Reminders are a convenience: opting out or restricting processing stops them."""
        return not (self.reminders_opt_out or self.processing_restricted)


class ReminderFlags(NamedTuple):
    """The two choices of a citizen that decide whether reminders are planned."""

    reminders_opt_out: bool
    processing_restricted: bool

    @property
    def wants_reminders(self) -> bool:
        return not (self.reminders_opt_out or self.processing_restricted)


@dataclass(eq=False)
class CounselorAccount:
    """A counselor of the agency file as the bot knows them in Teams: the chat it reaches them in."""

    id: str  # Entra object id
    agency_id: str
    display_name: str
    conversation_reference: dict[str, Any] | None = None
    active: bool = True
    # The Teams locale of their chat with the bot, for the prompts it sends them.
    locale: str | None = None


# The key under which a chat's stored conversation reference keeps the client's IANA time zone (from
# Teams' clientInfo), so messages sent later name the agency's zone as the turn's replies did.
CLIENT_TIMEZONE_KEY = "guichetClientTimezone"


def client_timezone(reference: Mapping[str, Any] | None) -> str | None:
    """The client's time zone stored with a conversation reference, if any."""
    zone = (reference or {}).get(CLIENT_TIMEZONE_KEY)
    return zone if isinstance(zone, str) else None
