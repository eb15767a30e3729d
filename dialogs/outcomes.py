"""The citizen's side of an interview that does not go as planned: "I have a technical problem" and
"Nobody has joined yet" from the reminder, and booking one of the new times offered after them.

The reminder stays as it is (it carries the join link); the answers come as new messages. A counselor's
card replayed from a citizen's chat reaches the staff report dialog, which refuses and audits it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botbuilder.dialogs import DialogContext, DialogTurnResult

from bot.commands import Intent
from bot.domain.appointment import Outcome
from bot.i18n import t
from bot.services.booking import Booked, BookingService, SlotGone
from bot.services.container import Services
from bot.services.outcomes import NotYet, OutcomeService, Recorded, Settled
from bot.services.staff import StaffService
from cards.booking import build_step_done_card
from cards.outcomes import build_new_times_card, build_wait_card
from cards.verbs import Verb
from dialogs.booking.flow import BookingSteps, not_found_text
from dialogs.card_flow import CardFlow, NoState
from dialogs.main_dialog import Entry, Feature
from dialogs.pressed_card import replace_pressed_card
from dialogs.staff import StaffOutcomeDialog

_REPORTS = {Verb.APPT_TECHNICAL_PROBLEM: Outcome.TECHNICAL_PROBLEM, Verb.APPT_NOBODY_JOINED: Outcome.AGENCY_LATE}


class CitizenReportDialog(CardFlow[NoState]):
    """The reminder's "I have a technical problem" / "Nobody has joined yet"."""

    ID = "outcomes.citizen_report"

    def __init__(self, services: Services, booking: BookingService, outcomes: OutcomeService) -> None:
        super().__init__(self.ID, services, NoState)
        self._booking = booking
        self._outcomes = outcomes

    async def _start(self, dc: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        info = self._info(dc)
        assert info.citizen_id is not None and info.action is not None
        outcome = _REPORTS.get(Verb(info.action.verb)) if info.action.verb in set(Verb) else None
        report = await self._outcomes.report_by_citizen(info.citizen_id, options.get("appointment_id"), outcome)
        language = info.language
        if isinstance(report, Recorded):
            offered = await self._booking.rebook_offers(info.citizen_id, report.appointment.id)
            offers, same = (offered[1], offered[2]) if offered is not None else ([], 0)
            why = "technical" if report.outcome is Outcome.TECHNICAL_PROBLEM else "agency_late"
            await self._send_card(dc, build_new_times_card(self._agency, language, report.appointment, offers,
                                                           why=why, same_counselor=same,
                                                           team_alerted=report.team_alerted is not False))
        elif isinstance(report, NotYet):
            await self._send_card(dc, build_wait_card(self._agency, language, report.appointment,
                                                      started=report.started, until=report.until))
        elif isinstance(report, Settled):
            await self._say(dc, t(language, "booking.message.not_active"))
        else:
            await self._say(dc, not_found_text(language))
        return await dc.end_dialog()


class RebookDialog(CardFlow[NoState]):
    """One of the new times offered after a technical problem or an absent agency, booked in place."""

    ID = "outcomes.rebook"

    def __init__(self, services: Services, booking: BookingService) -> None:
        super().__init__(self.ID, services, NoState)
        self._booking = booking
        self._steps = BookingSteps(services, booking)

    async def _start(self, dc: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        info = self._info(dc)
        assert info.citizen_id is not None
        language = info.language
        try:
            start = datetime.fromisoformat(str(options.get("start")))
        except ValueError:
            await self._say(dc, t(language, "booking.message.invalid_choice"))
            return await dc.end_dialog()
        outcome = await self._booking.rebook(citizen_id=info.citizen_id, appointment_id=options.get("appointment_id"),
                                             start=start)
        if isinstance(outcome, Booked):
            await self._steps.mark(dc, t(language, "booking.step.confirmed"))
            await self._steps.send_confirmation(dc, outcome, "booking.confirmation.title_rescheduled")
        elif isinstance(outcome, SlotGone):
            view = await self._booking.get_own(info.citizen_id, options.get("appointment_id"))
            card = build_new_times_card(self._agency, language, view, outcome.alternatives, why="technical",
                                        same_counselor=0) if view is not None else None
            await self._steps.mark(dc, t(language, "booking.taken.title"), done=False)
            if card is not None:
                await self._send_card(dc, card)
        else:
            await self._steps.refused(dc, outcome)
        return await dc.end_dialog()


class StaffOnlyDialog(CardFlow[NoState]):
    """A staff command or button reached from a citizen's chat: said kindly, nothing done."""

    ID = "outcomes.staff_only"

    async def _start(self, dc: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        text = t(self._info(dc).language, "conversation.staff_only")
        await replace_pressed_card(dc.context, build_step_done_card(self._info(dc).language, text, done=False),
                                   else_send=text)
        return await dc.end_dialog()


def build_outcomes_feature(services: Services, *, booking: BookingService, outcomes: OutcomeService,
                           staff: StaffService) -> Feature:
    report = Entry(CitizenReportDialog.ID)
    staff_only = Entry(StaffOnlyDialog.ID)
    return Feature(
        dialogs=[CitizenReportDialog(services, booking, outcomes),
                 RebookDialog(services, booking),
                 StaffOnlyDialog(StaffOnlyDialog.ID, services, NoState),
                 StaffOutcomeDialog(services, staff, outcomes)],
        intents={Intent.MY_DAY: staff_only, Intent.STATISTICS: staff_only},
        verbs={
            Verb.APPT_TECHNICAL_PROBLEM: report,
            Verb.APPT_NOBODY_JOINED: report,
            Verb.APPT_REBOOK: Entry(RebookDialog.ID, needs_consent=True),
            # A counselor's card in a citizen's chat: the report dialog refuses it and audits the attempt.
            Verb.STAFF_OUTCOME: Entry(StaffOutcomeDialog.ID),
            Verb.STAFF_MY_DAY: staff_only,
            Verb.STAFF_STATISTICS: staff_only,
        },
    )
