"""The card that tells a visitor of the agency's website how to reach their appointments and data when this
conversation has not shown who they are: the manage link of our e-mail, or the agency's sign-in."""

from __future__ import annotations

from typing import Any

from bot.i18n import t
from cards.elements import adaptive_card, heading, text_block


def build_proof_needed_card(language: str, *, sign_in: bool) -> dict[str, Any]:
    """`sign_in`: the agency's website has a sign-in this bot accepts (only then is it mentioned)."""
    body = [
        heading(t(language, "web_identity.title")),
        text_block(t(language, "web_identity.why")),
        text_block(t(language, "web_identity.email_link", button=t(language, "email.manage_button"))),
    ]
    if sign_in:
        body.append(text_block(t(language, "web_identity.sign_in")))
    body += [
        text_block(t(language, "web_identity.no_codes"), isSubtle=True, size="small"),
        text_block(t(language, "web_identity.book_still"), spacing="medium"),
    ]
    # No button: what was asked for follows at once, with its own.
    return adaptive_card(language, body)
