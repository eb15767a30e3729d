"""The terminal Teams client: card rendering, the activities it sends, and whole chats over real HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from botbuilder.core import CardFactory, InvokeResponse, MessageFactory, TurnContext
from botbuilder.core.teams import TeamsActivityHandler, TeamsInfo
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import AdaptiveCardInvokeResponse

from bot.devtools.activities import (
    ADAPTIVE_CARD,
    FILE_CONSENT_CARD,
    HERO_CARD,
    INVOKE_ERROR,
    INVOKE_MESSAGE,
    Identity,
    build_invoke,
    build_message,
    execute_value,
    interpret_invoke_response,
    submit_payload,
)
from bot.devtools.card_inputs import InputError, InputSpec, collect_inputs, parse_answer
from bot.devtools.card_render import apply_toggle, render_card
from bot.devtools.profile import load_identity
from bot.devtools.session import ChatSession
from bot.devtools.terminal import chat
from cards.document import DocumentTexts, document_elements, parse_document

SERVICE_URL = "http://127.0.0.1:50123/"
NOW = datetime(2025, 3, 14, 8, 30, 0, 250000, tzinfo=UTC)

IDENTITY = Identity(
    role="citizen",
    user_id="29:1citizen",
    aad_object_id="6f1c2b8e-0000-4000-8000-000000000001",
    name="Camille Dubois",
    tenant_id="9a8b7c6d-0000-4000-8000-000000000002",
    conversation_id="a:1conversation",
    bot_id="28:bot-app-id",
    locale="fr-BE",
)

CONSENT_CARD: dict[str, Any] = {
    "type": "AdaptiveCard",
    "version": "1.5",
    "body": [
        {"type": "TextBlock", "text": "**Terms of use** v3", "weight": "bolder"},
        {"type": "TextBlock", "text": "Read the [privacy policy](https://example.org/privacy) first."},
        {
            "type": "FactSet",
            "facts": [{"title": "Agency", "value": "Caisse Exemple"}, {"title": "Version", "value": "3"}],
        },
        {
            "type": "Container",
            "id": "details",
            "isVisible": False,
            "items": [
                {"type": "TextBlock", "text": "What we keep"},
                {"type": "TextBlock", "text": "Your appointments, for 36 months."},
            ],
        },
        {
            "type": "Input.Text",
            "id": "phone",
            "label": "Phone",
            "isRequired": True,
            "regex": "^\\+?[0-9 ]{8,}$",
            "placeholder": "+32 470 12 34 56",
            "errorMessage": "Enter a phone number.",
        },
        {
            "type": "Input.ChoiceSet",
            "id": "language",
            "label": "Interview language",
            "choices": [{"title": "Français", "value": "fr"}, {"title": "Nederlands", "value": "nl"}],
            "value": "fr",
        },
        {"type": "Input.Date", "id": "day", "label": "Preferred day", "min": "2025-03-15"},
        {
            "type": "Input.Toggle",
            "id": "reminders",
            "title": "Send me reminders",
            "valueOn": "yes",
            "valueOff": "no",
        },
    ],
    "actions": [
        {
            "type": "Action.Execute",
            "title": "Accept",
            "verb": "consent.accept",
            "data": {"version": 3},
            "fallback": {"type": "Action.Submit", "title": "Accept", "data": {"verb": "consent.accept"}},
        },
        {
            "type": "Action.Submit",
            "title": "Decline",
            "data": {"verb": "consent.decline"},
            "associatedInputs": "none",
        },
        {"type": "Action.ToggleVisibility", "title": "Details", "targetElements": ["details"]},
        {"type": "Action.OpenUrl", "title": "Full text", "url": "https://example.org/terms"},
        {
            "type": "Action.ShowCard",
            "title": "Ask a question",
            "card": {
                "type": "AdaptiveCard",
                "body": [
                    {"type": "Input.Text", "id": "question", "label": "Your question", "isMultiline": True}
                ],
                "actions": [{"type": "Action.Submit", "title": "Send", "data": {"verb": "consent.question"}}],
            },
        },
    ],
}


# ---------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------


def test_card_renders_text_facts_collapsed_part_inputs_and_numbered_actions() -> None:
    rendered = render_card(CONSENT_CARD)

    assert rendered.lines == [
        "Terms of use v3",
        "Read the privacy policy <https://example.org/privacy> first.",
        "Agency: Caisse Exemple",
        "Version: 3",
        "[+] What we keep (choose [3])",
        "✎ Phone * (+32 470 12 34 56)",
        "✎ Interview language: Français | Nederlands [Français]",
        "✎ Preferred day (YYYY-MM-DD)",
        "[ ] Send me reminders",
        "[1] Accept  [2] Decline  [3] Details  [4] Full text ↗  [5] Ask a question ▸",
    ]
    assert [(a.number, a.type, a.title) for a in rendered.actions] == [
        (1, "Action.Execute", "Accept"),
        (2, "Action.Submit", "Decline"),
        (3, "Action.ToggleVisibility", "Details"),
        (4, "Action.OpenUrl", "Full text"),
        (5, "Action.ShowCard", "Ask a question"),
    ]
    assert [spec.id for spec in rendered.actions[0].inputs] == ["phone", "language", "day", "reminders"]
    # associatedInputs "none": declining must not ask for (nor validate) the phone number.
    assert rendered.actions[1].inputs == ()
    assert rendered.actions[3].url == "https://example.org/terms"


def test_toggle_visibility_expands_the_hidden_part_and_collapses_it_again() -> None:
    toggle = render_card(CONSENT_CARD).actions[2]

    opened = apply_toggle(CONSENT_CARD, {}, toggle)
    lines = render_card(CONSENT_CARD, visibility=opened).lines
    assert "What we keep" in lines
    assert "Your appointments, for 36 months." in lines
    assert not any(line.startswith("[+]") for line in lines)

    closed = apply_toggle(CONSENT_CARD, opened, toggle)
    assert "Your appointments, for 36 months." not in render_card(CONSENT_CARD, visibility=closed).lines


TERMS_SOURCE = """# Terms of use

