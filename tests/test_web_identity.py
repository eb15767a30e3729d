"""Who a turn on the agency's website is: a Direct Line user id proves nothing. A conversation bound by a proof
(a manage link, the agency's sign-in) is its citizen; any other is the anonymous citizen of that very
conversation, who may book and handle what it booked there, and is told how to reach the rest."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.app import SERVICES
from bot.domain.agency import Agency
from bot.domain.appointment import AppointmentStatus
from bot.domain.web_identity import ANONYMOUS_WEB_TENANT, keeps_stored_reference, tell_how_to_prove, who_is_web_turn
from bot.i18n import t
from cards.validation import validate_card
from cards.verbs import Verb
from cards.web_identity import build_proof_needed_card
from storage.tables import appointments, citizens
from tests.harness import FakeConnector, TeamsUser, actions_of, card_text
from tests.privacy_support import DETAILS
from tests.web_support import Site, Visitor, card_texts, cards_of, open_site

NOT_FOUND = t("fr", "booking.message.not_found", command=t("fr", "help.command.my_appointments"))


@pytest.fixture
async def site(tmp_path: Path, agency_path: Path, agency: Agency) -> AsyncIterator[Site]:
    async with open_site(tmp_path, agency_path, agency) as opened:
        yield opened


def _says_how_to_prove(answers: list[dict[str, Any]], language: str = "fr") -> bool:
    text = card_texts(answers)
    return t(language, "web_identity.title") in text and t(language, "web_identity.why") in text


def _booked_id(visitor: Visitor) -> str:
    """The appointment named by the buttons of the visitor's last cards (its confirmation)."""
    for card in reversed(visitor.cards()):
        for action in actions_of(card):
            if isinstance((action.get("data") or {}).get("appointment_id"), str):
                return str(action["data"]["appointment_id"])
    raise AssertionError("no card names an appointment")


async def _appointment(site: Site, appointment_id: str) -> dict[str, Any]:
    async with site.bot.app[SERVICES].uow.read() as uow:
        row = (await uow.session.execute(select(appointments).where(appointments.c.id == appointment_id))).one()
    return dict(row._mapping)


async def _count_citizens(site: Site) -> int:
    async with site.bot.app[SERVICES].uow.read() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(citizens)) or 0)


def _exported(answers: list[dict[str, Any]]) -> dict[str, Any]:
    [attachment] = [a for answer in answers for a in answer.get("attachments") or []
                    if a.get("contentType") == "application/json"]
    return dict(json.loads(base64.b64decode(attachment["contentUrl"].split(",", 1)[1])))


async def test_opening_the_page_makes_nobody_and_a_first_message_makes_the_conversations_own_citizen(
        site: Site) -> None:
    visitor = await Visitor.open(site)
    await visitor.send({"type": "conversationUpdate",
                        "membersAdded": [{"id": "guichet-bot"}, {"id": visitor.user_id}]})
    assert await _count_citizens(site) == 0, "opening the page is not a visit of anybody"
    await visitor.say("bonjour")
    await visitor.say("aide")
    assert await _count_citizens(site) == 1
    async with site.bot.app[SERVICES].uow.read() as uow:
        [row] = (await uow.session.execute(select(citizens))).all()
    assert row.tenant_id == "web-conversation" and row.teams_user_id is None
    assert visitor.user_id not in json.dumps(row.aad_object_id) and len(row.aad_object_id) == 64
    # The e-mail rules read the stored reference's channel: this citizen is reached by e-mail.
    assert row.conversation_reference["channelId"] == "webchat"


