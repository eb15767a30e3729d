"""Consent over real HTTP: the gate before booking, proof rows, refusals, new versions, withdrawal.

The bot is the real app on a real port with a fixed clock. Most gate tests put the gate in front of
a small probe dialog, so they do not depend on the booking steps (the gate works for any `next`):
the app is built by create_app and its main dialog rebuilt with the real consent feature plus the
probe. `test_booking_in_the_real_app_...` and the document/withdrawal tests use the app unchanged.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from botbuilder.core import ConversationState
from botbuilder.dialogs import DialogTurnResult, WaterfallDialog, WaterfallStepContext
from sqlalchemy import select

from bot.app import BOT, SERVICES, UOW, WIRING, create_app
from bot.commands import Intent
from bot.domain.agency import Agency, DocumentKind, load_agency
from bot.domain.appointment import Appointment
from bot.domain.audit import AuditEvent, EventType
from bot.domain.clock import FixedClock
from bot.domain.consent import ConsentRecord, Purpose, content_hash
from bot.domain.jobs import Job
from bot.domain.people import Citizen
from bot.i18n import t
from bot.services.audit import verify
from bot.services.consent import ConsentService, citizen_ref
from bot.settings import Settings
from bot.teams_bot import TeamsBot
from bot.wiring import assemble_services
from cards.validation import MAX_CARD_BYTES, card_size_bytes, validate_card
from cards.verbs import Verb
from dialogs.consent import build_consent_feature
from dialogs.main_dialog import Entry, Feature, build_main_dialog
from storage.bot_state import DatabaseStorage
from storage.migrate import upgrade_database
from storage.repositories.citizens import PERSONAL_COLUMNS
from storage.unit_of_work import UnitOfWorkFactory
from tests.conftest import AGENCIES
from tests.harness import FakeConnector, Recorded, TeamsUser, action_with_verb, actions_of, card_text, free_port

# Monday 2 March 2026, 10:00 in Brussels.
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
PROBE_DIALOG = "probe.after_gate"
PROBE_VERB = "probe_go"
PROBE_MARK = "PROBE reached"
# The example agency's versions in force: the terms and privacy policy of December, which cover both
# channels (Teams and the chat on the agency's website).
TERMS = "2026-12"
PRIVACY = "2026-12"


# --- The bot -----------------------------------------------------------------------------------------


async def _probe_step(step: WaterfallStepContext) -> DialogTurnResult:
    await step.context.send_activity(f"{PROBE_MARK} {json.dumps(step.options or {}, sort_keys=True)}")
    return await step.end_dialog()


def probe_feature() -> Feature:
    """A stand-in for any dialog behind the gate: it only says that it ran, and with which options."""
    entry = Entry(PROBE_DIALOG, needs_consent=True)
    return Feature(dialogs=[WaterfallDialog(PROBE_DIALOG, [_probe_step])], intents={Intent.BOOK: entry},
                   verbs={PROBE_VERB: entry})


@dataclass
class Bot:
    url: str
    app: web.Application

    @property
    def agency(self) -> Agency:
        return self.app[SERVICES].agency


@contextlib.asynccontextmanager
async def serve(settings: Settings, agency: Agency, clock: FixedClock, *, probe: bool) -> AsyncIterator[Bot]:
    await upgrade_database(settings.database_url)
    app = create_app(settings, agency=agency, clock=clock)
    if probe:
        services = app[SERVICES]
        app[BOT] = TeamsBot(
            agency=agency,
            conversation_state=ConversationState(DatabaseStorage(app[UOW].session_factory)),
            dialog=build_main_dialog(agency, [build_consent_feature(services, app[WIRING].use_cases.consent),
                                              probe_feature()]),
            people=app[WIRING].use_cases.people,
        )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield Bot(f"http://127.0.0.1:{port}", app)
    finally:
        await runner.cleanup()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
async def gated(bot_settings: Settings, agency: Agency, clock: FixedClock) -> AsyncIterator[Bot]:
    """The app with the consent gate in front of the probe dialog."""
    async with serve(bot_settings, agency, clock, probe=True) as bot:
        yield bot


@pytest.fixture
async def real(bot_settings: Settings, agency: Agency, clock: FixedClock) -> AsyncIterator[Bot]:
    """The app exactly as create_app wires it."""
    async with serve(bot_settings, agency, clock, probe=False) as bot:
        yield bot


def user_of(bot: Bot, connector: FakeConnector, http: aiohttp.ClientSession, locale: str = "fr-BE") -> TeamsUser:
    return TeamsUser(bot_url=bot.url, connector=connector, http=http, locale=locale)


# --- Pressing buttons --------------------------------------------------------------------------------


@dataclass
class Press:
    activity_id: str
    body: Any
    replies: list[Recorded]

    @property
    def refreshed(self) -> dict[str, Any] | None:
        """The card the invoke response puts in place of the pressed one."""
        if isinstance(self.body, dict) and self.body.get("type") == ADAPTIVE_CARD:
            return self.body["value"]
        return None

    @property
    def cards(self) -> list[dict[str, Any]]:
        return cards_of(self.replies)

    @property
    def texts(self) -> list[str]:
        return [r.text for r in self.replies if r.text]


async def press(user: TeamsUser, card: dict[str, Any], verb: str, *, submit: bool = False,
                **overrides: Any) -> Press:
    """Press the card's button: Action.Execute (invoke), or its Action.Submit fallback (message)."""
    action = action_with_verb(card, verb)
    if submit:
        data = {**action["fallback"]["data"], **overrides}
        activity = user.activity(value=data)
    else:
        data = {**action["data"], **overrides}
        activity = user.activity(type="invoke", name="adaptiveCard/action", replyToId="card-1",
                                 value={"action": {"type": "Action.Execute", "verb": verb, "data": data},
                                        "trigger": "manual"})
    before = len(user.replies())
    status, body = await user.post(activity)
    assert status == (201 if submit else 200), (status, body)
    replies = user.replies()[before:]
    check_cards(replies)
    if isinstance(body, dict) and body.get("type") == ADAPTIVE_CARD:
        check_card(body["value"])
    return Press(activity["id"], body, replies)


