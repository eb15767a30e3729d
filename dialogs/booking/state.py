"""What the booking flows remember between turns: one dataclass a flow, read and written by attribute.

In the dialog stack they are plain dicts (see `dialogs/card_flow.py`): dates and times as ISO
strings, under the keys the flows used before these types existed, so that a conversation in flight
while the bot is updated goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Self

from bot.domain.agency import PersonalField
from bot.services.booking import SlotOffer


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value is not None else None


@dataclass(kw_only=True)
class TimeChoiceState:
    """The day and time steps (time_choice.py): what times are looked for, what was offered and chosen."""

    mode: str = ""  # a Mode value; "" until chosen
    subject: str = ""  # a subject id; "" until chosen
    office: str | None = None  # the office chosen (office mode), None for video
    search_language: str | None = None  # only counselors who speak it, when the language is known
    exclude: str | None = None  # the appointment being moved: its own time counts as free
    pages: list[date | None] = field(default_factory=list)  # first day of each page of days seen (None: the first)
    days: list[date] = field(default_factory=list)  # the days the day card offers
    day: date | None = None  # the day chosen
    # The times the last time card offered, by the start it sends back (ISO): any other is refused.
    offered: dict[str, SlotOffer] = field(default_factory=dict)
    chosen: SlotOffer | None = None  # the time chosen among them
    interview_language: str | None = None

    @property
    def chosen_slot(self) -> SlotOffer:
        assert self.chosen is not None, "a time is chosen before the summary"
        return self.chosen

    @property
    def chosen_office(self) -> str | None:
        """Where the chosen time is: its own office, else the one chosen (None: video)."""
        return self.chosen_slot.office_id or self.office

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any]) -> Self:
        return cls(**cls._fields(stored))

    @classmethod
    def _fields(cls, stored: Mapping[str, Any]) -> dict[str, Any]:
        start = stored.get("start")
        return {
            "mode": stored.get("mode", ""),
            "subject": stored.get("subject", ""),
            "office": stored.get("office"),
            "search_language": stored.get("search_language"),
            "exclude": stored.get("exclude"),
            "pages": [_day(page) for page in stored.get("pages") or []],
            "days": [date.fromisoformat(day) for day in stored.get("days") or []],
            "day": _day(stored.get("day")),
            "offered": {start_iso: SlotOffer(datetime.fromisoformat(start_iso), datetime.fromisoformat(end), office)
                        for start_iso, (end, office) in (stored.get("offered") or {}).items()},
            "chosen": None if start is None else SlotOffer(datetime.fromisoformat(start),
                                                           datetime.fromisoformat(stored["end"]),
                                                           stored.get("slot_office")),
            "interview_language": stored.get("interview_language"),
        }

    def to_dict(self) -> dict[str, Any]:
        chosen = self.chosen
        return {
            "mode": str(self.mode),  # a Mode (a str subclass) would not be plain JSON
            "subject": self.subject,
            "office": self.office,
            "search_language": self.search_language,
            "exclude": self.exclude,
            "pages": [page.isoformat() if page is not None else None for page in self.pages],
            "days": [day.isoformat() for day in self.days],
            "day": self.day.isoformat() if self.day is not None else None,
            "offered": {start_iso: [slot.end.isoformat(), slot.office_id] for start_iso, slot in self.offered.items()},
            "start": chosen.start.isoformat() if chosen is not None else None,
            "end": chosen.end.isoformat() if chosen is not None else None,
            "slot_office": chosen.office_id if chosen is not None else None,
            "interview_language": self.interview_language,
        }


@dataclass(kw_only=True)
class BookingState(TimeChoiceState):
    """BookDialog: the time choice, plus the personal data and the interview language."""

    personal: dict[PersonalField, str | date] | None = None  # the details once valid
    typed: dict[str, str] | None = None  # the form as typed while it has errors, to show it again
    language_choices: list[str] = field(default_factory=list)  # the interview languages offered

    @classmethod
    def _fields(cls, stored: Mapping[str, Any]) -> dict[str, Any]:
        personal = stored.get("personal")
        typed = stored.get("typed")
        return {
            **super()._fields(stored),
            "personal": None if personal is None else {
                PersonalField(key): date.fromisoformat(value) if key == PersonalField.BIRTH_DATE else value
                for key, value in personal.items()
            },
            "typed": None if typed is None else dict(typed),
            "language_choices": list(stored.get("language_choices") or []),
        }

    def to_dict(self) -> dict[str, Any]:
        personal = self.personal
        return {
            **super().to_dict(),
            "personal": None if personal is None else {
                str(key): value.isoformat() if isinstance(value, date) else value for key, value in personal.items()
            },
            "typed": None if self.typed is None else dict(self.typed),
            "language_choices": list(self.language_choices),
        }


@dataclass(kw_only=True)
class RescheduleState(TimeChoiceState):
    """RescheduleDialog: the time choice for an appointment being moved."""

    appointment_id: str
    previous_start: datetime
    language_reason: str | None = None  # a LanguageReason value: why the interview is in its language

    @classmethod
    def _fields(cls, stored: Mapping[str, Any]) -> dict[str, Any]:
        return {**super()._fields(stored), "appointment_id": stored["appointment_id"],
                "previous_start": datetime.fromisoformat(stored["previous_start"]),
                "language_reason": stored.get("language_reason")}

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "appointment_id": self.appointment_id,
                "previous_start": self.previous_start.isoformat(), "language_reason": self.language_reason}


@dataclass(kw_only=True)
class CancelState:
    """CancelDialog: the appointment whose cancellation is asked to be confirmed."""

    appointment_id: str
    # The Teams message of the list card whose Cancel started this, updated once cancelled.
    list_activity_id: str | None = None

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any]) -> Self:
        return cls(appointment_id=stored["appointment_id"], list_activity_id=stored.get("list_activity_id"))

    def to_dict(self) -> dict[str, Any]:
        return {"appointment_id": self.appointment_id, "list_activity_id": self.list_activity_id}
