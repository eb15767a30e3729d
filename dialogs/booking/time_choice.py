"""Choosing a time, shared by booking and rescheduling: the day and time steps, the "time just taken"
loop, the summary and the confirmation.

These are functions, not a base class: each takes the flow choosing a time (a `TimeFlow`, the flow
that holds them) first, so the flow's own STATES table can name `on_day`, `on_slot`, `on_summary`
and `on_taken` beside its own handlers, and the flow stays one step below CardFlow.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any, Protocol, TypeVar

from botbuilder.dialogs import DialogContext, DialogTurnResult

from bot.domain.agency import Agency, PersonalField
from bot.domain.interview_language import LanguageReason
from bot.i18n import t
from bot.replies import card_message
from bot.services.booking import Booked, BookingService, Refused, SlotGone, SlotOffer
from bot.turn import turn_info
from cards.booking import (
    DAYS_PER_PAGE,
    build_day_card,
    build_no_days_card,
    build_slot_card,
    build_slot_taken_card,
    build_summary_card,
)
from cards.formatting import format_day_short, format_time, name_zone, to_local
from cards.verbs import Verb
from dialogs.booking.flow import BookingSteps
from dialogs.booking.state import TimeChoiceState

T = TypeVar("T", bound=TimeChoiceState)
T_contra = TypeVar("T_contra", bound=TimeChoiceState, contravariant=True)


class TimeFlow(Protocol[T_contra]):
    """A card flow that chooses a time: what the time steps use of it, and what it does around them."""

    _agency: Agency
    _booking: BookingService
    _steps: BookingSteps

    async def _ask(self, dc: DialogContext, state: T_contra, awaiting: str, card: dict[str, Any],
                   verbs: list[Verb]) -> DialogTurnResult: ...

    async def _after_slot(self, dc: DialogContext, state: T_contra) -> DialogTurnResult:
        """The step after a time is chosen."""
        ...

    async def _on_change_details(self, dc: DialogContext, state: T_contra) -> DialogTurnResult:
        """The summary's "change the details"."""
        ...

    def _summary_card(self, dc: DialogContext, state: T_contra) -> dict[str, Any]: ...

    async def _commit(self, dc: DialogContext, state: T_contra) -> Booked | SlotGone | Refused:
        """Book (or move) the chosen time."""
        ...

    async def _on_booked(self, dc: DialogContext, booked: Booked) -> None: ...


def _where(dc: DialogContext, state: T) -> dict[str, Any]:
    # The citizen: times overlapping their other appointments are not offered.
    return {"mode": state.mode, "subject_id": state.subject, "office_id": state.office,
            "language": state.search_language, "exclude_appointment_id": state.exclude,
            "citizen_id": turn_info(dc.context).citizen_id}


async def ask_day(flow: TimeFlow[T], dc: DialogContext, state: T, *, first_page: bool = False) -> DialogTurnResult:
    language = turn_info(dc.context).language
    if first_page or not state.pages:
        state.pages = [None]
    pages = state.pages
    days = await flow._booking.days(**_where(dc, state), limit=DAYS_PER_PAGE + 1, from_day=pages[-1])
    if not days and len(pages) > 1:
        # The last days of a later page went meanwhile: start again from the first page.
        return await ask_day(flow, dc, state, first_page=True)
    if not days:
        await dc.context.send_activity(card_message(build_no_days_card(flow._agency, language)))
        return await dc.end_dialog()
    shown = days[:DAYS_PER_PAGE]
    state.days = list(shown)
    card = build_day_card(flow._agency, language, mode=state.mode, subject_id=state.subject,
                          office_id=state.office, days=shown, has_earlier=len(pages) > 1,
                          has_more=len(days) > DAYS_PER_PAGE)
    return await flow._ask(dc, state, "day", card, [Verb.BOOK_DAY, Verb.BOOK_MORE_DAYS])


async def on_day(flow: TimeFlow[T], dc: DialogContext, state: T, verb: str,
                 data: dict[str, Any]) -> DialogTurnResult:
    language = turn_info(dc.context).language
    if verb == Verb.BOOK_MORE_DAYS:
        if data.get("page") == "previous" and len(state.pages) > 1:
            state.pages.pop()
        elif data.get("page") == "next" and state.days:
            state.pages.append(state.days[-1] + timedelta(days=1))
        await flow._steps.mark(dc, t(language, "booking.step.more_days"))
        return await ask_day(flow, dc, state)
    # Only a day the card offered, as the card wrote it.
    day = next((offered for offered in state.days if offered.isoformat() == data.get("day")), None)
    if day is None:
        await dc.context.send_activity(t(language, "booking.message.invalid_choice"))
        return await ask_day(flow, dc, state)
    state.day = day
    await flow._steps.mark(dc, t(language, "booking.step.day",
                                 value=format_day_short(day, language, country=flow._agency.country)))
    return await _ask_slot(flow, dc, state)


