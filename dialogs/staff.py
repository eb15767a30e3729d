"""The agency's staff in the chat: their root dialog (day, statistics, help) and the answer to a report
pressed on a prompt or a no-show question, which replaces the pressed card.

Every turn of a staff member is one answer: nothing waits for a next message. A report from anyone else
(a citizen replaying a counselor's card) is refused by the outcome service and audited there.
"""

from __future__ import annotations

from typing import Any

from botbuilder.dialogs import DialogContext, DialogTurnResult
from botbuilder.schema import ActivityTypes

from bot.commands import Intent, recognize
from bot.domain.agency import Agency
from bot.i18n import t
from bot.replies import card_message
from bot.services.audit import citizen_actor, counselor_actor
from bot.services.container import Services
from bot.services.outcomes import AskLater, OutcomeService, Recorded, Settled, StaffReport, TooEarly
from bot.services.staff import StaffService
from bot.turn import TurnInfo, turn_info
from cards.formatting import duration_text, format_time, to_local
from cards.staff import (
    build_prompt_card,
    build_recorded_card,
    build_staff_day_card,
    build_staff_help_card,
    build_staff_notice_card,
    build_statistics_card,
)
from cards.verbs import Verb
from dialogs.card_flow import CardFlow, NoState
from dialogs.pressed_card import replace_pressed_card

DAYS_SHOWN = 2


async def report_answer(staff: StaffService, agency: Agency, language: str, report: StaffReport,
                        by: str | None) -> dict[str, Any]:
    """The card that replaces a pressed prompt: what is recorded now (or already), or why nothing is.
    `by`: the name of whoever pressed."""
    if isinstance(report, Recorded):
        return build_recorded_card(agency, language, report.appointment, outcome=report.outcome,
                                   by=by, at=report.at, reason=report.reason)
    if isinstance(report, AskLater | TooEarly):
        # The prompt stays, with a note: the counselor presses again when the time comes.
        if isinstance(report, AskLater):
            note = t(language, "staff.prompt.absent_noted", minutes=duration_text(language, agency.no_show_minutes),
                     time=format_time(to_local(report.at, agency.zone), language))
        else:
            note = t(language, "staff.prompt.too_early", time=format_time(to_local(report.opens_at, agency.zone),
                                                                         language))
        prompt = await staff.prompt(report.appointment.id)
        if prompt is not None:
            return build_prompt_card(agency, language, prompt.appointment, citizen_name=prompt.citizen_name,
                                     identity=prompt.identity, note=note)
        return build_staff_notice_card(language, note)
    if isinstance(report, Settled):
        return build_recorded_card(agency, language, report.appointment, outcome=report.outcome,
                                   by=actor_name(staff, language, report.actor), at=report.at,
                                   status=report.appointment.status)
    key = {"not_allowed": "staff.prompt.not_yours", "not_found": "staff.prompt.not_found"}.get(
        report.reason, "staff.prompt.invalid")
    return build_staff_notice_card(language, t(language, key))


def actor_name(staff: StaffService, language: str, actor: str | None) -> str | None:
    """Who reported an outcome, as a card names them: a staff member's name, or "the client"."""
    if actor is None:
        return None
    role, _, identifier = actor.partition(":")
    member = staff.member(identifier) if role == "counselor" else None
    if member is not None:
        return member.display_name
    return t(language, f"staff.actor.{role}") if role in ("citizen", "system") else None


class StaffOutcomeDialog(CardFlow[NoState]):
    """A report pressed on a prompt or a no-show question (`Verb.STAFF_OUTCOME`), by whoever pressed it."""

    ID = "staff.outcome"
    CITIZENS_ONLY = False

    def __init__(self, services: Services, staff: StaffService, outcomes: OutcomeService) -> None:
        super().__init__(self.ID, services, NoState)
        self._outcomes = outcomes
        self._staff = staff

    async def _start(self, dialog_context: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        info = turn_info(dialog_context.context)
        data = info.action.data if info.action is not None else {}
        presser = counselor_actor(info.staff.id) if info.staff is not None \
            else citizen_actor(info.citizen_id) if info.citizen_id else None
        report = await self._outcomes.report_by_staff(
            info.staff.id if info.staff is not None else info.identity.aad_object_id,
            data.get("appointment_id"), data.get("outcome"), data.get("reason"), presser=presser)
        report_card = await report_answer(self._staff, self._services.agency, info.language, report,
                                          info.staff.display_name if info.staff is not None else None)
        await replace_pressed_card(dialog_context.context, report_card, else_send=report_card)
        return await dialog_context.end_dialog()


class StaffRootDialog(CardFlow[NoState]):
    """A staff member's turn: a report, their day, the statistics (supervisors), or help."""

    ID = "staff.root"
    CITIZENS_ONLY = False

    def __init__(self, services: Services, staff: StaffService, outcomes: OutcomeService) -> None:
        super().__init__(self.ID, services, NoState)
        self._staff = staff
        self._report = StaffOutcomeDialog(services, staff, outcomes)

    async def _start(self, dialog_context: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        context = dialog_context.context
        info = turn_info(context)
        assert info.staff is not None
        verb = info.action.verb if info.action is not None else None
        intent = recognize(context.activity.text) if context.activity.type == ActivityTypes.message \
            and verb is None else None
        if verb == Verb.STAFF_OUTCOME:
            return await self._report.begin_dialog(dialog_context)
        if verb == Verb.STAFF_MY_DAY or intent is Intent.MY_DAY:
            await self._answer(info, context, await self._day(info))
        elif (verb == Verb.STAFF_STATISTICS or intent is Intent.STATISTICS) and info.staff.supervisor:
            weeks = await self._staff.statistics()
            await self._answer(info, context, build_statistics_card(self._services.agency, info.language, weeks))
        elif verb == Verb.STAFF_STATISTICS or intent is Intent.STATISTICS:
            await context.send_activity(t(info.language, "staff.statistics.supervisors_only"))
            await self._answer(info, context, build_staff_help_card(info.language, supervisor=False))
        else:
            if intent is None and verb is None and context.activity.text:
                await context.send_activity(t(info.language, "conversation.not_understood"))
            await self._answer(info, context, build_staff_help_card(info.language, supervisor=info.staff.supervisor))
        return await dialog_context.end_dialog()

    async def continue_dialog(self, dialog_context: DialogContext) -> DialogTurnResult:
        return await self.begin_dialog(dialog_context)

    async def _day(self, info: TurnInfo) -> dict[str, Any]:
        assert info.staff is not None
        agency = self._services.agency
        today = self._services.clock.now().astimezone(agency.zone).date()
        entries = await self._staff.day(info.staff.id, today, days=DAYS_SHOWN)
        return build_staff_day_card(agency, info.language, entries, first_day=today, days=DAYS_SHOWN,
                                    supervisor=info.staff.supervisor)

    @staticmethod
    async def _answer(info: TurnInfo, context: Any, card: dict[str, Any]) -> None:
        # A menu button keeps its card (the day card refreshes itself); the answer is a new message.
        await context.send_activity(card_message(card))