def cards_of(replies: list[Recorded]) -> list[dict[str, Any]]:
    return [card for reply in replies for card in reply.cards]


def check_card(card: dict[str, Any]) -> None:
    validate_card(card)
    assert card_size_bytes(card) < MAX_CARD_BYTES


def check_cards(replies: list[Recorded]) -> None:
    for card in cards_of(replies):
        check_card(card)


async def say(user: TeamsUser, text: str) -> list[Recorded]:
    replies = await user.say(text)
    check_cards(replies)
    return replies


def is_consent_card(card: dict[str, Any], kind: DocumentKind, language: str = "fr") -> bool:
    return t(language, f"consent.{kind.value}.question") in card_text(card) and any(
        a.get("verb") == Verb.CONSENT_ACCEPT for a in actions_of(card)
    )


def only_card(replies: list[Recorded]) -> dict[str, Any]:
    cards = cards_of(replies)
    assert len(cards) == 1, [r.text for r in replies]
    return cards[0]


def probe_reached(replies: list[Recorded]) -> bool:
    return any((r.text or "").startswith(PROBE_MARK) for r in replies)


# --- Reading the database ----------------------------------------------------------------------------


async def consent_rows(bot: Bot) -> list[ConsentRecord]:
    async with bot.app[UOW]() as uow:
        return list(await uow.session.scalars(select(ConsentRecord).order_by(ConsentRecord.id)))


