"""`guichet chat` in a terminal: reading lines without blocking the bot's messages, and the command's options.

`TerminalIO` is the session's `ChatIO` on a real terminal: input is read on a thread, and a message that
arrives while the user is typing is printed above the prompt, which is then drawn again with what was
typed so far. `chat` loads the person to play from the profile and runs a `ChatSession`; `run_chat` is its
blocking entry point, and `add_chat_arguments`/`run_chat_from_args` plug it into the `guichet` CLI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import threading
from pathlib import Path
from typing import Any

from bot.devtools.profile import (
    PROFILE_FILE_NAME,
    ROLES,
    ProfileError,
    default_profile_path,
    load_identity,
    remember_port,
    remembered_port,
)
from bot.devtools.session import ChatIO, ChatSession

DEFAULT_BOT_URL = "http://127.0.0.1:3978/api/messages"


class TerminalIO:
    """Reads lines without blocking the event loop; prints bot messages above a pending prompt."""

    def __init__(self) -> None:
        self.tty = sys.stdin.isatty() and sys.stdout.isatty()
        self._prompt: str | None = None
        self._readline: Any = None
        if self.tty:
            with contextlib.suppress(ImportError):
                import readline  # line editing and history, where the platform has them

                self._readline = readline

    async def ask(self, prompt: str) -> str:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()

        def read() -> None:
            try:
                line = input(prompt)
            except BaseException as exc:  # EOFError, or KeyboardInterrupt on some platforms
                loop.call_soon_threadsafe(_settle, future, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, future, line, None)

        # A daemon thread rather than the default executor: a pending input() must not keep the
        # process alive after Ctrl-C (asyncio.run waits for the default executor's threads).
        self._prompt = prompt
        threading.Thread(target=read, name="guichet-chat-input", daemon=True).start()
        try:
            return await future
        finally:
            self._prompt = None

    def show(self, text: str) -> None:
        if self._prompt is not None and self.tty:
            typed = self._readline.get_line_buffer() if self._readline is not None else ""
            sys.stdout.write(f"\r\x1b[K{text}\n{self._prompt}{typed}")
        else:
            sys.stdout.write(text + "\n")
        sys.stdout.flush()


def _settle(future: asyncio.Future[str], line: str | None, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(EOFError() if isinstance(error, EOFError | KeyboardInterrupt) else error)
    else:
        future.set_result(line or "")


def _use_color(color: bool | None) -> bool:
    if color is not None:
        return color
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


async def chat(
    *,
    url: str = DEFAULT_BOT_URL,
    role: str = "citizen",
    locale: str = "fr-BE",
    profile: Path | None = None,
    new: bool = False,
    aad_object_id: str | None = None,
    name: str | None = None,
    bot_app_id: str = "",
    color: bool | None = None,
    downloads_dir: Path | None = None,
    io: ChatIO | None = None,
) -> int:
    """Chat with the bot at `url` until /quit or end of input; the process exit code."""
    terminal: ChatIO = io or TerminalIO()
    profile_path = profile or default_profile_path()
    try:
        identity = load_identity(
            profile_path,
            role,
            new=new,
            locale=locale,
            bot_app_id=bot_app_id,
            aad_object_id=aad_object_id,
            name=name,
        )
    except ProfileError as exc:
        terminal.show(f"guichet chat: {exc}")
        return 2
    session = ChatSession(
        identity,
        url,
        terminal,
        color=_use_color(color) if io is None else bool(color),
        downloads_dir=downloads_dir or profile_path.parent / "guichet-chat-files",
    )

    def remember(port: int) -> None:
        with contextlib.suppress(ProfileError):
            remember_port(profile_path, role, port)

    return await session.run(remembered_port(profile_path, role), on_listening=remember)


def run_chat(
    *,
    url: str = DEFAULT_BOT_URL,
    role: str = "citizen",
    locale: str = "fr-BE",
    profile: Path | None = None,
    new: bool = False,
    aad_object_id: str | None = None,
    name: str | None = None,
    bot_app_id: str = "",
    color: bool | None = None,
    downloads_dir: Path | None = None,
) -> int:
    """Blocking entry point for `guichet chat`: the process exit code (0, 2 when the bot is unreachable or
    the profile unusable, 130 on Ctrl-C). `color=None` colours when stdout is a terminal."""
    try:
        return asyncio.run(
            chat(
                url=url,
                role=role,
                locale=locale,
                profile=profile,
                new=new,
                aad_object_id=aad_object_id,
                name=name,
                bot_app_id=bot_app_id,
                color=color,
                downloads_dir=downloads_dir,
            )
        )
    except KeyboardInterrupt:
        sys.stdout.write("\n")
        return 130


def add_chat_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `guichet chat`; pass the parsed namespace to `run_chat_from_args`."""
    parser.add_argument("--as", dest="role", choices=ROLES, default="citizen", help="who you play")
    parser.add_argument("--url", default=DEFAULT_BOT_URL, help="the bot's messaging endpoint")
    parser.add_argument(
        "--locale", default="fr-BE", help="Teams client locale, e.g. fr-BE, nl-BE, de-BE, en-GB"
    )
    parser.add_argument(
        "--profile", type=Path, default=None, help=f"identity file (default ~/{PROFILE_FILE_NAME})"
    )
    parser.add_argument("--new", action="store_true", help="play a new person in this role")
    parser.add_argument("--aad-object-id", default=None, help="Entra object id to use (and remember)")
    parser.add_argument("--name", default=None, help="display name to use (and remember)")
    parser.add_argument("--bot-app-id", default="", help="the bot's Microsoft App Id, if it has one")
    parser.add_argument("--no-color", action="store_true", help="plain text output")


def run_chat_from_args(args: argparse.Namespace) -> int:
    return run_chat(
        url=args.url,
        role=args.role,
        locale=args.locale,
        profile=args.profile,
        new=args.new,
        aad_object_id=args.aad_object_id,
        name=args.name,
        bot_app_id=args.bot_app_id,
        color=False if args.no_color else None,
    )
