"""The agency's sign-in assertion: a JWT its website signs (RS256 or ES256) about a citizen it signed in.

The website calls the token endpoint server-to-server with it; a valid one names a stable subject, which
becomes the citizen's key (bot.domain.web_identity.subject_key). Expiry is checked against the bot's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import jwt

from bot.domain.web_identity import ProofProblem, ProofRefused, subject_key

ALGORITHMS = ["RS256", "ES256"]
# An assertion is for one call: a longer life than this is refused (a leaked one would stay useful).
MAX_LIFETIME_SECONDS = 600


@dataclass(frozen=True)
class AssertionCheck:
    """What an assertion must match: the agency's public key (PEM), its issuer, our audience."""

    public_key: str
    issuer: str
    audience: str

    def subject_of(self, token: object, now: datetime) -> str:
        """The subject's key; raises ProofRefused(BAD_ASSERTION or EXPIRED)."""
        if not isinstance(token, str) or not token or len(token) > 8192:
            raise ProofRefused(ProofProblem.BAD_ASSERTION)
        try:
            claims = jwt.decode(
                token, self.public_key, algorithms=ALGORITHMS, audience=self.audience, issuer=self.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub"], "verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            raise ProofRefused(ProofProblem.BAD_ASSERTION) from None
        expires, issued, subject = claims["exp"], claims["iat"], claims["sub"]
        if not isinstance(expires, int | float) or not isinstance(issued, int | float) \
                or not isinstance(subject, str) or not subject.strip():
            raise ProofRefused(ProofProblem.BAD_ASSERTION)
        if now.timestamp() >= expires:
            raise ProofRefused(ProofProblem.EXPIRED)
        if expires - issued > MAX_LIFETIME_SECONDS or issued > now.timestamp() + 60:
            raise ProofRefused(ProofProblem.BAD_ASSERTION)
        return subject_key(self.issuer, subject)
