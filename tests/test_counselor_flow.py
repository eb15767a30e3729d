"""The counselor's side over real HTTP: a counselor and a citizen in their own Teams chats, the job runner
on the test clock. Recognised as staff, prompted with the identity check at the right time in their
language, each report recorded in place; the no-show question and its cancellation; identity not
verified; a technical problem and the new times, the same counselor first; an agency that did not come;
reports from anyone else refused and audited; the fallback channel when the counselor has no chat."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from bot.app import SERVICES
from bot.cli import main
from bot.devtools.activities import build_conversation_update
from bot.domain.agency import Agency, FallbackChannel, Mode
from bot.domain.appointment import AppointmentStatus, Outcome
from bot.domain.audit import EventType
from bot.domain.clock import FixedClock
from bot.i18n import t
from bot.jobs.closing import ensure_closing_planned
from bot.jobs.runner import JobRunner
from bot.services.booking import INVALID_SLOT, Booked
from bot.services.consent import ConsentService, citizen_ref
from bot.services.container import Services
from bot.services.ports import AppInstaller
from bot.settings import Settings
from bot.wiring import build_services, job_handlers
from cards.document import escape_markdown
from cards.verbs import Verb
from tests.booking_support import booking_over, national_register_number, personal_data
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
        consent = ConsentService(self.services.agency, self.services.uow, self.services.clock, self.services.audit)
        for pending in await consent.pending(citizen_id):  # as the chat had them accepted before booking
            await consent.accept(citizen_id, kind=pending.kind.value, version=pending.document.version,
                                 doc_hash=pending.content_hash[:16], language="fr", citizen_ref=citizen_ref(citizen_id),
                                 activity_id=None)
        outcome = await booking_over(self.services).book(
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
def min_lead() -> int | None:
    """The agency's minimum notice: example-be's, unless a test parametrizes a shorter one."""
    return None


@contextlib.asynccontextmanager
async def _scene(settings: Settings, agency: Agency, connector: FakeConnector, http: aiohttp.ClientSession, *,
                 fallback_channel: bool = True, installer: AppInstaller | None = None,
                 min_lead: int | None = None) -> AsyncIterator[Scene]:
    clock = FixedClock(NOW)
    if fallback_channel:
        channel = FallbackChannel(conversation_id="19:fallback@thread.tacv2", service_url=connector.url,
                                  tenant_id="7e5b2c1a-0000-4000-8000-000000000001")
        agency = agency.model_copy(update={"fallback_channel": channel})
    if min_lead is not None:
        agency = agency.model_copy(update={"booking": agency.booking.model_copy(update={"min_lead_minutes": min_lead})})
    wiring = build_services(settings, agency=agency, clock=clock, installer=installer) \
        if installer is not None else None
    async with start_bot(settings, agency, clock, wiring=wiring) as bot:
        services = bot.app[SERVICES]
        yield Scene(bot.app, services, clock, JobRunner(services.uow, job_handlers(services), clock), connector,
                    http, bot.url)


@pytest.fixture
async def scene(bot_settings: Settings, agency: Agency, connector: FakeConnector,
                http: aiohttp.ClientSession, min_lead: int | None) -> AsyncIterator[Scene]:
    async with _scene(bot_settings, agency, connector, http, min_lead=min_lead) as made:
        yield made


@pytest.fixture
async def lonely_scene(bot_settings: Settings, agency: Agency, connector: FakeConnector,
                       http: aiohttp.ClientSession) -> AsyncIterator[Scene]:
    """No fallback channel, no way to install the bot: a counselor who never opened the chat is out of reach."""
    async with _scene(bot_settings, agency, connector, http, fallback_channel=False) as made:
        yield made


class InstallsButNoChatComes:
    """Graph and the Teams app id configured: the install succeeds, but Teams never announces the chat."""

    def __init__(self) -> None:
        self.installed: list[str] = []

    async def install_for(self, user_id: str) -> bool:
        self.installed.append(user_id)
        return True


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
    # Masked to its birth-date part: neither the serial number nor the check digits that give it back.
    assert escape_markdown(f"{nrn[0:2]}.{nrn[2:4]}.{nrn[4:6]}-***.**") in text
    assert nrn not in text and f"-{nrn[6:9]}" not in text, [line for line in text.split("\n") if nrn[:2] in line]
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


async def test_a_pressed_submit_fallback_rewrites_the_pressed_card_in_teams_as_action_execute_does(
    scene: Scene,
) -> None:
    """A client without Universal Actions sends the Action.Submit fallback, naming the pressed message: the
    prompt becomes the recorded outcome, with no button left, and nothing new is posted below it."""
    citizen = scene.person()
    booked = await scene.book(citizen)
    counselor = await _counselor_of(scene, booked)
    prompt = await _prompt(scene, counselor)
    prompt_id = counselor.replies()[-1].activity_id
    scene.clock.set(START + timedelta(minutes=1))
    [verified] = [a for a in actions_of(prompt) if (a.get("data") or {}).get("outcome") == "identity_verified"]

    replies = await counselor.submit(verified["fallback"]["data"], reply_to=prompt_id)

    assert await scene.outcomes(booked.appointment.id) == ["identity_verified"]
    [update] = replies
    assert (update.event, update.activity_id) == ("update", prompt_id)
    [recorded] = update.cards
    assert t("fr", "staff.outcome.identity_verified") in card_text(recorded) and actions_of(recorded) == []


async def test_forged_reports_change_nothing_they_should_not(scene: Scene) -> None:
    """Data a card never carried, sent by hand: a no-show before the delay, an appointment that does not
    exist, a "client joined" nobody was asked about."""
    citizen = scene.person()
    booked = await scene.book(citizen)
    counselor = await _counselor_of(scene, booked)
    await _prompt(scene, counselor)
    appointment_id = booked.appointment.id

    # "client joined" from the citizen's chat, or from the counselor before the prompt opens: refused.
    body, _ = await citizen.execute(Verb.STAFF_OUTCOME, {"appointment_id": appointment_id, "outcome": "client_joined"})
    assert t("fr", "staff.prompt.not_yours") in card_text(body["value"])
    scene.clock.set(START - timedelta(hours=1))
    body, _ = await counselor.execute(Verb.STAFF_OUTCOME, {"appointment_id": appointment_id,
                                                           "outcome": "client_joined"})
    assert t("fr", "staff.prompt.too_early", time="09:55") in card_text(body["value"])
    assert await scene.outcomes(appointment_id) == []

    # A no-show two minutes after the start (the delay is ten): only "not there yet" is noted.
    scene.clock.set(START + timedelta(minutes=2))
    before = len(citizen.replies())
    body, _ = await counselor.execute(Verb.STAFF_OUTCOME, {"appointment_id": appointment_id, "outcome": "no_show"})
    assert t("fr", "staff.prompt.absent_noted", minutes="10 minutes", time="10:10") in card_text(body["value"])
    assert await scene.outcomes(appointment_id) == ["absent_reported"]
    assert (await scene.appointment(appointment_id)).status == AppointmentStatus.BOOKED
    await scene.runner.drain()
    assert citizen.replies()[before:] == []  # the citizen is told nothing

    # An appointment id of the right shape that does not exist.
    body, _ = await counselor.execute(Verb.STAFF_OUTCOME, {"outcome": "identity_verified",
                                                           "appointment_id": "0f0e0d0c-0b0a-4909-8807-060504030201"})
    assert t("fr", "staff.prompt.not_found") in card_text(body["value"])
    assert await scene.outcomes(appointment_id) == ["absent_reported"]

    # The same, from the Action.Submit fallback (a message, no invoke): the same friendly answer.
    replies = await counselor.submit({"verb": Verb.STAFF_OUTCOME, "outcome": "no_show",
                                      "appointment_id": "0f0e0d0c-0b0a-4909-8807-060504030201"})
    assert t("fr", "staff.prompt.not_found") in card_text(_cards(replies)[0])


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


async def test_new_times_after_a_technical_problem_never_overlap_the_citizens_other_appointment(
    scene: Scene,
) -> None:
    citizen = scene.person()
    booked = await scene.book(citizen)
    later = await booking_over(scene.services).book(
        citizen_id=await scene.citizen_id(citizen), mode=Mode.VIDEO, subject_id="payments", office_id=None,
        # Among the times a technical problem at 10:04 offers (the lead time puts them after 14:00).
        start=START + timedelta(hours=4, minutes=30), personal_data=personal_data("1000"), interview_language="fr")
    assert isinstance(later, Booked)
    counselor = await _counselor_of(scene, booked)
    prompt = await _prompt(scene, counselor)
    scene.clock.set(START + timedelta(minutes=4))
    await _press(counselor, prompt, Verb.STAFF_OUTCOME, "technical_problem")
    before = len(citizen.replies())
    await scene.runner.drain()
    offers = [a for a in actions_of(_cards(citizen.replies()[before:])[0]) if a.get("verb") == Verb.APPT_REBOOK]
    starts = [datetime.fromisoformat(a["data"]["start"]) for a in offers]
    held = later.appointment
    assert starts and [s for s in starts if s < held.ends_at and held.starts_at < s + timedelta(minutes=30)] == []

    # A new time is taken in place of the old one, beside the other appointment.
    await citizen.execute(Verb.APPT_REBOOK, dict(offers[0]["data"]))
    async with scene.services.uow.read() as uow:
        upcoming = await uow.appointments.upcoming_for_citizen(await scene.citizen_id(citizen), scene.clock.now())
    assert sorted(a.starts_at for a in upcoming) == sorted([starts[0], held.starts_at])


def _offered_starts(card: dict[str, Any]) -> list[datetime]:
    return [datetime.fromisoformat(a["data"]["start"]) for a in actions_of(card) if a.get("verb") == Verb.APPT_REBOOK]


@pytest.mark.parametrize("min_lead", [0])  # an agency that books up to the last minute
@pytest.mark.parametrize("reported_by", ["citizen", "counselor"])
async def test_after_a_technical_problem_before_the_start_the_broken_time_is_not_offered_again(
    scene: Scene, reported_by: str,
) -> None:
    citizen = scene.person()
    booked = await scene.book(citizen)
    data = {"appointment_id": booked.appointment.id}
    if reported_by == "citizen":
        scene.clock.set(START - timedelta(minutes=2))  # from the reminder, before the start
        _, replies = await citizen.execute(Verb.APPT_TECHNICAL_PROBLEM, data)
        offer_card = _cards(replies)[0]
    else:
        counselor = await _counselor_of(scene, booked)
        prompt = await _prompt(scene, counselor)
        scene.clock.set(START - timedelta(minutes=2))
        await _press(counselor, prompt, Verb.STAFF_OUTCOME, "technical_problem")
        before = len(citizen.replies())
        await scene.runner.drain()
        offer_card = _cards(citizen.replies()[before:])[0]
    assert t("fr", "outcomes.new_times.title_technical") in card_text(offer_card)
    starts = _offered_starts(offer_card)
    # Times from now on, the soonest first with the same counselor, but never the time that just failed.
    assert starts and START not in starts and min(starts) > scene.clock.now(), starts
    assert min(starts) == START + timedelta(minutes=15)

    # The failed time itself, pressed from a hand-made card, is refused and nothing changes.
    body, _ = await citizen.execute(Verb.APPT_REBOOK, {**data, "start": START.isoformat()})
    assert t("fr", INVALID_SLOT) in card_text(body["value"])
    async with scene.services.uow.read() as uow:
        upcoming = await uow.appointments.upcoming_for_citizen(await scene.citizen_id(citizen), scene.clock.now())
    assert [appointment.id for appointment in upcoming] == [booked.appointment.id]


async def test_nobody_joined_is_answered_kindly_until_the_commitment_then_alerts_and_offers_new_times(
    scene: Scene,
) -> None:
    citizen = scene.person()
    booked = await scene.book(citizen)
    counselor = await _counselor_of(scene, booked)
    data = {"appointment_id": booked.appointment.id}
    await scene.at(START - timedelta(minutes=60))  # the reminder an hour before
    await _prompt(scene, counselor)
    reminder = [card for card in _cards(citizen.replies()) if any(
        a.get("verb") == Verb.APPT_NOBODY_JOINED for a in actions_of(card))][-1]
    scene.clock.set(START - timedelta(minutes=2))
    body, replies = await citizen.execute(Verb.APPT_NOBODY_JOINED,
                                          dict(action_with_verb(reminder, Verb.APPT_NOBODY_JOINED)["data"]))
    assert t("fr", "outcomes.wait.not_started", start="10:00", minutes="10 minutes", time="10:10") in card_text(
        _cards(replies)[0])
    # The reminder pressed stays in place as it was (its guide, its buttons), not an empty banner.
    assert body["type"] == "application/vnd.microsoft.card.adaptive"
    assert card_text(body["value"]) == card_text(reminder)
    scene.clock.set(START + timedelta(minutes=4))
    _, replies = await citizen.execute(Verb.APPT_NOBODY_JOINED, data)
    assert t("fr", "outcomes.wait.started", minutes="10 minutes", time="10:10") in card_text(_cards(replies)[0])
    assert await scene.outcomes(booked.appointment.id) == []

    scene.clock.set(START + timedelta(minutes=11))
    _, replies = await citizen.execute(Verb.APPT_NOBODY_JOINED, data)
    assert t("fr", "outcomes.new_times.title_agency_late") in card_text(_cards(replies)[0])
    assert t("fr", "outcomes.new_times.text_agency_late") in card_text(_cards(replies)[0])  # and it was
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



async def _wait_in_vain(scene: Scene, citizen: TeamsUser, booked: Booked) -> str:
    """The citizen presses "Nobody has joined yet" after the agency's commitment: what the answer says."""
    scene.clock.set(START + timedelta(minutes=scene.services.agency.agency_wait_commitment_minutes + 1))
    _, replies = await citizen.execute(Verb.APPT_NOBODY_JOINED, {"appointment_id": booked.appointment.id})
    return card_text(_cards(replies)[0])


