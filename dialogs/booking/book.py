"""Booking an appointment: mode, office, subject, then the time (time_choice), the personal data and the
interview language, the summary, and the booking."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from botbuilder.dialogs import DialogContext, DialogTurnResult

from bot.domain.agency import Mode, PersonalField
from bot.domain.booking_rules import has_room_for_another
from bot.domain.channels import reader_on_web
from bot.domain.interview_language import decide_interview_language, language_reason, lives_in_bilingual_brussels
from bot.domain.personal_data import booking_fields, validate_personal_data
from bot.i18n import t
from bot.services.booking import TOO_MANY_UPCOMING, Booked, BookingService, Refused, SlotGone
from bot.services.container import Services
from cards.booking import (
    build_language_card,
    build_mode_card,
    build_office_card,
    build_personal_data_card,
    build_subject_card,
    interview_language_name,
    localized,
    mode_name,
    personal_display_value,
)
from cards.verbs import Verb
from dialogs.booking.flow import BookingSteps
from dialogs.booking.state import BookingState
from dialogs.booking.time_choice import ask_day, ask_summary, on_day, on_slot, on_summary, on_taken, summary
from dialogs.card_flow import CardFlow


class BookDialog(CardFlow[BookingState]):
    """Mode → office → subject → day → time → personal data → interview language → summary → book."""

    ID = "booking.book"

    def __init__(self, services: Services, booking: BookingService) -> None:
        super().__init__(self.ID, services, BookingState)
        self._booking = booking
        self._steps = BookingSteps(services, booking)

    async def _start(self, dc: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        info = self._info(dc)
        assert info.citizen_id is not None
        upcoming = await self._booking.upcoming(info.citizen_id)
        if not has_room_for_another(len(upcoming), self._agency.booking):
            # Said before the questions, not after them; the service checks again when booking.
            await self._say(dc, t(info.language, TOO_MANY_UPCOMING))
            await self._steps.send_appointments(dc, upcoming)
            return await dc.end_dialog()
        state = BookingState(search_language=await self._known_interview_language(info.citizen_id))
        if len(self._agency.modes) == 1:
            state.mode = self._agency.modes[0].value
            return await self._after_mode(dc, state)
        return await self._ask(dc, state, "mode", build_mode_card(self._agency, info.language), [Verb.BOOK_MODE])

    async def _known_interview_language(self, citizen_id: str) -> str | None:
        """The interview language if it is already certain (agency rule, or the saved postal code),
        so the days offered are those of counselors who speak it; None while a choice remains."""
        saved = await self._booking.saved_personal_data(citizen_id)
        postal_code = saved.get(PersonalField.POSTAL_CODE)
        decision = decide_interview_language(
            self._agency, postal_code=postal_code if isinstance(postal_code, str) else None, preferred=None)
        return decision.language

    async def _on_mode(self, dc: DialogContext, state: BookingState, verb: str,
                       data: dict[str, Any]) -> DialogTurnResult:
        language = self._info(dc).language
        mode = data.get("mode")
        if not isinstance(mode, str) or mode not in {m.value for m in self._agency.modes}:
            await self._say(dc, t(language, "booking.message.invalid_choice"))
            return await self._ask(dc, state, "mode", build_mode_card(self._agency, language), [Verb.BOOK_MODE])
        state.mode = mode
        await self._steps.mark(dc, t(language, "booking.step.mode", value=mode_name(language, mode)))
        return await self._after_mode(dc, state)

    async def _after_mode(self, dc: DialogContext, state: BookingState) -> DialogTurnResult:
        state.office = None
        if state.mode == Mode.OFFICE:
            if len(self._agency.offices) == 1:
                state.office = self._agency.offices[0].id
            else:
                card = build_office_card(self._agency, self._info(dc).language)
                return await self._ask(dc, state, "office", card, [Verb.BOOK_OFFICE])
        return await self._ask_subject(dc, state)

    async def _on_office(self, dc: DialogContext, state: BookingState, verb: str,
                         data: dict[str, Any]) -> DialogTurnResult:
        language = self._info(dc).language
        office = self._agency.office(data["office"]) if isinstance(data.get("office"), str) else None
        if office is None:
            await self._say(dc, t(language, "booking.message.invalid_choice"))
            card = build_office_card(self._agency, language)
            return await self._ask(dc, state, "office", card, [Verb.BOOK_OFFICE])
        state.office = office.id
        await self._steps.mark(dc, t(language, "booking.step.office",
                                     value=localized(self._agency, office.name, language)))
        return await self._ask_subject(dc, state)

    async def _ask_subject(self, dc: DialogContext, state: BookingState) -> DialogTurnResult:
        subjects = self._agency.subjects_for(state.mode)
        if len(subjects) == 1:
            state.subject = subjects[0]
            return await ask_day(self, dc, state, first_page=True)
        card = build_subject_card(self._agency, self._info(dc).language, state.mode)
        return await self._ask(dc, state, "subject", card, [Verb.BOOK_SUBJECT])

    async def _on_subject(self, dc: DialogContext, state: BookingState, verb: str,
                          data: dict[str, Any]) -> DialogTurnResult:
        language = self._info(dc).language
        subject_id = data.get("subject")
        if not isinstance(subject_id, str) or subject_id not in self._agency.subjects_for(state.mode):
            await self._say(dc, t(language, "booking.message.invalid_choice"))
            return await self._ask_subject(dc, state)
        state.subject = subject_id
        subject = self._agency.subject(subject_id)
        assert subject is not None
        await self._steps.mark(dc, t(language, "booking.step.subject",
                                     value=localized(self._agency, subject.name, language)))
        return await ask_day(self, dc, state, first_page=True)

    async def _after_slot(self, dc: DialogContext, state: BookingState) -> DialogTurnResult:
        if state.personal:
            # Coming back from "change the date or time": the details and language still stand.
            return await ask_summary(self, dc, state)
        return await self._ask_details(dc, state)

    async def _on_change_details(self, dc: DialogContext, state: BookingState) -> DialogTurnResult:
        return await self._ask_details(dc, state)

    async def _ask_details(self, dc: DialogContext, state: BookingState,
                           errors: Mapping[str, str] | None = None) -> DialogTurnResult:
        info = self._info(dc)
        assert info.citizen_id is not None
        if state.typed is not None:
            values, from_saved = state.typed, False
        elif state.personal:
            values, from_saved = self._display_values(info.language, state.personal), False
        else:
            saved = await self._booking.saved_personal_data(info.citizen_id, on_web=reader_on_web())
            values, from_saved = self._display_values(info.language, saved), bool(saved)
        card = build_personal_data_card(self._agency, info.language, values=values, errors=errors,
                                        prefilled_from_saved=from_saved)
        return await self._ask(dc, state, "details", card, [Verb.BOOK_PERSONAL_DATA])

    def _display_values(self, language: str, values: Mapping[PersonalField, str | date]) -> dict[str, str]:
        return {field.value: personal_display_value(self._agency, language, value) for field, value in values.items()}

    async def _on_details(self, dc: DialogContext, state: BookingState, verb: str,
                          data: dict[str, Any]) -> DialogTurnResult:
        language = self._info(dc).language
        fields = booking_fields(self._agency.personal_data_fields, on_web=reader_on_web())
        today = self._now().astimezone(self._agency.zone).date()
        checked = validate_personal_data(fields, data, country=self._agency.country, today=today)
        if not checked.ok:
            # Shown again as typed, so only the wrong fields need retyping; nothing is stored.
            state.typed = {field.value: data[field.value][:300] for field in fields
                           if isinstance(data.get(field.value), str)}
            await self._steps.mark(dc, t(language, "booking.step.details_to_correct"), done=False)
            return await self._ask_details(dc, state, {field.value: key for field, key in checked.errors.items()})
        state.typed = None
        state.personal = dict(checked.values)
        await self._steps.mark(dc, t(language, "booking.step.details"))
        return await self._ask_language(dc, state)

    async def _ask_language(self, dc: DialogContext, state: BookingState) -> DialogTurnResult:
        language = self._info(dc).language
        given = (state.personal or {}).get(PersonalField.POSTAL_CODE)
        postal_code = given if isinstance(given, str) else None
        decision = decide_interview_language(self._agency, postal_code=postal_code, preferred=None)
        if decision.language is not None:
            state.interview_language = decision.language
            return await ask_summary(self, dc, state)
        state.language_choices = list(decision.choices)
        brussels = lives_in_bilingual_brussels(self._agency, postal_code)
        card = build_language_card(self._agency, language, decision.choices, brussels=brussels)
        return await self._ask(dc, state, "language", card, [Verb.BOOK_LANGUAGE])

    async def _on_language(self, dc: DialogContext, state: BookingState, verb: str,
                           data: dict[str, Any]) -> DialogTurnResult:
        language = self._info(dc).language
        chosen = data.get("language")
        if not isinstance(chosen, str) or chosen not in state.language_choices:
            await self._say(dc, t(language, "booking.message.invalid_choice"))
            return await self._ask_language(dc, state)
        state.interview_language = chosen
        await self._steps.mark(dc, t(language, "booking.step.language",
                                     value=interview_language_name(language, chosen)))
        return await ask_summary(self, dc, state)

    def _summary_card(self, dc: DialogContext, state: BookingState) -> dict[str, Any]:
        given = (state.personal or {}).get(PersonalField.POSTAL_CODE)
        assert state.interview_language is not None, "the language is settled before the summary"
        reason = language_reason(self._agency, postal_code=given if isinstance(given, str) else None,
                                 interview_language=state.interview_language)
        return summary(self, dc, state, personal=state.personal or {}, language_reason=reason)

    async def _commit(self, dc: DialogContext, state: BookingState) -> Booked | SlotGone | Refused:
        info = self._info(dc)
        assert info.citizen_id is not None and state.interview_language is not None
        return await self._booking.book(
            citizen_id=info.citizen_id, mode=state.mode, subject_id=state.subject, office_id=state.chosen_office,
            start=state.chosen_slot.start, personal_data=state.personal or {},
            interview_language=state.interview_language, activity_id=dc.context.activity.id,
            on_web=reader_on_web(),
        )

    async def _on_booked(self, dc: DialogContext, booked: Booked) -> None:
        await self._steps.send_confirmation(dc, booked, "booking.confirmation.title")

    STATES = {
        "mode": _on_mode, "office": _on_office, "subject": _on_subject, "details": _on_details,
        "language": _on_language, "day": on_day, "slot": on_slot, "summary": on_summary, "taken": on_taken,
    }
