"""What a chat channel can take, where that changes what the bot sends."""

from __future__ import annotations

TEAMS = "msteams"
PERSONAL_CHAT = "personal"


def file_needs_consent(channel_id: str | None, conversation_type: str | None) -> bool:
    """Whether a file goes as a file consent card (True) or inline as a `data:` URL (False).

    Teams lets a bot put a file in someone's OneDrive only in a personal chat, after asking them (the
    FileConsentCard); it has no such card in group chats or channels, and other channels (Web Chat, the
    Emulator) take the file inline. Teams sets the conversation type on every activity; one without it
    is taken as the personal chat the bot is installed for.
    """
    return channel_id == TEAMS and conversation_type in (None, PERSONAL_CHAT)
