"""Proofs of who a citizen on the agency's website is: manage links and sign-in subjects.

A Direct Line user id is whatever a web page says, so it proves nothing. A web conversation is bound to a
citizen only by one of two proofs:

- a manage link: a token the bot signed (HMAC-SHA256 with a secret only the server knows), naming one
  citizen, an expiry and the citizen's link epoch; raising the epoch (erasure does) revokes every link
  issued before;
- the agency's own sign-in: an assertion the agency's site signs about a stable subject; the subject
  becomes a key that never shows the subject itself.

A proof holds for the Direct Line user id the token endpoint made AND the conversation its token was made
for. A web conversation without a proof is an anonymous citizen of that conversation only
(`who_is_web_turn`): it may book and handle what it booked there, nothing else.

Pure functions: the caller passes the secret and the current time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from bot.domain.channels import is_web

# The signature covers this purpose too: a token signed for something else never passes as a manage link.
_PURPOSE = b"guichet-manage-link-v1."
# Longer input is refused before any decoding (a real token is ~150 characters).
MAX_TOKEN_LENGTH = 512
# Web citizens signed in by the agency are stored under this tenant, their subject key as the object id.
SIGN_IN_TENANT = "web-sign-in"
# A web conversation that proved nothing is a citizen of its own under this tenant, a hash of the Direct Line
# conversation id as the object id: a full identity, so the citizens' ON CONFLICT upsert serves it.
ANONYMOUS_WEB_TENANT = "web-conversation"


class ProofProblem(StrEnum):
    """Why a proof was refused; safe to show to the caller (it names no person)."""

    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    REVOKED = "revoked"
    WRONG_AGENCY = "wrong_agency"
    UNKNOWN_CITIZEN = "unknown_citizen"
    BAD_ASSERTION = "bad_assertion"


class ProofRefused(Exception):
    """A proof that does not hold; `problem` says why."""

    def __init__(self, problem: ProofProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass(frozen=True)
class ManageLink:
    """What a valid manage link says."""

    citizen_id: str
    agency_id: str
    epoch: int
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode("utf-8"), _PURPOSE + payload.encode("ascii"), hashlib.sha256).digest())


def sign_manage_link(secret: str, link: ManageLink) -> str:
    """The token of a manage link (URL-safe: it travels in the page address's fragment)."""
    if not secret:
        raise ValueError("a manage link needs a secret")
    payload = _b64(json.dumps({"c": link.citizen_id, "a": link.agency_id, "e": link.epoch,
                               "x": int(link.expires_at.timestamp())}, separators=(",", ":")).encode("utf-8"))
    return f"{payload}.{_signature(secret, payload)}"


def read_manage_link(secret: str, token: object, now: datetime) -> ManageLink:
    """The link's claims when its signature holds and it has not expired; raises ProofRefused otherwise.
    Whether its epoch is still current is for the caller to check (it lives in the database)."""
    if not secret or not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise ProofRefused(ProofProblem.MALFORMED)
    payload, signature = token.split(".")
    if not hmac.compare_digest(signature.encode("ascii", "replace"), _signature(secret, payload).encode("ascii")):
        raise ProofRefused(ProofProblem.BAD_SIGNATURE)
    try:
        claims = json.loads(_unb64(payload))
        link = ManageLink(citizen_id=claims["c"], agency_id=claims["a"], epoch=claims["e"],
                          expires_at=datetime.fromtimestamp(claims["x"], UTC))
    except (ValueError, KeyError, TypeError, OverflowError):
        raise ProofRefused(ProofProblem.MALFORMED) from None
    if not isinstance(link.citizen_id, str) or not isinstance(link.agency_id, str) or type(link.epoch) is not int:
        raise ProofRefused(ProofProblem.MALFORMED)
    if now >= link.expires_at:
        raise ProofRefused(ProofProblem.EXPIRED)
    return link


def subject_key(issuer: str, subject: str) -> str:
    """A stable key for the agency's signed-in subject (64 hex characters): the same person on every visit,
    without storing the subject (an eID subject can be a national number)."""
    return hashlib.sha256(f"{issuer}\x00{subject}".encode()).hexdigest()


def anonymous_object_id(conversation_id: str) -> str:
    """The object id (64 hex characters) of the anonymous citizen of one Direct Line conversation."""
    return hashlib.sha256(b"guichet-web-conversation\x00" + conversation_id.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class WebTurnIdentity:
    """Who a turn on the agency's website is.

    `proven_citizen_id`: the citizen the conversation proved (a manage link, the agency's sign-in);
    otherwise the anonymous citizen of the conversation (`tenant_id`, `object_id`), made only when
    `creates` (the visitor wrote or pressed something; opening the page makes nobody)."""

    proven_citizen_id: str | None
    tenant_id: str | None = None
    object_id: str | None = None
    creates: bool = False

    @property
    def proven(self) -> bool:
        return self.proven_citizen_id is not None


def who_is_web_turn(*, proven_citizen_id: str | None, conversation_id: str, visitor_acted: bool) -> WebTurnIdentity:
    """A proven conversation is its citizen; an unproven one is the anonymous citizen of THAT conversation,
    never of the Direct Line user id (a page may reuse one), made on the visitor's first message or press."""
    if proven_citizen_id is not None:
        return WebTurnIdentity(proven_citizen_id)
    return WebTurnIdentity(None, ANONYMOUS_WEB_TENANT, anonymous_object_id(conversation_id), creates=visitor_acted)


def keeps_stored_reference(stored: dict[str, Any] | None) -> bool:
    """Whether a proven web turn must leave the citizen's stored conversation reference alone: a Teams chat
    stays where reminders go (the website page may be closed any minute); a web one is replaced by the
    latest web conversation, and a citizen with none (signed in on the website) gets this one."""
    if stored is None:
        return False
    channel = stored.get("channelId")
    return not is_web(channel if isinstance(channel, str) else None)


def tell_how_to_prove(*, web_proof: bool | None, needs_proof: bool) -> bool:
    """Whether a turn is first told how to reach the rest: `needs_proof`, the way in to what the citizen may have
    done outside this conversation (their list, their personal data, a privacy right). An unproven web
    conversation (`web_proof` False) is told, then shown what it did itself (its anonymous citizen holds
    nothing else); Teams (None) and a proven conversation see everything the citizen did."""
    return needs_proof and web_proof is False


def reached_by_email(*, tenant_id: str | None, channel_id: str | None, blocked_the_bot: bool) -> bool:
    """Whether what the chat would carry (a confirmation, a link) goes by e-mail too: a citizen of the agency's
    website may have left the page, and one who blocked the bot in Teams cannot be written to there."""
    return tenant_id == SIGN_IN_TENANT or is_web(channel_id) or blocked_the_bot