## Key points

- The service is free.

## What we keep

Your appointments, for 36 months.

## Your rights

- Ask for a copy.
- Ask us to correct it.
"""


def _sections_card() -> dict[str, Any]:
    texts = DocumentTexts(expand_hint="Tap a heading to open it.", full_text_notice="", full_text_button="",
                          website="https://example.org")
    body = document_elements(parse_document(TERMS_SOURCE), texts, id_prefix="t")
    return {"type": "AdaptiveCard", "version": "1.5", "body": body}


def test_a_collapsible_document_section_is_one_line_until_opened() -> None:
    card = _sections_card()

    folded = render_card(card)

    assert folded.lines == [
        "Terms of use",
        "Key points",
        "• The service is free.",
        "Tap a heading to open it.",
        "",
        "[1] What we keep ▸",
        "[2] Your rights ▸",
    ]
    assert [(a.number, a.type, a.title) for a in folded.actions] == [
        (1, "Action.ToggleVisibility", "What we keep"),
        (2, "Action.ToggleVisibility", "Your rights"),
    ]

    opened = render_card(card, visibility=apply_toggle(card, {}, folded.actions[1]))

    assert opened.lines[-4:] == [
        "[1] What we keep ▸",
        "[2] Your rights ▾",
        "  • Ask for a copy.",
        "  • Ask us to correct it.",
    ]
    closed = apply_toggle(card, apply_toggle(card, {}, folded.actions[1]), folded.actions[1])
    assert render_card(card, visibility=closed).lines == folded.lines


def test_show_card_is_shown_under_its_button_and_its_submit_gathers_its_own_and_the_parent_inputs() -> None:
    show = render_card(CONSENT_CARD).actions[4]

    rendered = render_card(CONSENT_CARD, opened={show.key})

    assert rendered.lines[-3:] == [
        "[1] Accept  [2] Decline  [3] Details  [4] Full text ↗  [5] Ask a question ▾",
        "  ✎ Your question",
        "  [6] Send",
    ]
    send = rendered.actions[5]
    assert send.title == "Send"
    assert [spec.id for spec in send.inputs] == ["phone", "language", "day", "reminders", "question"]


def test_bold_markdown_uses_ansi_only_when_coloured() -> None:
    card = {
        "type": "AdaptiveCard",
        "body": [{"type": "TextBlock", "text": "Your **appointment** is confirmed"}],
    }

    assert render_card(card).lines == ["Your appointment is confirmed"]
    assert render_card(card, color=True).lines == ["Your \x1b[1mappointment\x1b[22m is confirmed"]


def test_adaptive_card_date_functions_show_the_local_date_and_time() -> None:
    card = {
        "type": "AdaptiveCard",
        "body": [
            {
                "type": "TextBlock",
                "text": "{{DATE(2025-03-14T08:30:00Z, COMPACT)}} {{TIME(2025-03-14T08:30:00Z)}}",
            }
        ],
    }

    # 08:30 UTC is 09:30 in Brussels in March.
    assert render_card(card, locale="fr-BE").lines == ["14/03/25 09:30"]


# ---------------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------------


def test_inputs_are_validated_like_the_card_renderers_and_submitted_as_teams_strings() -> None:
    inputs = render_card(CONSENT_CARD).actions[0].inputs

    with pytest.raises(InputError) as refused:
        collect_inputs(inputs, {"phone": "call me", "day": "2025-03-01"})
    assert refused.value.errors == {
        "phone": "Enter a phone number.",
        "day": "The earliest allowed date is 2025-03-15.",
    }

    values = collect_inputs(
        inputs, {"phone": "+32 470 12 34 56", "language": "2", "day": "2025-03-20", "reminders": "y"}
    )
    assert values == {"phone": "+32 470 12 34 56", "language": "nl", "day": "2025-03-20", "reminders": "yes"}


def test_empty_answers_keep_initial_values_and_unset_optional_inputs_are_left_out() -> None:
    inputs = render_card(CONSENT_CARD).actions[0].inputs

    assert collect_inputs(inputs, {"phone": "+32 470 12 34 56"}) == {
        "phone": "+32 470 12 34 56",
        "language": "fr",
        "reminders": "no",
    }


@pytest.mark.parametrize(
    ("spec", "typed", "submitted"),
    [
        (InputSpec(id="n", type="Input.Number", label="People", minimum="1", maximum="4"), "2", "2"),
        (InputSpec(id="n", type="Input.Number", label="Amount"), "2,5", "2.5"),
        (InputSpec(id="t", type="Input.Time", label="At"), "9:05", "09:05"),
        (
            InputSpec(
                id="c",
                type="Input.ChoiceSet",
                label="Days",
                choices=(("Monday", "mon"), ("Tuesday", "tue"), ("Friday", "fri")),
                is_multi_select=True,
            ),
            "1, 3",
            "mon,fri",
        ),
        (
            InputSpec(id="c", type="Input.ChoiceSet", label="Office", choices=(("Liège", "lg"),)),
            "liège",
            "lg",
        ),
    ],
)
def test_typed_answers_become_the_values_teams_submits(spec: InputSpec, typed: str, submitted: str) -> None:
    assert parse_answer(spec, typed) == submitted


@pytest.mark.parametrize(
    ("spec", "typed"),
    [
        (InputSpec(id="n", type="Input.Number", label="People", minimum="1", maximum="4"), "5"),
        (InputSpec(id="d", type="Input.Date", label="Day"), "14/03/2025"),
        (InputSpec(id="d", type="Input.Date", label="Day"), "2025-02-30"),
        (InputSpec(id="t", type="Input.Time", label="At"), "25:00"),
        (InputSpec(id="x", type="Input.Text", label="Code", max_length=3), "abcd"),
        (InputSpec(id="c", type="Input.ChoiceSet", label="Office", choices=(("Liège", "lg"),)), "7"),
        (InputSpec(id="r", type="Input.Text", label="Name", is_required=True), "   "),
    ],
)
def test_invalid_answers_are_refused(spec: InputSpec, typed: str) -> None:
    with pytest.raises(ValueError):
        parse_answer(spec, typed)


# ---------------------------------------------------------------------------------------------------------
# Activities sent to the bot
# ---------------------------------------------------------------------------------------------------------


def _teams_fields(activity_type: str, activity_id: str) -> dict[str, Any]:
    return {
        "type": activity_type,
        "id": activity_id,
        "timestamp": "2025-03-14T08:30:00.250Z",
        "localTimestamp": "2025-03-14T09:30:00.250+01:00",
        "localTimezone": "Europe/Brussels",
        "serviceUrl": SERVICE_URL,
        "channelId": "msteams",
        "from": {
            "id": "29:1citizen",
            "name": "Camille Dubois",
            "aadObjectId": "6f1c2b8e-0000-4000-8000-000000000001",
        },
        "conversation": {
            "conversationType": "personal",
            "tenantId": "9a8b7c6d-0000-4000-8000-000000000002",
            "id": "a:1conversation",
        },
        "recipient": {"id": "28:bot-app-id", "name": "Guichet"},
        "entities": [
            {
                "type": "clientInfo",
                "locale": "fr-BE",
                "country": "BE",
                "platform": "Windows",
                "timezone": "Europe/Brussels",
            }
        ],
        "channelData": {"tenant": {"id": "9a8b7c6d-0000-4000-8000-000000000002"}},
        "locale": "fr-BE",
    }


def test_typed_text_is_a_teams_message() -> None:
    activity = build_message(IDENTITY, SERVICE_URL, text="bonjour", activity_id="1741941000250", now=NOW)

    assert activity == {**_teams_fields("message", "1741941000250"), "text": "bonjour", "textFormat": "plain"}


def test_action_submit_is_a_message_with_the_data_and_inputs_as_value_and_no_text() -> None:
    card = {
        "type": "AdaptiveCard",
        "body": [{"type": "Input.Text", "id": "reason", "label": "Reason"}],
        "actions": [
            {"type": "Action.Submit", "title": "Cancel", "data": {"verb": "booking.cancel", "id": "b1"}}
        ],
    }
    submit = render_card(card).actions[0]
    text, value = submit_payload(submit, collect_inputs(submit.inputs, {"reason": "sick"}))

    activity = build_message(
        IDENTITY,
        SERVICE_URL,
        text=text,
        value=value,
        reply_to_id="1741940000000",
        activity_id="1741941000250",
        now=NOW,
    )

    expected = _teams_fields("message", "1741941000250")
    expected["channelData"] = {
        "tenant": {"id": "9a8b7c6d-0000-4000-8000-000000000002"},
        "source": {"name": "message"},
        "legacy": {"replyToId": "1741940000000"},
    }
    assert activity == {
        **expected,
        "value": {"verb": "booking.cancel", "id": "b1", "reason": "sick"},
        "replyToId": "1741940000000",
    }


def test_action_execute_is_an_adaptive_card_action_invoke() -> None:
    accept = render_card(CONSENT_CARD).actions[0]
    inputs = collect_inputs(accept.inputs, {"phone": "+32 470 12 34 56", "reminders": "y"})

    activity = build_invoke(
        IDENTITY,
        SERVICE_URL,
        name="adaptiveCard/action",
        value=execute_value(accept, inputs),
        reply_to_id="1741940000000",
        activity_id="f:invoke-1",
        now=NOW,
    )

    expected = _teams_fields("invoke", "f:invoke-1")
    expected["channelData"] = {
        "tenant": {"id": "9a8b7c6d-0000-4000-8000-000000000002"},
        "source": {"name": "message"},
        "legacy": {"replyToId": "1741940000000"},
    }
    assert activity == {
        **expected,
        "name": "adaptiveCard/action",
        "value": {
            "action": {
                "type": "Action.Execute",
                "verb": "consent.accept",
                "data": {"version": 3, "phone": "+32 470 12 34 56", "language": "fr", "reminders": "yes"},
            },
            "trigger": "manual",
        },
        "replyToId": "1741940000000",
    }


def test_msteams_im_back_and_message_back_submit_text_like_teams() -> None:
    card = {
        "type": "AdaptiveCard",
        "actions": [
            {
                "type": "Action.Submit",
                "title": "Help",
                "data": {"msteams": {"type": "imBack", "value": "help"}},
            },
            {
                "type": "Action.Submit",
                "title": "Menu",
                "data": {"msteams": {"type": "messageBack", "text": "menu", "value": '{"verb": "menu"}'}},
            },
        ],
    }
    im_back, message_back = render_card(card).actions

    assert submit_payload(im_back, {}) == ("help", None)
    assert submit_payload(message_back, {}) == ("menu", {"verb": "menu"})


@pytest.mark.parametrize(
    ("status", "body", "kind", "text"),
    [
        (200, {"statusCode": 200, "type": INVOKE_MESSAGE, "value": "Saved"}, "message", "Saved"),
        (
            200,
            {
                "statusCode": 400,
                "type": INVOKE_ERROR,
                "value": {"code": "BadRequest", "message": "slot taken"},
            },
            "error",
            "BadRequest: slot taken",
        ),
        (200, None, "empty", "no invoke response body; Teams would show an error on the card"),
        (500, None, "http_error", "HTTP 500"),
    ],
)
def test_invoke_answers_are_read_like_teams(status: int, body: Any, kind: str, text: str) -> None:
    outcome = interpret_invoke_response(status, body)

    assert (outcome.kind, outcome.text) == (kind, text)


def test_a_card_invoke_answer_replaces_the_card() -> None:
    card = {"type": "AdaptiveCard", "body": []}

    outcome = interpret_invoke_response(200, {"statusCode": 200, "type": ADAPTIVE_CARD, "value": card})

    assert (outcome.kind, outcome.card) == ("card", card)


# ---------------------------------------------------------------------------------------------------------
# Identity
# ---------------------------------------------------------------------------------------------------------


def test_each_role_is_the_same_person_across_sessions_until_new(tmp_path: Path) -> None:
    profile = tmp_path / "chat.json"

    citizen = load_identity(profile, "citizen")
    again = load_identity(profile, "citizen")
    counselor = load_identity(profile, "counselor", aad_object_id="counselor-entra-id")
    renewed = load_identity(profile, "citizen", new=True)

    assert again == citizen
    assert citizen.user_id.startswith("29:") and citizen.conversation_id.startswith("a:")
    assert counselor.user_id != citizen.user_id
    assert counselor.aad_object_id == "counselor-entra-id"
    assert load_identity(profile, "counselor").aad_object_id == "counselor-entra-id"
    assert counselor.tenant_id == citizen.tenant_id
    assert renewed.user_id != citizen.user_id
    assert renewed.conversation_id != citizen.conversation_id


# ---------------------------------------------------------------------------------------------------------
# Whole chats over HTTP
# ---------------------------------------------------------------------------------------------------------


class ScriptedIO:
    """Types the given lines one by one, then ends input; keeps everything printed."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = list(lines)
        self.prompts: list[str] = []
        self.output: list[str] = []

    async def ask(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if not self.lines:
            raise EOFError
        return self.lines.pop(0)

    def show(self, text: str) -> None:
        self.output.extend(text.split("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.output)


Behaviour = Callable[["StandInBot", dict[str, Any]], Awaitable[web.StreamResponse | None]]


@dataclass
class StandInBot:
    """A bot reduced to its HTTP contract: reads activities, answers through the activity's serviceUrl."""

    behaviour: Behaviour
    url: str = ""
    received: list[dict[str, Any]] | None = None
    http: aiohttp.ClientSession | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        activity = await request.json()
        assert self.received is not None
        self.received.append(activity)
        return await self.behaviour(self, activity) or web.Response(status=200)

    async def reply(self, activity: dict[str, Any], answer: dict[str, Any]) -> str:
        assert self.http is not None
        conversation = activity["conversation"]["id"]
        url = activity["serviceUrl"] + f"/v3/conversations/{conversation}/activities/{activity['id']}"
        async with self.http.post(url, json={"type": "message", **answer}) as response:
            assert response.status == 200
            return str((await response.json())["id"])

    async def update(self, activity: dict[str, Any], activity_id: str, answer: dict[str, Any]) -> None:
        assert self.http is not None
        conversation = activity["conversation"]["id"]
        url = activity["serviceUrl"] + f"v3/conversations/{conversation}/activities/{activity_id}"
        async with self.http.put(url, json={"type": "message", "id": activity_id, **answer}) as response:
            assert response.status == 200

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [activity for activity in self.received or [] if activity["type"] == kind]


@pytest.fixture
async def start_bot() -> AsyncIterator[Callable[[Behaviour], Awaitable[StandInBot]]]:
    runners: list[web.AppRunner] = []
    bots: list[StandInBot] = []

    async def start(behaviour: Behaviour) -> StandInBot:
        bot = StandInBot(behaviour, received=[], http=aiohttp.ClientSession())
        app = web.Application()
        app.router.add_post("/api/messages", bot.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        bots.append(bot)
        bot.url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/messages"
        return bot

    yield start
    for bot in bots:
        assert bot.http is not None
        await bot.http.close()
    for runner in runners:
        await runner.cleanup()


def _card(card: dict[str, Any]) -> dict[str, Any]:
    return {"attachments": [{"contentType": ADAPTIVE_CARD, "content": card}]}


BOOKING_CARD: dict[str, Any] = {
    "type": "AdaptiveCard",
    "version": "1.5",
    "body": [
        {"type": "TextBlock", "text": "Book a video appointment"},
        {"type": "Input.Text", "id": "phone", "label": "Phone", "isRequired": True, "regex": "^\\+[0-9 ]+$"},
    ],
    "actions": [
        {"type": "Action.Execute", "title": "Book", "verb": "booking.confirm", "data": {"slot": "s1"}},
        {
            "type": "Action.Submit",
            "title": "Not now",
            "data": {"verb": "booking.later"},
            "associatedInputs": "none",
        },
    ],
}


async def _booking_bot(bot: StandInBot, activity: dict[str, Any]) -> web.StreamResponse | None:
    if activity["type"] == "conversationUpdate":
        await bot.reply(
            activity, _card({"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": "Welcome"}]})
        )
    elif activity["type"] == "message" and activity.get("text") == "book":
        await bot.reply(activity, _card(BOOKING_CARD))
    elif activity["type"] == "message" and "value" in activity:
        await bot.reply(activity, {"text": f"Noted: {activity['value']['verb']}"})
    elif activity["type"] == "invoke":
        data = activity["value"]["action"]["data"]
        booked = {
            "type": "AdaptiveCard",
            "body": [
                {"type": "TextBlock", "text": f"Booked slot {data['slot']}, we call **{data['phone']}**"}
            ],
        }
        return web.json_response({"statusCode": 200, "type": ADAPTIVE_CARD, "value": booked})
    return None


async def test_a_chat_installs_the_app_renders_cards_and_submits_what_teams_submits(
    start_bot: Callable[[Behaviour], Awaitable[StandInBot]], tmp_path: Path
) -> None:
    bot = await start_bot(_booking_bot)
    io = ScriptedIO(["book", "2", "1", "0470", "+32 470 12 34 56", "/card 1", "/quit", "never typed"])

    exit_code = await chat(url=bot.url, profile=tmp_path / "chat.json", io=io)

    assert exit_code == 0
    update, install = bot.of_type("conversationUpdate")[0], bot.of_type("installationUpdate")[0]
    assert update["membersAdded"] == [{"id": update["recipient"]["id"]}]
    assert install["action"] == "add"
    typed, submitted = bot.of_type("message")
    assert typed["text"] == "book"
    assert typed["channelId"] == "msteams" and typed["conversation"]["conversationType"] == "personal"
    assert typed["from"]["id"].startswith("29:") and typed["recipient"]["id"].startswith("28:")
    # The card's message id is what the connector answered when the bot sent it.
    (invoke,) = bot.of_type("invoke")
    assert invoke["name"] == "adaptiveCard/action"
    assert invoke["value"] == {
        "action": {
            "type": "Action.Execute",
            "verb": "booking.confirm",
            "data": {"slot": "s1", "phone": "+32 470 12 34 56"},
        },
        "trigger": "manual",
    }
    assert submitted["value"] == {"verb": "booking.later"}
    assert "text" not in submitted
    assert submitted["replyToId"] == invoke["replyToId"]

    out = io.text
    assert "  │ Welcome" in out
    assert "  ┌ card 2\n  │ Book a video appointment\n  │ ✎ Phone *\n  │ [1] Book  [2] Not now" in out
    assert "  ! This value does not have the expected format." in out
    assert "(card updated)\n  ┌ card 2\n  │ Booked slot s1, we call +32 470 12 34 56\n  └" in out
    assert "Guichet › Noted: booking.later" in out
    assert "Phone *: " in io.prompts
    assert out.count("  │ Welcome") == 2  # /card 1 shows it again
    assert io.lines == ["never typed"]


async def test_the_second_session_is_the_same_person_and_new_is_someone_else(
    start_bot: Callable[[Behaviour], Awaitable[StandInBot]], tmp_path: Path
) -> None:
    bot = await start_bot(_booking_bot)
    profile = tmp_path / "chat.json"

    for new in (False, False, True):
        assert await chat(url=bot.url, profile=profile, io=ScriptedIO(["hello"]), new=new) == 0

    first, second, third = (activity["from"] for activity in bot.of_type("message"))
    assert first == second
    assert third["id"] != first["id"] and third["aadObjectId"] != first["aadObjectId"]
    conversations = [activity["conversation"]["id"] for activity in bot.of_type("message")]
    assert conversations[0] == conversations[1] != conversations[2]


async def test_local_card_actions_expand_open_and_link_without_calling_the_bot(
    start_bot: Callable[[Behaviour], Awaitable[StandInBot]],
) -> None:
    async def consent_bot(bot: StandInBot, activity: dict[str, Any]) -> None:
        if activity.get("text") == "start":
            await bot.reply(activity, _card(CONSENT_CARD))
        elif "value" in activity:
            await bot.reply(activity, {"text": "Question received"})

    bot = await start_bot(consent_bot)
    # Details, Full text, Ask a question, then its Send: phone, language, day, reminders, question.
    io = ScriptedIO(
        ["start", "3", "4", "5", "6", "+32 470 12 34 56", "2", "", "n", "Can I come with my son?"]
    )
    session = ChatSession(IDENTITY, bot.url, io, announce_install=False)

    await session.run()

    out = io.text
    assert "  │ Your appointments, for 36 months." in out
    assert "(open in a browser: https://example.org/terms)" in out
    assert "  │   ✎ Your question\n  │   [6] Send" in out
    assert "  1. Français\n  2. Nederlands" in out
    assert "Interview language (number) [Français]: " in io.prompts
    (submitted,) = [activity for activity in bot.of_type("message") if "value" in activity]
    assert submitted["value"] == {
        "verb": "consent.question",
        "phone": "+32 470 12 34 56",
        "language": "nl",
        "reminders": "no",
        "question": "Can I come with my son?",
    }
    assert "Guichet › Question received" in out
    # Only the typed text and the submit reached the bot: toggling, opening and links stay local.
    assert [activity.get("text") for activity in bot.received or []] == ["start", None]


async def test_hero_card_buttons_send_their_text_like_teams(
    start_bot: Callable[[Behaviour], Awaitable[StandInBot]],
) -> None:
    # botbuilder's ChoicePrompt sends Teams a hero card of imBack buttons.
    async def choice_bot(bot: StandInBot, activity: dict[str, Any]) -> None:
        if activity.get("text") == "menu":
            hero = {
                "title": "What would you like to do?",
                "buttons": [
                    {"type": "imBack", "title": "Book", "value": "Book"},
                    {"type": "imBack", "title": "Cancel", "value": "Cancel"},
                ],
            }
            await bot.reply(activity, {"attachments": [{"contentType": HERO_CARD, "content": hero}]})

    bot = await start_bot(choice_bot)
    io = ScriptedIO(["menu", "2"])

    await ChatSession(IDENTITY, bot.url, io, announce_install=False).run()

    assert "  │ What would you like to do?\n  │ [1] Book  [2] Cancel" in io.text
    assert [activity.get("text") for activity in bot.of_type("message")] == ["menu", "Cancel"]


async def test_a_card_updated_by_the_bot_is_shown_again_under_its_number(
    start_bot: Callable[[Behaviour], Awaitable[StandInBot]],
) -> None:
    async def updating_bot(bot: StandInBot, activity: dict[str, Any]) -> None:
        if activity.get("text") == "status":
            card_id = await bot.reply(activity, _card(BOOKING_CARD))
            await bot.update(
                activity,
                card_id,
                _card(
                    {
                        "type": "AdaptiveCard",
                        "body": [{"type": "TextBlock", "text": "Cancelled by your counselor"}],
                    }
                ),
            )

    bot = await start_bot(updating_bot)
    io = ScriptedIO(["status"])
    session = ChatSession(IDENTITY, bot.url, io, announce_install=False)

    assert await session.run() == 0

    assert "(card updated)\n  ┌ card 1\n  │ Cancelled by your counselor\n  └" in io.text


async def test_a_card_refresh_is_run_as_an_automatic_invoke_for_the_listed_user(
    start_bot: Callable[[Behaviour], Awaitable[StandInBot]],
) -> None:
    refreshing = {
        "type": "AdaptiveCard",
        "refresh": {
            "action": {"type": "Action.Execute", "verb": "view.refresh"},
            "userIds": [IDENTITY.user_id],
        },
        "body": [{"type": "TextBlock", "text": "Generic view"}],
    }

    async def refreshing_bot(bot: StandInBot, activity: dict[str, Any]) -> web.StreamResponse | None:
        if activity["type"] == "message":
            await bot.reply(activity, _card(refreshing))
        elif activity["type"] == "invoke":
            personal = {"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": "Your personal view"}]}
            return web.json_response({"statusCode": 200, "type": ADAPTIVE_CARD, "value": personal})
        return None

    bot = await start_bot(refreshing_bot)
    io = ScriptedIO([])
    session = ChatSession(IDENTITY, bot.url, io, announce_install=False)
    await session.start()
    try:
        await session.handle_line("show")
        await session.settle()
    finally:
        await session.close()

    (invoke,) = bot.of_type("invoke")
    assert invoke["value"] == {
        "action": {"type": "Action.Execute", "verb": "view.refresh", "data": {}},
        "trigger": "automatic",
    }
    assert "(card refreshed)\n  ┌ card 1\n  │ Your personal view\n  └" in io.text


