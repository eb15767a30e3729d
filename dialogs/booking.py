"""Booking dialogs: book, list, see, move and cancel appointments; deliver the calendar file.

Each flow is a small state machine over cards: a state sends one card through AwaitCard and names
the handler that reads its answer, so steps can loop (a form shown again with its errors, "more
days", "change the date", a time taken meanwhile) without nesting dialogs. The rules live in the
booking service and the domain; what a card sends back is checked against what this flow offered
(days, times, languages) before anything is asked of the service, which checks again.

The calendar file: Teams refuses message attachments other than cards and images ("Unknown attachment
type"), so in Teams the .ics goes through the file consent card of personal chats: the bot offers
the file, the citizen allows it, Teams gives an upload URL in the citizen's OneDrive, the bot
uploads and posts the file card (`booking.calendar_file`, reached through TeamsBot's routing of
`fileConsent/invoke` by the verb in the card's context). Other channels (Web Chat, the Emulator)
accept a data-URL attachment, which is sent there instead.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from botbuilder.core import MessageFactory, TurnContext
from botbuilder.dialogs import Dialog, DialogContext, DialogReason, DialogTurnResult
from botbuilder.schema import Attachment

from bot.commands import Intent
from bot.domain.agency import InterviewLanguageRule, Mode, PersonalField
from bot.domain.appointment import is_active
from bot.domain.booking_rules import has_room_for_another
from bot.domain.interview_language import belgian_region_language, decide_interview_language
from bot.domain.personal_data import validate_personal_data
from bot.i18n import LANGUAGES, t
from bot.integrations.file_upload import UploadFailed, upload_file
from bot.services.booking import (
    TOO_MANY_UPCOMING,
    AppointmentView,
    Booked,
    BookingService,
    Cancelled,
    Refused,
    SlotGone,
    SlotOffer,
)
from bot.services.container import Services
from bot.teams_bot import card_message
from bot.turn import TurnInfo, turn_info
from cards.booking import (
    CANCEL_NOTE_MAX_LENGTH,
    DAYS_PER_PAGE,
    FILE_CONSENT_CARD,
    FILE_INFO_CARD,
    build_appointments_card,
    build_calendar_file_offer,
    build_cancel_confirm_card,
    build_cancelled_card,
    build_confirmation_card,
    build_cutoff_card,
    build_day_card,
    build_language_card,
    build_mode_card,
    build_no_days_card,
    build_no_upcoming_card,
    build_office_card,
    build_personal_data_card,
    build_pick_appointment_card,
    build_slot_card,
    build_slot_taken_card,
    build_step_done_card,
    build_subject_card,
    build_summary_card,
    calendar_file_name,
    interview_language_name,
    localized,
    mode_name,
    personal_display_value,
    subjects_for,
)
from cards.calendar import build_ics
from cards.formatting import format_day_short, format_time, to_local
from cards.verbs import Verb
from dialogs.await_card import AwaitCard
from dialogs.main_dialog import Entry, Feature

log = logging.getLogger(__name__)

BOOK_DIALOG = "booking.book"
LIST_DIALOG = "booking.list"
DETAILS_DIALOG = "booking.details"
RESCHEDULE_DIALOG = "booking.reschedule"
CANCEL_DIALOG = "booking.cancel"
CALENDAR_FILE_DIALOG = "booking.calendar_file"

_AWAITING = "awaiting"

Handler = Callable[[DialogContext, str, dict[str, Any]], Awaitable[DialogTurnResult]]


# --- Turn helpers ------------------------------------------------------------------------------------


def _mark(context: TurnContext, text: str, *, done: bool = True) -> None:
    """Replace the pressed card (Action.Execute) by what was chosen, so it cannot be used twice."""
    info = turn_info(context)
    if info.action is not None and info.action.via_invoke:
        info.refreshed_card = build_step_done_card(info.language, text, done=done)


def _refusal_text(language: str, refused: Refused) -> str:
    try:
        return t(language, refused.reason, **refused.params)
    except (KeyError, IndexError):
        log.warning("booking: refusal %s has no message", refused.reason)
        return t(language, "booking.message.refused")


def _not_found_text(language: str) -> str:
    return t(language, "booking.message.not_found", command=t(language, "help.command.my_appointments"))


def calendar_attachment(channel_id: str | None, language: str, appointment_id: str, ics: bytes) -> Attachment:
    """The calendar file as this channel can take it: a file consent card in Teams, else a data URL."""
    name = calendar_file_name(language)
    if channel_id == "msteams":
        return Attachment(content_type=FILE_CONSENT_CARD, name=name,
                          content=build_calendar_file_offer(language, appointment_id=appointment_id,
                                                            size_in_bytes=len(ics)))
    return Attachment(content_type="text/calendar", name=name,
                      content_url="data:text/calendar;base64," + base64.b64encode(ics).decode("ascii"))


# --- The state-machine base -----------------------------------------------------------------------


class _CardFlow(Dialog):
    """A flow of cards: `_ask` sends a card and records which handler reads its answer."""

    def __init__(self, dialog_id: str, services: Services, booking: BookingService) -> None:
        super().__init__(dialog_id)
        self._services = services
        self._agency = services.agency
        self._booking = booking
        self._handlers: dict[str, Handler] = {}

    async def begin_dialog(self, dialog_context: DialogContext, options: Any = None) -> DialogTurnResult:
        info = turn_info(dialog_context.context)
        if info.citizen_id is None:
            await dialog_context.context.send_activity(t(info.language, "conversation.error_generic"))
            return await dialog_context.end_dialog()
        return await self._start(dialog_context, dict(options) if isinstance(options, Mapping) else {})

    async def resume_dialog(
        self, dialog_context: DialogContext, reason: DialogReason, result: object = None
    ) -> DialogTurnResult:
        awaiting = dialog_context.active_dialog.state.pop(_AWAITING, None)
        handler = self._handlers.get(awaiting) if isinstance(awaiting, str) else None
        if handler is None:
            return await dialog_context.end_dialog()
        answer = result if isinstance(result, dict) else {}
        data = answer.get("data")
        return await handler(dialog_context, str(answer.get("verb") or ""), data if isinstance(data, dict) else {})

    async def _start(self, dc: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        raise NotImplementedError

    async def _ask(self, dc: DialogContext, awaiting: str, card: dict[str, Any], verbs: list[Verb]) -> DialogTurnResult:
        dc.active_dialog.state[_AWAITING] = awaiting
        return await dc.begin_dialog(AwaitCard.ID, {"card": card, "verbs": [str(verb) for verb in verbs]})

    @staticmethod
    def _state(dc: DialogContext) -> dict[str, Any]:
        return dc.active_dialog.state

    @staticmethod
    def _info(dc: DialogContext) -> TurnInfo:
        return turn_info(dc.context)

    def _now(self) -> datetime:
        return self._services.clock.now()

    async def _say(self, dc: DialogContext, text: str) -> None:
        await dc.context.send_activity(text)

    async def _send_card(self, dc: DialogContext, card: dict[str, Any]) -> None:
        await dc.context.send_activity(card_message(card))

    async def _own_active(self, dc: DialogContext, appointment_id: object) -> AppointmentView | None:
        """The citizen's own upcoming appointment, or None after telling them why not."""
        info = self._info(dc)
        assert info.citizen_id is not None
        appointment = await self._booking.get_own(info.citizen_id, appointment_id)
        if appointment is None:
            # Someone else's id, a made-up one, or one erased since: the same answer for all three.
            await self._say(dc, _not_found_text(info.language))
            return None
        if not is_active(appointment.status, appointment.ends_at, self._now()):
            await self._say(dc, t(info.language, "booking.message.not_active"))
            return None
        return appointment

    async def _pick_or_single(self, dc: DialogContext, options: dict[str, Any], purpose: str) -> object | None:
        """The appointment id the flow is about: given by the button, the only upcoming one, or None
        after sending a card to pick one (or saying there is none)."""
        if options.get("appointment_id") is not None:
            return options["appointment_id"]
        info = self._info(dc)
        assert info.citizen_id is not None
        upcoming = await self._booking.upcoming(info.citizen_id)
        if not upcoming:
            await self._send_card(dc, build_no_upcoming_card(info.language))
            return None
        if len(upcoming) == 1:
            return upcoming[0].id
        await self._send_card(dc, build_pick_appointment_card(self._agency, info.language, upcoming, purpose=purpose))
        return None

    async def _refused(self, dc: DialogContext, refused: Refused) -> None:
        """Why it could not be done: in the pressed card (Action.Execute), else as a message."""
        info = self._info(dc)
        text = _refusal_text(info.language, refused)
        if info.action is not None and info.action.via_invoke:
            _mark(dc.context, text, done=False)
        else:
            await self._say(dc, text)

    async def _send_confirmation(self, dc: DialogContext, appointment: AppointmentView, title_key: str) -> None:
        """The confirmation card, then the calendar file (offered in Teams, attached elsewhere)."""
        language = self._info(dc).language
        card = build_confirmation_card(self._agency, language, appointment, title_key=title_key,
                                       changeable=self._booking.can_cancel(appointment), calendar_file=True)
        await self._send_card(dc, card)
        ics = build_ics(self._agency, appointment, language, now=self._now())
        attachment = calendar_attachment(dc.context.activity.channel_id, language, appointment.id, ics)
        await dc.context.send_activity(MessageFactory.attachment(attachment))


