"""One person's chat with the bot, without the terminal: what `guichet chat` does with each typed line.

`ChatSession` posts the activities Teams would post (see `activities`), runs the connector stand-in that
receives the bot's messages, keeps every card shown (`CardView`: its number, its toggled parts and opened
show cards) and does what Teams does when the user chooses a card action: Action.Submit as a message,
Action.Execute as an invoke whose answer replaces the card, a card's `refresh` as an automatic invoke,
toggles and show cards locally. All I/O with the user goes through `ChatIO`, so tests script it.
The client's own texts are English: it is a developer tool; what the citizen reads comes from the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from bot.devtools.activities import (
    ADAPTIVE_CARD,
    FILE_CONSENT_CARD,
    FILE_INFO_CARD,
    HERO_CARD,
    THUMBNAIL_CARD,
    Identity,
    adaptive_cards,
    build_conversation_update,
    build_installation_update,
    build_invoke,
    build_message,
    execute_value,
    interpret_invoke_response,
    submit_payload,
)
from bot.devtools.card_inputs import InputSpec, input_prompt, parse_answer
from bot.devtools.card_render import (
    CardAction,
    RenderedCard,
    apply_toggle,
    card_action,
    render_card,
    render_file_consent,
    render_hero_card,
    render_suggested_actions,
)
from bot.devtools.connector import ConnectorStandIn, Recorded
from bot.devtools.markdown import bold_text, dim_text, message_text, strip_ansi

# Teams gives up on a bot that has not answered an HTTP request within this many seconds.
TEAMS_TIMEOUT_SECONDS = 15.0


class ChatIO(Protocol):
    """Where the session reads the user's lines and shows its own: a terminal, or a test's script."""

    async def ask(self, prompt: str) -> str:
        """One line typed by the user; raises EOFError when input ends."""
        ...

    def show(self, text: str) -> None: ...


@dataclass
class CardView:
    """A card shown in the chat, with its local state (toggled parts, opened show cards)."""

    number: int
    kind: str  # "adaptive", "hero", "suggested", "file"
    content: dict[str, Any]
    activity_id: str | None
    name: str = ""
    visibility: dict[str, bool] = field(default_factory=dict)
    opened: set[str] = field(default_factory=set)
    refreshed_at: float = 0.0

    def render(self, *, color: bool, locale: str, timezone: str) -> RenderedCard:
        if self.kind == "adaptive":
            return render_card(
                self.content,
                color=color,
                visibility=self.visibility,
                opened=self.opened,
                locale=locale,
                timezone=timezone,
            )
        if self.kind == "hero":
            return render_hero_card(self.content, color=color)
        if self.kind == "suggested":
            return render_suggested_actions(self.content)
        return render_file_consent(self.name, self.content)


HELP = """\
Type a message and press Enter to send it to the bot.
A number chooses an action of the current card (the last card with actions, or the one /card picked).
  /card N   show card N again and make it current      /raw   print the raw JSON of every activity
  /say TEXT send TEXT even if it looks like a number   /help  this help      /quit  leave
While filling a card's fields: press Enter to keep the value in [brackets], /cancel to go back."""


