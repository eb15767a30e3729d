"""Choosing a time, shared by booking and rescheduling: the day and time steps, the "time just taken"
loop, the summary and the confirmation."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any, ClassVar, TypeVar

from botbuilder.dialogs import DialogContext, DialogTurnResult

from bot.domain.agency import PersonalField
from bot.domain.interview_language import LanguageReason
from bot.i18n import t
from bot.services.booking import Booked, BookingService, Refused, SlotGone, SlotOffer
from bot.services.container import Services
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
from dialogs.booking.flow import BookingFlow
from dialogs.booking.state import TimeChoiceState
from dialogs.card_flow import Handler

T = TypeVar("T", bound=TimeChoiceState)


class TimeChoice(BookingFlow[T]):
    """Day and time steps, the "time just taken" loop and the summary, over a TimeChoiceState."""

    def __init__(self, dialog_id: str, services: Services, booking: BookingService, state_type: type[T]) -> None:
        super().__init__(dialog_id, services, booking, state_type)

    async def _after_slot(self, dc: DialogContext, state: T) -> DialogTurnResult:
        raise NotImplementedError

    def _summary_card(self, dc: DialogContext, state: T) -> dict[str, Any]:
        raise NotImplementedError

    async def _commit(self, dc: DialogContext, state: T) -> Booked | SlotGone | Refused:
        raise NotImplementedError

    async def _on_booked(self, dc: DialogContext, booked: Booked) -> None:
        raise NotImplementedError

    async def _on_change_details(self, dc: DialogContext, state: T) -> DialogTurnResult:
        return await self._ask_day(dc, state, first_page=True)

    def _where(self, dc: DialogContext, state: T) -> dict[str, Any]:
        # The citizen: times overlapping their other appointments are not offered.
        return {"mode": state.mode, "subject_id": state.subject, "office_id": state.office,
                "language": state.search_language, "exclude_appointment_id": state.exclude,
                "citizen_id": self._info(dc).citizen_id}

    async def _ask_day(self, dc: DialogContext, state: T, *, first_page: bool = False) -> DialogTurnResult:
        language = self._info(dc).language
        if first_page or not state.pages:
            state.pages = [None]
        pages = state.pages
        days = await self._booking.days(**self._where(dc, state), limit=DAYS_PER_PAGE + 1, from_day=pages[-1])
        if not days and len(pages) > 1:
            # The last days of a later page went meanwhile: start again from the first page.
            return await self._ask_day(dc, state, first_page=True)
        if not days:
            await self._send_card(dc, build_no_days_card(self._agency, language))
            return await dc.end_dialog()
        shown = days[:DAYS_PER_PAGE]
        state.days = list(shown)
        card = build_day_card(self._agency, language, mode=state.mode, subject_id=state.subject,
                              office_id=state.office, days=shown, has_earlier=len(pages) > 1,
                              has_more=len(days) > DAYS_PER_PAGE)
        return await self._ask(dc, state, "day", card, [Verb.BOOK_DAY, Verb.BOOK_MORE_DAYS])

    async def _on_day(self, dc: DialogContext, state: T, verb: str, data: dict[str, Any]) -> DialogTurnResult:
        language = self._info(dc).language
        if verb == Verb.BOOK_MORE_DAYS:
            if data.get("page") == "previous" and len(state.pages) > 1:
                state.pages.pop()
            elif data.get("page") == "next" and state.days:
                state.pages.append(state.days[-1] + timedelta(days=1))
            await self._mark(dc, t(language, "booking.step.more_days"))
            return await self._ask_day(dc, state)
        # Only a day the card offered, as the card wrote it.
        day = next((offered for offered in state.days if offered.isoformat() == data.get("day")), None)
        if day is None:
            await self._say(dc, t(language, "booking.message.invalid_choice"))
            return await self._ask_day(dc, state)
        state.day = day
        await self._mark(dc, t(language, "booking.step.day",
                               value=format_day_short(day, language, country=self._agency.country)))
        return await self._ask_slot(dc, state)

    async def _ask_slot(self, dc: DialogContext, state: T) -> DialogTurnResult:
        language = self._info(dc).language
        day = state.day
        assert day is not None, "a day is chosen before its times"
        slots = await self._booking.slots(**self._where(dc, state), day=day)
        if not slots:
            await self._say(dc, t(language, "booking.slot.none"))
            return await self._ask_day(dc, state, first_page=True)
        self._offer(state, slots)
        subject = self._agency.subject(state.subject)
        card = build_slot_card(self._agency, language, day=day, slots=slots,
                               duration_minutes=subject.duration_minutes if subject else 0)
        return await self._ask(dc, state, "slot", card, [Verb.BOOK_SLOT, Verb.BOOK_CHANGE])

    @staticmethod
    def _offer(state: T, slots: list[SlotOffer]) -> None:
        # What was offered is kept here: an answer naming any other time is refused without a lookup.
        state.offered = {slot.start.isoformat(): slot for slot in slots}

    @staticmethod
    def _take_offered(state: T, start: object) -> bool:
        slot = state.offered.get(start) if isinstance(start, str) else None
        if slot is None:
            return False
        state.chosen = slot
        return True

    def _chosen_time_text(self, state: T, language: str) -> str:
        start = to_local(state.chosen_slot.start, self._agency.zone)
        day = format_day_short(start, language, country=self._agency.country)
        return name_zone(f"{day}, {format_time(start, language, country=self._agency.country)}", start,
                         self._agency.zone, language)

    async def _on_slot(self, dc: DialogContext, state: T, verb: str, data: dict[str, Any]) -> DialogTurnResult:
        language = self._info(dc).language
        if verb == Verb.BOOK_CHANGE:
            await self._mark(dc, t(language, "booking.step.change_day"))
            return await self._ask_day(dc, state)
        if not self._take_offered(state, data.get("start")):
            await self._say(dc, t(language, "booking.message.invalid_choice"))
            return await self._ask_slot(dc, state)
        await self._mark(dc, t(language, "booking.step.slot", value=self._chosen_time_text(state, language)))
        return await self._after_slot(dc, state)

    def _summary(self, dc: DialogContext, state: T, *, personal: Mapping[PersonalField, str | date] | None = None,
                 previous_start: datetime | None = None,
                 language_reason: LanguageReason | None = None) -> dict[str, Any]:
        """The summary card of the time chosen, with what the flow adds to it."""
        slot = state.chosen_slot
        return build_summary_card(
            self._agency, self._info(dc).language, mode=state.mode, subject_id=state.subject,
            office_id=state.chosen_office, start=slot.start, end=slot.end,
            interview_language=state.interview_language, personal=personal, previous_start=previous_start,
            language_reason=language_reason,
        )

    async def _ask_summary(self, dc: DialogContext, state: T) -> DialogTurnResult:
        card = self._summary_card(dc, state)
        return await self._ask(dc, state, "summary", card, [Verb.BOOK_CONFIRM, Verb.BOOK_CHANGE])

    async def _on_summary(self, dc: DialogContext, state: T, verb: str, data: dict[str, Any]) -> DialogTurnResult:
        language = self._info(dc).language
        if verb == Verb.BOOK_CHANGE:
            if data.get("to") == "details":
                await self._mark(dc, t(language, "booking.step.change_details"))
                return await self._on_change_details(dc, state)
            await self._mark(dc, t(language, "booking.step.change_day"))
            return await self._ask_day(dc, state, first_page=True)
        return await self._confirm(dc, state)

    async def _confirm(self, dc: DialogContext, state: T) -> DialogTurnResult:
        language = self._info(dc).language
        outcome = await self._commit(dc, state)
        if isinstance(outcome, Booked):
            await self._mark(dc, t(language, "booking.step.confirmed"))
            await self._on_booked(dc, outcome)
            return await dc.end_dialog(outcome.appointment.id)
        if isinstance(outcome, SlotGone):
            await self._mark(dc, t(language, "booking.taken.title"), done=False)
            self._offer(state, outcome.alternatives)
            card = build_slot_taken_card(self._agency, language, outcome.alternatives)
            return await self._ask(dc, state, "taken", card, [Verb.BOOK_SLOT, Verb.BOOK_CHANGE])
        await self._refused(dc, outcome)
        return await dc.end_dialog()

    async def _on_taken(self, dc: DialogContext, state: T, verb: str, data: dict[str, Any]) -> DialogTurnResult:
        language = self._info(dc).language
        if verb == Verb.BOOK_CHANGE:
            await self._mark(dc, t(language, "booking.step.change_day"))
            return await self._ask_day(dc, state, first_page=True)
        if not self._take_offered(state, data.get("start")):
            await self._say(dc, t(language, "booking.message.invalid_choice"))
            card = build_slot_taken_card(self._agency, language, list(state.offered.values()))
            return await self._ask(dc, state, "taken", card, [Verb.BOOK_SLOT, Verb.BOOK_CHANGE])
        # The citizen confirmed everything else already: choosing an alternative books it.
        return await self._confirm(dc, state)

    # The time states every TimeChoice flow shares; each flow's own STATES table names them all.
    TIME_STATES: ClassVar[Mapping[str, Handler[Any]]] = {
        "day": _on_day, "slot": _on_slot, "summary": _on_summary, "taken": _on_taken,
    }