async def test_nobody_joined_when_no_alert_can_reach_anyone_says_so_gives_the_phone_and_counts_the_loss(
    lonely_scene: Scene, bot_settings: Settings, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    scene = lonely_scene
    agency = scene.services.agency
    citizen = scene.person()
    booked = await scene.book(citizen)  # the counselor never opened a chat with the bot
    with caplog.at_level(logging.WARNING):
        await scene.at(START - timedelta(minutes=5))  # the prompt reaches nobody
        answer = await _wait_in_vain(scene, citizen, booked)
        await scene.runner.drain()  # the alert reaches nobody either

    assert t("fr", "outcomes.new_times.text_agency_late") not in answer  # no "our team has been alerted"
    assert t("fr", "outcomes.new_times.text_agency_late_unreached", phone=agency.contact.phone) in answer
    assert await scene.outcomes(booked.appointment.id) == ["agency_late"]  # recorded all the same

    errors = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "bot.jobs.runner"]
    assert sorted(r.args[1] for r in errors) == ["counselor_prompt", "staff_alert"]  # type: ignore[index]
    logged = caplog.text
    counselor = agency.counselor((await scene.appointment(booked.appointment.id)).counselor_id)
    assert counselor is not None
    assert not any(word in logged for word in ("Camille", "Dupont", counselor.display_name))
    async with scene.services.uow.read() as uow:
        counts = await uow.jobs.outcome_counts()
    assert counts[("failed", "staff_message_lost")] == 2
    assert scene.runner.stats.staff_messages_lost == 2

    # The operator's view counts them apart.
    monkeypatch.setenv("GUICHET_DATABASE_URL", bot_settings.database_url)
    monkeypatch.setenv("GUICHET_AGENCY", str(bot_settings.agency))
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["jobs", "list"]) == 0
    listed = capsys.readouterr().out
    assert "failed/staff_message_lost 2" in listed and "staff messages that reached nobody: 2" in listed