async def audit_rows(bot: Bot) -> list[AuditEvent]:
    async with bot.app[UOW]() as uow:
        return list(await uow.session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


async def citizen_row(bot: Bot, user: TeamsUser) -> Citizen:
    async with bot.app[UOW]() as uow:
        return (await uow.session.scalars(select(Citizen).where(Citizen.aad_object_id == user.aad_object_id))).one()


async def book_appointment(bot: Bot, citizen_id: str, starts_at: datetime) -> str:
    """An upcoming appointment as the booking service leaves it: the row, its claimed time, a reminder."""
    agency = bot.agency
    subject = agency.subjects[0]
    counselor = agency.counselors[0]
    appointment_id = str(uuid.uuid4())
    ends_at = starts_at + timedelta(minutes=subject.duration_minutes)
    async with bot.app[UOW]() as uow:
        await uow.appointments.add(Appointment(
            id=appointment_id, agency_id=agency.id, citizen_id=citizen_id, counselor_id=counselor.id,
            mode="video", office_id=None, subject_id=subject.id, starts_at=starts_at, ends_at=ends_at,
            status="booked", interview_language="fr", created_at=NOW, updated_at=NOW,
        ))
        steps = [starts_at + timedelta(minutes=m) for m in range(0, subject.duration_minutes, 15)]
        await uow.slot_claims.claim(appointment_id, counselor.id, steps)
        await uow.jobs.schedule("reminder", starts_at - timedelta(days=1), {"appointment_id": appointment_id},
                                appointment_id=appointment_id, now=NOW)
        await uow.commit()
    return appointment_id


async def accept_both(user: TeamsUser, *, submit: bool = False) -> list[Press]:
    """Ask to book and accept the terms then the privacy policy."""
    terms = only_card(await say(user, "prendre rendez-vous"))
    assert is_consent_card(terms, DocumentKind.TERMS)
    first = await press(user, terms, Verb.CONSENT_ACCEPT, submit=submit)
    privacy = only_card(first.replies)
    assert is_consent_card(privacy, DocumentKind.PRIVACY)
    second = await press(user, privacy, Verb.CONSENT_ACCEPT, submit=submit)
    assert probe_reached(second.replies)
    return [first, second]


# --- The gate ----------------------------------------------------------------------------------------


async def test_a_new_citizen_reads_and_accepts_terms_then_privacy_before_booking(
    gated: Bot, connector: FakeConnector, http: aiohttp.ClientSession
) -> None:
    user = user_of(gated, connector, http)
    agency = gated.agency
    replies = await say(user, "prendre rendez-vous")
    terms = only_card(replies)
    assert is_consent_card(terms, DocumentKind.TERMS) and terms["lang"] == "fr"
    assert not probe_reached(replies)
    assert await consent_rows(gated) == []

    accepted_terms = await press(user, terms, Verb.CONSENT_ACCEPT)
    # The pressed card turns into the record of what was accepted, when, which version.
    assert accepted_terms.body["statusCode"] == 200
    recorded = accepted_terms.refreshed
    assert recorded is not None
    text = card_text(recorded)
    assert "2 mars 2026" in text and "02/03/2026" not in text and "10:00" in text and TERMS in text
    assert not [a for a in actions_of(recorded) if a.get("verb") == Verb.CONSENT_ACCEPT]
    privacy = only_card(accepted_terms.replies)
    assert is_consent_card(privacy, DocumentKind.PRIVACY)

    accepted_privacy = await press(user, privacy, Verb.CONSENT_ACCEPT)
    assert accepted_privacy.refreshed is not None
    assert t("fr", "consent.privacy.accepted", date="2 mars 2026", time="10:00", version=PRIVACY) in card_text(
        accepted_privacy.refreshed)
    assert probe_reached(accepted_privacy.replies)

    citizen = await citizen_row(gated, user)
    rows = await consent_rows(gated)
    assert [(r.document_kind, r.action) for r in rows] == [("terms", "accepted"), ("privacy", "accepted")]
    for row, pressed in zip(rows, (accepted_terms, accepted_privacy), strict=True):
        document = agency.current_document(DocumentKind(row.document_kind))
        assert row.citizen_id == citizen.id and row.agency_id == agency.id
        assert row.version == document.version
        assert row.content_hash == content_hash(agency, document) and len(row.content_hash) == 64
        assert row.language == "fr" and row.channel == "msteams"
        assert row.activity_id == pressed.activity_id
        assert row.occurred_at == NOW

    events = await audit_rows(gated)
    assert [e.event_type for e in events] == [EventType.CONSENT_ACCEPTED] * 2
    assert [e.payload["kind"] for e in events] == ["terms", "privacy"]
    for event, row in zip(events, rows, strict=True):
        assert event.citizen_pseudonym == citizen.id
        assert event.payload == {"kind": row.document_kind, "version": row.version,
                                 "content_hash": row.content_hash, "language": "fr"}
    assert (await verify(gated.app[UOW], agency.id)).ok

    # Consent is current now: the next request goes straight through, and nothing is recorded twice.
    again = await say(user, "prendre rendez-vous")
    assert probe_reached(again) and not cards_of(again)
    assert len(await consent_rows(gated)) == 2


async def test_the_gate_hands_the_button_data_to_the_dialog_behind_it(
    gated: Bot, connector: FakeConnector, http: aiohttp.ClientSession
) -> None:
    user = user_of(gated, connector, http)
    start = await user.submit({"verb": PROBE_VERB, "subject": "payments"})
    terms = only_card(start)
    privacy = only_card((await press(user, terms, Verb.CONSENT_ACCEPT)).replies)
    done = await press(user, privacy, Verb.CONSENT_ACCEPT)
    reached = next(r.text for r in done.replies if (r.text or "").startswith(PROBE_MARK))
    assert json.loads(reached[len(PROBE_MARK):])["subject"] == "payments"


async def test_the_submit_fallback_records_the_same_proof_and_confirms_in_text(
    gated: Bot, connector: FakeConnector, http: aiohttp.ClientSession
) -> None:
    user = user_of(gated, connector, http)
    terms_press, privacy_press = await accept_both(user, submit=True)
    assert t("fr", "consent_flow.accepted.terms", version=TERMS) in terms_press.texts
    assert t("fr", "consent_flow.accepted.privacy", version=PRIVACY) in privacy_press.texts
    rows = await consent_rows(gated)
    assert [r.document_kind for r in rows] == ["terms", "privacy"]
    assert [r.activity_id for r in rows] == [terms_press.activity_id, privacy_press.activity_id]
    assert all(r.channel == "msteams" and r.language == "fr" for r in rows)
    assert len(await audit_rows(gated)) == 2


@pytest.mark.parametrize("submit", [False, True], ids=["execute", "submit"])
async def test_declining_stores_nothing_and_says_how_else_to_reach_the_agency(
    gated: Bot, connector: FakeConnector, http: aiohttp.ClientSession, submit: bool
) -> None:
    user = user_of(gated, connector, http)
    terms = only_card(await say(user, "prendre rendez-vous"))
    declined = await press(user, terms, Verb.CONSENT_DECLINE, submit=submit)
    card = only_card(declined.replies) if submit else declined.refreshed
    assert card is not None
    assert t("fr", "consent.declined.title") in card_text(card)
    assert gated.agency.contact.phone in card_text(card)
    assert not probe_reached(declined.replies)
    assert await consent_rows(gated) == []
    assert await audit_rows(gated) == []
    citizen = await citizen_row(gated, user)
    assert all(getattr(citizen, column) is None for column in PERSONAL_COLUMNS)
    # Changing one's mind later: the terms are asked again.
    assert is_consent_card(only_card(await say(user, "prendre rendez-vous")), DocumentKind.TERMS)


async def test_a_replayed_acceptance_is_refused_and_recorded_once(
    gated: Bot, connector: FakeConnector, http: aiohttp.ClientSession
) -> None:
    user = user_of(gated, connector, http)
    terms = only_card(await say(user, "prendre rendez-vous"))
    first = await press(user, terms, Verb.CONSENT_ACCEPT, submit=True)
    privacy = only_card(first.replies)

    replay = await press(user, terms, Verb.CONSENT_ACCEPT, submit=True)
    assert replay.texts == [t("fr", "conversation.stale_card")]
    assert len(await consent_rows(gated)) == 1

    await press(user, privacy, Verb.CONSENT_ACCEPT)
    replay = await press(user, privacy, Verb.CONSENT_ACCEPT)
    # The stale card makes way for a pointer to the answer (never an empty banner); nothing is recorded.
    assert replay.refreshed is not None and t("fr", "conversation.answer_below") in card_text(replay.refreshed)
    assert replay.texts == [t("fr", "conversation.stale_card")]
    replay = await press(user, terms, Verb.CONSENT_ACCEPT)
    assert replay.texts == [t("fr", "conversation.stale_card")]
    rows = await consent_rows(gated)
    assert [r.document_kind for r in rows] == ["terms", "privacy"]
    assert len(await audit_rows(gated)) == 2


async def test_forged_acceptances_are_refused_politely_and_change_nothing(
    gated: Bot, connector: FakeConnector, http: aiohttp.ClientSession
) -> None:
    user = user_of(gated, connector, http)
    someone_else = user_of(gated, connector, http)
    their_card = only_card(await say(someone_else, "prendre rendez-vous"))
    their_ref = action_with_verb(their_card, Verb.CONSENT_ACCEPT)["data"]["citizen_ref"]

    card = only_card(await say(user, "prendre rendez-vous"))
    my_ref = action_with_verb(card, Verb.CONSENT_ACCEPT)["data"]["citizen_ref"]
    citizen = await citizen_row(gated, user)
    assert my_ref != their_ref and citizen.id not in json.dumps(card)
    forgeries = [
        ({"version": "2025-01"}, "consent_flow.refused.not_current"),
        ({"doc_hash": "0123456789abcdef"}, "consent_flow.refused.not_current"),
        ({"citizen_ref": their_ref}, "consent_flow.refused.not_yours"),
        ({"language": "it"}, "consent_flow.refused.invalid"),
        ({"kind": "privacy"}, "consent_flow.refused.invalid"),
    ]
    for overrides, message in forgeries:
        # The forged data rides on the current card (its card id), so only the content is wrong.
        refused = await press(user, card, Verb.CONSENT_ACCEPT, **overrides)
        assert refused.texts == [t("fr", message)], overrides
        assert refused.refreshed is not None and t("fr", "consent_flow.replaced.title") in card_text(refused.refreshed)
        card = only_card(refused.replies)
        assert is_consent_card(card, DocumentKind.TERMS)
        assert await consent_rows(gated) == [] and await audit_rows(gated) == []
    # The genuine button still works afterwards.
    await press(user, card, Verb.CONSENT_ACCEPT)
    assert [r.document_kind for r in await consent_rows(gated)] == ["terms"]


async def test_a_new_document_version_is_asked_again_with_its_change_note(
    tmp_path: Path, connector: FakeConnector, http: aiohttp.ClientSession, clock: FixedClock
) -> None:
    agency_dir = tmp_path / "agency"
    shutil.copytree(AGENCIES / "example-be", agency_dir)
    agency_file = agency_dir / "agency.toml"
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db", agency=agency_file)
    user_id = str(uuid.uuid4())
    async with serve(settings, load_agency(agency_file), clock, probe=True) as bot:
        user = TeamsUser(bot_url=bot.url, connector=connector, http=http, aad_object_id=user_id)
        old_terms = only_card(await say(user, "prendre rendez-vous"))
        first = await press(user, old_terms, Verb.CONSENT_ACCEPT)
        await press(user, only_card(first.replies), Verb.CONSENT_ACCEPT)
        old_hash = (await consent_rows(bot))[0].content_hash

    # The agency publishes new terms the next June, with a note on what changed.
    for language in ("fr", "nl", "de", "en"):
        text = (agency_dir / f"terms-{TERMS}.{language}.md").read_text(encoding="utf-8")
        (agency_dir / f"terms-2027-06.{language}.md").write_text(text + "\n\nSection ajoutée en juin.\n",
                                                                  encoding="utf-8")
    with agency_file.open("a", encoding="utf-8") as toml:
        toml.write(
            '\n[[documents]]\nkind = "terms"\nversion = "2027-06"\npublished = 2027-06-01\n'
            'files = { fr = "terms-2027-06.fr.md", nl = "terms-2027-06.nl.md", de = "terms-2027-06.de.md", '
            'en = "terms-2027-06.en.md" }\n'
            'change_note = { fr = "Les rappels par SMS sont désormais possibles.", '
            'nl = "Herinneringen per sms zijn nu mogelijk.", de = "Erinnerungen per SMS sind jetzt möglich." }\n'
        )
    clock.set(datetime(2027, 6, 10, 12, 0, tzinfo=UTC))
    async with serve(settings, load_agency(agency_file), clock, probe=True) as bot:
        user = TeamsUser(bot_url=bot.url, connector=connector, http=http, aad_object_id=user_id)
        replies = await say(user, "prendre rendez-vous")
        card = only_card(replies)
        text = card_text(card)
        assert is_consent_card(card, DocumentKind.TERMS)
        assert t("fr", "consent.change_heading") in text
        assert "Les rappels par SMS sont désormais possibles." in text
        assert "2027-06" in action_with_verb(card, Verb.CONSENT_ACCEPT)["data"]["version"]

        # The button of the card accepted in January, replayed on today's card: the old version is refused.
        old_data = {k: v for k, v in action_with_verb(old_terms, Verb.CONSENT_ACCEPT)["data"].items() if k != "verb"}
        card_id = action_with_verb(card, Verb.CONSENT_ACCEPT)["data"]["card_id"]
        replay = await press(user, card, Verb.CONSENT_ACCEPT, **{**old_data, "card_id": card_id})
        assert replay.texts == [t("fr", "consent_flow.refused.not_current")]
        assert len(await consent_rows(bot)) == 2
        card = only_card(replay.replies)

        accepted = await press(user, card, Verb.CONSENT_ACCEPT)
        # Only the terms changed: the privacy policy accepted in January still holds.
        assert probe_reached(accepted.replies) and not accepted.cards
        rows = await consent_rows(bot)
        assert [(r.document_kind, r.version) for r in rows] == [
            ("terms", TERMS), ("privacy", PRIVACY), ("terms", "2027-06")]
        assert rows[-1].content_hash not in (old_hash, rows[1].content_hash)
        assert rows[-1].content_hash == content_hash(bot.agency, bot.agency.current_document(DocumentKind.TERMS))


async def test_a_text_corrected_under_the_same_version_is_asked_again(
    tmp_path: Path, connector: FakeConnector, http: aiohttp.ClientSession, clock: FixedClock
) -> None:
    settings_for = {}
    for name in ("before", "after"):
        shutil.copytree(AGENCIES / "example-be", tmp_path / name)
        settings_for[name] = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
                                      agency=tmp_path / name / "agency.toml")
    # The agency fixes its privacy policy without changing the version label.
    edited = tmp_path / "after" / f"privacy-{PRIVACY}.fr.md"
    edited.write_text(edited.read_text(encoding="utf-8") + "\n\nUne coquille a été corrigée.\n", encoding="utf-8")
    user_id = str(uuid.uuid4())
    async with serve(settings_for["before"], load_agency(settings_for["before"].agency), clock, probe=True) as bot:
        await accept_both(TeamsUser(bot_url=bot.url, connector=connector, http=http, aad_object_id=user_id))
    async with serve(settings_for["after"], load_agency(settings_for["after"].agency), clock, probe=True) as bot:
        user = TeamsUser(bot_url=bot.url, connector=connector, http=http, aad_object_id=user_id)
        card = only_card(await say(user, "prendre rendez-vous"))
        assert is_consent_card(card, DocumentKind.PRIVACY)
        assert t("fr", "consent_flow.change.corrected", version=PRIVACY) in card_text(card)
        accepted = await press(user, card, Verb.CONSENT_ACCEPT)
        assert probe_reached(accepted.replies)
        rows = await consent_rows(bot)
        assert [(r.document_kind, r.version) for r in rows] == [
            ("terms", TERMS), ("privacy", PRIVACY), ("privacy", PRIVACY)]
        assert rows[1].content_hash != rows[2].content_hash


