"""Reference implementations the product's faster code is checked against (nothing outside tests uses them)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any

from bot.domain.agency import Mode
from bot.domain.slots import Busy, BusyIndex, Slot, SlotEngine
from cards.document import DOCUMENT_CARD_BUDGET
from cards.validation import card_size_bytes


def slots_for_day(
    engine: SlotEngine,
    *,
    mode: Mode | str,
    subject_id: str,
    day: date,
    now: datetime,
    busy: Iterable[Busy] | BusyIndex,
    language: str | None = None,
    office_id: str | None = None,
    load: Mapping[str, int] | None = None,
) -> list[Slot]:
    """Every free slot of one local day, earliest first (then by office), counselors fairest first.

    What `times_for_day` lists and `slots_at` re-checks, computed the long way: the whole day with
    every slot's counselors ordered. Office mode without `office_id` searches every office; in video
    mode `office_id` keeps only counselors attached to that office; `load` defaults to the busy
    appointments starting between now and the horizon's end.
    """
    return engine._slots(mode=Mode(mode), subject_id=subject_id, day=day, now=now, busy=busy, language=language,
                         office_id=office_id, load=load)


def fit_card(
    build: Callable[[int | None], dict[str, Any]],
    section_count: int,
    *,
    budget: int = DOCUMENT_CARD_BUDGET,
) -> dict[str, Any]:
    """The card built with as many sections as fit in `budget` bytes (all of them if possible).

    `build(n)` builds the card showing the first `n` sections (`None`: all). When even the summary
    alone is too large, the card without sections is returned and the schema check reports it.
    """
    card = build(None)
    shown = section_count
    while card_size_bytes(card) >= budget and shown > 0:
        shown -= 1
        card = build(shown)
    return card


