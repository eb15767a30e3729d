"""What a chat channel can take, where that changes what the bot sends.

Teams is where counselors work and where citizens of the agency's tenant may chat; the agency's website
reaches everyone else through Azure Bot Service's Web Chat / Direct Line channel. The two differ in what
cards can do (Web Chat renders no `Action.Execute` and Direct Line refuses to update or delete a message)
and in what the bot may say ("in this chat", "your Teams account"). The reader of what is being built is
set once per turn (`set_reader_channel`) or around an e-mail (`web_reader`); card builders and the message
catalogs ask `reader_on_web`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

TEAMS = "msteams"
PERSONAL_CHAT = "personal"
# The channels of the agency's website (Azure Bot Service's Web Chat / Direct Line).
WEB_CHANNELS = frozenset({"webchat", "directline"})

# Nothing replaces a pressed card on the web as Teams does, so a web Submit carries its button's title under
# this data key (cards.verbs.execute_action) and the bot says it back (bot.turn.chosen_title); at most
# CHOSEN_MAX_LENGTH characters, cut again on receipt since card data can be tampered with.
CHOSEN_KEY = "chosen_title"
CHOSEN_MAX_LENGTH = 80

_READER_ON_WEB: ContextVar[bool] = ContextVar("guichet_reader_on_web", default=False)


def is_web(channel_id: str | None) -> bool:
    """Whether the channel is the agency's website (Web Chat / Direct Line)."""
    return channel_id in WEB_CHANNELS


def can_change_sent_messages(channel_id: str | None) -> bool:
    """Whether the bot may update or delete a message it sent: Teams yes, Direct Line refuses (405)."""
    return channel_id == TEAMS


def set_reader_channel(channel_id: str | None) -> None:
    """What this turn builds is read on `channel_id` (cards' buttons and wording follow)."""
    _READER_ON_WEB.set(is_web(channel_id))


@contextmanager
def web_reader() -> Iterator[None]:
    """What is built inside is read outside Teams (the website, an e-mail)."""
    token = _READER_ON_WEB.set(True)
    try:
        yield
    finally:
        _READER_ON_WEB.reset(token)


def reader_on_web() -> bool:
    """Whether what is being built is read outside Teams: Submit-only cards, the web wording."""
    return _READER_ON_WEB.get()


def file_needs_consent(channel_id: str | None, conversation_type: str | None) -> bool:
    """Whether a file goes as a file consent card (True) or inline as a `data:` URL (False).

    Teams lets a bot put a file in someone's OneDrive only in a personal chat, after asking them (the
    FileConsentCard); it has no such card in group chats or channels, and other channels (Web Chat, the
    Emulator) take the file inline. Teams sets the conversation type on every activity; one without it
    is taken as the personal chat the bot is installed for.
    """
    return channel_id == TEAMS and conversation_type in (None, PERSONAL_CHAT)