async def test_a_file_the_user_allows_is_uploaded_to_the_client(
    start_bot: Callable[[Behaviour], Awaitable[StandInBot]], tmp_path: Path
) -> None:
    content = json.dumps({"appointments": []}).encode()

    async def exporting_bot(bot: StandInBot, activity: dict[str, Any]) -> None:
        assert bot.http is not None
        if activity.get("text") == "export":
            consent = {
                "contentType": FILE_CONSENT_CARD,
                "name": "my-data.json",
                "content": {
                    "description": "Your data",
                    "sizeInBytes": len(content),
                    "acceptContext": {"k": 1},
                },
            }
            await bot.reply(activity, {"attachments": [consent]})
        elif activity.get("name") == "fileConsent/invoke":
            assert activity["value"]["action"] == "accept" and activity["value"]["context"] == {"k": 1}
            upload_url = activity["value"]["uploadInfo"]["uploadUrl"]
            half = len(content) // 2
            for start, end in ((0, half - 1), (half, len(content) - 1)):
                headers = {"Content-Range": f"bytes {start}-{end}/{len(content)}"}
                async with bot.http.put(
                    upload_url, data=content[start : end + 1], headers=headers
                ) as response:
                    assert response.status in (201, 202)

    bot = await start_bot(exporting_bot)
    io = ScriptedIO(["export", "1"])
    session = ChatSession(IDENTITY, bot.url, io, announce_install=False, downloads_dir=tmp_path / "files")

    await session.run()

    assert f"  │ File offered: my-data.json ({len(content)} B)" in io.text
    assert (tmp_path / "files" / "my-data.json").read_bytes() == content
    assert f"(file saved to {tmp_path / 'files' / 'my-data.json'})" in io.text


