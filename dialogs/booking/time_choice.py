"""Choosing a time, shared by booking and rescheduling: the day and time steps, the "time just taken"
loop, the summary and the confirmation."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from botbuilder.core import MessageFactory
from botbuilder.dialogs import DialogContext, DialogTurnResult

from bot.i18n import t
from bot.services.booking import AppointmentView, Booked, BookingService, Refused, SlotGone, SlotOffer
from bot.services.container import Services
from cards.booking import (
    DAYS_PER_PAGE,
    build_confirmation_card,
    build_day_card,
    build_no_days_card,
    build_slot_card,
    build_slot_taken_card,
)
from cards.formatting import format_day_short, format_time, to_local
from cards.verbs import Verb
from dialogs.booking.calendar_file import calendar_attachment
from dialogs.booking.flow import BookingFlow


class TimeChoice(BookingFlow):
    """Day and time steps, the "time just taken" loop and the summary. State keys: mode, office,
    subject, search_language, exclude (the appointment being moved), pages, days, offered, start,
    end, slot_office."""

    def __init__(self, dialog_id: str, services: Services, booking: BookingService) -> None:
        super().__init__(dialog_id, services, booking)
        self._handlers.update({"day": self._on_day, "slot": self._on_slot, "summary": self._on_summary,
                               "taken": self._on_taken})

    async def _after_slot(self, dc: DialogContext) -> DialogTurnResult:
        raise NotImplementedError

    async def _summary_card(self, dc: DialogContext) -> dict[str, Any]:
        raise NotImplementedError

    async def _commit(self, dc: DialogContext) -> Booked | SlotGone | Refused:
        raise NotImplementedError

    async def _on_booked(self, dc: DialogContext, appointment: AppointmentView) -> None:
        raise NotImplementedError

    async def _on_change_details(self, dc: DialogContext) -> DialogTurnResult:
        return await self._ask_day(dc, first_page=True)

    def _where(self, state: dict[str, Any]) -> dict[str, Any]:
        return {"mode": state["mode"], "subject_id": state["subject"], "office_id": state.get("office"),
                "language": state.get("search_language"), "exclude_appointment_id": state.get("exclude")}

    async def _ask_day(self, dc: DialogContext, *, first_page: bool = False) -> DialogTurnResult:
        state = self._state(dc)
        language = self._info(dc).language
        if first_page or not state.get("pages"):
            state["pages"] = [None]
        pages: list[str | None] = state["pages"]
        from_day = date.fromisoformat(pages[-1]) if pages[-1] else None
        days = await self._booking.days(**self._where(state), limit=DAYS_PER_PAGE + 1, from_day=from_day)
        if not days and len(pages) > 1:
            # The last days of a later page went meanwhile: start again from the first page.
            return await self._ask_day(dc, first_page=True)
        if not days:
            await self._send_card(dc, build_no_days_card(self._agency, language))
            return await dc.end_dialog()
        shown = days[:DAYS_PER_PAGE]
        state["days"] = [day.isoformat() for day in shown]
        card = build_day_card(self._agency, language, mode=state["mode"], subject_id=state["subject"],
                              office_id=state.get("office"), days=shown, has_earlier=len(pages) > 1,
                              has_more=len(days) > DAYS_PER_PAGE)
        return await self._ask(dc, "day", card, [Verb.BOOK_DAY, Verb.BOOK_MORE_DAYS])

    async def _on_day(self, dc: DialogContext, verb: str, data: dict[str, Any]) -> DialogTurnResult:
        state = self._state(dc)
        language = self._info(dc).language
        if verb == Verb.BOOK_MORE_DAYS:
            pages: list[str | None] = state["pages"]
            if data.get("page") == "previous" and len(pages) > 1:
                pages.pop()
            elif data.get("page") == "next" and state.get("days"):
                pages.append((date.fromisoformat(state["days"][-1]) + timedelta(days=1)).isoformat())
            await self._mark(dc, t(language, "booking.step.more_days"))
            return await self._ask_day(dc)
        day = data.get("day")
        if not isinstance(day, str) or day not in state.get("days", []):
            await self._say(dc, t(language, "booking.message.invalid_choice"))
            return await self._ask_day(dc)
        state["day"] = day
        await self._mark(dc, t(language, "booking.step.day",
                            value=format_day_short(date.fromisoformat(day), language, country=self._agency.country)))
        return await self._ask_slot(dc)

    async def _ask_slot(self, dc: DialogContext) -> DialogTurnResult:
        state = self._state(dc)
        language = self._info(dc).language
        where = self._where(state)
        slots = await self._booking.slots(**where, day=date.fromisoformat(state["day"]))
        if not slots:
            await self._say(dc, t(language, "booking.slot.none"))
            return await self._ask_day(dc, first_page=True)
        self._offer(state, slots)
        subject = self._agency.subject(state["subject"])
        card = build_slot_card(self._agency, language, day=date.fromisoformat(state["day"]), slots=slots,
                               duration_minutes=subject.duration_minutes if subject else 0)
        return await self._ask(dc, "slot", card, [Verb.BOOK_SLOT, Verb.BOOK_CHANGE])

    @staticmethod
    def _offer(state: dict[str, Any], slots: list[SlotOffer]) -> None:
        # What was offered is kept here: an answer naming any other time is refused without a lookup.
        state["offered"] = {slot.start.isoformat(): [slot.end.isoformat(), slot.office_id] for slot in slots}

    def _take_offered(self, state: dict[str, Any], start: object) -> bool:
        offered: dict[str, list[Any]] = state.get("offered") or {}
        if not isinstance(start, str) or start not in offered:
            return False
        state["start"] = start
        state["end"], state["slot_office"] = offered[start]
        return True

    def _chosen_time_text(self, state: dict[str, Any], language: str) -> str:
        start = to_local(datetime.fromisoformat(state["start"]), self._agency.zone)
        day = format_day_short(start, language, country=self._agency.country)
        return f"{day}, {format_time(start, language, country=self._agency.country)}"

    async def _on_slot(self, dc: DialogContext, verb: str, data: dict[str, Any]) -> DialogTurnResult:
        state = self._state(dc)
        language = self._info(dc).language
        if verb == Verb.BOOK_CHANGE:
            await self._mark(dc, t(language, "booking.step.change_day"))
            return await self._ask_day(dc)
        if not self._take_offered(state, data.get("start")):
            await self._say(dc, t(language, "booking.message.invalid_choice"))
            return await self._ask_slot(dc)
        await self._mark(dc, t(language, "booking.step.slot", value=self._chosen_time_text(state, language)))
        return await self._after_slot(dc)

    async def _ask_summary(self, dc: DialogContext) -> DialogTurnResult:
        card = await self._summary_card(dc)
        return await self._ask(dc, "summary", card, [Verb.BOOK_CONFIRM, Verb.BOOK_CHANGE])

    async def _on_summary(self, dc: DialogContext, verb: str, data: dict[str, Any]) -> DialogTurnResult:
        language = self._info(dc).language
        if verb == Verb.BOOK_CHANGE:
            if data.get("to") == "details":
                await self._mark(dc, t(language, "booking.step.change_details"))
                return await self._on_change_details(dc)
            await self._mark(dc, t(language, "booking.step.change_day"))
            return await self._ask_day(dc, first_page=True)
        return await self._confirm(dc)

    async def _confirm(self, dc: DialogContext) -> DialogTurnResult:
        language = self._info(dc).language
        outcome = await self._commit(dc)
        if isinstance(outcome, Booked):
            await self._mark(dc, t(language, "booking.step.confirmed"))
            await self._on_booked(dc, outcome.appointment)
            return await dc.end_dialog(outcome.appointment.id)
        if isinstance(outcome, SlotGone):
            await self._mark(dc, t(language, "booking.taken.title"), done=False)
            state = self._state(dc)
            self._offer(state, outcome.alternatives)
            card = build_slot_taken_card(self._agency, language, outcome.alternatives)
            return await self._ask(dc, "taken", card, [Verb.BOOK_SLOT, Verb.BOOK_CHANGE])
        await self._refused(dc, outcome)
        return await dc.end_dialog()

    async def _on_taken(self, dc: DialogContext, verb: str, data: dict[str, Any]) -> DialogTurnResult:
        state = self._state(dc)
        language = self._info(dc).language
        if verb == Verb.BOOK_CHANGE:
            await self._mark(dc, t(language, "booking.step.change_day"))
            return await self._ask_day(dc, first_page=True)
        if not self._take_offered(state, data.get("start")):
            await self._say(dc, t(language, "booking.message.invalid_choice"))
            card = build_slot_taken_card(self._agency, language, [
                SlotOffer(datetime.fromisoformat(start), datetime.fromisoformat(end), office)
                for start, (end, office) in (state.get("offered") or {}).items()
            ])
            return await self._ask(dc, "taken", card, [Verb.BOOK_SLOT, Verb.BOOK_CHANGE])
        # The citizen confirmed everything else already: choosing an alternative books it.
        return await self._confirm(dc)

    async def _send_confirmation(self, dc: DialogContext, appointment: AppointmentView, title_key: str) -> None:
        """The confirmation card, then the calendar file (offered in Teams, attached elsewhere)."""
        language = self._info(dc).language
        card = build_confirmation_card(self._agency, language, appointment, title_key=title_key,
                                       changeable=self._booking.can_cancel(appointment), calendar_file=True)
        await self._send_card(dc, card)
        ics = self._booking.ics(appointment, language)
        attachment = calendar_attachment(dc.context.activity.channel_id, language, appointment.id, ics)
        await dc.context.send_activity(MessageFactory.attachment(attachment))