async def _ask_slot(flow: TimeFlow[T], dc: DialogContext, state: T) -> DialogTurnResult:
    language = turn_info(dc.context).language
    day = state.day
    assert day is not None, "a day is chosen before its times"
    slots = await flow._booking.slots(**_where(dc, state), day=day)
    if not slots:
        await dc.context.send_activity(t(language, "booking.slot.none"))
        return await ask_day(flow, dc, state, first_page=True)
    _offer(state, slots)
    subject = flow._agency.subject(state.subject)
    card = build_slot_card(flow._agency, language, day=day, slots=slots,
                           duration_minutes=subject.duration_minutes if subject else 0)
    return await flow._ask(dc, state, "slot", card, [Verb.BOOK_SLOT, Verb.BOOK_CHANGE])


def _offer(state: T, slots: list[SlotOffer]) -> None:
    # What was offered is kept here: an answer naming any other time is refused without a lookup.
    state.offered = {slot.start.isoformat(): slot for slot in slots}


def _take_offered(state: T, start: object) -> bool:
    slot = state.offered.get(start) if isinstance(start, str) else None
    if slot is None:
        return False
    state.chosen = slot
    return True


def _chosen_time_text(agency: Agency, state: T, language: str) -> str:
    start = to_local(state.chosen_slot.start, agency.zone)
    day = format_day_short(start, language, country=agency.country)
    return name_zone(f"{day}, {format_time(start, language, country=agency.country)}", start,
                     agency.zone, language)


async def on_slot(flow: TimeFlow[T], dc: DialogContext, state: T, verb: str,
                  data: dict[str, Any]) -> DialogTurnResult:
    language = turn_info(dc.context).language
    if verb == Verb.BOOK_CHANGE:
        await flow._steps.mark(dc, t(language, "booking.step.change_day"))
        return await ask_day(flow, dc, state)
    if not _take_offered(state, data.get("start")):
        await dc.context.send_activity(t(language, "booking.message.invalid_choice"))
        return await _ask_slot(flow, dc, state)
    chosen = _chosen_time_text(flow._agency, state, language)
    await flow._steps.mark(dc, t(language, "booking.step.slot", value=chosen))
    return await flow._after_slot(dc, state)


def summary(flow: TimeFlow[T], dc: DialogContext, state: T, *,
            personal: Mapping[PersonalField, str | date] | None = None,
            previous_start: datetime | None = None,
            language_reason: LanguageReason | None = None) -> dict[str, Any]:
    """The summary card of the time chosen, with what the flow adds to it."""
    slot = state.chosen_slot
    return build_summary_card(
        flow._agency, turn_info(dc.context).language, mode=state.mode, subject_id=state.subject,
        office_id=state.chosen_office, start=slot.start, end=slot.end,
        interview_language=state.interview_language, personal=personal, previous_start=previous_start,
        language_reason=language_reason,
    )


async def ask_summary(flow: TimeFlow[T], dc: DialogContext, state: T) -> DialogTurnResult:
    card = flow._summary_card(dc, state)
    return await flow._ask(dc, state, "summary", card, [Verb.BOOK_CONFIRM, Verb.BOOK_CHANGE])


async def on_summary(flow: TimeFlow[T], dc: DialogContext, state: T, verb: str,
                     data: dict[str, Any]) -> DialogTurnResult:
    language = turn_info(dc.context).language
    if verb == Verb.BOOK_CHANGE:
        if data.get("to") == "details":
            await flow._steps.mark(dc, t(language, "booking.step.change_details"))
            return await flow._on_change_details(dc, state)
        await flow._steps.mark(dc, t(language, "booking.step.change_day"))
        return await ask_day(flow, dc, state, first_page=True)
    return await _confirm(flow, dc, state)


async def _confirm(flow: TimeFlow[T], dc: DialogContext, state: T) -> DialogTurnResult:
    language = turn_info(dc.context).language
    outcome = await flow._commit(dc, state)
    if isinstance(outcome, Booked):
        await flow._steps.mark(dc, t(language, "booking.step.confirmed"))
        await flow._on_booked(dc, outcome)
        return await dc.end_dialog(outcome.appointment.id)
    if isinstance(outcome, SlotGone):
        await flow._steps.mark(dc, t(language, "booking.taken.title"), done=False)
        _offer(state, outcome.alternatives)
        card = build_slot_taken_card(flow._agency, language, outcome.alternatives)
        return await flow._ask(dc, state, "taken", card, [Verb.BOOK_SLOT, Verb.BOOK_CHANGE])
    await flow._steps.refused(dc, outcome)
    return await dc.end_dialog()


async def on_taken(flow: TimeFlow[T], dc: DialogContext, state: T, verb: str,
                   data: dict[str, Any]) -> DialogTurnResult:
    language = turn_info(dc.context).language
    if verb == Verb.BOOK_CHANGE:
        await flow._steps.mark(dc, t(language, "booking.step.change_day"))
        return await ask_day(flow, dc, state, first_page=True)
    if not _take_offered(state, data.get("start")):
        await dc.context.send_activity(t(language, "booking.message.invalid_choice"))
        card = build_slot_taken_card(flow._agency, language, list(state.offered.values()))
        return await flow._ask(dc, state, "taken", card, [Verb.BOOK_SLOT, Verb.BOOK_CHANGE])
    # The citizen confirmed everything else already: choosing an alternative books it.
    return await _confirm(flow, dc, state)
