"""The cards the bot sends on its own (reminders, link messages, counselor prompts and questions, alerts,
outcome notices, new times, the staff's day and statistics), in every language for every example agency:
valid against the Adaptive Card 1.5 schema and our rules, and under Teams' size limit, as the turn
replies are (tests/test_cards_builders.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from bot.domain.agency import Agency, Mode, PersonalField, load_agency
from bot.domain.appointment import AppointmentStatus, AppointmentView, NotVerifiedReason, Outcome
from bot.i18n import LANGUAGES, catalog
from bot.services.booking import SlotOffer
from bot.services.staff import DayEntry, WeekCounts
from cards.formatting import duration_text
from cards.outcomes import (
    build_new_times_card,
    build_no_show_notice,
    build_not_verified_notice,
    build_staff_alert_card,
    build_wait_card,
)
from cards.reminders import build_link_card, build_reminder_card
from cards.staff import (
    build_no_show_question_card,
    build_prompt_card,
    build_recorded_card,
    build_staff_day_card,
    build_staff_help_card,
    build_staff_notice_card,
    build_staff_welcome_card,
    build_statistics_card,
)
from cards.validation import MAX_CARD_BYTES, card_size_bytes, validate_card
from tests.conftest import AGENCIES, with_counselor_named

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
# Long on purpose: the sizes checked are those of the largest real values.
NAME = "Marie-Christine Van den Heuvel-Vandersmissen d'Oultremont de Wégimont"
JOIN_URL = "https://teams.microsoft.com/l/meetup-join/19%3ameeting_" + "N2Q" * 60 + "%40thread.v2/0?context=%7b%7d"
EXAMPLES = sorted(path.parent.name for path in AGENCIES.glob("*/agency.toml"))


def _keys_after(prefix: str) -> list[str]:
    """The variants the catalog holds for `prefix` (alert kinds, reasons for new times...)."""
    return sorted(key.removeprefix(prefix) for key in catalog("en") if key.startswith(prefix))


def _appointments(agency: Agency) -> Iterator[AppointmentView]:
    subject = max(agency.subjects, key=lambda s: max(len(name) for name in s.name.values()))
    for mode in agency.modes:
        office = agency.offices[0].id if Mode(mode) is Mode.OFFICE and agency.offices else None
        for join_url in ((JOIN_URL, None) if Mode(mode) is Mode.VIDEO else (None,)):
            yield AppointmentView(
                id="3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b", mode=Mode(mode), subject_id=subject.id,
                office_id=office, starts_at=START, ends_at=START + timedelta(minutes=subject.duration_minutes),
                status=AppointmentStatus.BOOKED, interview_language=agency.languages[-1], join_url=join_url,
                counselor_id=agency.counselors[0].id, cancel_reason=None)


def proactive_cards(agency: Agency, language: str) -> Iterator[tuple[str, dict[str, Any]]]:
    agency = with_counselor_named(agency, NAME)
    identity = [(PersonalField.FIRST_NAME, NAME), (PersonalField.BIRTH_DATE, date(1980, 2, 29)),
                (PersonalField.NATIONAL_REGISTER_NUMBER, "85073003328")]
    offers = [SlotOffer(START + timedelta(days=day, hours=hour), START + timedelta(days=day, hours=hour, minutes=30),
                        None) for day in range(1, 4) for hour in range(3)]
    for appointment in _appointments(agency):
        name = f"{appointment.mode}-{'link' if appointment.join_url else 'nolink'}"
        for offset in (None, 60, 1440):
            for changeable in (True, False):
                yield f"reminder-{name}-{offset}-{changeable}", build_reminder_card(
                    agency, language, appointment, offset_minutes=offset, changeable=changeable, meetings=True)
        yield f"reminder-{name}-local", build_reminder_card(agency, language, appointment, offset_minutes=60,
                                                            changeable=True, meetings=False)
        if appointment.join_url:
            for changed in (False, True):
                yield f"link-{name}-{changed}", build_link_card(agency, language, appointment, changed=changed)
        for channel in (None, NAME):
            yield f"prompt-{name}-{channel}", build_prompt_card(
                agency, language, appointment, citizen_name=NAME, identity=identity, counselor_name=channel,
                note=NAME)
            yield f"no-show-question-{name}-{channel}", build_no_show_question_card(
                agency, language, appointment, citizen_name=NAME, counselor_name=channel)
        for outcome in Outcome:
            reason = NotVerifiedReason.DOCUMENT_MISMATCH.value \
                if outcome is Outcome.IDENTITY_NOT_VERIFIED else None
            yield f"recorded-outcome-{name}-{outcome}", build_recorded_card(
                agency, language, appointment, outcome=outcome, by=NAME, at=START, reason=reason)
        for status in AppointmentStatus:
            yield f"recorded-status-{name}-{status}", build_recorded_card(
                agency, language, appointment, outcome=None, by=None, at=None, status=status.value)
        for alert in _keys_after("outcomes.alert.title_"):
            yield f"alert-{name}-{alert}", build_staff_alert_card(
                agency, language, appointment, alert=alert, counselor_name=NAME, citizen_name=NAME)
        yield f"no-show-notice-{name}", build_no_show_notice(agency, language, appointment)
        for reason in (None, *NotVerifiedReason):
            yield f"not-verified-{name}-{reason}", build_not_verified_notice(
                agency, language, appointment, reason.value if reason else None)
        for why in _keys_after("outcomes.new_times.title_"):
            for shown, same in ((offers, 3), (offers[:2], 0), ([], 0)):
                yield f"new-times-{name}-{why}-{len(shown)}", build_new_times_card(
                    agency, language, appointment, shown, why=why, same_counselor=same)
        for started in (False, True):
            yield f"wait-{name}-{started}", build_wait_card(agency, language, appointment, started=started,
                                                            until=START + timedelta(minutes=15))
    appointments = list(_appointments(agency))
    entries = [DayEntry(appointment, NAME, NAME) for appointment in appointments * 6]
    for supervisor in (False, True):
        yield f"day-{supervisor}", build_staff_day_card(agency, language, entries, first_day=START.date(), days=2,
                                                        supervisor=supervisor)
        yield f"staff-welcome-{supervisor}", build_staff_welcome_card(language, name=NAME, supervisor=supervisor)
        yield f"staff-help-{supervisor}", build_staff_help_card(language, supervisor=supervisor)
    weeks = [WeekCounts(START.date() + timedelta(weeks=n), {outcome: 100 + n for outcome in Outcome}, 1000)
             for n in range(12)]
    yield "statistics", build_statistics_card(agency, language, weeks)
    yield "staff-notice", build_staff_notice_card(language, NAME)


@pytest.mark.parametrize("agency_name", EXAMPLES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_card_sent_on_the_bots_own_is_valid_and_fits(agency_name: str, language: str) -> None:
    agency = load_agency(AGENCIES / agency_name / "agency.toml")
    names = []
    for name, card in proactive_cards(agency, language):
        validate_card(card)
        assert card_size_bytes(card) < MAX_CARD_BYTES, name
        assert card["lang"] == language, name
        names.append(name)
    assert len(names) == len(set(names))
    assert any(name.startswith("alert-") for name in names) and any(name.startswith("link-") for name in names)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_zero_wait_commitment_alerts_without_naming_a_delay(language: str) -> None:
    """An agency that commits to be there at the start: the counselor's alert says nobody has joined,
    not "nobody joined within 0 minutes"."""
    agency = load_agency(AGENCIES / "example-be" / "agency.toml")
    prompt = agency.model_copy(update={"agency_wait_commitment_minutes": 0})
    appointment = next(_appointments(prompt))
    alert = build_staff_alert_card(prompt, language, appointment, alert="agency_late", counselor_name=NAME,
                                   citizen_name="Client")
    text = str(alert)
    assert catalog(language)["outcomes.alert.text_agency_late_start"].split("({subject})")[1] in text
    assert duration_text(language, 0) not in text
    normal = str(build_staff_alert_card(agency, language, appointment, alert="agency_late", counselor_name=NAME,
                                        citizen_name="Client"))
    assert duration_text(language, agency.agency_wait_commitment_minutes) in normal