async def test_who_accepted_the_privacy_policy_before_the_website_chat_is_asked_again_on_the_next_turn(
    tmp_path: Path, connector: FakeConnector, http: aiohttp.ClientSession, clock: FixedClock
) -> None:
    # The example agency as it was before the chat on its website: only the January documents.
    before = tmp_path / "before"
    shutil.copytree(AGENCIES / "example-be", before)
    agency_file = before / "agency.toml"
    toml = agency_file.read_text(encoding="utf-8")
    december = toml.index("# The terms and the privacy policy that cover both channels")
    agency_file.write_text(toml[:december], encoding="utf-8")
    assert {load_agency(agency_file).current_document(kind).version for kind in DocumentKind} == {"2026-01"}
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db", agency=agency_file)
    user_id = str(uuid.uuid4())
    async with serve(settings, load_agency(agency_file), clock, probe=True) as bot:
        await accept_both(TeamsUser(bot_url=bot.url, connector=connector, http=http, aad_object_id=user_id))

    # The versions that describe both channels are published: the next turn asks for each, saying what changed.
    now = Settings(database_url=settings.database_url, agency=AGENCIES / "example-be" / "agency.toml")
    async with serve(now, load_agency(now.agency), clock, probe=True) as bot:
        user = TeamsUser(bot_url=bot.url, connector=connector, http=http, aad_object_id=user_id)
        card = only_card(await say(user, "prendre rendez-vous"))
        for kind in (DocumentKind.TERMS, DocumentKind.PRIVACY):
            text = card_text(card)
            assert is_consent_card(card, kind)
            assert t("fr", "consent.change_heading") in text
            assert bot.agency.current_document(kind).change_note["fr"] in text  # type: ignore[index]
            accepted = await press(user, card, Verb.CONSENT_ACCEPT)
            card = only_card(accepted.replies) if kind is DocumentKind.TERMS else card
        assert "Direct Line" in text
        assert probe_reached(accepted.replies)
        # Every proof stays: the January acceptances name the version they were given for.
        assert [(r.document_kind, r.version) for r in await consent_rows(bot)] == [
            ("terms", "2026-01"), ("privacy", "2026-01"), ("terms", TERMS), ("privacy", PRIVACY)]
        # The turn after that goes straight on.
        assert probe_reached(await say(user, "prendre rendez-vous"))