async def test_a_second_conversation_with_the_same_user_id_and_no_proof_reaches_nothing(
        site: Site, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    first = await Visitor.open(site)
    await first.book(DETAILS)
    appointment_id = _booked_id(first)
    assert (await _appointment(site, appointment_id))["status"] == AppointmentStatus.BOOKED

    # The very conversation that booked lists that booking, and says how to reach any earlier one.
    listed = await first.say(t("fr", "help.command.my_appointments"))
    assert _says_how_to_prove(listed) and any(
        (a.get("data") or {}).get("appointment_id") == appointment_id
        for card in cards_of(listed) for a in actions_of(card))

    # Another conversation of a page reusing the same dl_ id: nothing of theirs, whatever it asks.
    other = Visitor.forged(site, first.user_id, "another-conversation-of-the-same-page")
    for command in ("my_appointments", "my_data", "cancel_appointment", "reschedule", "export", "erase"):
        answers = await other.say(t("fr", f"help.command.{command}"))
        assert _says_how_to_prove(answers), command
        assert DETAILS["last_name"] not in card_texts(answers) and appointment_id not in card_texts(answers)
    for verb in (Verb.MENU_MY_APPOINTMENTS, Verb.MENU_MY_DATA):
        answers = await other.submit({"verb": verb})
        assert _says_how_to_prove(answers), verb
        assert DETAILS["last_name"] not in card_texts(answers) and appointment_id not in card_texts(answers)
    # A privacy button pressed there acts on that conversation's own citizen, who holds nothing of theirs.
    for verb in (Verb.PRIVACY_EXPORT, Verb.PRIVACY_ERASE):
        answers = await other.submit({"verb": verb})
        assert DETAILS["last_name"] not in json.dumps(answers) and appointment_id not in json.dumps(answers), verb
    # The appointment id in hand-made Submit data: the usual refusal, and the appointment stays.
    for verb in (Verb.APPT_CANCEL, Verb.APPT_DETAILS, Verb.APPT_RESCHEDULE):
        answers = await other.submit({"verb": verb, "appointment_id": appointment_id})
        if verb == Verb.APPT_RESCHEDULE:  # this conversation's citizen has not accepted the terms yet
            answers = await other.accept_consent()
        assert NOT_FOUND in card_texts(answers), verb
    answers = await other.submit({"verb": Verb.APPT_CANCEL_CONFIRM, "appointment_id": appointment_id})
    assert DETAILS["last_name"] not in card_texts(answers)
    assert (await _appointment(site, appointment_id))["status"] == AppointmentStatus.BOOKED
    assert "another-conversation-of-the-same-page" not in caplog.text
    assert first.token is not None and first.token not in caplog.text


async def test_the_conversation_that_booked_sees_and_cancels_its_own_booking(site: Site) -> None:
    visitor = await Visitor.open(site)
    await visitor.book(DETAILS)
    appointment_id = _booked_id(visitor)
    details = await visitor.submit({"verb": Verb.APPT_DETAILS, "appointment_id": appointment_id})
    assert NOT_FOUND not in card_texts(details)
    await visitor.submit({"verb": Verb.APPT_CANCEL, "appointment_id": appointment_id})
    await visitor.press(Verb.APPT_CANCEL_CONFIRM)
    assert (await _appointment(site, appointment_id))["status"] == AppointmentStatus.CANCELLED


async def test_a_conversation_opened_by_a_manage_link_sees_exports_and_cancels(
        site: Site, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    booking = await Visitor.open(site)
    await booking.book(DETAILS)
    appointment_id = _booked_id(booking)
    citizen_id = str((await _appointment(site, appointment_id))["citizen_id"])
    link = await site.identities.manage_link_token(citizen_id)  # what the confirmation e-mail carries

    proven = await Visitor.open(site, {"manage_token": link})
    listing = await proven.say(t("fr", "help.command.my_appointments"))
    assert not _says_how_to_prove(listing)
    assert any(a.get("data", {}).get("appointment_id") == appointment_id
               for card in proven.cards() for a in actions_of(card))
    exported = _exported(await proven.say(t("fr", "help.command.export")))
    assert appointment_id in json.dumps(exported) and DETAILS["last_name"] in json.dumps(exported)
    await proven.press(Verb.APPT_CANCEL)
    await proven.press(Verb.APPT_CANCEL_CONFIRM)
    assert (await _appointment(site, appointment_id))["status"] == AppointmentStatus.CANCELLED
    # Neither the link nor the Direct Line tokens ever reach the logs.
    assert proven.token is not None and booking.token is not None
    for secret in (link, proven.token, booking.token, site.directline.secret):
        assert secret not in caplog.text


async def test_the_same_token_in_another_conversation_proves_nothing(site: Site) -> None:
    booking = await Visitor.open(site)
    await booking.book(DETAILS)
    citizen_id = str((await _appointment(site, _booked_id(booking)))["citizen_id"])
    proven = await Visitor.open(site, {"manage_token": await site.identities.manage_link_token(citizen_id)})
    elsewhere = Visitor.forged(site, proven.user_id, "a-conversation-the-token-was-not-made-for")
    assert _says_how_to_prove(await elsewhere.say(t("fr", "help.command.my_appointments")))
    assert not _says_how_to_prove(await proven.say(t("fr", "help.command.my_appointments")))


async def test_erasure_unbinds_the_conversation(site: Site) -> None:
    booking = await Visitor.open(site)
    await booking.book(DETAILS)
    citizen_id = str((await _appointment(site, _booked_id(booking)))["citizen_id"])
    proven = await Visitor.open(site, {"manage_token": await site.identities.manage_link_token(citizen_id)})
    await proven.say(t("fr", "help.command.erase"))
    await proven.press(Verb.PRIVACY_ERASE_CONFIRM)
    assert await site.identities.who_is(proven.user_id, proven.conversation_id) is None
    assert _says_how_to_prove(await proven.say(t("fr", "help.command.my_data")))


async def test_a_teams_citizen_proven_on_the_web_keeps_their_teams_chat_for_reminders(
        site: Site, connector: FakeConnector) -> None:
    async with aiohttp.ClientSession() as http:
        teams = TeamsUser(site.bot.url, connector, http)
        await teams.say("bonjour")
    async with site.bot.app[SERVICES].uow.read() as uow:
        [row] = (await uow.session.execute(select(citizens))).all()
    before = row.last_seen_at
    site.clock.advance(timedelta(minutes=30))
    proven = await Visitor.open(site, {"manage_token": await site.identities.manage_link_token(row.id)},
                                language="nl")
    assert not _says_how_to_prove(await proven.say(t("nl", "help.command.my_data")), "nl")
    async with site.bot.app[SERVICES].uow.read() as uow:
        [after] = (await uow.session.execute(select(citizens))).all()
    assert after.conversation_reference["channelId"] == "msteams", "reminders still go to the Teams chat"
    assert after.locale == "nl-BE" and after.last_seen_at > before
    assert await _count_citizens(site) == 1


async def test_a_conversation_signed_in_by_the_agency_is_its_citizen_and_the_card_says_sign_in_where_set_up(
        site: Site) -> None:
    anonymous = await Visitor.open(site)
    card = card_texts(await anonymous.say(t("fr", "help.command.my_data")))
    assert t("fr", "web_identity.sign_in") in card, "this bot accepts the agency's sign-in: the card says so"
    assert t("fr", "web_identity.email_link", button=t("fr", "email.manage_button")) in card
    signed_in = await Visitor.open(site, {"assertion": site.assertion(), "locale": "fr-BE"})
    assert not _says_how_to_prove(await signed_in.say(t("fr", "help.command.my_data")))
    assert await site.identities.who_is(signed_in.user_id, signed_in.conversation_id) is not None


@pytest.mark.parametrize("language", ["fr", "nl", "de", "en"])
def test_the_card_names_the_sign_in_only_when_the_bot_has_one(language: str) -> None:
    without = card_text(build_proof_needed_card(language, sign_in=False))
    with_sign_in = card_text(build_proof_needed_card(language, sign_in=True))
    assert t(language, "web_identity.sign_in") not in without and t(language, "web_identity.sign_in") in with_sign_in
    assert t(language, "email.manage_button") in without
    validate_card(build_proof_needed_card(language, sign_in=True))


def test_who_a_web_turn_is() -> None:
    proven = who_is_web_turn(proven_citizen_id="c-1", conversation_id="conv-a", visitor_acted=False)
    assert proven.proven and proven.proven_citizen_id == "c-1" and proven.object_id is None
    opening = who_is_web_turn(proven_citizen_id=None, conversation_id="conv-a", visitor_acted=False)
    writing = who_is_web_turn(proven_citizen_id=None, conversation_id="conv-a", visitor_acted=True)
    elsewhere = who_is_web_turn(proven_citizen_id=None, conversation_id="conv-b", visitor_acted=True)
    assert not opening.creates and writing.creates and not writing.proven
    assert opening.object_id == writing.object_id != elsewhere.object_id
    assert writing.tenant_id == ANONYMOUS_WEB_TENANT and len(writing.object_id or "") == 64
    assert "conv-a" not in (writing.object_id or "")


def test_only_an_unproven_web_conversation_is_told_how_to_prove() -> None:
    assert not tell_how_to_prove(web_proof=None, needs_proof=True)
    assert not tell_how_to_prove(web_proof=True, needs_proof=True)
    assert not tell_how_to_prove(web_proof=False, needs_proof=False)
    assert tell_how_to_prove(web_proof=False, needs_proof=True)


def test_a_proven_web_turn_keeps_a_teams_chat_and_replaces_a_web_one() -> None:
    assert keeps_stored_reference({"channelId": "msteams"})
    assert not keeps_stored_reference({"channelId": "webchat"}) and not keeps_stored_reference(None)
    assert not keeps_stored_reference({"channelId": "directline"})


async def test_a_page_cannot_pass_for_a_counselor_or_a_teams_tenant(site: Site, agency: Agency) -> None:
    """A page writes what it likes in `from` and `channelData`: a counselor's Entra object id or a tenant there
    makes neither a counselor nor a Teams citizen of the visitor."""
    counselor = agency.counselors[0]
    visitor = await Visitor.open(site)
    answers = await visitor.send({"type": "message", "text": t("fr", "help.command.my_day"),
                                  "from": {"id": visitor.user_id, "aadObjectId": counselor.id},
                                  "channelData": {"tenant": {"id": "7e5b2c1a-0000-4000-8000-000000000001"}}})
    assert t("fr", "conversation.staff_only") in card_texts(answers)
    async with site.bot.app[SERVICES].uow.read() as uow:
        [row] = (await uow.session.execute(select(citizens))).all()
    assert row.tenant_id == "web-conversation" and row.aad_object_id != counselor.id
    assert "tenantId" not in row.conversation_reference["conversation"]


async def test_a_visitor_who_erased_their_data_starts_afresh_in_the_same_conversation(site: Site) -> None:
    """Erasure forgets the anonymous citizen of the conversation: the next message there is a new person,
    never the erased one (whose row is kept as an erased shell)."""
    visitor = await Visitor.open(site)
    await visitor.book(DETAILS)
    erased = await _citizen_ids(site)
    await visitor.say(t("fr", "help.command.erase"))
    await visitor.press(Verb.PRIVACY_ERASE_CONFIRM)
    async with site.bot.app[SERVICES].uow.read() as uow:
        assert (await uow.citizens.get(erased[0])).erased_at is not None
    answers = await visitor.say(t("fr", "help.command.my_data"))
    assert DETAILS["last_name"] not in card_texts(answers)
    assert len(await _citizen_ids(site)) == 2, "a new citizen for the same conversation"


async def _citizen_ids(site: Site) -> list[str]:
    async with site.bot.app[SERVICES].uow.read() as uow:
        return [row.id for row in (await uow.session.execute(select(citizens))).all()]
