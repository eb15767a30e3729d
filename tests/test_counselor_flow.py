"""The counselor's side over real HTTP: a counselor and a citizen in their own Teams chats, the job runner
on the test clock. Recognised as staff, prompted with the identity check at the right time in their
language, each report recorded in place; the no-show question and its cancellation; identity not
verified; a technical problem and the new times, the same counselor first; an agency that did not come;
reports from anyone else refused and audited; the fallback channel when the counselor has no chat."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from bot.app import SERVICES
from bot.devtools.activities import build_conversation_update
from bot.domain.agency import Agency, FallbackChannel, Mode
from bot.domain.appointment import AppointmentStatus, Outcome
from bot.domain.audit import EventType
from bot.domain.clock import FixedClock
from bot.i18n import t
from bot.jobs.closing import ensure_closing_planned
from bot.jobs.runner import JobRunner
from bot.jobs.worker import job_handlers
from bot.services.booking import Booked, BookingService
from bot.services.consent import ConsentService, citizen_ref
from bot.services.container import Services
from bot.settings import Settings
from cards.document import escape_markdown
from cards.verbs import Verb
from tests.booking_support import national_register_number, personal_data
from tests.harness import (
    TENANT_ID,
    FakeConnector,
    Recorded,
    TeamsUser,
    action_with_verb,
    actions_of,
    card_text,
    start_bot,
)

BRUSSELS = ZoneInfo("Europe/Brussels")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=BRUSSELS)  # Monday
START = datetime(2026, 11, 25, 10, 0, tzinfo=BRUSSELS)  # Wednesday
SUPERVISOR = "5c0f0d2e-6d3a-4f1b-9a57-2b8e4f6c1d90"
LANGUAGE_OF = {"fr-BE": "fr", "nl-BE": "nl"}


@dataclass
class Scene:
    app: Any
    services: Services
    clock: FixedClock
    runner: JobRunner
    connector: FakeConnector
    http: aiohttp.ClientSession
    url: str

    def person(self, aad_object_id: str | None = None, locale: str = "fr-BE") -> TeamsUser:
        if aad_object_id is None:
            return TeamsUser(bot_url=self.url, connector=self.connector, http=self.http, locale=locale)
        return TeamsUser(bot_url=self.url, connector=self.connector, http=self.http, locale=locale,
                         aad_object_id=aad_object_id)

    async def at(self, moment: datetime) -> None:
        self.clock.set(moment)
        await self.runner.drain()

    async def book(self, citizen: TeamsUser) -> Booked:
        await citizen.say("bonjour")  # the citizen's chat is known from here on
        citizen_id = await self.citizen_id(citizen)
        consent = ConsentService(self.services)
        for pending in await consent.pending(citizen_id):  # as the chat had them accepted before booking
            await consent.accept(citizen_id, kind=pending.kind.value, version=pending.document.version,
                                 doc_hash=pending.content_hash[:16], language="fr", citizen_ref=citizen_ref(citizen_id),
                                 activity_id=None)
        outcome = await BookingService(self.services).book(
            citizen_id=citizen_id, mode=Mode.VIDEO, subject_id="temporary-unemployment", office_id=None,
            start=START, personal_data=personal_data("1000"), interview_language="fr")
        assert isinstance(outcome, Booked), outcome
        return outcome

    async def citizen_id(self, citizen: TeamsUser) -> str:
        async with self.services.uow.read() as uow:
            found = await uow.citizens.get_by_identity(self.services.agency.id, TENANT_ID, citizen.aad_object_id)
        assert found is not None
        return found.id

    async def appointment(self, appointment_id: str) -> Any:
        async with self.services.uow.read() as uow:
            return await uow.appointments.get(appointment_id)

    async def outcomes(self, appointment_id: str) -> list[str]:
        async with self.services.uow.read() as uow:
            return [o.outcome for o in await uow.outcomes.for_appointment(appointment_id)]

    async def events(self) -> list[Any]:
        async with self.services.uow.read() as uow:
            return [event async for event in uow.audit.iterate(self.services.agency.id)]


def _cards(replies: list[Recorded]) -> list[dict[str, Any]]:
    return [card for reply in replies for card in reply.cards]


@pytest.fixture
async def scene(bot_settings: Settings, agency: Agency, connector: FakeConnector,
                http: aiohttp.ClientSession) -> AsyncIterator[Scene]:
    clock = FixedClock(NOW)
    channel = FallbackChannel(conversation_id="19:fallback@thread.tacv2", service_url=connector.url,
                              tenant_id="7e5b2c1a-0000-4000-8000-000000000001")
    with_channel = agency.model_copy(update={"fallback_channel": channel})
    async with start_bot(bot_settings, with_channel, clock) as bot:
        services = bot.app[SERVICES]
        yield Scene(bot.app, services, clock, JobRunner(services.uow, job_handlers(services), clock), connector,
                    http, bot.url)


async def _counselor_of(scene: Scene, booked: Booked, locale: str = "fr-BE") -> TeamsUser:
    appointment = await scene.appointment(booked.appointment.id)
    counselor = scene.person(appointment.counselor_id, locale)
    replies = await counselor.install()
    welcome = card_text(_cards(replies)[0])
    name = scene.services.agency.counselor(appointment.counselor_id).display_name
    language = LANGUAGE_OF[locale]
    assert t(language, "staff.welcome.title", name=name) in welcome  # not the citizen's welcome
    return counselor


async def _prompt(scene: Scene, counselor: TeamsUser) -> dict[str, Any]:
    before = len(counselor.replies())
    await scene.at(START - timedelta(minutes=5))
    cards = _cards(counselor.replies()[before:])
    assert len(cards) == 1, cards
    return cards[0]


async def _press(user: TeamsUser, card: dict[str, Any], verb: str, outcome: str | None = None,
                 **extra: Any) -> tuple[Any, list[Recorded]]:
    if outcome is None:
        action = action_with_verb(card, verb)
    else:
        candidates = [a for a in actions_of(card) + _nested_actions(card)
                      if (a.get("data") or {}).get("outcome") == outcome]
        assert candidates, f"no action with outcome {outcome}"
        action = candidates[0]
    return await user.execute(verb, {**(action.get("data") or {}), **extra})


def _nested_actions(card: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for action in card.get("actions", []):
        if action.get("type") == "Action.ShowCard":
            found += actions_of(action["card"])
    return found


async def test_a_counselor_is_greeted_as_staff_sees_their_day_and_is_prompted_in_their_language(scene: Scene) -> None:
    citizen = scene.person()
    booked = await scene.book(citizen)
    counselor = await _counselor_of(scene, booked, "nl-BE")

    scene.clock.set(START - timedelta(days=1))  # the day before: today and tomorrow show it
    day = _cards(await counselor.say("mijn dag"))[0]
    day_text = card_text(day)
    assert "10:00" in day_text and t("nl", "staff.status.booked") in day_text
    async with scene.services.uow.read() as uow:
        assert await uow.citizens.get_by_identity(scene.services.agency.id, None, counselor.aad_object_id) is None

    await scene.at(START - timedelta(minutes=6))
    assert _cards(counselor.replies())[-1] is day  # nothing yet
    prompt = await _prompt(scene, counselor)
    text = card_text(prompt)
    assert t("nl", "staff.prompt.title", time="10:00") in text
    assert "Camille Dupont" in text
    assert "30 juli 1985" in text  # the birth date to compare, in the counselor's language
    nrn = national_register_number(date(1985, 7, 30))
    assert escape_markdown(f"{nrn[0:2]}.{nrn[2:4]}.{nrn[4:6]}-{nrn[6:9]}.**") in text  # masked
    assert nrn not in text, [line for line in text.split("\n") if nrn[:6] in line]
    assert "camille.dupont" not in text and "+32470" not in text.replace(" ", "")  # nothing it does not need
    assert t("nl", "staff.prompt.no_link") in text
    outcomes = {(a.get("data") or {}).get("outcome") for a in actions_of(prompt) + _nested_actions(prompt)}
    assert {"identity_verified", "identity_not_verified", "absent_reported", "technical_problem"} <= outcomes
    assert EventType.COUNSELOR_PROMPTED in [e.event_type for e in await scene.events()]


async def test_a_reinstall_without_a_locale_greets_the_counselor_in_the_language_teams_gave_before(
    scene: Scene,
) -> None:
    citizen = scene.person()
    booked = await scene.book(citizen)
    counselor = await _counselor_of(scene, booked, "nl-BE")
    no_locale = build_conversation_update(counselor.identity, scene.connector.url)
    no_locale.pop("locale")  # some clients announce an install without one, nor a clientInfo entity
    no_locale.pop("entities", None)
    before = len(counselor.replies())
    await counselor.post(no_locale)
    welcome = card_text(_cards(counselor.replies()[before:])[0])
    name = scene.services.agency.counselor(counselor.aad_object_id).display_name
    assert t("nl", "staff.welcome.title", name=name) in welcome


async def test_a_report_pressed_before_the_card_opens_keeps_the_prompt_and_records_nothing(scene: Scene) -> None:
    citizen = scene.person()
    booked = await scene.book(citizen)
    counselor = await _counselor_of(scene, booked)
    prompt = await _prompt(scene, counselor)
    scene.clock.set(START - timedelta(minutes=30))  # the same card replayed half an hour early
    body, _ = await _press(counselor, prompt, Verb.STAFF_OUTCOME, "identity_verified")
    early = body["value"]
    assert t("fr", "staff.prompt.too_early", time="09:55") in card_text(early)
    assert {(a.get("data") or {}).get("outcome") for a in actions_of(early)} >= {"identity_verified"}
    assert await scene.outcomes(booked.appointment.id) == []
    assert (await scene.appointment(booked.appointment.id)).status == AppointmentStatus.BOOKED


async def test_identity_verified_is_recorded_in_place_and_no_no_show_question_follows(scene: Scene) -> None:
    citizen = scene.person()
    booked = await scene.book(citizen)
    counselor = await _counselor_of(scene, booked)
    prompt = await _prompt(scene, counselor)
    scene.clock.set(START + timedelta(minutes=1))
    body, _ = await _press(counselor, prompt, Verb.STAFF_OUTCOME, "identity_verified")
    recorded = body["value"]
    assert t("fr", "staff.outcome.identity_verified") in card_text(recorded)
    assert "10:01" in card_text(recorded) and actions_of(recorded) == []
    appointment = await scene.appointment(booked.appointment.id)
    assert appointment.status == AppointmentStatus.ATTENDED
    assert await scene.outcomes(booked.appointment.id) == ["identity_verified"]
    before = len(counselor.replies())
    await scene.at(START + timedelta(minutes=10))
    assert counselor.replies()[before:] == []  # no "still absent?" for someone who is there

    # The same card pressed again: already recorded, by whom and when.
    again, _ = await _press(counselor, prompt, Verb.STAFF_OUTCOME, "absent_reported")
    assert t("fr", "staff.outcome.identity_verified") in card_text(again["value"])


async def test_values_of_the_wrong_type_in_reports_get_a_friendly_answer_and_record_nothing(scene: Scene) -> None:
    citizen = scene.person()
    booked = await scene.book(citizen)
    counselor = await _counselor_of(scene, booked)
    prompt = await _prompt(scene, counselor)
    scene.clock.set(START + timedelta(minutes=1))
    generic = t("fr", "conversation.error_generic")
    for odd in (["camera_off"], {"camera_off": 1}, 7, None, True):
        for user, verb, outcome, extra in (
            (counselor, Verb.STAFF_OUTCOME, "identity_not_verified", {"reason": odd}),
            (counselor, Verb.STAFF_OUTCOME, "identity_verified", {"appointment_id": odd}),
            (counselor, Verb.STAFF_OUTCOME, "identity_verified", {"outcome": odd}),
            (citizen, Verb.APPT_TECHNICAL_PROBLEM, None, {"appointment_id": odd}),
            (citizen, Verb.APPT_NOBODY_JOINED, None, {"appointment_id": odd}),
        ):
            data = {}
            if outcome is not None:
                data = next(a["data"] for a in actions_of(prompt) + _nested_actions(prompt)
                            if (a.get("data") or {}).get("outcome") == outcome)
            body, replies = await user.execute(verb, {**data, **extra})
            said = [reply.text or "" for reply in replies] + [json.dumps(body)]
            assert not any(generic in text for text in said), (verb, extra)
    assert await scene.outcomes(booked.appointment.id) == []
    assert (await scene.appointment(booked.appointment.id)).status == AppointmentStatus.BOOKED
    body, _ = await _press(counselor, prompt, Verb.STAFF_OUTCOME, "identity_not_verified", reason="camera_off")
    assert await scene.outcomes(booked.appointment.id) == ["identity_not_verified"]


async def test_a_citizen_or_another_counselor_replaying_a_counselor_action_is_refused_and_audited(
    scene: Scene,
) -> None:
    citizen = scene.person()
    booked = await scene.book(citizen)
    counselor = await _counselor_of(scene, booked)
    prompt = await _prompt(scene, counselor)
    data = action_with_verb(prompt, Verb.STAFF_OUTCOME).get("data")

    body, _ = await citizen.execute(Verb.STAFF_OUTCOME, dict(data))
    assert t("fr", "staff.prompt.not_yours") in card_text(body["value"])
    other_id = next(c.id for c in scene.services.agency.counselors if c.id != counselor.aad_object_id)
    other = scene.person(other_id)
    body, _ = await other.execute(Verb.STAFF_OUTCOME, dict(data))
    assert t("fr", "staff.prompt.not_yours") in card_text(body["value"])
    assert (await scene.appointment(booked.appointment.id)).status == AppointmentStatus.BOOKED
    assert await scene.outcomes(booked.appointment.id) == []
    refused = [e for e in await scene.events() if e.event_type == EventType.ACTION_REFUSED]
    assert [e.actor.split(":")[0] for e in refused] == ["citizen", "counselor"]

    # A supervisor may report on anyone's appointment.
    supervisor = scene.person(SUPERVISOR)
    scene.clock.set(START + timedelta(minutes=2))
    body, _ = await supervisor.execute(Verb.STAFF_OUTCOME, {**data, "outcome": "identity_verified"})
    assert t("fr", "staff.outcome.identity_verified") in card_text(body["value"])


async def test_a_no_show_is_asked_once_then_cancels_and_the_citizen_is_told_kindly(scene: Scene) -> None:
    citizen = scene.person()
    booked = await scene.book(citizen)
    counselor = await _counselor_of(scene, booked)
    prompt = await _prompt(scene, counselor)
    scene.clock.set(START + timedelta(minutes=3))
    body, _ = await _press(counselor, prompt, Verb.STAFF_OUTCOME, "absent_reported")
    noted = body["value"]
    assert t("fr", "staff.prompt.absent_noted", minutes="10 minutes", time="10:10") in card_text(noted)
    assert actions_of(noted)  # the counselor can still report when the client arrives

    before = len(counselor.replies())
    await scene.at(START + timedelta(minutes=10))
    question = _cards(counselor.replies()[before:])
    assert len(question) == 1 and t("fr", "staff.no_show.title") in card_text(question[0])
    body, _ = await _press(counselor, question[0], Verb.STAFF_OUTCOME, "no_show")
    assert t("fr", "staff.outcome.no_show") in card_text(body["value"])

    appointment = await scene.appointment(booked.appointment.id)
    assert (appointment.status, appointment.cancel_reason) == (AppointmentStatus.NO_SHOW, "no_show")
    async with scene.services.uow.read() as uow:
        assert await uow.slot_claims.for_appointment(booked.appointment.id) == []
    before = len(citizen.replies())
    await scene.runner.drain()
    notice = _cards(citizen.replies()[before:])
    assert len(notice) == 1
    assert t("fr", "outcomes.no_show.text", minutes="10 minutes") in card_text(notice[0])
    assert action_with_verb(notice[0], Verb.MENU_BOOK)
    assert await scene.outcomes(booked.appointment.id) == ["absent_reported", "no_show"]


async def test_identity_not_verified_tells_the_citizen_what_to_bring_next_time(scene: Scene) -> None:
    citizen = scene.person()
    booked = await scene.book(citizen)
    counselor = await _counselor_of(scene, booked)
    prompt = await _prompt(scene, counselor)
    scene.clock.set(START + timedelta(minutes=2))
    # A made-up reason changes nothing.
    body, _ = await _press(counselor, prompt, Verb.STAFF_OUTCOME, "identity_not_verified", reason="bored")
    assert t("fr", "staff.prompt.invalid") in card_text(body["value"])
    body, _ = await _press(counselor, prompt, Verb.STAFF_OUTCOME, "identity_not_verified", reason="document_mismatch")
    recorded = card_text(body["value"])
    assert t("fr", "staff.outcome.identity_not_verified") in recorded
    assert t("fr", "staff.reason.document_mismatch") in recorded
    appointment = await scene.appointment(booked.appointment.id)
    assert (appointment.status, appointment.identity_check) == (AppointmentStatus.NOT_VERIFIED, "document_mismatch")
    before = len(citizen.replies())
    await scene.runner.drain()
    notice = card_text(_cards(citizen.replies()[before:])[0])
    assert t("fr", "outcomes.not_verified.document_mismatch") in notice


async def test_a_technical_problem_offers_new_times_the_same_counselor_first_and_rebooking_keeps_the_old_until_held(
    scene: Scene,
) -> None:
    citizen = scene.person()
    booked = await scene.book(citizen)
    counselor = await _counselor_of(scene, booked)
    prompt = await _prompt(scene, counselor)
    scene.clock.set(START + timedelta(minutes=4))
    body, _ = await _press(counselor, prompt, Verb.STAFF_OUTCOME, "technical_problem")
    assert t("fr", "staff.recorded.citizen_offered_times") in card_text(body["value"])
    before = len(citizen.replies())
    await scene.runner.drain()
    offer_card = _cards(citizen.replies()[before:])[0]
    text = card_text(offer_card)
    assert t("fr", "outcomes.new_times.title_technical") in text
    assert t("fr", "outcomes.new_times.same_counselor") in text
    first = next(a for a in actions_of(offer_card) if a.get("verb") == Verb.APPT_REBOOK)

    body, replies = await citizen.execute(Verb.APPT_REBOOK, dict(first["data"]))
    title = t("fr", "booking.confirmation.title_rescheduled")
    confirmation = [card for card in _cards(replies) if title in card_text(card)]
    assert confirmation, [card_text(c)[:80] for c in _cards(replies)]
    old = await scene.appointment(booked.appointment.id)
    assert old.status == AppointmentStatus.TECHNICAL_PROBLEM
    async with scene.services.uow.read() as uow:
        upcoming = await uow.appointments.upcoming_for_citizen(await scene.citizen_id(citizen), scene.clock.now())
    assert len(upcoming) == 1 and upcoming[0].counselor_id == old.counselor_id  # the same counselor
    assert upcoming[0].starts_at == datetime.fromisoformat(first["data"]["start"])
    assert EventType.REBOOKED in [e.event_type for e in await scene.events()]


async def test_nobody_joined_is_answered_kindly_until_the_commitment_then_alerts_and_offers_new_times(
    scene: Scene,
) -> None:
    citizen = scene.person()
    booked = await scene.book(citizen)
    counselor = await _counselor_of(scene, booked)
    data = {"appointment_id": booked.appointment.id}
    await _prompt(scene, counselor)
    scene.clock.set(START - timedelta(minutes=2))
    _, replies = await citizen.execute(Verb.APPT_NOBODY_JOINED, data)
    assert t("fr", "outcomes.wait.not_started", start="10:00", minutes="10 minutes", time="10:10") in card_text(
        _cards(replies)[0])
    scene.clock.set(START + timedelta(minutes=4))
    _, replies = await citizen.execute(Verb.APPT_NOBODY_JOINED, data)
    assert t("fr", "outcomes.wait.started", minutes="10 minutes", time="10:10") in card_text(_cards(replies)[0])
    assert await scene.outcomes(booked.appointment.id) == []

    scene.clock.set(START + timedelta(minutes=11))
    _, replies = await citizen.execute(Verb.APPT_NOBODY_JOINED, data)
    assert t("fr", "outcomes.new_times.title_agency_late") in card_text(_cards(replies)[0])
    assert await scene.outcomes(booked.appointment.id) == ["agency_late"]
    before_counselor = len(counselor.replies())
    await scene.runner.drain()
    alert = _cards(counselor.replies()[before_counselor:])
    assert [t("fr", "outcomes.alert.title_agency_late") in card_text(card) for card in alert] == [True]
    channel = [r for r in scene.connector.received if r.conversation_id == "19:fallback@thread.tacv2"]
    assert channel and t("fr", "outcomes.alert.title_agency_late") in card_text(channel[0].cards[0])


async def test_without_a_chat_with_the_counselor_the_prompt_goes_to_the_fallback_channel(scene: Scene) -> None:
    citizen = scene.person()
    booked = await scene.book(citizen)
    await scene.at(START - timedelta(minutes=5))
    channel = [r for r in scene.connector.received if r.conversation_id == "19:fallback@thread.tacv2"]
    assert len(channel) == 1
    appointment = await scene.appointment(booked.appointment.id)
    name = scene.services.agency.counselor(appointment.counselor_id).display_name
    assert t("fr", "staff.prompt.for_counselor", name=name) in card_text(channel[0].cards[0])


async def test_a_slot_nobody_reported_on_closes_as_no_outcome_and_the_supervisor_sees_the_week(scene: Scene) -> None:
    citizen = scene.person()
    booked = await scene.book(citizen)
    await scene.at(START + timedelta(minutes=45))
    await ensure_closing_planned(scene.services)
    scene.clock.set(START + timedelta(hours=1))
    await scene.runner.drain()
    appointment = await scene.appointment(booked.appointment.id)
    assert appointment.status == AppointmentStatus.NO_OUTCOME
    assert await scene.outcomes(booked.appointment.id) == [Outcome.NO_OUTCOME]

    supervisor = scene.person(SUPERVISOR)
    stats = card_text(_cards(await supervisor.say("statistiques"))[-1])
    assert t("fr", "staff.statistics.title") in stats and t("fr", "staff.statistics.no_outcome") in stats
    # Counselors do not get the statistics; citizens get a kind "staff only".
    replies = await citizen.say("ma journée")
    assert t("fr", "conversation.staff_only") in " ".join(r.text or "" for r in replies)