async def test_nobody_joined_says_the_team_was_alerted_when_the_fallback_channel_or_an_install_can_reach_it(
    scene: Scene, bot_settings: Settings, agency: Agency, connector: FakeConnector, http: aiohttp.ClientSession,
) -> None:
    citizen = scene.person()
    booked = await scene.book(citizen)  # no chat with the counselor, but the agency's channel
    answer = await _wait_in_vain(scene, citizen, booked)
    assert t("fr", "outcomes.new_times.text_agency_late") in answer

    installer = InstallsButNoChatComes()
    async with _scene(bot_settings.model_copy(update={"database_url": bot_settings.database_url + "-install"}),
                      agency, connector, http, fallback_channel=False, installer=installer) as installing:
        other = installing.person()
        booked = await installing.book(other)
        answer = await _wait_in_vain(installing, other, booked)
    assert t("fr", "outcomes.new_times.text_agency_late") in answer


async def test_at_start_up_counselors_no_message_can_reach_are_named_by_their_id_only(
    bot_settings: Settings, agency: Agency, connector: FakeConnector, http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def warned() -> str:
        lines = [r.getMessage() for r in caplog.records
                 if r.levelno == logging.WARNING and "no prompt or alert can reach" in r.getMessage()]
        assert len(lines) <= 1, lines
        return lines[0] if lines else ""

    with caplog.at_level(logging.WARNING):
        async with _scene(bot_settings, agency, connector, http, fallback_channel=False) as scene:
            first = warned()
            counselor = scene.person(agency.counselors[0].id)
            await counselor.install()  # now the bot has a chat with this one
    assert all(c.id in first for c in agency.counselors), first
    assert not any(c.display_name in first for c in agency.counselors)

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        async with _scene(bot_settings, agency, connector, http, fallback_channel=False):
            again = warned()
    assert agency.counselors[0].id not in again and agency.counselors[1].id in again

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        async with _scene(bot_settings, agency, connector, http, fallback_channel=True):
            assert warned() == ""  # the channel reaches the team for everyone


async def test_my_day_names_each_client_for_the_counselor_and_the_supervisor(scene: Scene) -> None:
    citizen = scene.person()
    booked = await scene.book(citizen)
    counselor = await _counselor_of(scene, booked)
    scene.clock.set(START - timedelta(days=1))
    day = card_text(_cards(await counselor.say("ma journée"))[-1])
    assert "10:00" in day and "Camille Dupont" in day
    team_day = card_text(_cards(await scene.person(SUPERVISOR).say("ma journée"))[-1])
    assert "Camille Dupont" in team_day


async def test_statistics_asked_by_a_counselor_who_is_not_a_supervisor_says_they_are_for_supervisors(
    scene: Scene,
) -> None:
    citizen = scene.person()
    booked = await scene.book(citizen)
    counselor = await _counselor_of(scene, booked)
    replies = await counselor.say("statistiques")
    said = " ".join(reply.text or "" for reply in replies) + " ".join(card_text(c) for c in _cards(replies))
    assert t("fr", "staff.statistics.supervisors_only") in said
    assert t("fr", "staff.statistics.title") not in said