# --- Choosing a time: shared by booking and rescheduling ----------------------------------------------


class _TimeChoice(_CardFlow):
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
            _mark(dc.context, t(language, "booking.step.more_days"))
            return await self._ask_day(dc)
        day = data.get("day")
        if not isinstance(day, str) or day not in state.get("days", []):
            await self._say(dc, t(language, "booking.message.invalid_choice"))
            return await self._ask_day(dc)
        state["day"] = day
        _mark(dc.context, t(language, "booking.step.day",
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
            _mark(dc.context, t(language, "booking.step.change_day"))
            return await self._ask_day(dc)
        if not self._take_offered(state, data.get("start")):
            await self._say(dc, t(language, "booking.message.invalid_choice"))
            return await self._ask_slot(dc)
        _mark(dc.context, t(language, "booking.step.slot", value=self._chosen_time_text(state, language)))
        return await self._after_slot(dc)

    async def _ask_summary(self, dc: DialogContext) -> DialogTurnResult:
        card = await self._summary_card(dc)
        return await self._ask(dc, "summary", card, [Verb.BOOK_CONFIRM, Verb.BOOK_CHANGE])

    async def _on_summary(self, dc: DialogContext, verb: str, data: dict[str, Any]) -> DialogTurnResult:
        language = self._info(dc).language
        if verb == Verb.BOOK_CHANGE:
            if data.get("to") == "details":
                _mark(dc.context, t(language, "booking.step.change_details"))
                return await self._on_change_details(dc)
            _mark(dc.context, t(language, "booking.step.change_day"))
            return await self._ask_day(dc, first_page=True)
        return await self._confirm(dc)

    async def _confirm(self, dc: DialogContext) -> DialogTurnResult:
        language = self._info(dc).language
        outcome = await self._commit(dc)
        if isinstance(outcome, Booked):
            _mark(dc.context, t(language, "booking.step.confirmed"))
            await self._on_booked(dc, outcome.appointment)
            return await dc.end_dialog(outcome.appointment.id)
        if isinstance(outcome, SlotGone):
            _mark(dc.context, t(language, "booking.taken.title"), done=False)
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
            _mark(dc.context, t(language, "booking.step.change_day"))
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


# --- Booking -----------------------------------------------------------------------------------------


class BookDialog(_TimeChoice):
    """Mode → office → subject → day → time → personal data → interview language → summary → book."""

    ID = BOOK_DIALOG

    def __init__(self, services: Services, booking: BookingService) -> None:
        super().__init__(self.ID, services, booking)
        self._handlers.update({"mode": self._on_mode, "office": self._on_office, "subject": self._on_subject,
                               "details": self._on_details, "language": self._on_language})

    async def _start(self, dc: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        state = self._state(dc)
        info = self._info(dc)
        assert info.citizen_id is not None
        upcoming = await self._booking.upcoming(info.citizen_id)
        if not has_room_for_another(len(upcoming), self._agency.booking):
            # Said before the questions, not after them; the service checks again when booking.
            await self._say(dc, t(info.language, TOO_MANY_UPCOMING))
            changeable = {a.id for a in upcoming if self._booking.can_cancel(a)}
            await self._send_card(dc, build_appointments_card(self._agency, info.language, upcoming,
                                                              changeable=changeable))
            return await dc.end_dialog()
        state["search_language"] = await self._known_interview_language(info.citizen_id)
        if len(self._agency.modes) == 1:
            state["mode"] = self._agency.modes[0].value
            return await self._after_mode(dc)
        return await self._ask(dc, "mode", build_mode_card(self._agency, info.language), [Verb.BOOK_MODE])

    async def _known_interview_language(self, citizen_id: str) -> str | None:
        """The interview language if it is already certain (agency rule, or the saved postal code),
        so the days offered are those of counselors who speak it; None while a choice remains."""
        saved = await self._booking.saved_personal_data(citizen_id)
        postal_code = saved.get(PersonalField.POSTAL_CODE)
        decision = decide_interview_language(
            self._agency, postal_code=postal_code if isinstance(postal_code, str) else None, preferred=None)
        return decision.language

    async def _on_mode(self, dc: DialogContext, verb: str, data: dict[str, Any]) -> DialogTurnResult:
        language = self._info(dc).language
        mode = data.get("mode")
        if mode not in {m.value for m in self._agency.modes}:
            await self._say(dc, t(language, "booking.message.invalid_choice"))
            return await self._ask(dc, "mode", build_mode_card(self._agency, language), [Verb.BOOK_MODE])
        self._state(dc)["mode"] = mode
        _mark(dc.context, t(language, "booking.step.mode", value=mode_name(language, mode)))
        return await self._after_mode(dc)

    async def _after_mode(self, dc: DialogContext) -> DialogTurnResult:
        state = self._state(dc)
        state["office"] = None
        if state["mode"] == Mode.OFFICE:
            if len(self._agency.offices) == 1:
                state["office"] = self._agency.offices[0].id
            else:
                card = build_office_card(self._agency, self._info(dc).language)
                return await self._ask(dc, "office", card, [Verb.BOOK_OFFICE])
        return await self._ask_subject(dc)

    async def _on_office(self, dc: DialogContext, verb: str, data: dict[str, Any]) -> DialogTurnResult:
        language = self._info(dc).language
        office = self._agency.office(data["office"]) if isinstance(data.get("office"), str) else None
        if office is None:
            await self._say(dc, t(language, "booking.message.invalid_choice"))
            return await self._ask(dc, "office", build_office_card(self._agency, language), [Verb.BOOK_OFFICE])
        self._state(dc)["office"] = office.id
        _mark(dc.context, t(language, "booking.step.office", value=localized(self._agency, office.name, language)))
        return await self._ask_subject(dc)

    async def _ask_subject(self, dc: DialogContext) -> DialogTurnResult:
        state = self._state(dc)
        subjects = subjects_for(self._agency, state["mode"])
        if len(subjects) == 1:
            state["subject"] = subjects[0]
            return await self._ask_day(dc, first_page=True)
        card = build_subject_card(self._agency, self._info(dc).language, state["mode"])
        return await self._ask(dc, "subject", card, [Verb.BOOK_SUBJECT])

    async def _on_subject(self, dc: DialogContext, verb: str, data: dict[str, Any]) -> DialogTurnResult:
        state = self._state(dc)
        language = self._info(dc).language
        subject_id = data.get("subject")
        if subject_id not in subjects_for(self._agency, state["mode"]):
            await self._say(dc, t(language, "booking.message.invalid_choice"))
            return await self._ask_subject(dc)
        state["subject"] = subject_id
        subject = self._agency.subject(subject_id)
        assert subject is not None
        _mark(dc.context, t(language, "booking.step.subject", value=localized(self._agency, subject.name, language)))
        return await self._ask_day(dc, first_page=True)

    async def _after_slot(self, dc: DialogContext) -> DialogTurnResult:
        if self._state(dc).get("personal"):
            # Coming back from "change the date or time": the details and language still stand.
            return await self._ask_summary(dc)
        return await self._ask_details(dc)

    async def _on_change_details(self, dc: DialogContext) -> DialogTurnResult:
        return await self._ask_details(dc)

    async def _ask_details(self, dc: DialogContext, errors: Mapping[str, str] | None = None) -> DialogTurnResult:
        state = self._state(dc)
        info = self._info(dc)
        assert info.citizen_id is not None
        typed: dict[str, str] | None = state.get("typed")
        if typed is not None:
            values, from_saved = typed, False
        elif state.get("personal"):
            values, from_saved = self._display_values(info.language, self._personal(state)), False
        else:
            saved = await self._booking.saved_personal_data(info.citizen_id)
            values, from_saved = self._display_values(info.language, saved), bool(saved)
        card = build_personal_data_card(self._agency, info.language, values=values, errors=errors,
                                        prefilled_from_saved=from_saved)
        return await self._ask(dc, "details", card, [Verb.BOOK_PERSONAL_DATA])

    def _display_values(self, language: str, values: Mapping[PersonalField, str | date]) -> dict[str, str]:
        return {field.value: personal_display_value(self._agency, language, value) for field, value in values.items()}

    @staticmethod
    def _personal(state: dict[str, Any]) -> dict[PersonalField, str | date]:
        stored: dict[str, str] = state.get("personal") or {}
        return {PersonalField(key): date.fromisoformat(value) if key == PersonalField.BIRTH_DATE else value
                for key, value in stored.items()}

    async def _on_details(self, dc: DialogContext, verb: str, data: dict[str, Any]) -> DialogTurnResult:
        state = self._state(dc)
        language = self._info(dc).language
        fields = self._agency.personal_data_fields
        today = self._now().astimezone(self._agency.zone).date()
        checked = validate_personal_data(fields, data, country=self._agency.country, today=today)
        if not checked.ok:
            # Shown again as typed, so only the wrong fields need retyping; nothing is stored.
            state["typed"] = {field.value: data[field.value][:300] for field in fields
                              if isinstance(data.get(field.value), str)}
            _mark(dc.context, t(language, "booking.step.details_to_correct"), done=False)
            return await self._ask_details(dc, {field.value: key for field, key in checked.errors.items()})
        state.pop("typed", None)
        state["personal"] = {field.value: value.isoformat() if isinstance(value, date) else value
                             for field, value in checked.values.items()}
        _mark(dc.context, t(language, "booking.step.details"))
        return await self._ask_language(dc)

    async def _ask_language(self, dc: DialogContext) -> DialogTurnResult:
        state = self._state(dc)
        language = self._info(dc).language
        postal_code = (state.get("personal") or {}).get(PersonalField.POSTAL_CODE.value)
        decision = decide_interview_language(self._agency, postal_code=postal_code, preferred=None)
        if decision.language is not None:
            state["interview_language"] = decision.language
            return await self._ask_summary(dc)
        state["language_choices"] = list(decision.choices)
        brussels = (self._agency.interview_language_rule is InterviewLanguageRule.BELGIAN_RESIDENCE
                    and len(belgian_region_language(postal_code or "")) > 1)
        card = build_language_card(self._agency, language, decision.choices, brussels=brussels)
        return await self._ask(dc, "language", card, [Verb.BOOK_LANGUAGE])

    async def _on_language(self, dc: DialogContext, verb: str, data: dict[str, Any]) -> DialogTurnResult:
        state = self._state(dc)
        language = self._info(dc).language
        chosen = data.get("language")
        if not isinstance(chosen, str) or chosen not in state.get("language_choices", []):
            await self._say(dc, t(language, "booking.message.invalid_choice"))
            return await self._ask_language(dc)
        state["interview_language"] = chosen
        _mark(dc.context, t(language, "booking.step.language", value=interview_language_name(language, chosen)))
        return await self._ask_summary(dc)

    async def _summary_card(self, dc: DialogContext) -> dict[str, Any]:
        state = self._state(dc)
        return build_summary_card(
            self._agency, self._info(dc).language, mode=state["mode"], subject_id=state["subject"],
            office_id=state.get("slot_office") or state.get("office"), start=datetime.fromisoformat(state["start"]),
            end=datetime.fromisoformat(state["end"]), interview_language=state["interview_language"],
            personal=self._personal(state),
        )

    async def _commit(self, dc: DialogContext) -> Booked | SlotGone | Refused:
        state = self._state(dc)
        info = self._info(dc)
        assert info.citizen_id is not None
        return await self._booking.book(
            citizen_id=info.citizen_id, mode=state["mode"], subject_id=state["subject"],
            office_id=state.get("slot_office") or state.get("office"), start=datetime.fromisoformat(state["start"]),
            personal_data=self._personal(state), interview_language=state["interview_language"],
            activity_id=dc.context.activity.id,
        )

    async def _on_booked(self, dc: DialogContext, appointment: AppointmentView) -> None:
        await self._send_confirmation(dc, appointment, "booking.confirmation.title")


# --- Rescheduling --------------------------------------------------------------------------------------


class RescheduleDialog(_TimeChoice):
    """Which appointment (the button's, or pick one) → day → time → summary → move."""

    ID = RESCHEDULE_DIALOG

    def __init__(self, services: Services, booking: BookingService) -> None:
        super().__init__(self.ID, services, booking)

    async def _start(self, dc: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        appointment_id = await self._pick_or_single(dc, options, "reschedule")
        if appointment_id is None:
            return await dc.end_dialog()
        appointment = await self._own_active(dc, appointment_id)
        if appointment is None:
            return await dc.end_dialog()
        if not self._booking.can_cancel(appointment):
            await self._send_card(dc, build_cutoff_card(self._agency, self._info(dc).language, appointment))
            return await dc.end_dialog()
        state = self._state(dc)
        state.update({
            "appointment_id": appointment.id, "mode": appointment.mode.value, "subject": appointment.subject_id,
            "office": appointment.office_id, "search_language": appointment.interview_language,
            "exclude": appointment.id, "previous_start": appointment.starts_at.isoformat(),
            "interview_language": appointment.interview_language,
        })
        return await self._ask_day(dc, first_page=True)

    async def _after_slot(self, dc: DialogContext) -> DialogTurnResult:
        return await self._ask_summary(dc)

    async def _summary_card(self, dc: DialogContext) -> dict[str, Any]:
        state = self._state(dc)
        return build_summary_card(
            self._agency, self._info(dc).language, mode=state["mode"], subject_id=state["subject"],
            office_id=state.get("slot_office") or state.get("office"), start=datetime.fromisoformat(state["start"]),
            end=datetime.fromisoformat(state["end"]), interview_language=state["interview_language"],
            previous_start=datetime.fromisoformat(state["previous_start"]),
        )

    async def _commit(self, dc: DialogContext) -> Booked | SlotGone | Refused:
        state = self._state(dc)
        info = self._info(dc)
        assert info.citizen_id is not None
        return await self._booking.reschedule(
            citizen_id=info.citizen_id, appointment_id=state["appointment_id"],
            start=datetime.fromisoformat(state["start"]), office_id=state.get("slot_office") or state.get("office"),
        )

    async def _on_booked(self, dc: DialogContext, appointment: AppointmentView) -> None:
        await self._send_confirmation(dc, appointment, "booking.confirmation.title_rescheduled")


# --- Cancelling ----------------------------------------------------------------------------------------


class CancelDialog(_CardFlow):
    """Which appointment → before the cut-off? → confirm with an optional reason → cancel."""

    ID = CANCEL_DIALOG

    def __init__(self, services: Services, booking: BookingService) -> None:
        super().__init__(self.ID, services, booking)
        self._handlers["confirm"] = self._on_confirm

    async def _start(self, dc: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        appointment_id = await self._pick_or_single(dc, options, "cancel")
        if appointment_id is None:
            return await dc.end_dialog()
        appointment = await self._own_active(dc, appointment_id)
        if appointment is None:
            return await dc.end_dialog()
        language = self._info(dc).language
        if not self._booking.can_cancel(appointment):
            await self._send_card(dc, build_cutoff_card(self._agency, language, appointment))
            return await dc.end_dialog()
        self._state(dc)["appointment_id"] = appointment.id
        card = build_cancel_confirm_card(self._agency, language, appointment)
        return await self._ask(dc, "confirm", card, [Verb.APPT_CANCEL_CONFIRM, Verb.APPT_KEEP])

    async def _on_confirm(self, dc: DialogContext, verb: str, data: dict[str, Any]) -> DialogTurnResult:
        info = self._info(dc)
        language = info.language
        assert info.citizen_id is not None
        via_invoke = info.action is not None and info.action.via_invoke
        if verb == Verb.APPT_KEEP:
            _mark(dc.context, t(language, "booking.step.kept"))
            if not via_invoke:
                await self._say(dc, t(language, "booking.message.kept"))
            return await dc.end_dialog()
        reason = data.get("reason")
        note = reason.strip()[:CANCEL_NOTE_MAX_LENGTH] if isinstance(reason, str) and reason.strip() else None
        outcome = await self._booking.cancel(citizen_id=info.citizen_id,
                                             appointment_id=self._state(dc)["appointment_id"], reason_note=note)
        if isinstance(outcome, Cancelled):
            card = build_cancelled_card(self._agency, language, outcome.appointment)
            if via_invoke:
                info.refreshed_card = card
            else:
                await self._send_card(dc, card)
            return await dc.end_dialog(outcome.appointment.id)
        await self._refused(dc, outcome)
        return await dc.end_dialog()


# --- One-card answers: the list and one appointment's details ------------------------------------------


class MyAppointmentsDialog(_CardFlow):
    ID = LIST_DIALOG

    def __init__(self, services: Services, booking: BookingService) -> None:
        super().__init__(self.ID, services, booking)

    async def _start(self, dc: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        info = self._info(dc)
        assert info.citizen_id is not None
        upcoming = await self._booking.upcoming(info.citizen_id)
        changeable = {appointment.id for appointment in upcoming if self._booking.can_cancel(appointment)}
        await self._send_card(dc, build_appointments_card(self._agency, info.language, upcoming,
                                                          changeable=changeable))
        return await dc.end_dialog()


class AppointmentDetailsDialog(_CardFlow):
    ID = DETAILS_DIALOG

    def __init__(self, services: Services, booking: BookingService) -> None:
        super().__init__(self.ID, services, booking)

    async def _start(self, dc: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        appointment = await self._own_active(dc, options.get("appointment_id"))
        if appointment is not None:
            card = build_confirmation_card(self._agency, self._info(dc).language, appointment,
                                           title_key="booking.confirmation.title_details",
                                           changeable=self._booking.can_cancel(appointment))
            await self._send_card(dc, card)
        return await dc.end_dialog()


# --- The calendar file in Teams -------------------------------------------------------------------------


class CalendarFileDialog(_CardFlow):
    """The citizen's answer to the calendar file's consent card: upload the file once allowed.

    TeamsBot routes the `fileConsent/invoke` here as the verb `appt_calendar_file`, with the card's
    context plus `file_action` and `upload_info` as data. The appointment must be the citizen's own.
    """

    ID = CALENDAR_FILE_DIALOG

    def __init__(self, services: Services, booking: BookingService) -> None:
        super().__init__(self.ID, services, booking)

    async def _start(self, dc: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        info = self._info(dc)
        assert info.citizen_id is not None
        chosen = options.get("language")
        language = chosen if isinstance(chosen, str) and chosen in LANGUAGES else info.language
        if options.get("file_action") != "accept":
            await self._say(dc, t(language, "booking.calendar.declined",
                                  command=t(language, "help.command.my_appointments")))
            return await dc.end_dialog()
        appointment = await self._booking.get_own(info.citizen_id, options.get("appointment_id"))
        if appointment is None:
            await self._say(dc, _not_found_text(language))
            return await dc.end_dialog()
        given = options.get("upload_info")
        upload: dict[str, Any] = given if isinstance(given, dict) else {}
        upload_url = upload.get("uploadUrl")
        try:
            if not isinstance(upload_url, str):
                raise UploadFailed("no upload address")
            await upload_file(upload_url, build_ics(self._agency, appointment, language, now=self._now()))
        except UploadFailed:
            await self._say(dc, t(language, "booking.calendar.failed"))
            return await dc.end_dialog()
        file_card = Attachment(
            content_type=FILE_INFO_CARD, name=str(upload.get("name") or calendar_file_name(language)),
            content_url=str(upload.get("contentUrl") or ""),
            content={"uniqueId": upload.get("uniqueId"), "fileType": upload.get("fileType") or "ics"},
        )
        await dc.context.send_activity(MessageFactory.attachment(file_card, text=t(language, "booking.calendar.sent")))
        return await dc.end_dialog()


# --- The feature ---------------------------------------------------------------------------------------


def build_booking_feature(services: Services) -> Feature:
    booking = BookingService(services)
    book = Entry(BOOK_DIALOG, needs_consent=True)
    listing = Entry(LIST_DIALOG)
    reschedule = Entry(RESCHEDULE_DIALOG, needs_consent=True)
    cancel = Entry(CANCEL_DIALOG)
    return Feature(
        dialogs=[
            BookDialog(services, booking),
            RescheduleDialog(services, booking),
            CancelDialog(services, booking),
            MyAppointmentsDialog(services, booking),
            AppointmentDetailsDialog(services, booking),
            CalendarFileDialog(services, booking),
        ],
        intents={
            Intent.BOOK: book,
            Intent.MY_APPOINTMENTS: listing,
            Intent.RESCHEDULE: reschedule,
            Intent.CANCEL_APPOINTMENT: cancel,
        },
        verbs={
            Verb.MENU_BOOK: book,
            Verb.MENU_MY_APPOINTMENTS: listing,
            Verb.APPT_DETAILS: Entry(DETAILS_DIALOG),
            Verb.APPT_RESCHEDULE: reschedule,
            Verb.APPT_CANCEL: cancel,
            Verb.APPT_CALENDAR_FILE: Entry(CALENDAR_FILE_DIALOG),
        },
    )