async def test_the_card_follows_the_teams_language_and_can_switch_to_german(
    gated: Bot, connector: FakeConnector, http: aiohttp.ClientSession
) -> None:
    user = user_of(gated, connector, http, locale="nl-BE")
    card = only_card(await say(user, "afspraak maken"))
    assert card["lang"] == "nl" and is_consent_card(card, DocumentKind.TERMS, "nl")
    switch = next(a for a in actions_of(card)
                  if a.get("verb") == Verb.CONSENT_LANGUAGE and a["data"]["language"] == "de")
    assert switch["title"] == "Auf Deutsch lesen"
    offered = {a["data"]["language"] for a in actions_of(card) if a.get("verb") == Verb.CONSENT_LANGUAGE}
    assert offered == {"fr", "de", "en"}

    switched = await press(user, card, Verb.CONSENT_LANGUAGE, language="de")
    german = only_card(switched.replies)
    assert german["lang"] == "de" and is_consent_card(german, DocumentKind.TERMS, "de")
    assert switched.refreshed is not None and switched.refreshed["lang"] == "de"
    # The Dutch card's buttons are gone with it.
    assert not [a for a in actions_of(switched.refreshed) if a.get("verb") == Verb.CONSENT_ACCEPT]

    accepted = await press(user, german, Verb.CONSENT_ACCEPT)
    privacy = only_card(accepted.replies)
    assert privacy["lang"] == "de" and is_consent_card(privacy, DocumentKind.PRIVACY, "de")
    assert (await consent_rows(gated))[0].language == "de"