async def test_the_connector_creates_the_personal_chat_and_describes_the_member(
    start_bot: Callable[[Behaviour], Awaitable[StandInBot]],
) -> None:
    bot = await start_bot(_booking_bot)
    io = ScriptedIO([])
    session = ChatSession(IDENTITY, bot.url, io, announce_install=False)
    service_url = await session.connector.start()
    try:
        async with aiohttp.ClientSession() as http:
            created = await http.post(
                f"{service_url}v3/conversations",
                json={
                    "bot": {"id": IDENTITY.bot_id},
                    "members": [{"id": IDENTITY.user_id}],
                    "tenantId": IDENTITY.tenant_id,
                    "activity": {"type": "message", "text": "Reminder: tomorrow 10:00"},
                },
            )
            member = await http.get(
                f"{service_url}v3/conversations/{IDENTITY.conversation_id}/members/{IDENTITY.user_id}"
            )
            created_body, member_body = await created.json(), await member.json()
    finally:
        await session.connector.stop()

    assert created.status == 201
    assert created_body["id"] == IDENTITY.conversation_id
    assert created_body["activityId"]
    assert "Guichet › Reminder: tomorrow 10:00" in io.text
    assert member.status == 200
    assert (member_body["aadObjectId"], member_body["name"]) == (IDENTITY.aad_object_id, IDENTITY.name)