class ChatSession:
    """One person chatting with the bot: sends Teams activities, renders what the connector receives."""

    def __init__(
        self,
        identity: Identity,
        bot_url: str,
        io: ChatIO,
        *,
        color: bool = False,
        downloads_dir: Path | None = None,
        announce_install: bool = True,
    ) -> None:
        self.identity = identity
        self.bot_url = bot_url
        self.io = io
        self.color = color
        self.announce_install = announce_install
        self.raw = False
        self.views: list[CardView] = []
        self.current: CardView | None = None
        self.connector = ConnectorStandIn(
            people=[identity], on_activity=self._received, downloads_dir=downloads_dir, on_file=self._file_saved
        )
        self.sent: list[dict[str, Any]] = []
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifetime ---------------------------------------------------------------------------------------

    async def start(self, port: int | None = None) -> bool:
        """Start the connector and, like Teams installing the app, announce the user to the bot."""
        await self.connector.start(port)
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))
        if not self.announce_install:
            return True
        for activity in (
            build_conversation_update(self.identity, self.connector.service_url),
            build_installation_update(self.identity, self.connector.service_url),
        ):
            status, _ = await self.post(activity)
            if status is None:
                return False
        return True

    async def settle(self) -> None:
        """Wait until background work started by received activities (card refreshes) is done."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None
        await self.connector.stop()

    async def run(self, port: int | None = None, *, on_listening: Callable[[int], None] | None = None) -> int:
        """Chat until /quit or end of input; the exit code. `on_listening` gets the connector's port."""
        try:
            started = await self.start(port)
            if on_listening is not None:
                on_listening(self.connector.port)
            if not started:
                return 2
            self.io.show(
                f"Chatting as {self.identity.name} ({self.identity.role}, {self.identity.locale}) "
                f"with {self.bot_url}. Type /help for help."
            )
            while True:
                try:
                    line = await self.io.ask("> ")
                except EOFError:
                    break
                if not await self.handle_line(line):
                    break
            return 0
        finally:
            await self.close()

    # -- user input ---------------------------------------------------------------------------------------

    async def handle_line(self, line: str) -> bool:
        """Act on one typed line; False when the user leaves."""
        text = line.strip()
        if not text:
            return True
        if text.startswith("/"):
            command, _, argument = text.partition(" ")
            return await self._command(command.lower(), argument.strip())
        if text.isdigit() and self.current is not None:
            rendered = self._render(self.current)
            number = int(text)
            if 1 <= number <= len(rendered.actions):
                await self.choose(self.current, rendered.actions[number - 1])
                return True
            if rendered.actions:
                self.io.show(
                    f"(card {self.current.number} has actions 1 to {len(rendered.actions)}; "
                    "use /say to send the number as text)"
                )
                return True
        await self.send_text(text)
        return True

    async def _command(self, command: str, argument: str) -> bool:
        if command in ("/quit", "/exit", "/q"):
            return False
        if command in ("/help", "/?"):
            self.io.show(HELP)
        elif command == "/raw":
            self.raw = not self.raw
            self.io.show(f"(raw JSON {'on' if self.raw else 'off'})")
        elif command == "/card":
            view = self._view(argument)
            if view is None:
                self.io.show(
                    f"(no card {argument or '?'}; cards 1 to {len(self.views)})"
                    if self.views
                    else "(no card yet)"
                )
            else:
                self.current = view
                self._show_view(view)
        elif command == "/say" and argument:
            await self.send_text(argument)
        else:
            self.io.show(f"(unknown command {command}; /help lists them)")
        return True

    def _view(self, argument: str) -> CardView | None:
        if argument.isdigit() and 1 <= int(argument) <= len(self.views):
            return self.views[int(argument) - 1]
        return None

    async def send_text(self, text: str) -> None:
        await self.post(build_message(self.identity, self.connector.service_url, text=text))

    async def choose(self, view: CardView, action: CardAction) -> None:
        """Do what Teams does when the user clicks `action` on `view`."""
        if not action.enabled:
            self.io.show("(this button is disabled)")
            return
        kind = action.type
        if kind == "Action.ToggleVisibility":
            view.visibility = apply_toggle(view.content, view.visibility, action)
            self._show_view(view)
        elif kind == "Action.ShowCard":
            view.opened ^= {action.key}
            self._show_view(view)
        elif kind in ("Action.OpenUrl", "openUrl", "signin"):
            self.io.show(f"(open in a browser: {action.url})")
        elif kind == "Action.Submit":
            inputs = await self.ask_inputs(action.inputs)
            if inputs is None:
                return
            text, value = submit_payload(action, inputs)
            self._echo(text, value)
            await self.post(
                build_message(
                    self.identity,
                    self.connector.service_url,
                    text=text,
                    value=value,
                    reply_to_id=view.activity_id,
                )
            )
        elif kind == "Action.Execute":
            inputs = await self.ask_inputs(action.inputs)
            if inputs is None:
                return
            self._echo(None, execute_value(action, inputs)["action"]["data"])
            await self.execute(view, execute_value(action, inputs))
        elif kind in ("imBack", "postBack"):
            self._echo(str(action.data or ""), None)
            await self.post(
                build_message(self.identity, self.connector.service_url, text=str(action.data or ""))
            )
        elif kind == "messageBack":
            self._echo(action.text, action.data)
            await self.post(
                build_message(
                    self.identity,
                    self.connector.service_url,
                    text=action.text,
                    value=action.data,
                    reply_to_id=view.activity_id,
                )
            )
        elif kind in ("fileConsent/accept", "fileConsent/decline"):
            await self._file_consent(view, action)
        else:
            self.io.show(f"({kind} is not supported by this client)")

    async def ask_inputs(self, specs: Sequence[InputSpec]) -> dict[str, str] | None:
        """Prompt for each visible input until valid; None when the user types /cancel."""
        values: dict[str, str] = {}
        for spec in specs:
            if not spec.id:
                continue
            if not spec.visible:
                with contextlib.suppress(ValueError):
                    hidden = parse_answer(spec, "")
                    if hidden is not None:
                        values[spec.id] = hidden
                continue
            before, prompt = input_prompt(spec)
            for line in before:
                self.io.show(line)
            while True:
                try:
                    raw = await self.io.ask(prompt)
                except EOFError:
                    return None
                if raw.strip().lower() == "/cancel":
                    self.io.show("(cancelled)")
                    return None
                try:
                    value = parse_answer(spec, raw)
                except ValueError as exc:
                    self.io.show(f"  ! {exc}")
                    continue
                break
            if value is not None:
                values[spec.id] = value
        return values

    async def execute(self, view: CardView, value: dict[str, Any], *, refresh: bool = False) -> None:
        activity = build_invoke(
            self.identity,
            self.connector.service_url,
            name="adaptiveCard/action",
            value=value,
            reply_to_id=view.activity_id,
        )
        status, body = await self.post(activity)
        if status is None:
            return
        outcome = interpret_invoke_response(status, body)
        if outcome.kind == "card" and outcome.card is not None:
            view.content = outcome.card
            view.visibility = {}
            view.opened = set()
            self.io.show("(card refreshed)" if refresh else "(card updated)")
            self._show_view(view)
        elif outcome.kind == "message":
            self.io.show(f"{self._bot_label()} {message_text(outcome.text, color=self.color)}")
        elif outcome.kind != "http_error" and not (refresh and outcome.kind == "empty"):
            # HTTP errors were reported by post(); a refresh without a new card changes nothing in Teams.
            self.io.show(f"(card action answer: {outcome.text})")

    async def _file_consent(self, view: CardView, action: CardAction) -> None:
        accepted = action.type == "fileConsent/accept"
        value: dict[str, Any] = {"type": "fileUpload", "action": "accept" if accepted else "decline"}
        if action.data is not None:
            value["context"] = action.data
        if accepted:
            value["uploadInfo"] = self.connector.upload_info(view.name)
        status, _ = await self.post(
            build_invoke(
                self.identity,
                self.connector.service_url,
                name="fileConsent/invoke",
                value=value,
                reply_to_id=view.activity_id,
            )
        )
        if status is not None and status >= 300:
            self.io.show(f"(the bot answered the file consent with HTTP {status})")

    def _echo(self, text: str | None, value: Any) -> None:
        parts = []
        if text:
            parts.append(text)
        if value is not None:
            parts.append(json.dumps(value, ensure_ascii=False))
        self.io.show(self._dim(f"(sent {' '.join(parts) or 'an empty submit'})"))

    # -- HTTP to the bot --------------------------------------------------------------------------------

    async def post(self, activity: dict[str, Any]) -> tuple[int | None, Any]:
        """POST an activity to the bot; (HTTP status, JSON body) or (None, None) when unreachable."""
        assert self._http is not None, "start() the session first"
        self.sent.append(activity)
        if self.raw:
            self.io.show(">> " + json.dumps(activity, ensure_ascii=False, indent=2))
        started = time.monotonic()
        try:
            async with self._http.post(self.bot_url, json=activity) as response:
                status = response.status
                raw_body = await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.io.show(
                f"(cannot reach the bot at {self.bot_url}: {exc or type(exc).__name__}; "
                "is `guichet serve` running?)"
            )
            return None, None
        elapsed = time.monotonic() - started
        body: Any = None
        if raw_body.strip():
            try:
                body = json.loads(raw_body)
            except ValueError:
                body = raw_body
        if self.raw:
            self.io.show(
                f"<< HTTP {status} " + (json.dumps(body, ensure_ascii=False, indent=2) if body else "")
            )
        if elapsed > TEAMS_TIMEOUT_SECONDS:
            self.io.show(
                f"(the bot took {elapsed:.1f} s to answer; Teams gives up after "
                f"{TEAMS_TIMEOUT_SECONDS:.0f} s)"
            )
        if status in (401, 403):
            self.io.show(
                f"(the bot refused the request: HTTP {status}. It checks Bot Framework tokens; "
                "run it without MicrosoftAppId for local chat)"
            )
        elif status >= 300:
            self.io.show(f"(the bot answered HTTP {status})")
        return status, body

    # -- what the connector receives -------------------------------------------------------------------

    def _received(self, recorded: Recorded) -> None:
        event, conversation_id = recorded.event, recorded.conversation_id
        activity, activity_id = recorded.activity, recorded.activity_id
        if self.raw and activity:
            self.io.show(
                f"<< connector {event} {activity_id} " + json.dumps(activity, ensure_ascii=False, indent=2)
            )
        if conversation_id != self.identity.conversation_id:
            self.io.show(self._dim(f"(in another conversation: {conversation_id})"))
        if event == "delete":
            for view in self.views:
                if view.activity_id == activity_id:
                    view.content = {
                        "type": "AdaptiveCard",
                        "body": [{"type": "TextBlock", "text": "(deleted)"}],
                    }
            self.io.show(self._dim("(the bot deleted a message)"))
            return
        kind = activity.get("type")
        if kind == "typing":
            return
        if kind == "endOfConversation":
            self.io.show(self._dim("(the bot ended the conversation)"))
            return
        if kind != "message":
            self.io.show(self._dim(f"(activity of type {kind})"))
            return
        if event == "update":
            self._update(activity, activity_id)
            return
        if activity.get("text"):
            text = message_text(str(activity["text"]), color=self.color, locale=self.identity.locale)
            self._show_lines(self._bot_label(activity), text.split("\n"))
        for attachment in activity.get("attachments") or []:
            if isinstance(attachment, dict):
                self._attachment(attachment, activity_id)
        suggested = activity.get("suggestedActions")
        if isinstance(suggested, dict) and suggested.get("actions"):
            self._new_view("suggested", suggested, activity_id)

    def _attachment(self, attachment: dict[str, Any], activity_id: str) -> None:
        content_type = attachment.get("contentType")
        content = attachment.get("content")
        if content_type == ADAPTIVE_CARD and isinstance(content, dict):
            view = self._new_view("adaptive", content, activity_id)
            self._maybe_refresh(view)
        elif content_type in (HERO_CARD, THUMBNAIL_CARD) and isinstance(content, dict):
            self._new_view("hero", content, activity_id)
        elif content_type == FILE_CONSENT_CARD and isinstance(content, dict):
            self._new_view("file", content, activity_id, name=str(attachment.get("name") or "file"))
        elif content_type == FILE_INFO_CARD:
            name, url = attachment.get("name", "file"), attachment.get("contentUrl", "")
            self.io.show(f"{self._bot_label()} [file] {name} <{url}>")
        else:
            where = attachment.get("contentUrl") or ""
            self.io.show(
                f"{self._bot_label()} [file] {attachment.get('name') or '(unnamed)'} ({content_type})"
                + (f" <{where}>" if where and not str(where).startswith("data:") else "")
            )

    def _new_view(self, kind: str, content: dict[str, Any], activity_id: str, *, name: str = "") -> CardView:
        view = CardView(len(self.views) + 1, kind, content, activity_id, name=name)
        self.views.append(view)
        if self._render(view).actions:
            self.current = view
        self._show_view(view)
        return view

    def _update(self, activity: dict[str, Any], activity_id: str) -> None:
        cards = adaptive_cards(activity)
        existing = [
            view for view in self.views if view.activity_id == activity_id and view.kind == "adaptive"
        ]
        if activity.get("text"):
            text = message_text(str(activity["text"]), color=self.color, locale=self.identity.locale)
            self._show_lines("(message updated)", text.split("\n"))
        for index, card in enumerate(cards):
            if index < len(existing):
                view = existing[index]
                view.content, view.visibility, view.opened = card, {}, set()
                self.io.show("(card updated)")
                self._show_view(view)
            else:
                self._new_view("adaptive", card, activity_id)

    def _maybe_refresh(self, view: CardView) -> None:
        """Teams runs a card's refresh action when it shows it to a listed user, at most once a minute."""
        refresh = view.content.get("refresh")
        action = refresh.get("action") if isinstance(refresh, dict) else None
        if not isinstance(action, dict) or action.get("type") != "Action.Execute":
            return
        user_ids = refresh.get("userIds") if isinstance(refresh, dict) else None
        if user_ids and not {self.identity.user_id, f"8:orgid:{self.identity.aad_object_id}"} & set(user_ids):
            return
        if time.monotonic() - view.refreshed_at < 60:
            return
        view.refreshed_at = time.monotonic()
        value = execute_value(card_action(action, 0, "refresh", ()), {}, trigger="automatic")
        # After the connector has answered: the bot is still waiting for that answer.
        task = asyncio.get_running_loop().create_task(self.execute(view, value, refresh=True))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _file_saved(self, path: Path) -> None:
        self.io.show(f"(file saved to {path})")

    # -- output -----------------------------------------------------------------------------------------

    def _render(self, view: CardView) -> RenderedCard:
        return view.render(color=self.color, locale=self.identity.locale, timezone=self.identity.timezone)

    def _show_view(self, view: CardView) -> None:
        rendered = self._render(view)
        label = {"adaptive": "card", "hero": "card", "suggested": "suggestions", "file": "file"}[view.kind]
        self.io.show(f"  ┌ {label} {view.number}")
        for line in rendered.lines:
            self.io.show(f"  │ {line}")
        self.io.show("  └")

    def _show_lines(self, label: str, lines: list[str]) -> None:
        pad = " " * len(strip_ansi(label))
        for index, line in enumerate(lines):
            self.io.show(f"{label if index == 0 else pad} {line}")

    def _bot_label(self, activity: Mapping[str, Any] | None = None) -> str:
        sender = (activity or {}).get("from") or {}
        name = sender.get("name") if isinstance(sender, Mapping) else None
        label = f"{name or self.identity.bot_name} ›"
        return bold_text(label) if self.color else label

    def _dim(self, text: str) -> str:
        return dim_text(text) if self.color else text