# --- Reading the documents, withdrawing ------------------------------------------------------------


async def test_terms_and_privacy_commands_show_the_document_then_what_was_accepted(
    real: Bot, connector: FakeConnector, http: aiohttp.ClientSession
) -> None:
    user = user_of(real, connector, http)
    for command, kind in (("conditions", DocumentKind.TERMS), ("confidentialité", DocumentKind.PRIVACY)):
        card = only_card(await say(user, command))
        assert is_consent_card(card, kind)
        accepted = await press(user, card, Verb.CONSENT_ACCEPT)
        assert accepted.refreshed is not None and not accepted.replies
    assert [r.document_kind for r in await consent_rows(real)] == ["terms", "privacy"]

    # Once accepted, the document is shown read-only, with the date and version accepted.
    read_only = only_card(await say(user, "conditions"))
    assert not actions_of(read_only)
    assert t("fr", "consent.terms.accepted", date="2 mars 2026", time="10:00", version=TERMS) in card_text(
        read_only)
    # The help card's button leads to the same place.
    from_help = await user.submit({"verb": Verb.SHOW_PRIVACY})
    assert t("fr", "consent.privacy.accepted", date="2 mars 2026", time="10:00", version=PRIVACY) in card_text(
        only_card(from_help))
    assert len(await consent_rows(real)) == 2