async def test_an_unreachable_bot_is_reported_and_the_chat_stops(tmp_path: Path) -> None:
    io = ScriptedIO(["hello"])

    exit_code = await chat(url="http://127.0.0.1:9/api/messages", profile=tmp_path / "chat.json", io=io)

    assert exit_code == 2
    assert "(cannot reach the bot at http://127.0.0.1:9/api/messages" in io.text


async def test_the_bot_framework_sdk_talks_to_the_client_like_to_teams() -> None:
    """The real botbuilder CloudAdapter (no app id, as locally) replies, updates and looks up members."""

    @dataclass
    class LocalConfiguration:
        APP_ID: str = ""
        APP_PASSWORD: str = ""
        APP_TYPE: str = "MultiTenant"
        APP_TENANTID: str = ""

    class SdkBot(TeamsActivityHandler):
        async def on_installation_update_add(self, turn_context: TurnContext) -> None:
            await turn_context.send_activity("Installed")

        async def on_message_activity(self, turn_context: TurnContext) -> None:
            sent = await turn_context.send_activity(
                MessageFactory.attachment(CardFactory.adaptive_card(BOOKING_CARD))
            )
            member = await TeamsInfo.get_member(turn_context, turn_context.activity.from_property.id)
            updated = MessageFactory.attachment(
                CardFactory.adaptive_card(
                    {
                        **BOOKING_CARD,
                        "body": [
                            {"type": "TextBlock", "text": f"For {member.name}"},
                            BOOKING_CARD["body"][1],
                        ],
                    }
                )
            )
            updated.id = sent.id
            await turn_context.update_activity(updated)

        async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
            # botbuilder 4.17.1's on_adaptive_card_invoke path serializes the body twice under CloudAdapter.
            data = turn_context.activity.value["action"]["data"]
            card = {
                "type": "AdaptiveCard",
                "body": [{"type": "TextBlock", "text": f"Booked, phone {data['phone']}"}],
            }
            return InvokeResponse(
                status=200, body=AdaptiveCardInvokeResponse(status_code=200, type=ADAPTIVE_CARD, value=card)
            )

    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(LocalConfiguration()))
    sdk_bot = SdkBot()

    async def messages(request: web.Request) -> web.Response:
        return await adapter.process(request, sdk_bot)

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    io = ScriptedIO(["book", "1", "+32 470 12 34 56"])
    try:
        session = ChatSession(IDENTITY, f"http://127.0.0.1:{runner.addresses[0][1]}/api/messages", io)
        assert await session.run() == 0
    finally:
        await runner.cleanup()

    out = io.text
    assert "Guichet › Installed" in out
    assert "(card updated)\n  ┌ card 1\n  │ For Camille Dubois" in out
    assert "(card updated)\n  ┌ card 1\n  │ Booked, phone +32 470 12 34 56\n  └" in out
    assert "(the bot answered" not in out