async def test_withdrawing_records_it_and_cancels_upcoming_appointments(
    real: Bot, connector: FakeConnector, http: aiohttp.ClientSession
) -> None:
    user = user_of(real, connector, http)
    for command in ("conditions", "confidentialité"):
        await press(user, only_card(await say(user, command)), Verb.CONSENT_ACCEPT)
    citizen = await citizen_row(real, user)
    starts_at = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
    appointment_id = await book_appointment(real, citizen.id, starts_at)

    card = only_card(await say(user, "retirer mon consentement"))
    assert t("fr", "consent.withdraw.upcoming_one") in card_text(card)
    done = await press(user, card, Verb.CONSENT_WITHDRAW_CONFIRM)
    assert done.refreshed is not None
    told = card_text(done.refreshed)
    assert t("fr", "consent_flow.withdraw.cancelled_one") in told
    assert "mercredi 4 mars 2026 à 10:00" in told
    assert real.agency.subjects[0].name["fr"] in told

    rows = await consent_rows(real)
    assert [(r.document_kind, r.action) for r in rows] == [
        ("terms", "accepted"), ("privacy", "accepted"), ("terms", "withdrawn"), ("privacy", "withdrawn")]
    assert [r.version for r in rows[2:]] == [TERMS, PRIVACY]
    assert all(r.activity_id == done.activity_id for r in rows[2:])
    async with real.app[UOW]() as uow:
        appointment = await uow.appointments.get(appointment_id)
        claims = await uow.slot_claims.for_appointment(appointment_id)
        jobs = list(await uow.session.scalars(select(Job)))
    assert appointment is not None
    assert (appointment.status, appointment.cancel_reason) == ("cancelled", "consent_withdrawn")
    assert claims == [] and [job.status for job in jobs] == ["cancelled"]
    events = await audit_rows(real)
    assert [e.event_type for e in events[-2:]] == [EventType.CANCELLED, EventType.CONSENT_WITHDRAWN]
    assert events[-1].payload == {"kinds": ["terms", "privacy"], "cancelled": 1}
    assert (await verify(real.app[UOW], real.agency.id)).ok

    # Consent must be given again: the document offers Accept, with no change note.
    card = only_card(await say(user, "conditions"))
    assert is_consent_card(card, DocumentKind.TERMS)
    assert t("fr", "consent.change_heading") not in card_text(card)


async def test_withdrawal_by_submit_keep_and_a_booking_made_meanwhile(
    real: Bot, connector: FakeConnector, http: aiohttp.ClientSession
) -> None:
    user = user_of(real, connector, http)
    assert (await say(user, "retirer mon consentement"))[0].text == t("fr", "consent_flow.withdraw.nothing")
    for command in ("conditions", "confidentialité"):
        await press(user, only_card(await say(user, command)), Verb.CONSENT_ACCEPT, submit=True)

    card = only_card(await say(user, "retirer mon consentement"))
    kept = await press(user, card, Verb.CONSENT_WITHDRAW_CANCEL, submit=True)
    assert kept.texts == [t("fr", "consent_flow.withdraw.kept")]
    assert len(await consent_rows(real)) == 2

    card = only_card(await say(user, "retirer mon consentement"))
    assert t("fr", "consent.withdraw.upcoming_none") in card_text(card)
    citizen = await citizen_row(real, user)
    appointment_id = await book_appointment(real, citizen.id, datetime(2026, 3, 5, 8, 30, tzinfo=UTC))
    # The card said "no upcoming appointment": confirming it must not cancel the one booked since.
    stale = await press(user, card, Verb.CONSENT_WITHDRAW_CONFIRM, submit=True)
    assert t("fr", "consent_flow.withdraw.changed") in stale.texts
    assert len(await consent_rows(real)) == 2
    card = only_card(stale.replies)
    assert t("fr", "consent.withdraw.upcoming_one") in card_text(card)

    done = await press(user, card, Verb.CONSENT_WITHDRAW_CONFIRM, submit=True)
    assert any(t("fr", "consent_flow.withdraw.done") in text for text in done.texts)
    assert [r.action for r in await consent_rows(real)][2:] == ["withdrawn", "withdrawn"]
    async with real.app[UOW]() as uow:
        appointment = await uow.appointments.get(appointment_id)
    assert appointment is not None and appointment.status == "cancelled"


async def test_booking_in_the_real_app_starts_with_the_terms_and_privacy(
    real: Bot, connector: FakeConnector, http: aiohttp.ClientSession
) -> None:
    user = user_of(real, connector, http)
    replies = await say(user, "prendre rendez-vous")
    cards = cards_of(replies)
    assert len(cards) == 1 and is_consent_card(cards[0], DocumentKind.TERMS)
    privacy = only_card((await press(user, cards[0], Verb.CONSENT_ACCEPT)).replies)
    assert is_consent_card(privacy, DocumentKind.PRIVACY)
    booking = await press(user, privacy, Verb.CONSENT_ACCEPT)
    # The booking dialog takes over: its first step, whatever it asks, is no consent card.
    assert booking.replies and not any(
        is_consent_card(card, kind) for card in booking.cards for kind in DocumentKind)
    assert [r.document_kind for r in await consent_rows(real)] == ["terms", "privacy"]


# --- PostgreSQL --------------------------------------------------------------------------------------


async def test_the_core_flow_on_each_database(
    database_url: str, agency_path: Path, agency: Agency, clock: FixedClock,
    connector: FakeConnector, http: aiohttp.ClientSession,
) -> None:
    settings = Settings(database_url=database_url, agency=agency_path)
    async with serve(settings, agency, clock, probe=True) as bot:
        user = user_of(bot, connector, http)
        terms_press, privacy_press = await accept_both(user)
        replay = await press(user, only_card(terms_press.replies), Verb.CONSENT_ACCEPT)
        assert replay.texts == [t("fr", "conversation.stale_card")]
        rows = await consent_rows(bot)
        assert [(r.document_kind, r.activity_id) for r in rows] == [
            ("terms", terms_press.activity_id), ("privacy", privacy_press.activity_id)]
        assert all(r.occurred_at == NOW for r in rows)
        citizen = await citizen_row(bot, user)
        await book_appointment(bot, citizen.id, datetime(2026, 3, 4, 9, 0, tzinfo=UTC))
        card = only_card(await say(user, "retirer mon consentement"))
        await press(user, card, Verb.CONSENT_WITHDRAW_CONFIRM)
        assert [r.action for r in await consent_rows(bot)][2:] == ["withdrawn", "withdrawn"]
        assert (await verify(bot.app[UOW], agency.id)).ok


# --- The service on its own ---------------------------------------------------------------------------


async def test_accepting_the_same_version_twice_keeps_one_proof(
    uow_factory: UnitOfWorkFactory, agency: Agency, clock: FixedClock
) -> None:
    """Two cards of one document answered from two devices: AwaitCard sees one, the service the other."""
    services = assemble_services(agency, uow_factory, clock)
    async with uow_factory() as uow:
        citizen = await uow.citizens.upsert_identity(
            agency_id=agency.id, tenant_id="t", aad_object_id=str(uuid.uuid4()), teams_user_id="29:x",
            conversation_reference=None, locale="fr-BE", now=NOW)
        await uow.commit()
    consent = ConsentService(services.agency, services.uow, services.clock, services.audit)
    document = agency.current_document(DocumentKind.TERMS)
    data = {"kind": "terms", "version": document.version, "doc_hash": content_hash(agency, document)[:16],
            "language": "fr", "citizen_ref": citizen_ref(citizen.id)}
    first = await consent.accept(citizen.id, activity_id="a1", **data)
    clock.advance(timedelta(minutes=3))
    second = await consent.accept(citizen.id, activity_id="a2", **data)
    assert first.accepted and not first.already and first.accepted_at == NOW
    assert second.accepted and second.already and second.accepted_at == NOW
    async with uow_factory() as uow:
        history = await uow.consents.history(citizen.id)
    assert [(r.document_kind, r.activity_id) for r in history] == [("terms", "a1")]
    assert [p.kind for p in await consent.pending(citizen.id, Purpose.BOOK)] == [DocumentKind.PRIVACY]
    assert await consent.pending(citizen.id, Purpose.RECTIFY) == [
        p for p in await consent.pending(citizen.id, Purpose.BOOK) if p.kind is DocumentKind.PRIVACY]
